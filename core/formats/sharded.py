"""Sharded checkpoints of any format: shards plus a Hugging Face style ``*.index.json``.

The index is ``{"metadata": {"total_size": bytes, ...}, "weight_map": {key: shard file}}``;
shards are ``<name>-00001-of-0000N.<ext>`` beside it. :class:`ShardedReader` opens every shard
once to list its tensors (through the same format detection as any file; a few at a time in
threads, so the forked validation of HDF5 shards runs on every core), then presents them as one
checkpoint. Tensor data is read one tensor at a time, on demand, reopening shards as needed:
at most :data:`MAX_OPEN_SHARDS` stay open, so a checkpoint of a thousand shards needs no more
file descriptors than one of eight.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import CheckpointError, ModelSurgeonError, OutputExistsError
from .atomic import CommitQueue, atomic_output
from .base import CheckpointReader, TensorInfo
from .extents import Locate
from .safetensors_io import _safe_member, read_index
from .spec import Documents, Fetch, Format, Probe, Progress

Opener = Callable[[str], CheckpointReader]
#: Shards kept open at once (least recently used ones are closed).
MAX_OPEN_SHARDS = 8


class ShardedReader(CheckpointReader):
    """Every shard of an index as one checkpoint (format ``<shard format>-sharded``).

    Keys come shard by shard (shards sorted by file name, i.e. by their ``-0000i-of-`` number),
    in each shard's own order; tensors a shard holds but the index does not list are ignored,
    as loaders do. ``metadata`` is the first shard's; the index's own ``metadata`` object is
    ``index_metadata``; ``TensorInfo.extra["shard"]`` names each tensor's shard. Shard paths
    must stay inside the index's directory.
    """

    def __init__(self, index_path: str | os.PathLike[str], opener: Opener) -> None:
        self.path = os.fspath(index_path)
        self._opener = opener
        self._open: OrderedDict[str, CheckpointReader] = OrderedDict()
        self._closed = False
        index = read_index(self.path)
        self.index_metadata: dict[str, Any] = dict(index.get("metadata") or {})
        directory = os.path.dirname(os.path.abspath(self.path))
        by_shard: dict[str, list[str]] = {}
        for key, shard in index["weight_map"].items():
            if not isinstance(shard, str):
                raise CheckpointError(self.path, f"weight_map has a shard name that is not a file name: {shard!r}")
            by_shard.setdefault(shard, []).append(key)
        self._paths = {name: _safe_member(self.path, directory, name) for name in sorted(by_shard)}
        if any(os.path.abspath(p) == os.path.abspath(self.path) for p in self._paths.values()):
            raise CheckpointError(self.path, "the index lists itself as a shard")
        self.format, self.kind, self.metadata = "sharded", "structural", {}
        self.tensors = {}
        self._where: dict[str, str] = {}
        self._keys: dict[str, list[str]] = {}  # shard -> the keys read from it, in its order
        try:
            self._list(by_shard)
        except BaseException:
            self.close()
            raise

    def _list(self, by_shard: dict[str, list[str]]) -> None:
        names = list(self._paths)
        with ThreadPoolExecutor(max_workers=min(4, len(names) or 1)) as pool:
            for start in range(0, len(names), MAX_OPEN_SHARDS):
                batch = names[start:start + MAX_OPEN_SHARDS]
                results = list(pool.map(_try_open(self._opener), [self._paths[n] for n in batch]))
                for name, result in zip(batch, results):  # kept open (and closed on failure)
                    if isinstance(result, CheckpointReader):
                        self._keep(name, result)
                failure = next((r for r in results if isinstance(r, BaseException)), None)
                if failure is not None:
                    raise failure
                for name, reader in zip(batch, results):
                    self._add(name, reader, by_shard[name], first=name == names[0])

    def _add(self, name: str, reader: CheckpointReader, keys: list[str], first: bool) -> None:
        if first:
            self.format, self.kind, self.metadata = f"{reader.format}-sharded", reader.kind, dict(reader.metadata)
        if self.architecture is None:
            self.architecture = reader.architecture
        if self.graph is None:
            self.graph = reader.graph
        missing = [key for key in keys if key not in reader.tensors]
        if missing:
            raise CheckpointError(self.path, f"the index puts {missing[0]!r} in {name!r}, which does not "
                                             f"hold it ({len(missing)} missing)")
        wanted = set(keys)
        for key, info in reader.tensors.items():
            if key in wanted:
                alias = info.alias_of if info.alias_of in self._where else None
                self.tensors[key] = TensorInfo(key, info.shape, info.dtype, info.role, info.structural, alias,
                                               {**info.extra, "shard": name})
                self._where[key] = name
                self._keys.setdefault(name, []).append(key)

    def _keep(self, name: str, reader: CheckpointReader) -> None:
        self._open[name] = reader
        self._open.move_to_end(name)
        while len(self._open) > MAX_OPEN_SHARDS:
            self._open.popitem(last=False)[1].close()

    def _shard(self, key: str) -> CheckpointReader:
        """The open reader of ``key``'s shard, reopened if it was closed and checked to be unchanged."""
        if self._closed:
            raise ModelSurgeonError(f"{self.path} is closed")
        if key not in self._where:
            raise ModelSurgeonError(f"no tensor '{key}' in {self.path}")
        name = self._where[key]
        reader = self._open.get(name)
        if reader is not None:
            self._open.move_to_end(name)
            return reader
        reader = self._opener(self._paths[name])
        self._keep(name, reader)
        for shard_key in self._keys.get(name, []):
            info = self.tensors[shard_key]
            now = reader.tensors.get(shard_key)
            extra = {k: v for k, v in info.extra.items() if k != "shard"}
            if now is None or (now.shape, now.dtype, now.extra) != (info.shape, info.dtype, extra):
                raise CheckpointError(self.path, f"shard {name!r} changed after the checkpoint was opened")
        return reader

    def source_files(self) -> list[str]:
        return [self.path, *self._paths.values()]

    def read(self, key: str) -> np.ndarray:
        return self._shard(key).read(key)

    def shard_reader(self, key: str) -> CheckpointReader:
        """The (open) reader of the shard that holds ``key``, to read it piece by piece."""
        return self._shard(key)

    def extent(self, key: str) -> Any:
        return self._shard(key).extent(key)

    def close(self) -> None:
        self._closed = True
        while self._open:
            self._open.popitem()[1].close()


