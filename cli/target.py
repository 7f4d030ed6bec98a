"""The one output policy of every command that writes: checkpoints, pictures, reports and arrays.

``-o/--output``, ``--force``, ``--dry-run``, ``--format`` and ``--max-shard-size`` become a
:class:`Target`. Before any work or report it refuses an output whose format is unknown or read
only (exit 2, naming the writable formats), that is a file the command reads (shards, index and
sibling graph included), that is not a regular file, that exists without ``--force``, or whose
directory is missing or not writable; then :meth:`Target.write` applies the surgery plan.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from modelsurgeon.core.errors import WriteError
from modelsurgeon.core.formats import atomic, registry
from modelsurgeon.core.formats.base import CheckpointReader
from modelsurgeon.core.surgery import plan as plans

from .errors import flags
from .output import Output, human_bytes


def parse_size(text: str) -> int:
    """``'2GB'``, ``'500MB'``, ``'1GiB'``, ``'4096'`` -> bytes (GB = 10**9, GiB = 2**30)."""
    import re
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?)[bB]?\s*", text or "")
    if match is None:
        raise click.BadParameter(f"cannot read size {text!r}; write it like 2GB, 500MB or 1GiB")
    number, unit, binary = match.groups()
    power = " KMGT".index(unit.upper() or " ")
    size = int(float(number) * (1024 if binary else 1000) ** power)
    if size <= 0:
        raise click.BadParameter(f"size {text!r} must be positive")
    return size


@dataclass
class Target:
    """Where and how a command writes: -o/--output, --force, --dry-run, --format, --max-shard-size."""

    output: str | None
    force: bool
    dry_run: bool
    fmt: str | None
    max_shard_size: int | None

    def early_check(self) -> None:
        """What can be refused before the input is opened: a missing -o, an unknown output format."""
        if self.output is None:
            return
        _, extension = os.path.splitext(self.output.rstrip("/" + os.sep))
        if self.fmt is not None or (extension and not os.path.isdir(self.output)):
            registry.choose_output(self.output, self.fmt, None, sharded=self.max_shard_size is not None)

    def check_before_work(self) -> None:
        """For a command that computes before it writes (zoo builds a model): refuse an output that
        cannot be written (exists without --force, missing or read-only directory...) first."""
        if self.output is None or self.dry_run:
            return
        _, extension = os.path.splitext(self.output.rstrip("/" + os.sep))
        if not extension or os.path.isdir(self.output):
            return  # a folder: checked with the plan
        choice = registry.choose_output(self.output, self.fmt, "h5", sharded=self.max_shard_size is not None)
        if not choice.sharded and not choice.format.directory:
            plans.check_paths([self.output], [], self.force)

    def destination(self, plan: plans.Plan, reader: CheckpointReader | None = None,
                    default: str | None = None) -> plans.Destination | None:
        """The destination (None for a dry run without -o), checked against the plan's inputs."""
        if self.output is None:
            if not self.dry_run:
                raise click.UsageError("give -o/--output (or --dry-run to only see the plan)")
            return None
        source = registry.format_of(reader) if reader is not None else None
        if source is not None and source.write is not None:
            default = source.name
        dest = plans.destination(self.output, self.fmt, default=default, max_shard_size=self.max_shard_size,
                                 overwrite=self.force)
        if not self.dry_run:
            parent = os.path.dirname(os.path.abspath(self.output))
            if not os.path.isdir(self.output) and os.path.isdir(parent):
                atomic.check_writable(self.output)  # named as given (not as its first shard)
            plans.check(plan, dest)
            check_space(dest.path, least_bytes(plan))
        return dest

    def write(self, out: Output, plan: plans.Plan, dest: plans.Destination,
              input_shape: tuple[int, ...] | None = None) -> list[str]:
        """Apply ``plan`` (streaming, atomically); the path written becomes ``self.output``."""
        with out.progress(f"writing {os.path.basename(dest.path.rstrip('/')) or dest.path}",
                          plan.total_bytes()) as progress:
            written, notes = plans.apply(plan, dest, progress=progress, input_shape=input_shape)
        self.output = written
        return notes


def least_bytes(plan: plans.Plan) -> int:
    """The fewest bytes writing ``plan`` can take: its tensors' data, a tensor stored in a narrower
    dtype than it reads as (bfloat16 read as float32...) counted at one byte an element."""
    return sum(info.size if info.extra.get("source_dtype") else info.nbytes
               for info in plan.infos if info.alias_of is None)


def check_space(output: str, needed: int) -> None:
    """Refuse, before any work or report, an output its file system has no room for (a full disk
    found mid-write is still reported by the writer, naming the output)."""
    folder = os.path.dirname(os.path.abspath(output.rstrip("/" + os.sep))) if not os.path.isdir(output) else output
    while folder and not os.path.isdir(folder):  # a folder or shards the write will create
        folder = os.path.dirname(folder)
    try:
        stats = os.statvfs(folder or ".")
    except OSError:
        return  # the writer meets and reports whatever this is
    free = stats.f_bavail * stats.f_frsize
    if needed > free:
        raise WriteError(f"{output}: no space left on device: the output needs at least {human_bytes(needed)} and "
                         f"{folder} has {human_bytes(free)} free")


def check_output(output: str, inputs: Sequence[str], force: bool) -> None:
    """The policy for a single-file output of a command (a picture, a report, an array)."""
    plans.check_paths([output], inputs, force)


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    return None if value is None else parse_size(value)


_size.bad_example = "0"  # type: ignore[attr-defined]


def write_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The output options every writing command shares; the command receives ``target: Target``."""
    names = ", ".join(f.name for f in registry.writable())

    @click.option("-o", "--output", type=click.Path(), help="Where to write the result (a directory or "
                  "NAME.index.json with --max-shard-size).")
    @click.option("--force", is_flag=True, help="Overwrite the output if it exists.")
    @click.option("--dry-run", is_flag=True, help="Show the planned changes; write nothing.")
    @click.option("--format", "fmt", type=click.Choice([f.name for f in registry.writable()]),
                  help=f"Output format ({names}; default: from the output's extension, else the input's).")
    @click.option("--max-shard-size", callback=_size, metavar="SIZE",
                  help="Split the output into shards of at most SIZE (e.g. 2GB) plus an index file.")
    @functools.wraps(command)
    def wrapper(*args: Any, output: str | None, force: bool, dry_run: bool, fmt: str | None,
                max_shard_size: int | None, **kwargs: Any) -> Any:
        target = Target(output, force, dry_run, fmt, max_shard_size)
        target.early_check()
        return command(*args, target=target, **kwargs)

    return wrapper


def finish(out: Output, command: str, document: dict[str, Any], notes: list[str], target: Target) -> None:
    """The end of every writing command: notes and ``wrote X`` on stderr, or the JSON document."""
    notes = [flags(note) for note in notes]
    document.update({"output": None if target.dry_run else target.output, "dry_run": target.dry_run,
                     "notes": notes})
    if out.json:
        out.emit(command, document)
        return
    for note in notes:
        out.note(f"note: {flags(note)}")
    out.note("dry run: nothing was written" if target.dry_run else f"wrote {target.output}")


__all__ = ["Target", "check_output", "finish", "parse_size", "write_options"]
