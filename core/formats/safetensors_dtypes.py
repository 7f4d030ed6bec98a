"""safetensors' dtype codes, their sizes and order, and exact conversions of bfloat16 and the 8-bit floats
(which numpy lacks) to and from float32."""


from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .base import TensorInfo

Fetch = Callable[[TensorInfo], np.ndarray]
Progress = Callable[[int, int], None]

#: The safetensors format's limit on the header length (and ours).



MAX_HEADER_SIZE = 100_000_000
#: numpy's limit on the number of dimensions (NPY_MAXDIMS); the largest product of a zero-element
#: tensor's other dimensions (numpy refuses a shape whose bytes, as 8-byte values, overflow an index).
MAX_DIMS = 64
MAX_SPAN = (2**63 - 1) // 8
#: The index file of a sharded checkpoint, by Hugging Face's convention.
INDEX_NAME = "model.safetensors.index.json"
#: An index file larger than this is refused (a real one is a few MB).
MAX_INDEX_SIZE = 256 << 20

#: The package's dtype enum, in its order: the writer sorts tensors by this, descending.
DTYPE_ORDER = ("BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
               "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32",
               "C64", "F64", "I64", "U64")
_RANK = {code: rank for rank, code in enumerate(DTYPE_ORDER)}
#: Bits per element of every dtype code.
BITS = {"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8,
        "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
        "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64}
#: Codes read as the numpy dtype of the same meaning (stored little-endian).
NUMPY_DTYPES: dict[str, np.dtype[Any]] = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
                "I64": np.dtype("<i8"), "U64": np.dtype("<u8"), "I32": np.dtype("<i4"),
                "U32": np.dtype("<u4"), "I16": np.dtype("<i2"), "U16": np.dtype("<u2"),
                "I8": np.dtype("i1"), "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
                "C64": np.dtype("<c8")}
_CODE_OF = {(dt.kind, dt.itemsize): code for code, dt in NUMPY_DTYPES.items()}
#: Codes read as float32 (exact upcast); kept in ``TensorInfo.extra["source_dtype"]``.
UPCAST = ("BF16", "F8_E4M3", "F8_E5M2", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "F8_E8M0")
#: Codes refused outright.
REFUSED = ("F4", "F6_E2M3", "F6_E3M2")
_FLOAT32 = np.dtype("<f4")




# ---------------------------------------------------------------------------------------------
# bfloat16 and 8-bit floats <-> float32

def bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) to float32: exact (bf16 is float32's top half)."""
    return (raw.astype("<u4") << 16).view(_FLOAT32)


def f32_to_bf16(values: np.ndarray) -> np.ndarray:
    """float32 to bfloat16 bit patterns (uint16), rounding to nearest even; NaN stays NaN."""
    bits = np.ascontiguousarray(values, dtype=_FLOAT32).view("<u4")
    # in place, in uint32 (one temporary the size of the input): only NaNs can wrap around, and they
    # are set below
    work = bits >> 16
    work &= 1
    work += bits
    work += np.uint32(0x7FFF)
    work >>= 16
    rounded = work.astype("<u2")
    del work
    nan = np.isnan(values)
    if nan.any():
        rounded[nan] = ((bits[nan] >> 16) | 0x40).astype("<u2")
    return rounded


def _f8_table(code: str) -> np.ndarray:
    """The float32 value of each of the 256 bit patterns of an 8-bit float type."""
    if code == "F8_E8M0":  # unsigned power of two, 0xFF is NaN
        table = np.ldexp(np.float64(1.0), np.arange(256) - 127)
        table[255] = np.nan
        return table.astype(_FLOAT32)
    exp_bits, man_bits, bias = {"F8_E4M3": (4, 3, 7), "F8_E5M2": (5, 2, 15),
                                "F8_E4M3FNUZ": (4, 3, 8), "F8_E5M2FNUZ": (5, 2, 16)}[code]
    out = np.empty(256, np.float64)
    top = (1 << exp_bits) - 1
    for byte in range(256):
        sign = -1.0 if byte & 0x80 else 1.0
        exponent = (byte >> man_bits) & top
        mantissa = byte & ((1 << man_bits) - 1)
        if exponent == 0:
            value = math.ldexp(mantissa, 1 - bias - man_bits)
        else:
            value = math.ldexp((1 << man_bits) + mantissa, exponent - bias - man_bits)
        value *= sign
        if code == "F8_E4M3" and exponent == top and mantissa == (1 << man_bits) - 1:
            value = math.nan  # e4m3fn: no infinities, S.1111.111 is NaN
        elif code == "F8_E5M2" and exponent == top:
            value = sign * math.inf if mantissa == 0 else math.nan  # IEEE-like
        elif code.endswith("FNUZ") and byte == 0x80:
            value = math.nan  # no negative zero: its pattern is the only NaN
        out[byte] = value
    return out.astype(_FLOAT32)


_F8_TABLES: dict[str, np.ndarray] = {}
_F8_NAN = {"F8_E4M3": 0x7F, "F8_E5M2": 0x7E, "F8_E4M3FNUZ": 0x80, "F8_E5M2FNUZ": 0x80, "F8_E8M0": 0xFF}


def f8_table(code: str) -> np.ndarray:
    if code not in _F8_TABLES:
        _F8_TABLES[code] = _f8_table(code)
    return _F8_TABLES[code]


def f8_to_f32(raw: np.ndarray, code: str) -> np.ndarray:
    """8-bit float bit patterns (uint8) to float32 (exact)."""
    return f8_table(code)[raw]


def f32_to_f8(values: np.ndarray, code: str) -> np.ndarray | None:
    """float32 to 8-bit float bit patterns, or None when a value is not exactly representable."""
    table = f8_table(code)
    finite = ~np.isnan(table)
    keys = table[finite].view("<u4")
    codes = np.arange(256, dtype=np.uint8)[finite]
    order = np.argsort(keys, kind="stable")
    keys, codes = keys[order], codes[order]
    bits = np.ascontiguousarray(values, dtype=_FLOAT32).view("<u4").copy()
    if code in ("F8_E4M3FNUZ", "F8_E5M2FNUZ"):
        bits[bits == 0x80000000] = 0  # -0.0 has no pattern of its own: store +0.0
    where = np.minimum(np.searchsorted(keys, bits), len(keys) - 1)
    found = keys[where] == bits
    nan = np.isnan(values)
    if not np.all(found | nan):
        return None
    out = codes[where]
    out[nan] = _F8_NAN[code]
    return out.astype(np.uint8)
