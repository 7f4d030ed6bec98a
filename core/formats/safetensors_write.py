"""Writing safetensors files: the header from the infos alone, then one tensor at a time, atomically."""


from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import ModelSurgeonError
from .atomic import Committer, atomic_output
from .base import TensorInfo
from .extents import ExtentCopier, Locate, usable
from .safetensors_dtypes import (
    _CODE_OF,
    _FLOAT32,
    _RANK,
    BITS,
    MAX_HEADER_SIZE,
    NUMPY_DTYPES,
    UPCAST,
    f32_to_bf16,
    f32_to_f8,
)

Fetch = Callable[[TensorInfo], np.ndarray]
Progress = Callable[[int, int], None]


# ---------------------------------------------------------------------------------------------
# Writing

def _target_code(info: TensorInfo, keep_source_dtype: bool) -> str:
    dtype = np.dtype(info.dtype)
    source = info.extra.get("source_dtype") if info.extra else None
    if keep_source_dtype and source in UPCAST and dtype == _FLOAT32:
        return source
    code = _CODE_OF.get((dtype.kind, dtype.itemsize))
    if code is None:
        raise ModelSurgeonError(f"tensor '{info.key}' has dtype {dtype}, which safetensors cannot store")
    return code


def _json_string(text: str, what: str) -> str:
    if not isinstance(text, str):
        raise ModelSurgeonError(f"{what} must be a string, not {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ModelSurgeonError(f"{what} {text!r} is not valid Unicode (lone surrogate)") from None
    return json.dumps(text, ensure_ascii=False)


def _plan(infos: Sequence[TensorInfo], metadata: dict[str, str] | None,
          keep_source_dtype: bool) -> tuple[bytes, list[tuple[TensorInfo, str, int]]]:
    """The padded header (with its length prefix) and the tensors in write order."""
    seen: set[str] = set()
    rows = []
    for info in infos:
        if info.key in seen:
            raise ModelSurgeonError(f"duplicate tensor key '{info.key}'")
        if info.key == "__metadata__":
            raise ModelSurgeonError("'__metadata__' cannot be a tensor name in safetensors")
        seen.add(info.key)
        code = _target_code(info, keep_source_dtype)
        size = math.prod(info.shape) * BITS[code] // 8
        rows.append((info, code, size))
    rows.sort(key=lambda row: (-_RANK[row[1]], row[0].key))
    parts = []
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise ModelSurgeonError("safetensors metadata must be a dict of strings")
        for key, value in metadata.items():
            _json_string(key, "metadata key")
            _json_string(value, f"metadata value of {key!r}")
        items = ",".join(f"{_json_string(k, 'metadata key')}:{_json_string(v, f'metadata value of {k!r}')}"
                         for k, v in sorted(metadata.items()))
        parts.append(f'"__metadata__":{{{items}}}')
    offset = 0
    for info, code, size in rows:
        shape = ",".join(str(int(d)) for d in info.shape)
        parts.append(f'{_json_string(info.key, "tensor key")}:{{"dtype":"{code}","shape":[{shape}],'
                     f'"data_offsets":[{offset},{offset + size}]}}')
        offset += size
    header = ("{" + ",".join(parts) + "}").encode("utf-8")
    header += b" " * (-len(header) % 8)
    if len(header) > MAX_HEADER_SIZE:
        raise ModelSurgeonError(f"the safetensors header would be {len(header)} bytes, over the "
                                f"format's limit of {MAX_HEADER_SIZE}")
    return len(header).to_bytes(8, "little") + header, rows


#: Elements converted at a time when writing BF16/F8 (bounds the temporary memory).
CONVERT_CHUNK = 1 << 20


def _encode(info: TensorInfo, code: str, array: Any) -> Iterator[memoryview]:
    """The array's stored bytes, in pieces, after checking that it matches ``info``."""
    array = np.asarray(array)
    if array.shape != tuple(info.shape):
        raise ModelSurgeonError(f"tensor '{info.key}' is {array.shape}, expected {tuple(info.shape)}")
    expected = np.dtype(info.dtype)
    if (array.dtype.kind, array.dtype.itemsize) != (expected.kind, expected.itemsize):
        raise ModelSurgeonError(f"tensor '{info.key}' is {array.dtype}, expected {expected}")
    if code not in UPCAST:
        yield np.ascontiguousarray(array, dtype=NUMPY_DTYPES[code]).reshape(-1).view(np.uint8).data
        return
    flat = np.ascontiguousarray(array).reshape(-1)
    for start in range(0, flat.size, CONVERT_CHUNK):
        piece = flat[start:start + CONVERT_CHUNK]
        stored = f32_to_bf16(piece) if code == "BF16" else f32_to_f8(piece, code)
        if stored is None:
            raise ModelSurgeonError(
                f"tensor '{info.key}' was {code} in its source but now holds values {code} cannot "
                "represent exactly; write it as float32 instead (keep_source_dtype=False)")
        yield stored.view(np.uint8).data


def _write_tensors(handle: Any, rows: list[tuple[TensorInfo, str, int]], fetch: Fetch,
                   by_key: dict[str, TensorInfo], progress: Progress | None, done: int, total: int,
                   locate: Locate | None = None) -> int:
    with ExtentCopier(handle.fileno()) as copier:
        for info, code, size in rows:
            source = by_key.get(info.alias_of, info) if info.alias_of is not None else info
            stored = NUMPY_DTYPES.get(code)  # None for BF16 and F8, converted on writing
            extent = locate(source) if locate is not None and stored is not None else None
            if stored is not None and usable(extent, stored, size):
                copier.append(handle, extent)
            else:
                written = 0
                for piece in _encode(info, code, fetch(source)):
                    handle.write(piece)
                    written += piece.nbytes
                    del piece
                copier.wrote(written)
                if written != size:  # cannot happen once shape and dtype match; kept as a guard
                    raise ModelSurgeonError(f"tensor '{info.key}' encoded to {written} bytes, expected {size}")
            done += size
            if progress is not None:
                progress(done, total)
    return done


def write_safetensors(path: str | os.PathLike[str], infos: Iterable[TensorInfo], fetch: Fetch, *,
                      metadata: dict[str, str] | None = None, progress: Progress | None = None,
                      overwrite: bool = True, keep_source_dtype: bool = True,
                      locate: Locate | None = None, later: Committer | None = None) -> None:
    """Write a safetensors file atomically, fetching and writing one tensor at a time.

    ``fetch(info)`` returns the tensor's array (for an info with ``alias_of``, the info of the
    key it aliases is fetched: safetensors stores each key's own copy). The array must have the
    info's shape and dtype. ``progress(done_bytes, total_bytes)`` is called after each tensor.
    Where ``locate(info)`` gives the tensor's bytes in another file, the kernel copies them
    (extents.py). See the module docstring for ordering, byte identity and ``keep_source_dtype``.
    With ``later`` the file's commit is queued there (atomic.CommitQueue).
    """
    infos = list(infos)
    header, rows = _plan(infos, metadata, keep_source_dtype)
    total = sum(size for _, _, size in rows)
    by_key = {info.key: info for info in infos}
    with atomic_output(path, overwrite=overwrite, later=later) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(header)
            _write_tensors(handle, rows, fetch, by_key, progress, 0, total, locate)
