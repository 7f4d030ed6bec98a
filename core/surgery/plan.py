"""One plan for every surgery, and one ``apply`` that writes any plan to any destination.

A :class:`Plan` is the whole output, decided before anything is written: each output tensor with
its :class:`Source` (an input tensor copied unchanged, a new array, a transform streamed from an
input tensor, or a combination of several inputs' tensors), the documents that travel with them
(key scheme, architecture, graph, metadata), notes, and a JSON-ready account of what the surgery
did. Builders (:func:`~.rename.plan_rename`, :func:`~.head.plan_replace_head`, ...) validate
everything first and raise before returning a plan; :func:`apply` streams the plan, one tensor in
memory at a time, into a :class:`Destination` (any writable format, sharded or not), refusing first
any output that would overwrite a file the plan reads or anything but a regular file.

>>> import numpy as np
>>> from modelsurgeon.core.formats.base import TensorInfo
>>> plan = Plan.of([(TensorInfo("w", (2,), np.dtype("float32")), New(np.ones(2, np.float32)))], kind="structural")
>>> [info.key for info, _ in plan.tensors], plan.documents.kind
(['w'], 'structural')
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast

import numpy as np

from ..errors import OutputExistsError, SurgeryError, WriteError
from ..formats import atomic, registry, sharded
from ..formats.base import CheckpointReader, TensorInfo
from ..formats.extents import Extent
from ..formats.spec import Documents, Format, Progress

# -- sources ---------------------------------------------------------------------------------------


class Source(Protocol):
    """Where an output tensor's data comes from."""

    def fetch(self) -> np.ndarray:
        """The tensor's data (read or computed now; one tensor in memory at a time)."""

    def extent(self) -> Extent | None:
        """Where the bytes already lie in a file, exactly as written (a kernel copy), if they do."""


@dataclass(frozen=True)
class Copy:
    """An input tensor, unchanged: copied by the kernel where the reader can locate its bytes."""

    reader: CheckpointReader
    key: str

    def fetch(self) -> np.ndarray:
        return self.reader.read(self.key)

    def extent(self) -> Extent | None:
        return self.reader.extent(self.key)


@dataclass(frozen=True)
class New:
    """A new array made by the surgery (a new head, an inserted buffer)."""

    array: np.ndarray

    def fetch(self) -> np.ndarray:
        return self.array

    def extent(self) -> Extent | None:
        return None


@dataclass(frozen=True)
class Transform:
    """``function`` applied to an input tensor as it streams through (a cast, a slice, a resize)."""

    reader: CheckpointReader
    key: str
    function: Callable[[np.ndarray], np.ndarray]

    def fetch(self) -> np.ndarray:
        return self.function(self.reader.read(self.key))

    def extent(self) -> Extent | None:
        return None


@dataclass(frozen=True)
class Combine:
    """``function`` of the same tensor read from several inputs (an average of checkpoints)."""

    inputs: tuple[tuple[CheckpointReader, str], ...]
    function: Callable[[list[np.ndarray]], np.ndarray]

    def fetch(self) -> np.ndarray:
        return self.function([reader.read(key) for reader, key in self.inputs])

    def extent(self) -> Extent | None:
        return None


# -- the plan --------------------------------------------------------------------------------------


@dataclass
class Plan:
    """Every output tensor with its source, the documents, notes, and what the surgery did.

    ``readers`` are the checkpoints the plan reads (their files are never an output);
    ``details`` is the surgery's own JSON-ready account (the rename table, the chosen head...).
    """

    tensors: list[tuple[TensorInfo, Source]]
    documents: Documents
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    readers: list[CheckpointReader] = field(default_factory=list)

    @classmethod
    def of(cls, tensors: Sequence[tuple[TensorInfo, Source]], kind: str, *, architecture: dict[str, Any] | None = None,
           graph: dict[str, Any] | None = None, metadata: dict[str, str] | None = None,
           readers: Sequence[CheckpointReader] = (), notes: Sequence[str] = (),
           details: dict[str, Any] | None = None, config: dict[str, Any] | None = None) -> Plan:
        """A plan; its framework config (and the origin whose side files a folder output copies) is
        the first reader's unless ``config`` is given."""
        first = readers[0] if readers else None
        if config is None and first is not None:
            config = first.config
        documents = Documents(kind, architecture, graph, dict(metadata or {}), config,
                              first.path if first is not None else None)
        return cls(list(tensors), documents, list(notes), dict(details or {}), list(readers))

    @classmethod
    def copy_of(cls, reader: CheckpointReader, **documents: Any) -> Plan:
        """Every tensor of ``reader`` unchanged, with its documents (a plain format conversion)."""
        return cls.of([(info, Copy(reader, info.key)) for info in reader.tensors.values()], reader.kind,
                      architecture=documents.get("architecture", reader.architecture),
                      graph=documents.get("graph", reader.graph),
                      metadata=documents.get("metadata", carried_metadata(reader)), readers=[reader])

    @property
    def infos(self) -> list[TensorInfo]:
        return [info for info, _ in self.tensors]

    def source_files(self) -> list[str]:
        """Every file the plan reads."""
        return [path for reader in self.readers for path in reader.source_files()]

    def total_bytes(self) -> int:
        return sum(info.nbytes for info in self.infos if info.alias_of is None)


def carried_metadata(reader: CheckpointReader) -> dict[str, str]:
    """The input's metadata that an output carries on (not what the reader derived itself)."""
    return {k: v for k, v in reader.metadata.items() if k != "graph_file"}


#: Shards of a sharded output named by its index, when no size is given (as transformers' default).
DEFAULT_SHARD_SIZE = 5 * 10**9

