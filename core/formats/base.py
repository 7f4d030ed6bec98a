"""The reader interface every checkpoint format implements.

A reader opens a file, validates its structure and lists its tensors (key, shape, dtype and
what the format knows about each) **without reading tensor data**; :meth:`CheckpointReader.read`
then reads one tensor at a time. ``inspect`` and every streaming operation build on this.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .extents import Extent

from ..errors import CheckpointError, InputNotFoundError

STRUCTURAL = "structural"
NAMED = "named"
#: The most tensors a reader lists. Listing costs about a kilobyte of memory per tensor, so a
#: file claiming tens of millions (legal in MXNet's and zip's containers) is refused up front
#: instead of exhausting memory; real checkpoints hold thousands.
MAX_TENSORS = 2_000_000


@dataclass(frozen=True)
class TensorInfo:
    """What a checkpoint says about one tensor, before its data is read.

    Attributes:
        key: the tensor's key in this file's scheme (``features.0.weight``, ``param_..._weight``,
            ``resnetv10_conv0_weight``...), with any ``arg:``/``aux:`` prefix removed.
        shape, dtype: as stored.
        role: ``'arg'`` or ``'aux'`` where the file tells (name-keyed files), else None.
        structural: the structural names a name-keyed tensor came from, where recorded.
        alias_of: for a tensor stored once under several keys, the first key that holds it.
    """

    key: str
    shape: tuple[int, ...]
    dtype: np.dtype
    role: str | None = None
    structural: tuple[str, ...] = ()
    alias_of: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize


class CheckpointReader(ABC):
    """An open checkpoint: metadata up front, tensor data on demand.

    Subclasses set, in ``__init__``: ``path``, ``format`` (a short format name such as
    ``'modelsurgeon-h5'``, ``'mxnet-params'``, ``'safetensors'``), ``kind`` (``'structural'`` or
    ``'named'``), ``tensors`` (an insertion-ordered dict of :class:`TensorInfo` by key), and where
    the file has them ``architecture`` (our architecture document), ``graph`` (MXNet graph JSON
    as a dict) and ``metadata`` (format-specific string metadata, e.g. safetensors'
    ``__metadata__``). Every problem found while opening is a ``CheckpointError``.
    """

    path: str
    format: str
    kind: str
    tensors: dict[str, TensorInfo]
    architecture: dict[str, Any] | None = None
    graph: dict[str, Any] | None = None
    metadata: dict[str, str]
    #: A framework's own model config, where the file has one (Hugging Face, ``.keras``).
    config: dict[str, Any] | None = None
    #: Files read besides ``path`` (an MXNet export's ``-symbol.json``).
    companion_files: tuple[str, ...] = ()

    def source_files(self) -> list[str]:
        """Every file this checkpoint reads: no command may write over any of them."""
        return [self.path, *self.companion_files]
    #: What the reader set aside while opening (a malformed optional document...), for the user.
    notes: list[str] | tuple[str, ...] = ()

    @abstractmethod
    def read(self, key: str) -> np.ndarray:
        """The data of tensor ``key`` (a fresh array, or a read-only view of a mapped file)."""

    def extent(self, key: str) -> Extent | None:
        """Where tensor ``key``'s bytes lie in the file, if stored there exactly as :meth:`read` returns
        them (so a writer may copy them without reading them); None when they are not, or the format
        cannot tell (compressed, chunked, converted on reading...)."""
        return None

    def close(self) -> None:  # noqa: B027 - an optional override: the default has nothing to release
        """Release the file; the default has nothing to release."""

    def __enter__(self) -> CheckpointReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __contains__(self, key: object) -> bool:
        return key in self.tensors

    def __len__(self) -> int:
        return len(self.tensors)

    def __iter__(self) -> Iterator[str]:
        """The keys, in the file's order (as :meth:`keys`)."""
        return iter(list(self.tensors))

    def keys(self) -> list[str]:
        return list(self.tensors)

    def total_bytes(self) -> int:
        return sum(info.nbytes for info in self.tensors.values() if info.alias_of is None)


@contextlib.contextmanager
def input_errors(path: str, what: str = "checkpoint file") -> Iterator[None]:
    """Turn the operating system's reasons for not reading ``path`` into one CheckpointError.

    Anything but a regular file (a directory, a FIFO, a device, a socket) is refused before it is
    opened: opening a FIFO for reading blocks until someone writes to it, and a device never ends.
    """
    with _os_errors(path, what):
        mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise CheckpointError(path, f"is {_file_kind(mode)}, not a {what}"
                                    + ("" if stat.S_ISDIR(mode) else " (only regular files are read)"))
    with _os_errors(path, what):
        yield


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


@contextlib.contextmanager
def _os_errors(path: str, what: str) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError:
        raise InputNotFoundError(path, "no such file") from None
    except IsADirectoryError:
        raise CheckpointError(path, f"is a directory, not a {what}") from None
    except PermissionError:
        raise CheckpointError(path, "permission denied") from None
    except OSError as exc:
        raise CheckpointError(path, f"cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:  # e.g. an embedded NUL
        raise CheckpointError(path, f"invalid path: {exc}") from None


def without_aliases(infos: Sequence[TensorInfo], notes: list[str]) -> list[TensorInfo]:
    """For formats without links: a tensor stored under several keys is written once per key."""
    flat = [TensorInfo(i.key, i.shape, i.dtype, i.role, i.structural) if i.alias_of else i for i in infos]
    shared = sum(1 for i in infos if i.alias_of)
    if shared:
        notes.append(f"{shared} shared tensor(s) stored as copies (the format has no links)")
    return flat
