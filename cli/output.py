"""Output: data on stdout (JSON, a rich table at a terminal, plain text in a pipe), the rest on stderr."""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelsurgeon.core import __version__ as VERSION

SCHEMA_VERSION = 1
#: Operations over more bytes than this show a progress bar (at a terminal only).
PROGRESS_THRESHOLD = 64 << 20


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def printable(text: str) -> str:
    """Control characters from file contents shown escaped (``\\x1b``), never sent raw to a terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def shape_text(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


@dataclass
class Output:
    """How one command talks: ``json`` mode or human mode."""

    json: bool = False
    quiet: bool = False
    _notes: list[str] = field(default_factory=list)

    @property
    def reports(self) -> bool:
        """Whether a writing command prints its change report (not with --json or --quiet)."""
        return not (self.json or self.quiet)

    @property
    def stdout_is_terminal(self) -> bool:
        return sys.stdout.isatty()

    def console(self, stderr: bool = False):
        from rich.console import Console
        stream = sys.stderr if stderr else sys.stdout
        return Console(file=stream, highlight=False, soft_wrap=True, force_terminal=None)

    def emit(self, command: str, document: dict[str, Any]) -> None:
        """Print the command's JSON document on stdout (only in --json mode)."""
        payload = {"schema_version": SCHEMA_VERSION, "tool": "modelsurgeon", "version": VERSION,
                   "command": command, **document}
        sys.stdout.write(json.dumps(_finite(payload), indent=2, sort_keys=True, default=_jsonable,
                                    allow_nan=False) + "\n")

    def line(self, text: str = "") -> None:
        """A line of human output on stdout."""
        if not self.json:
            sys.stdout.write(printable(text) + "\n")

    def note(self, text: str) -> None:
        """A message for the person at the terminal: stderr, never mixed into data."""
        if not self.quiet:
            sys.stderr.write(printable(text) + "\n")

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None,
              justify: Sequence[str] | None = None) -> None:
        """A rich table at a terminal; tab-separated lines (header first) in a pipe."""
        if self.json:
            return
        if not self.stdout_is_terminal:
            sys.stdout.write("\t".join(columns) + "\n")
            for row in rows:
                sys.stdout.write("\t".join(printable(str(c)) for c in row) + "\n")
            return
        from rich.table import Table
        from rich.text import Text
        table = Table(title=title, title_justify="left", header_style="bold", box=None, pad_edge=False)
        for i, column in enumerate(columns):
            table.add_column(column, justify=(justify[i] if justify else "left"), overflow="fold")  # type: ignore[arg-type]
        for row in rows:
            table.add_row(*(Text(printable(str(c))) for c in row))  # Text: keys are never rich markup
        self.console().print(table)

    @contextlib.contextmanager
    def progress(self, description: str, total_bytes: int) -> Iterator[Any]:
        """A progress callback ``(done, total)``; draws a bar on stderr at a terminal for large jobs."""
        if self.quiet or self.json or total_bytes < PROGRESS_THRESHOLD or not sys.stderr.isatty():
            yield None
            return
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      console=self.console(stderr=True), transient=True) as bar:
            task = bar.add_task(description, total=total_bytes)
            yield lambda done, total: bar.update(task, completed=done, total=total)


def _finite(value: Any) -> Any:
    """JSON has no NaN or Infinity (jq refuses them): non-finite numbers become null."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    import numpy as np
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