def _try_open(opener: Opener) -> Callable[[str], Any]:
    def attempt(path: str) -> Any:
        try:
            return opener(path)
        except Exception as exc:
            return exc
    return attempt


# -- the index as a format -------------------------------------------------------------------------

#: How much of a JSON file detection reads to find ``weight_map`` (indexes of huge models list
#: thousands of keys, and some put long metadata first).
SNIFF_INDEX_BYTES = 16 << 20


def _sniff(probe: Probe) -> bool:
    if probe.head.lstrip()[:1] != b"{":
        return False
    return b'"weight_map"' in probe.peek(min(probe.size, SNIFF_INDEX_BYTES))


def open_index(path: str, open_member: Opener) -> ShardedReader:
    return ShardedReader(path, open_member)


FORMAT = Format("index", "sharded index (.index.json)", (), _sniff, None, open_members=open_index)


# -- writing: one sharded writer for every format that shards -------------------------------------

def shard_layout(path: str, fmt: Format) -> tuple[str, str, str]:
    """(directory, shard name prefix, index path) for a sharded output at ``path``.

    ``path`` is a directory (``out/``: ``model-00001-of-0000N.<ext>`` and ``model.<ext>.index.json``),
    an index file (``x.<ext>.index.json``) or a plain file name (``x.<ext>``: ``x-00001-of-...``).
    """
    ext = fmt.extension
    if path.endswith(("/", os.sep)) or os.path.isdir(path):
        directory, prefix = path, "model"
    else:
        directory, prefix = os.path.split(path)
        for suffix in (".index.json", ext, ".json"):
            if prefix.lower().endswith(suffix):
                prefix = prefix[: -len(suffix)]
        prefix = prefix or "model"
    directory = directory or "."
    return directory, prefix, os.path.join(directory, f"{prefix}{ext}.index.json")


