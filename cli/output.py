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
    _bar: Any = field(default=None, repr=False)  # (rich Progress, task id) while a bar is on screen

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
        terminal = self.stderr_is_terminal if stderr else self.stdout_is_terminal
        return Console(file=stream, highlight=False, soft_wrap=True, force_terminal=terminal or None)

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

    @property
    def stderr_is_terminal(self) -> bool:
        """Whether progress is drawn: stderr is a terminal (a pipe or a file gets none)."""
        return sys.stderr.isatty()

    @contextlib.contextmanager
    def progress(self, description: str, total: int | None, unit: str = "bytes") -> Iterator[Any]:
        """A progress callback ``(done, total)``, drawn as one bar on stderr at a terminal.

        ``unit`` is ``"bytes"`` (jobs under :data:`PROGRESS_THRESHOLD` get no bar) or ``"tensors"``;
        ``total=None`` is work of unknown size (building a model, loading weights): a spinner with
        the time spent. Inside another progress, the same bar moves on to this stage, so a command
        shows one bar however its steps nest. Nothing is drawn with --json, --quiet or in a pipe.
        """
        if self.quiet or self.json or not self.stderr_is_terminal:
            yield None
            return
        if self._bar is not None:  # a later stage of the job already on screen: the same bar
            bar, task = self._bar
            bar.update(task, total=total, completed=0, description=description, unit=unit)
            yield lambda done, whole: bar.update(task, completed=done, total=whole)
            return
        if unit == "bytes" and total is not None and total < PROGRESS_THRESHOLD:
            yield None
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
        with Progress(TextColumn("{task.description}"), BarColumn(), _amount_column(), TimeElapsedColumn(),
                      console=self.console(stderr=True), transient=True) as bar:
            task = bar.add_task(description, total=total, unit=unit)
            self._bar = (bar, task)
            try:
                yield lambda done, whole: bar.update(task, completed=done, total=whole)
            finally:
                self._bar = None


def _amount_column() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Amount(ProgressColumn):
        """``12.0 MiB / 45.0 MiB``, ``3/10 tensors``, or nothing while the size is unknown."""

        def render(self, task: Any) -> Text:
            if task.total is None:
                return Text("")
            if task.fields.get("unit") == "bytes":
                return Text(f"{human_bytes(int(task.completed))} / {human_bytes(int(task.total))}")
            return Text(f"{int(task.completed)}/{int(task.total)} {task.fields.get('unit')}")

    return Amount()


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
