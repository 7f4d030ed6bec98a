"""Compare two checkpoints: keys, shapes and dtypes, values streamed, and renames found by content."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..compare import compare_tensors
from ..formats.base import STRUCTURAL, CheckpointReader
from .head import structural_keys


@dataclass
class DiffResult:
    only_a: list[str]
    only_b: list[str]
    changed: list[dict[str, Any]]  # key, shape/dtype in a and b
    values: list[dict[str, Any]]  # key, max_abs_diff, equal
    scheme: str
    renames: list[tuple[str, str]] = field(default_factory=list)  # (key in A, key in B), same bytes

    @property
    def equal(self) -> bool:
        return not (self.only_a or self.only_b or self.changed or any(not v["equal"] for v in self.values))


def comparable_keys(a: CheckpointReader, b: CheckpointReader) -> tuple[dict[str, str], dict[str, str], str]:
    """Keys to compare two files by: structural names when either side is name-keyed and records them."""
    va, vb = structural_keys(a), structural_keys(b)
    complete = len(va) >= len(a.tensors) and len(vb) >= len(b.tensors)
    if a.kind == b.kind and (a.kind == STRUCTURAL or not complete or set(a.tensors) & set(b.tensors)):
        return {k: k for k in a.tensors}, {k: k for k in b.tensors}, f"{a.kind} keys"
    if va and vb and complete:
        return va, vb, "structural names (one file is name-keyed and records them)"
    return ({k: k for k in a.tensors}, {k: k for k in b.tensors},
            "raw keys (schemes differ and no structural names are recorded)")


def diff(a: CheckpointReader, b: CheckpointReader, values: bool = False, progress=None,
         renames: bool = True) -> DiffResult:
    """Compare two checkpoints key by key; with ``values``, stream the largest absolute difference.

    ``progress(done, total)`` is called after each tensor pair with the bytes read so far (both
    files) out of the bytes to compare.

    With ``renames``, tensors only in A and only in B with the same shape, dtype and bytes are
    reported as renamed (see :func:`find_renames`).
    """
    ka, kb, scheme = comparable_keys(a, b)
    only_a = [k for k in ka if k not in kb]
    only_b = [k for k in kb if k not in ka]
    changed: list[dict[str, Any]] = []
    compared: list[dict[str, Any]] = []
    common = [k for k in ka if k in kb]
    for key in common:
        ia, ib = a.tensors[ka[key]], b.tensors[kb[key]]
        if ia.shape != ib.shape or ia.dtype != ib.dtype:
            changed.append({"key": key, "a": {"shape": list(ia.shape), "dtype": str(ia.dtype)},
                            "b": {"shape": list(ib.shape), "dtype": str(ib.dtype)}})
    if values:
        changed_keys = {c["key"] for c in changed if c["a"]["shape"] != c["b"]["shape"]}
        todo = [k for k in common if k not in changed_keys]
        # progress in bytes read (both sides), the unit of the time it takes
        total = sum(a.tensors[ka[k]].nbytes + b.tensors[kb[k]].nbytes for k in todo)
        done = 0
        if progress is not None:
            progress(0, total)
        for key in todo:  # in bounded pieces: a tensor is never held twice, nor as float64 whole
            result = compare_tensors(a, ka[key], b, kb[key])
            compared.append({"key": key, "max_abs_diff": result.max_abs_diff, "equal": result.equal})
            done += a.tensors[ka[key]].nbytes + b.tensors[kb[key]].nbytes
            if progress is not None:
                progress(done, total)
    moved = find_renames(a, b, only_a, only_b, ka, kb) if renames and only_a and only_b else []
    return DiffResult(only_a, only_b, changed, compared, scheme, moved)


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def find_renames(a: CheckpointReader, b: CheckpointReader, only_a: list[str], only_b: list[str],
                 keys_a: dict[str, str] | None = None, keys_b: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Pairs (key in A, key in B) of tensors that moved: same shape, dtype and bytes under another key.

    Only tensors whose shape and dtype occur on both sides are read (each once), so a diff
    without renames reads nothing. ``keys_a``/``keys_b`` map the compared keys to file keys.
    """
    keys_a = keys_a or {k: k for k in only_a}
    keys_b = keys_b or {k: k for k in only_b}

    def signature(reader: CheckpointReader, key: str) -> tuple[tuple[int, ...], str]:
        info = reader.tensors[key]
        return tuple(info.shape), str(info.dtype)

    side_a: dict[tuple[tuple[int, ...], str], list[str]] = {}
    for key in only_a:
        side_a.setdefault(signature(a, keys_a[key]), []).append(key)
    pool: dict[tuple[Any, ...], list[str]] = {}
    constant: set[str] = set()
    for key in only_a:
        sig = signature(a, keys_a[key])
        if any(signature(b, keys_b[k]) == sig for k in only_b):
            array = a.read(keys_a[key])
            pool.setdefault((sig, _digest(array)), []).append(key)
            if _is_constant(array):
                constant.add(key)
    found: dict[tuple[Any, ...], list[str]] = {}
    for key in only_b:
        sig = signature(b, keys_b[key])
        if sig in side_a:
            found.setdefault((sig, _digest(b.read(keys_b[key]))), []).append(key)
    pairs = []
    for group, news in found.items():
        olds = pool.get(group, [])
        if olds and olds[0] in constant:
            # all-equal tensors (zero biases) carry no identity: pair them only where one tensor of a
            # kind (the key's last part: bias, gamma...) is on each side
            for kind in dict.fromkeys(_last_part(k) for k in olds):
                same_a = [k for k in olds if _last_part(k) == kind]
                same_b = [k for k in news if _last_part(k) == kind]
                if len(same_a) == 1 and len(same_b) == 1:
                    pairs.append((same_a[0], same_b[0]))
            continue
        pairs += list(zip(olds, news))
    order = {key: i for i, key in enumerate(only_b)}
    return sorted(pairs, key=lambda pair: order[pair[1]])


def _last_part(key: str) -> str:
    return key.replace("_", ".").rsplit(".", 1)[-1]


def _is_constant(array: np.ndarray) -> bool:
    flat = np.asarray(array).ravel()
    return flat.size < 2 or bool(np.all(flat == flat[0]))