# -- destinations ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    """Where a plan goes: a path, its format, sharding (``max_shard_size``), and whether to overwrite."""

    path: str
    format: Format
    max_shard_size: int | None = None
    overwrite: bool = False
    #: a folder format's own shard size (it lays out its shards itself)
    folder_shard_size: int | None = None

    @property
    def sharded(self) -> bool:
        return self.max_shard_size is not None


def destination(path: str, format: str | None = None, *, default: str | None = None,
                max_shard_size: int | None = None, overwrite: bool = False) -> Destination:
    """The destination for ``path``: ``format`` by name, else from the extension, else ``default``
    (the input's format). A directory or ``*.index.json`` path is a sharded output (``max_shard_size``
    required). Unknown or read-only formats raise :class:`OutputFormatError` naming those that can be
    written."""
    choice = registry.choose_output(path, format, default, sharded=max_shard_size is not None)
    if choice.sharded and max_shard_size is None:
        max_shard_size = DEFAULT_SHARD_SIZE
    if choice.format.directory:
        return Destination(path, choice.format, None, overwrite, folder_shard_size=max_shard_size)
    return Destination(path, choice.format, max_shard_size, overwrite)


def outputs(plan: Plan, dest: Destination) -> list[str]:
    """Every file writing ``plan`` to ``dest`` creates or replaces."""
    if dest.format.directory:
        return [os.path.join(dest.path, "config.json")]
    if dest.sharded:
        index, shards = sharded.plan_shards(dest.path, dest.format, plan.infos, dest.max_shard_size or 1)
        files = [path for path, _ in shards] + [index]
    else:
        files = [dest.path]
    return files + [c for f in files[:1] for c in dest.format.companions(f, plan.documents) if not dest.sharded]


def check(plan: Plan, dest: Destination, extra_inputs: Sequence[str] = ()) -> None:
    """Refuse, before any work, a destination that would overwrite an input or a non-regular file,
    exists without ``overwrite``, or lies in a directory that does not exist."""
    check_paths(outputs(plan, dest), [*plan.source_files(), *extra_inputs], dest.overwrite,
                make_directory=dest.sharded or dest.format.directory)


def check_paths(targets: Sequence[str], inputs: Sequence[str], overwrite: bool, make_directory: bool = False) -> None:
    """The one output policy, for checkpoints, pictures, reports and arrays alike."""
    read = [(os.path.abspath(p), _identity(p)) for p in inputs]
    for target in targets:
        absolute = os.path.abspath(target)
        found = _identity(target)
        for (path, identity), given in zip(read, inputs):
            if absolute == path or (found is not None and found == identity):
                what = "the input" if given == inputs[0] else f"a file the input needs ({given})"
                raise SurgeryError(f"the output {target} is {what}; write elsewhere")
        try:
            info: os.stat_result | None = os.stat(target)
        except (FileNotFoundError, NotADirectoryError):
            info = None
        except OSError as exc:
            raise WriteError(f"{target}: cannot be written: {exc.strerror or exc}") from None
        if info is not None:
            if not stat.S_ISREG(info.st_mode):
                what = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
                raise WriteError(f"{target} is {what}; outputs only replace regular files")
            if not overwrite:
                raise OutputExistsError(f"{target} already exists (use `overwrite` to overwrite it)")
        if not (make_directory and not os.path.exists(os.path.dirname(absolute))):
            atomic.check_writable(target)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


# -- apply -----------------------------------------------------------------------------------------


def apply(plan: Plan, dest: Destination, progress: Progress | None = None,
          input_shape: tuple[int, ...] | None = None) -> tuple[str, list[str]]:
    """Write ``plan`` to ``dest``, streaming; returns (the path written, notes).

    Unchanged input tensors are copied by the kernel where their reader can locate them; every
    file appears whole or not at all (a sharded output's index last). An ONNX output from another
    format is exported from the plan's graph or architecture (``input_shape`` where the file records
    none).
    """
    check(plan, dest)
    sources = {info.key: source for info, source in plan.tensors}

    def fetch(info: TensorInfo) -> np.ndarray:
        return sources[info.key].fetch()

    def locate(info: TensorInfo) -> Extent | None:
        return sources[info.key].extent()

    notes = list(plan.notes)
    if dest.format.name == "onnx" and not _from_onnx(plan):
        from ..onnx.export.exporter import write_documents
        notes += write_documents(dest.path, plan.infos, fetch, plan.documents, progress=progress,
                                 overwrite=dest.overwrite, input_shape=input_shape)
        return dest.path, notes
    if dest.sharded:
        index, written = sharded.write_sharded(dest.path, dest.format, plan.infos, fetch, plan.documents,
                                               max_shard_size=dest.max_shard_size or 0, progress=progress,
                                               overwrite=dest.overwrite, locate=locate)
        return index, notes + written
    assert dest.format.write is not None  # destination() accepts only writable formats
    if dest.format.directory:  # a folder format lays out its own shards
        write_folder = cast(Callable[..., list[str]], dest.format.write)
        notes += write_folder(dest.path, plan.infos, fetch, plan.documents, progress=progress,
                              overwrite=dest.overwrite, locate=locate, max_shard_size=dest.folder_shard_size)
        return dest.path, notes
    notes += dest.format.write(dest.path, plan.infos, fetch, plan.documents, progress=progress,
                               overwrite=dest.overwrite, locate=locate)
    return dest.path, notes


def _from_onnx(plan: Plan) -> bool:
    return any(registry.format_of(reader) is registry.get("onnx") for reader in plan.readers)


def with_metadata(plan: Plan, **metadata: str) -> Plan:
    """The plan with more metadata on its documents."""
    documents = replace(plan.documents, metadata={**plan.documents.metadata, **metadata})
    return replace(plan, documents=documents)
