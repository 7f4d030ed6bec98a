"""Sharded checkpoints of any format: shards plus a Hugging Face style ``*.index.json``.

The index is ``{"metadata": {"total_size": bytes, ...}, "weight_map": {key: shard file}}``;
shards are ``<name>-00001-of-0000N.<ext>`` beside it. :class:`ShardedReader` opens every shard
(through the same format detection as any file, headers in parallel threads) and presents them
as one checkpoint; tensor data is still read one tensor at a time, on demand.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..errors import CheckpointError, ModelSurgeonError
from .base import CheckpointReader, TensorInfo
from .safetensors_io import _safe_member, read_index

Opener = Callable[[str], CheckpointReader]


class ShardedReader(CheckpointReader):
    """Every shard of an index as one checkpoint (format ``<shard format>-sharded``)."""

    def __init__(self, index_path: str | os.PathLike[str], opener: Opener) -> None:
        self.path = os.fspath(index_path)
        index = read_index(self.path)
        self.index_metadata: dict[str, Any] = dict(index.get("metadata") or {})
        directory = os.path.dirname(os.path.abspath(self.path))
        by_shard: dict[str, list[str]] = {}
        for key, shard in index["weight_map"].items():
            if not isinstance(shard, str):
                raise CheckpointError(self.path, f"weight_map has a shard name that is not a file name: {shard!r}")
            by_shard.setdefault(shard, []).append(key)
        names = sorted(by_shard)
        paths = [_safe_member(self.path, directory, name) for name in names]
        if any(os.path.abspath(p) == os.path.abspath(self.path) for p in paths):
            raise CheckpointError(self.path, "the index lists itself as a shard")
        with ThreadPoolExecutor(max_workers=min(4, len(paths) or 1)) as pool:
            results = list(pool.map(_try_open(opener), paths))
        self._shards: dict[str, CheckpointReader] = {}
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        opened = [r for r in results if isinstance(r, CheckpointReader)]
        if failure is not None:
            for reader in opened:
                reader.close()
            raise failure
        self._shards = dict(zip(names, opened))
        first = opened[0] if opened else None
        self.format = f"{first.format}-sharded" if first else "sharded"
        self.kind = first.kind if first else "structural"
        self.architecture = next((r.architecture for r in opened if r.architecture is not None), None)
        self.graph = next((r.graph for r in opened if r.graph is not None), None)
        self.metadata = dict(first.metadata) if first else {}
        self.tensors = {}
        self._where: dict[str, str] = {}
        for name, reader in self._shards.items():
            missing = [key for key in by_shard[name] if key not in reader.tensors]
            if missing:
                self.close()
                raise CheckpointError(self.path, f"the index puts {missing[0]!r} in {name!r}, which does not "
                                                 f"hold it ({len(missing)} missing)")
            for key in by_shard[name]:
                info = reader.tensors[key]
                alias = info.alias_of if info.alias_of in self._where else None
                self.tensors[key] = TensorInfo(key, info.shape, info.dtype, info.role, info.structural, alias,
                                               {**info.extra, "shard": name})
                self._where[key] = name

    def read(self, key: str) -> np.ndarray:
        if key not in self._where:
            raise ModelSurgeonError(f"no tensor '{key}' in {self.path}")
        return self._shards[self._where[key]].read(key)

    def extent(self, key: str) -> Any:
        if key not in self._where:
            raise ModelSurgeonError(f"no tensor '{key}' in {self.path}")
        return self._shards[self._where[key]].extent(key)

    def close(self) -> None:
        for reader in self._shards.values():
            reader.close()
        self._shards = {}


def _try_open(opener: Opener) -> Callable[[str], Any]:
    def attempt(path: str) -> Any:
        try:
            return opener(path)
        except Exception as exc:  # noqa: BLE001 - re-raised by the caller after closing the rest
            return exc
    return attempt