def plan_shards(path: str, fmt: Format, infos: Sequence[TensorInfo],
                max_shard_size: int) -> tuple[str, list[tuple[str, list[TensorInfo]]]]:
    """(index path, [(shard path, its tensors)]): tensors packed greedily in order, a shard closed
    when the next tensor would take it over ``max_shard_size`` bytes (a larger tensor gets a shard
    of its own); a tensor stored under several keys counts once."""
    if max_shard_size <= 0:
        raise ModelSurgeonError(f"max_shard_size must be a positive number of bytes, not {max_shard_size!r}")
    directory, prefix, index_path = shard_layout(path, fmt)
    groups: list[list[TensorInfo]] = [[]]
    size = 0
    for info in infos:
        if groups[-1] and size + info.nbytes > max_shard_size and info.alias_of is None:
            groups.append([])
            size = 0
        groups[-1].append(info)
        size += 0 if info.alias_of else info.nbytes
    count = len(groups)
    names = [os.path.join(directory, f"{prefix}-{i + 1:05d}-of-{count:05d}{fmt.extension}") for i in range(count)]
    return index_path, list(zip(names, groups))


def write_sharded(path: str, fmt: Format, infos: Sequence[TensorInfo], fetch: Fetch, documents: Documents, *,
                  max_shard_size: int, progress: Progress | None = None, overwrite: bool = True,
                  locate: Locate | None = None) -> tuple[str, list[str]]:
    """Write shards of at most ``max_shard_size`` tensor bytes plus an index; returns (index, notes).

    Each shard is a complete checkpoint of its part in ``fmt``, with the documents where ``fmt``
    keeps them (a graph only in HDF5 shards). Shards are committed (fsynced, renamed) on a helper
    thread while the next one is written; the index comes last, once every shard is in place, so an
    interrupted run leaves no new index, and a failed one removes the shards it had put in place.
    """
    assert fmt.write is not None
    index_path, shards = plan_shards(path, fmt, infos, max_shard_size)
    folder = os.path.dirname(index_path) or "."
    made = not os.path.isdir(folder)  # a folder made here goes again if the write fails
    os.makedirs(folder, exist_ok=True)
    if not overwrite:
        for target in [*(name for name, _ in shards), index_path]:
            if os.path.exists(target):
                raise OutputExistsError(f"{target} already exists (use `overwrite` to overwrite it)")
    total = sum(i.nbytes for i in infos if i.alias_of is None)
    shard_documents = documents if fmt.name == "h5" else replace(documents, graph=None)
    notes: list[str] = []
    weight_map: dict[str, str] = {}
    offset = 0
    commits = CommitQueue()
    try:
        with commits:
            for target, group in shards:
                keys = {i.key for i in group}
                # a link can only point inside its own shard; across shards the tensor is copied
                local = [i if i.alias_of is None or i.alias_of in keys else
                         TensorInfo(i.key, i.shape, i.dtype, i.role, i.structural) for i in group]
                part = (lambda done, _t, base=offset: progress(base + done, total)) if progress else None
                shard_notes = fmt.write(target, local, fetch, shard_documents, progress=part, overwrite=overwrite,
                                        locate=locate, later=commits)
                notes += [n for n in shard_notes if n not in notes]
                offset += sum(i.nbytes for i in local if i.alias_of is None)
                weight_map.update({i.key: os.path.basename(target) for i in group})
        index = {"metadata": {"total_size": total, "format": fmt.name, "kind": documents.kind},
                 "weight_map": weight_map}
        with atomic_output(index_path, overwrite=overwrite) as tmp:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    except BaseException:
        for target in commits.committed:
            with contextlib.suppress(OSError):
                os.unlink(target)
        if made:
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        raise
    if documents.graph is not None and fmt.name != "h5":
        notes.append("the graph is not carried into non-HDF5 shards")
    return index_path, [*notes, f"{len(shards)} shard(s) and index {index_path}"]
