"""What a format module describes about itself (:class:`Format`), and what travels with tensors.

Format modules import only this; :mod:`.registry` lists their descriptions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .base import CheckpointReader, TensorInfo

if TYPE_CHECKING:
    from .atomic import Committer
    from .extents import Locate

Fetch = Callable[[TensorInfo], np.ndarray]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Documents:
    """What travels with the tensors: the key scheme, our architecture, an MXNet graph, metadata."""

    kind: str
    architecture: dict[str, Any] | None = None
    graph: dict[str, Any] | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    #: a framework's own model config (a Hugging Face ``config.json``, a ``.keras`` model config)
    config: dict[str, Any] | None = None
    #: the input file or folder the output derives from (whose side files a folder output copies)
    origin: str | None = None


class Writer(Protocol):
    """Writes one file (or one unit of files) atomically; returns notes on what it could not keep."""

    def __call__(self, path: str, infos: Sequence[TensorInfo], fetch: Fetch, documents: Documents, *,
                 progress: Progress | None = None, overwrite: bool = True, locate: Locate | None = None,
                 later: Committer | None = None) -> list[str]: ...


@dataclass(frozen=True)
class Probe:
    """What detection sees of a file: its path, first bytes and size."""

    path: str
    head: bytes
    size: int

    def peek(self, limit: int) -> bytes:
        """Up to ``limit`` bytes from the file's start (more than :data:`HEAD_BYTES`)."""
        with open(self.path, "rb") as handle:
            return handle.read(limit)


@dataclass(frozen=True)
class Format:
    """One checkpoint format.

    ``sniff`` recognises the format from a :class:`Probe` (None: never detected on its own, e.g.
    a format read through another's detection); ``open`` makes a reader; ``write`` writes one
    file (None: read only, ``cannot_write`` says why); ``shards`` whether the sharded writer may
    split an output into several files of this format; ``companions(path)`` the other files a
    write to ``path`` creates (an MXNet export's ``-symbol.json``).
    """

    name: str
    title: str
    extensions: tuple[str, ...]
    sniff: Callable[[Probe], bool] | None
    open: Callable[[str], CheckpointReader] | None
    write: Writer | None = None
    cannot_write: str = ""
    shards: bool = False
    companions: Callable[[str, Documents], list[str]] = lambda path, documents: []
    open_members: Callable[[str, Callable[[str], CheckpointReader]], CheckpointReader] | None = None
    #: the ``CheckpointReader.format`` names its readers report (to find an input's format)
    reports: tuple[str, ...] = ()
    #: written as a folder of files that lays out its own shards (``write`` takes ``max_shard_size``)
    directory: bool = False

    @property
    def extension(self) -> str:
        """The extension written files get (the first one)."""
        return self.extensions[0] if self.extensions else ""
