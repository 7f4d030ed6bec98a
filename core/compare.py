"""Comparing tensor values in bounded memory (``diff --values``).

Comparing two tensors by reading both and subtracting them as float64 costs five times the tensor:
a 1.3 MB HDF5 file holding a 920 MiB gzip-compressed tensor took 4.4 GB. :func:`compare_tensors`
walks both tensors in step, a piece of about :data:`CHUNK_BYTES` at a time, so memory stays within
a few pieces, and within one whole tensor where a format can only be read whole:

* a tensor stored as plain bytes (``reader.extent(key)``) is read piece by piece with ``pread``;
* a reader with ``read_chunks(key, chunk_bytes)`` (our HDF5 reader, by hyperslab; the ``.npz``
  reader, inflating as it goes) gives its own pieces; a sharded checkpoint hands over to the reader
  of the shard that holds the tensor;
* anything else is read whole and cut into pieces (views, no copy).

Only pieces are ever converted to float64.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .errors import ModelSurgeonError
from .formats.base import CheckpointReader
from .formats.extents import open_source, read_exact, usable

#: Bytes of each piece compared at once (per side, before the float64 difference: 4x this at most).
CHUNK_BYTES = 8 << 20


@dataclass(frozen=True)
class Comparison:
    """How two tensors' values compare.

    Attributes:
        equal: same values everywhere (NaN equals NaN when both are floating point).
        max_abs_diff: the largest ``|a - b|`` computed in float64; 0.0 when equal; NaN when a NaN
            faces a number.
        differing: how many elements differ (NaN facing NaN counts as equal, as above).
        size: elements compared.
    """

    equal: bool
    max_abs_diff: float
    differing: int
    size: int


def iter_chunks(reader: CheckpointReader, key: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[np.ndarray]:
    """Tensor ``key`` of ``reader`` as consecutive flat pieces in C order, each about ``chunk_bytes``
    (dtype as :meth:`CheckpointReader.read` returns it)."""
    info = reader.tensors.get(key)
    if info is None:
        raise ModelSurgeonError(f"no tensor '{key}' in {reader.path}")
    shard_reader = getattr(reader, "shard_reader", None)
    if shard_reader is not None:
        yield from iter_chunks(shard_reader(key), key, chunk_bytes)
        return
    extent = reader.extent(key)
    if extent is not None and usable(extent, info.dtype, info.nbytes) and info.dtype != np.bool_:
        yield from _extent_chunks(extent.path, extent.file_id, extent.offset, info.dtype, info.size, chunk_bytes,
                                  f"tensor {key!r}")
        return
    read_chunks = getattr(reader, "read_chunks", None)
    if read_chunks is not None:
        yield from read_chunks(key, chunk_bytes)
        return
    flat = np.asarray(reader.read(key)).reshape(-1)
    step = max(1, chunk_bytes // max(flat.itemsize, 1))
    for start in range(0, flat.size, step):
        yield flat[start:start + step]


def _extent_chunks(path: str, file_id: tuple[int, int], offset: int, dtype: np.dtype, size: int, chunk_bytes: int,
                   what: str) -> Iterator[np.ndarray]:
    step = max(1, chunk_bytes // dtype.itemsize)
    fd = open_source(path, file_id)
    try:
        for start in range(0, size, step):
            piece = np.empty(min(step, size - start), dtype)
            view = memoryview(piece).cast("B")  # type: ignore[arg-type]  # ndarray is a Buffer
            read_exact(fd, path, view, offset + start * dtype.itemsize, what)
            yield piece
    finally:
        os.close(fd)


def compare_tensors(a: CheckpointReader, key_a: str, b: CheckpointReader, key_b: str,
                    chunk_bytes: int = CHUNK_BYTES) -> Comparison:
    """Compare tensor ``key_a`` of ``a`` with ``key_b`` of ``b`` (same shape), piece by piece.

    >>> import numpy as np
    >>> from modelsurgeon.core.formats.base import CheckpointReader, TensorInfo
    >>> class Arrays(CheckpointReader):
    ...     def __init__(self, **arrays):
    ...         self.path, self.arrays = "memory", arrays
    ...         self.tensors = {k: TensorInfo(k, v.shape, v.dtype) for k, v in arrays.items()}
    ...     def read(self, key):
    ...         return self.arrays[key]
    >>> compare_tensors(Arrays(w=np.array([1.0, 2.0])), "w", Arrays(w=np.array([1.0, 2.5])), "w")
    Comparison(equal=False, max_abs_diff=0.5, differing=1, size=2)
    """
    ia, ib = a.tensors[key_a], b.tensors[key_b]
    if ia.shape != ib.shape:
        raise ModelSurgeonError(f"cannot compare values of '{key_a}' {ia.shape} and '{key_b}' {ib.shape}")
    both_float = ia.dtype.kind in "fc" and ib.dtype.kind in "fc"
    worst, differing, saw_nan = 0.0, 0, False
    pieces_a, pieces_b = iter_chunks(a, key_a, chunk_bytes), iter_chunks(b, key_b, chunk_bytes)
    left_a = left_b = np.empty(0)
    compared = 0
    size = math.prod(ia.shape)
    while compared < size:
        if not left_a.size:
            left_a = next(pieces_a)
        if not left_b.size:
            left_b = next(pieces_b)
        n = min(left_a.size, left_b.size)
        xa, xb = left_a[:n], left_b[:n]
        left_a, left_b = left_a[n:], left_b[n:]
        compared += n
        if both_float:
            same = (xa == xb) | (np.isnan(xa) & np.isnan(xb))
        else:
            same = xa == xb
        count = int(n - np.count_nonzero(same))
        if not count:
            continue
        differing += count
        wide = np.complex128 if "c" in (ia.dtype.kind, ib.dtype.kind) else np.float64
        delta = np.abs(xa.astype(wide) - xb.astype(wide))[~same]
        top = float(np.max(delta))
        if math.isnan(top):
            saw_nan = True
        else:
            worst = max(worst, top)
    for rest in (pieces_a, pieces_b):  # run each reader to its end (a compressed member checks its CRC there)
        for piece in rest:
            if piece.size:
                raise ModelSurgeonError(f"{a.path if rest is pieces_a else b.path}: more values than the shape holds")
    equal = differing == 0
    return Comparison(equal, 0.0 if equal else (math.nan if saw_nan else worst), differing, size)
