"""What MXNet's two parameter formats share: magic numbers, names with roles, positioned reads."""


from __future__ import annotations

import math
import os
import struct
from collections.abc import Sequence
from typing import BinaryIO

import numpy as np

from ..dtypes import MX_DTYPE_FLAGS
from ..errors import CheckpointError
from .base import NAMED, STRUCTURAL, input_errors

LIST_MAGIC = 0x112
V1_MAGIC = 0xF993FAC8
V2_MAGIC = 0xF993FAC9
V3_MAGIC = 0xF993FACA
_VERSION_NAMES = {V1_MAGIC: "V1", V2_MAGIC: "V2", V3_MAGIC: "V3"}
BF16_FLAG = 12
#: Type flags MXNet 1.x knows (0..7, plus bf16 which we refuse); 8..11 need MXNet 2.
MXNET1_FLAGS = frozenset(range(8))
#: Most dimensions a tensor may have (numpy's limit before 2.0).
MAX_NDIM = 32
#: Longest key accepted in a ``.params`` names list, in bytes.
MAX_NAME_BYTES = 1 << 16
#: Largest tensor accepted at all (elements x itemsize), so shapes never overflow numpy's intp.
_MAX_NBYTES = (1 << 63) - 1
#: A deflate stream expands at most ~1032:1; larger declared sizes are lies.
_MAX_DEFLATE_RATIO = 1032
#: Largest piece inflated at once (zipfile allocates a temporary of the size asked for).
INFLATE_CHUNK = 16 << 20

_STYPES = {-1: "undefined", 0: "dense", 1: "row_sparse", 2: "csr"}
_NUM_AUX = {1: 1, 2: 2}
_LE_FLAGS: dict[int, np.dtype] = {flag: dt.newbyteorder("<") for flag, dt in MX_DTYPE_FLAGS.items()}
_FLAG_OF_LE = {dt: flag for flag, dt in _LE_FLAGS.items()}
_PREFIXES = ("arg:", "aux:")
_CHUNK = 1 << 16
_ZIP_HEAD = struct.Struct("<4s22xHH")  # local file header: signature ... name length, extra length


def sniff(head: bytes) -> str | None:
    """``'mxnet-params'`` for the legacy list magic, ``'npz'`` for any zip archive, else None.

    ``head`` is the first bytes (up to 64) of a file. A zip may also be a PyTorch checkpoint:
    :class:`MXNetNpzReader` raises :class:`CheckpointError` for a zip without ``.npy`` members.

    >>> sniff(struct.pack("<QQQ", 0x112, 0, 0)), sniff(b"PK\\x03\\x04..."), sniff(b"\\x89HDF")
    ('mxnet-params', 'npz', None)
    """
    head = bytes(head[:64])
    if len(head) >= 8 and struct.unpack_from("<Q", head)[0] == LIST_MAGIC:
        return "mxnet-params"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "npz"
    return None


# --------------------------------------------------------------------------------------------
# shared helpers


def _split_role(name: str) -> tuple[str, str | None]:
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):], prefix[:3]
    return name, None


def _kind(names: Sequence[str]) -> str:
    """``named`` if any key had an ``arg:``/``aux:`` prefix, ``structural`` if every key has a dot."""
    if any(name.startswith(_PREFIXES) for name in names):
        return NAMED
    if names and all("." in name for name in names):
        return STRUCTURAL
    return NAMED


def _open(path: str) -> BinaryIO:
    with input_errors(path, "parameter file"):
        return open(path, "rb", buffering=0)


def _pread(handle: BinaryIO, path: str, n: int, offset: int) -> bytes:
    try:
        if hasattr(os, "pread"):
            return os.pread(handle.fileno(), n, offset)
        handle.seek(offset)
        return handle.read(n)
    except OSError as exc:
        raise CheckpointError(path, f"read error at byte {offset}: {exc.strerror or exc}") from None


def _fresh(dtype: np.dtype, shape: tuple[int, ...]) -> tuple[np.ndarray, memoryview]:
    arr = np.empty(shape, dtype=dtype)
    return arr, memoryview(arr.reshape(-1).view(np.uint8))  # type: ignore[arg-type]  # ndarray is a Buffer


def _normalize_bool(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.bool_ and arr.size:
        raw = arr.reshape(-1).view(np.uint8)
        np.not_equal(raw, 0, out=raw, casting="unsafe")
    return arr


def _check_nbytes(path: str, where: str, shape: Sequence[int], itemsize: int) -> int:
    """Bytes of a tensor; refuses shapes whose element count overflows int64 even when a dim is 0."""
    if math.prod(max(d, 1) for d in shape) * max(itemsize, 1) > _MAX_NBYTES:
        raise CheckpointError(path, f"{where} has shape {tuple(shape)}, whose size overflows 64 bits")
    return math.prod(shape) * itemsize




def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
