"""Result rows and the Markdown table written into bench/README.md."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

START = "<!-- bench:results:start (written by bench/run.py; edits here are overwritten) -->"
END = "<!-- bench:results:end -->"


@dataclasses.dataclass
class Row:
    """One figure: a ratio against a baseline measured in the same run, and whether it meets its target.

    ``target`` is ``("<=", 1.2)`` or ``(">=", 0.85)`` for the ratio, or None for an informational row.
    ``met`` is filled from the ratio and target unless given (e.g. False when a command failed).
    """

    id: str
    name: str
    target: tuple[str, float] | None
    ratio: float | None
    measured: str
    load: str
    command: str
    note: str = ""
    met: bool | None = None
    target_text: str = ""
    inconclusive: bool = False  # the baseline itself varied too much in this run to judge the target

    def __post_init__(self) -> None:
        if self.met is None and self.target is not None and self.ratio is not None:
            op, bound = self.target
            self.met = self.ratio <= bound if op == "<=" else self.ratio >= bound
        if not self.target_text and self.target is not None:
            op, bound = self.target
            self.target_text = f"{'≤' if op == '<=' else '≥'} {bound:g}x"

    def status(self) -> str:
        if self.inconclusive:
            return "inconclusive"
        if self.met is None:
            return "info" if self.ratio is not None else "not run"
        return "met" if self.met else "**missed**"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def ratio_text(row: Row) -> str:
    return "—" if row.ratio is None else f"{row.ratio:.2f}x"


def render(rows: Sequence[Row], header: Sequence[str]) -> str:
    lines = [START, ""]
    lines += list(header)
    lines += ["", "| # | benchmark | target | ratio | status | measured (medians) | other load | command |",
              "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(x) for x in (
            row.id, row.name, row.target_text or "—", ratio_text(row), row.status(), row.measured, row.load,
            f"`{row.command}`" if row.command else "")) + " |")
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        if row.note:
            grouped.setdefault(row.note, []).append(row)
    if grouped:
        lines += ["", "Notes (why a target is missed and what would close it; why a row did not run):", ""]
        for note, group in grouped.items():
            ids = ", ".join(row.id for row in group)
            states = sorted({row.status().strip("*") for row in group})
            lines.append(f"- **{ids}** ({', '.join(states)}): {note}")
    lines += ["", END]
    return "\n".join(lines) + "\n"


def write_readme(path: Path, block: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START in text and END in text:
        pattern = re.compile(re.escape(START) + r".*?" + re.escape(END) + r"\n?", re.S)
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text, encoding="utf-8")
