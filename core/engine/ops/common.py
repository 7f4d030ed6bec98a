"""Shared helpers of the kernel modules: spatial tuples, padding, output dtypes, the ReLU and the
folded BatchNorm."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...errors import ShapeError

#: Attributes of cuDNN tuning that have no effect on results.
CUDNN = frozenset({"workspace", "cudnn_tune", "cudnn_off"})


def pair(value: tuple[int, ...], default: int, n: int = 2) -> tuple[int, ...]:
    if not value:
        return (default,) * n
    if len(value) == 1:
        return value * n
    return value


def pad_spatial(x: np.ndarray, pads: Sequence[tuple[int, int]], value: float = 0.0) -> np.ndarray:
    if not any(before or after for before, after in pads):
        return x
    return np.pad(x, [(0, 0), (0, 0), *pads], mode="constant", constant_values=value)


def like_input(out: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Floating inputs keep their dtype (float16 data with float32 weights gives float16)."""
    if data.dtype.kind == "f" and out.dtype != data.dtype:
        return out.astype(data.dtype)
    return out


#: Most elements an operator may create from its attributes (tile, repeat, Pad, constants...):
#: 2^31, as MXNet's int32 indexing; larger outputs come from hostile or mistaken attributes.
MAX_OUTPUT_ELEMENTS = 1 << 31


def check_output_size(shape: Sequence[int], op: str) -> None:
    """A ShapeError when an output of ``shape`` would exceed :data:`MAX_OUTPUT_ELEMENTS`."""
    total = 1
    for dim in shape:
        total *= max(int(dim), 0)
    if total > MAX_OUTPUT_ELEMENTS:
        raise ShapeError(f"{op}: the output {tuple(shape)} would have {total} elements, more than "
                         f"{MAX_OUTPUT_ELEMENTS}")


#: Most elements :func:`relu` compares against a shared array of zeros; larger arrays are
#: memory-bound either way and take the scalar form.
ZEROS_LIMIT = 1 << 20
_ZEROS: dict[str, np.ndarray] = {}


def relu(x, out=None):
    """``np.maximum(x, 0)`` with the same bits (NaN kept), up to 3x faster on float arrays.

    numpy 2.x runs ``maximum`` against a scalar without its vector loop (10 µs for 17k float32 here,
    3 µs against an array of zeros), and ReLUs follow most layers. So floating arrays of up to
    :data:`ZEROS_LIMIT` elements are compared with a read-only view of one shared buffer of zeros.
    """
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f" or not 0 < x.size <= ZEROS_LIMIT:
        return np.maximum(x, 0, out=out)
    zeros = _ZEROS.get(x.dtype.str)
    if zeros is None or zeros.size < x.size:
        zeros = np.zeros(max(x.size, 1 << 16), x.dtype)
        zeros.flags.writeable = False
        _ZEROS[x.dtype.str] = zeros  # a reader of the old buffer keeps its own reference
    return np.maximum(x, zeros[:x.size].reshape(x.shape), out=out)


#: Bytes of keys and results :func:`batch_norm_affine` remembers before it forgets them all.
AFFINE_MEMO_BYTES = 16 << 20
_AFFINE: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = {}
_AFFINE_HELD = [0]


def batch_norm_affine(gamma, beta, mean, var, *, eps: float, fix_gamma: bool, compute: np.dtype,
                      dtype: np.dtype, bias=None) -> tuple[np.ndarray, np.ndarray]:
    """Inference BatchNorm as ``x * scale + shift`` per channel (after a convolution's ``bias``, if given):
    scale = gamma / sqrt(var + eps) (gamma taken as 1 under ``fix_gamma``) and shift = beta - mean *
    scale (+ bias * scale), worked out in ``compute`` precision and rounded once to ``dtype``. Read-only arrays.

    A forward pass folds every BatchNorm again (eight numpy calls, more than a small layer's copies),
    so results are remembered, keyed by the statistics' bytes: a changed parameter is a new key."""
    arrays = [var, mean, beta] + ([] if fix_gamma else [gamma]) + ([] if bias is None else [bias])
    key = (float(eps), fix_gamma, bias is None, np.dtype(compute).str, np.dtype(dtype).str,
           *((a.dtype.str, a.shape, a.tobytes()) for a in arrays))
    known = _AFFINE.get(key)
    if known is not None:
        return known
    compute = np.dtype(compute)
    scale = 1.0 / np.sqrt(var.astype(compute) + compute.type(eps))
    if not fix_gamma:
        scale = scale * gamma.astype(compute)
    shift = beta.astype(compute) - mean.astype(compute) * scale
    if bias is not None:
        shift = shift + bias.astype(compute) * scale
    result = scale.astype(dtype), shift.astype(dtype)
    for array in result:
        array.flags.writeable = False
    size = sum(a.nbytes for a in arrays) + 2 * result[0].nbytes
    if _AFFINE_HELD[0] + size > AFFINE_MEMO_BYTES:
        _AFFINE.clear()
        _AFFINE_HELD[0] = 0
    _AFFINE[key] = result
    _AFFINE_HELD[0] += size
    return result
