"""Write a checkpoint in any output format, streaming one tensor at a time.

Every surgery command ends here: it hands over the output's tensor list, a ``fetch`` that
reads each tensor when it is written (from the input file, or from the plan's new tensors),
and the documents that go with them. What an output format cannot hold is returned as a list
of notes, never silently dropped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ModelSurgeonError
from .formats.base import NAMED, CheckpointReader, TensorInfo
from .formats.extents import Extent, Locate
from .formats.h5 import write_h5

if TYPE_CHECKING:
    from .formats.atomic import CommitQueue

OUTPUT_FORMATS = ("h5", "mxnet", "safetensors", "npz")
Fetch = Callable[[TensorInfo], np.ndarray]

#: keys in safetensors ``__metadata__`` that carry our documents losslessly
ST_ARCHITECTURE = "modelsurgeon.architecture"
ST_GRAPH = "modelsurgeon.graph"
ST_KIND = "modelsurgeon.kind"


def format_for_path(path: str, requested: str | None = None) -> str:
    """The output format: as requested, else from the extension (.safetensors, .params, .npz), else h5."""
    if requested is not None:
        if requested not in OUTPUT_FORMATS:
            raise ModelSurgeonError(f"unknown output format {requested!r}; choose from {', '.join(OUTPUT_FORMATS)}")
        return requested
    lowered = path.lower()
    if lowered.endswith(".safetensors"):
        return "safetensors"
    if lowered.endswith(".params"):
        return "mxnet"
    if lowered.endswith(".npz"):
        return "npz"
    return "h5"


def reader_source(reader: CheckpointReader, source_key: Callable[[str], str] | None = None,
                  new: dict[str, np.ndarray] | None = None) -> tuple[Fetch, Locate]:
    """``fetch`` and ``locate`` for an output made of ``reader``'s tensors plus ``new`` arrays.

    An output key ``k`` is ``new[k]`` if present, else the input tensor ``source_key(k)`` (the key
    itself by default): read on demand, or copied by the kernel where the reader can locate it.
    """
    new = new or {}
    origin = source_key or (lambda key: key)

    def fetch(info: TensorInfo) -> np.ndarray:
        return new[info.key] if info.key in new else reader.read(origin(info.key))

    def locate(info: TensorInfo) -> Extent | None:
        return None if info.key in new else reader.extent(origin(info.key))

    return fetch, locate


def symbol_path_for(params_path: str) -> str:
    """Where the graph goes beside an MXNet parameter file: ``x-0000.params`` -> ``x-symbol.json``."""
    from .checkpoint import sibling_graph_path
    import re
    existing = sibling_graph_path(params_path)
    if existing is not None:
        return existing
    base = re.sub(r"(-\d{4})?\.[^.]+$", "", os.path.basename(params_path))
    return os.path.join(os.path.dirname(params_path), f"{base}-symbol.json")


def write_checkpoint(path: str, fmt: str, kind: str, infos: Sequence[TensorInfo], fetch: Fetch, *,
                     architecture: dict[str, Any] | None = None, graph: dict[str, Any] | None = None,
                     metadata: dict[str, str] | None = None, progress: Callable[[int, int], None] | None = None,
                     overwrite: bool = True, locate: Locate | None = None,
                     later: CommitQueue | None = None) -> list[str]:
    """Write ``infos`` to ``path`` in format ``fmt``; returns notes on what was not carried over.

    ``locate(info)``, where given, says where an unchanged tensor's bytes already lie in a file
    (:meth:`CheckpointReader.extent`); the writers then copy those bytes in the kernel instead
    of calling ``fetch`` (formats/extents.py). :func:`reader_source` makes both from a reader.
    ``later`` (an :class:`atomic.CommitQueue`) takes the commit of the finished file instead of
    making it here.
    """
    notes: list[str] = []
    metadata = dict(metadata or {})
    if fmt == "h5":
        write_h5(path, kind, infos, fetch, architecture=architecture, graph=graph, metadata=metadata,
                 progress=progress, overwrite=overwrite, locate=locate, later=later)
        return notes
    if not overwrite and os.path.exists(path):
        from .errors import OutputExistsError
        raise OutputExistsError(f"{path} already exists (use --force to overwrite it)")
    flat = _expand_aliases(infos, notes)
    if fmt == "safetensors":
        from .formats import safetensors_io
        if architecture is not None:
            metadata[ST_ARCHITECTURE] = json.dumps(architecture, separators=(",", ":"))
        if graph is not None:
            metadata[ST_GRAPH] = json.dumps(graph, separators=(",", ":"))
        metadata[ST_KIND] = kind
        if any(i.role for i in flat) or any(i.structural for i in flat):
            notes.append("safetensors has no per-tensor roles or structural names; kept only the keys")
        safetensors_io.write_safetensors(path, flat, fetch, metadata=metadata, progress=progress, locate=locate,
                                         later=later)
        return notes
    if fmt in ("mxnet", "npz"):
        from .formats import mxnet
        symbol_file = symbol_path_for(path) if graph is not None else None
        if symbol_file is not None and not overwrite and os.path.exists(symbol_file):
            from .errors import OutputExistsError
            raise OutputExistsError(f"{symbol_file} already exists (use --force to overwrite it)")
        if fmt == "mxnet":
            mxnet.write_params(path, flat, fetch, roles=kind == NAMED, progress=progress, locate=locate,
                               later=later)
        else:
            mxnet.write_npz(path, flat, fetch, roles=kind == NAMED, progress=progress, later=later)
        if architecture is not None:
            notes.append("the architecture is not carried over: MXNet parameter files have no place for it")
        if metadata:
            notes.append(f"metadata not carried over ({', '.join(sorted(metadata))}): MXNet parameter files have no place for it")
        if graph is not None:
            from .formats.atomic import atomic_output
            with atomic_output(symbol_file) as tmp:
                with open(tmp, "w", encoding="utf-8") as handle:
                    handle.write(json.dumps(graph, indent=2) + "\n")
            notes.append(f"graph written to {symbol_file}")
        return notes
    raise ModelSurgeonError(f"unknown output format {fmt!r}; choose from {', '.join(OUTPUT_FORMATS)}")


EXTENSIONS = {"h5": "h5", "safetensors": "safetensors", "mxnet": "params", "npz": "npz"}


def parse_size(text: str) -> int:
    """``'2GB'``, ``'500MB'``, ``'1GiB'``, ``'4096'`` -> bytes (GB = 10**9, GiB = 2**30)."""
    import re
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?)[bB]?\s*", text or "")
    if match is None:
        raise ModelSurgeonError(f"cannot read size {text!r}; write it like 2GB, 500MB or 1GiB")
    number, unit, binary = match.groups()
    power = " KMGT".index(unit.upper() or " ")
    size = int(float(number) * (1024 if binary else 1000) ** power)
    if size <= 0:
        raise ModelSurgeonError(f"size {text!r} must be positive")
    return size


def shard_layout(path: str, fmt: str) -> tuple[str, str, str]:
    """(directory, shard name prefix, index path) for a sharded output at ``path``.

    ``path`` is a directory (``out/``: ``model-00001-of-0000N.h5`` and ``model.h5.index.json``),
    an index file (``x.h5.index.json``) or a plain file name (``x.h5``: ``x-00001-of-...``).
    """
    ext = EXTENSIONS[fmt]
    if path.endswith(os.sep) or os.path.isdir(path):
        directory, prefix = path, "model"
    else:
        directory, name = os.path.split(path)
        prefix = name
        for suffix in (".index.json", f".{ext}", ".json"):
            if prefix.endswith(suffix):
                prefix = prefix[: -len(suffix)]
        prefix = prefix or "model"
    directory = directory or "."
    return directory, prefix, os.path.join(directory, f"{prefix}.{ext}.index.json")


def write_sharded_checkpoint(path: str, fmt: str, kind: str, infos: Sequence[TensorInfo], fetch: Fetch, *,
                             max_shard_size: int, architecture: dict[str, Any] | None = None,
                             graph: dict[str, Any] | None = None, metadata: dict[str, str] | None = None,
                             progress: Callable[[int, int], None] | None = None,
                             overwrite: bool = True, locate: Locate | None = None) -> tuple[str, list[str]]:
    """Write shards of at most ``max_shard_size`` tensor bytes plus an index; returns (index, notes).

    Tensors are packed greedily in order (a larger tensor gets a shard of its own). Every shard
    carries the documents, so each one is a complete checkpoint of its part; the index is
    written last, so an interrupted run leaves no index.
    """
    directory, prefix, index_path = shard_layout(path, fmt)
    os.makedirs(directory, exist_ok=True)
    if fmt == "safetensors":
        from .formats import safetensors_io
        notes: list[str] = []
        flat = _expand_aliases(infos, notes)
        meta = dict(metadata or {})
        meta[ST_KIND] = kind
        if architecture is not None:
            meta[ST_ARCHITECTURE] = json.dumps(architecture, separators=(",", ":"))
        if graph is not None:
            meta[ST_GRAPH] = json.dumps(graph, separators=(",", ":"))
        written = safetensors_io.write_sharded(index_path, flat, fetch, max_shard_size=max_shard_size,
                                               metadata=meta, progress=progress, overwrite=overwrite,
                                               locate=locate)
        return written[-1], notes + [f"{len(written) - 1} shard(s) and index {written[-1]}"]
    groups: list[list[TensorInfo]] = [[]]
    size = 0
    for info in infos:
        if groups[-1] and size + info.nbytes > max_shard_size and info.alias_of is None:
            groups.append([])
            size = 0
        groups[-1].append(info)
        size += 0 if info.alias_of else info.nbytes
    count = len(groups)
    names = [f"{prefix}-{i + 1:05d}-of-{count:05d}.{EXTENSIONS[fmt]}" for i in range(count)]
    if not overwrite:
        from .errors import OutputExistsError
        for target in [*(os.path.join(directory, n) for n in names), index_path]:
            if os.path.exists(target):
                raise OutputExistsError(f"{target} already exists (use --force to overwrite it)")
    total = sum(i.nbytes for i in infos if i.alias_of is None)
    offset = 0
    weight_map: dict[str, str] = {}
    notes = []
    from .formats.atomic import CommitQueue, atomic_output
    commits = CommitQueue()
    try:
        # Each shard is committed (fsynced, renamed) on a helper thread while the next one is
        # written, so the disk flushes one shard as the next is copied; all are in place before
        # the index is written.
        with commits:
            for name, group in zip(names, groups):
                keys = {i.key for i in group}
                # a link can only point inside its own shard; across shards the tensor is copied
                local = [i if i.alias_of is None or i.alias_of in keys else
                         TensorInfo(i.key, i.shape, i.dtype, i.role, i.structural) for i in group]
                part = (lambda done, _t, base=offset: progress(base + done, total)) if progress else None
                target = os.path.join(directory, name)
                shard_notes = write_checkpoint(target, fmt, kind, local, fetch, architecture=architecture,
                                               graph=graph if fmt == "h5" else None, metadata=metadata,
                                               progress=part, overwrite=overwrite, locate=locate,
                                               later=commits)
                notes += [n for n in shard_notes if n not in notes]
                offset += sum(i.nbytes for i in local if i.alias_of is None)
                weight_map.update({i.key: name for i in group})
        index = {"metadata": {"total_size": total, "format": fmt, "kind": kind}, "weight_map": weight_map}
        with atomic_output(index_path, overwrite=overwrite) as tmp:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    except BaseException:
        for target in commits.committed:
            if os.path.exists(target):
                os.unlink(target)
        raise
    if graph is not None and fmt != "h5":
        notes.append("the graph is not carried into non-HDF5 shards")
    return index_path, notes + [f"{count} shard(s) and index {index_path}"]


def _expand_aliases(infos: Sequence[TensorInfo], notes: list[str]) -> list[TensorInfo]:
    """Formats without links store shared tensors once per key."""
    flat = [TensorInfo(i.key, i.shape, i.dtype, i.role, i.structural) if i.alias_of else i for i in infos]
    shared = sum(1 for i in infos if i.alias_of)
    if shared:
        notes.append(f"{shared} shared tensor(s) stored as copies (the format has no links)")
    return flat
