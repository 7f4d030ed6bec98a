"""Reductions, sorting and matrix products: sum/mean/max/min/prod/norm, argmax/argmin, topk,
sort/argsort, dot and batch_dot.

MXNet 1.x has no 0-d arrays: a reduction over every axis gives shape ``(1,)``; the MXNet 2
``_npi_`` spellings give NumPy's 0-d results. Index outputs are floats (``float32`` by default),
as in MXNet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import ShapeError
from .registry import OpSpec, one_of, register
from .shape import DTYPES, dtype_of

_REDUCE_ATTRS = {"axis": ("axes", None), "keepdims": ("bool", False), "exclude": ("bool", False)}


def _reduce_axes(ndim: int, axis, exclude: bool, op: str) -> tuple[int, ...]:
    if axis is None or axis == ():
        return tuple(range(ndim))
    if any(not -ndim <= a < ndim for a in axis):
        raise ShapeError(f"{op}: axis {axis} is out of range for {ndim}-D input")
    axes = tuple(sorted({a % ndim for a in axis}))
    if exclude:
        axes = tuple(a for a in range(ndim) if a not in axes)
    return axes


def _no_scalar(out: np.ndarray) -> np.ndarray:
    out = np.asarray(out)
    return out.reshape(1) if out.ndim == 0 else out


def _reduction(fn: Callable, name: str, legacy: bool = True) -> Callable:
    def kernel(data, *, axis=None, keepdims=False, exclude=False, dtype="None", initial=None):
        axes = _reduce_axes(data.ndim, axis, exclude, name)
        out = fn(data, axis=axes, keepdims=keepdims)
        out = np.asarray(out).astype(data.dtype, copy=False) if data.dtype.kind == "f" else np.asarray(out)
        if dtype not in (None, "None"):
            out = out.astype(dtype_of(dtype))
        return _no_scalar(out) if legacy else out
    return kernel


_REDUCTIONS: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {
    "sum": (np.sum, ("sum_axis", "_npi_sum", "_np_sum")), "mean": (np.mean, ("_npi_mean",)),
    "max": (np.max, ("max_axis", "_npi_max", "_np_max")), "min": (np.min, ("min_axis", "_npi_min", "_np_min")),
    "prod": (np.prod, ("_npi_prod", "_np_prod")), "nansum": (np.nansum, ()), "nanprod": (np.nanprod, ())}
for _name, (_fn, _aliases) in _REDUCTIONS.items():
    register(OpSpec(_name, _reduction(_fn, _name), dict(_REDUCE_ATTRS)),
             *[a for a in _aliases if not a.startswith("_np")])
    for _alias in _aliases:
        if _alias.startswith("_np"):
            register(OpSpec(_alias, _reduction(_fn, _name, legacy=False),
                            {"axis": ("axes", None), "keepdims": ("bool", False),
                             "dtype": ("str", "None", one_of("None", *DTYPES)), "initial": ("optfloat", None)},
                            inputs=lambda attrs: ["a"]))


def norm(data, *, ord=2, axis=None, keepdims=False, out_dtype="None"):
    axes = _reduce_axes(data.ndim, axis, False, "norm")
    compute = np.abs(data) if ord == 1 else np.square(data.astype(np.promote_types(data.dtype, np.float32)))
    total = np.sum(compute, axis=axes, keepdims=keepdims)
    out = total if ord == 1 else np.sqrt(total)
    dtype = data.dtype if out_dtype in (None, "None") else dtype_of(out_dtype)
    return _no_scalar(np.asarray(out).astype(dtype))


register(OpSpec("norm", norm, {"ord": ("int", 2, one_of(1, 2)), "axis": ("axes", None), "keepdims": ("bool", False),
                               "out_dtype": ("str", "None", one_of("None", *DTYPES))}))


def _arg(fn: Callable) -> Callable:
    def kernel(data, *, axis=None, keepdims=False):
        if axis is None:
            out = np.asarray(fn(data.reshape(-1)))
            out = out.reshape((1,) * data.ndim) if keepdims else out.reshape(1)
        else:
            if not -data.ndim <= axis < data.ndim:
                raise ShapeError(f"axis {axis} is out of range for {data.ndim}-D input")
            out = fn(data, axis=axis)
            if keepdims:
                out = np.expand_dims(out, axis % data.ndim)
        return out.astype(data.dtype if data.dtype.kind == "f" else np.float32)
    return kernel


register(OpSpec("argmax", _arg(np.argmax), {"axis": ("optint", None), "keepdims": ("bool", False)}))
register(OpSpec("argmin", _arg(np.argmin), {"axis": ("optint", None), "keepdims": ("bool", False)}))
register(OpSpec("argmax_channel", lambda data: _arg(np.argmax)(data, axis=-1)))


def _order(data: np.ndarray, axis: int, ascending: bool) -> np.ndarray:
    """Stable sort order along ``axis`` (ties keep index order, ascending or descending)."""
    if ascending:
        return np.argsort(data, axis=axis, kind="stable")
    flipped = np.flip(data, axis=axis)
    order = np.argsort(flipped, axis=axis, kind="stable")
    return np.flip(data.shape[axis] - 1 - order, axis=axis)


def topk(data, *, axis=-1, k=1, ret_typ="indices", is_ascend=False, dtype="float32"):
    x = data.reshape(-1) if axis is None else data
    axis = -1 if axis is None else axis
    if not -x.ndim <= axis < x.ndim:
        raise ShapeError(f"topk: axis {axis} is out of range for {x.ndim}-D input")
    axis %= x.ndim
    size = x.shape[axis]
    count = size if k < 1 else k
    if count > size:
        raise ShapeError(f"topk: k={k} is larger than the {size} elements on axis {axis}")
    order = np.take(_order(x, axis, is_ascend), np.arange(count), axis=axis)
    if ret_typ == "mask":
        mask = np.zeros(x.shape, data.dtype)
        np.put_along_axis(mask, order, 1, axis=axis)
        return mask.reshape(data.shape)
    values = np.take_along_axis(x, order, axis=axis)
    indices = order.astype(dtype_of(dtype))
    if ret_typ == "value":
        return values
    if ret_typ == "indices":
        return indices
    return [values, indices]


def sort(data, *, axis=-1, is_ascend=True):
    x = data.reshape(-1) if axis is None else data
    axis = -1 if axis is None else axis
    return np.take_along_axis(x, _order(x, axis, is_ascend), axis=axis)


def argsort(data, *, axis=-1, is_ascend=True, dtype="float32"):
    x = data.reshape(-1) if axis is None else data
    axis = -1 if axis is None else axis
    return _order(x, axis, is_ascend).astype(dtype_of(dtype))


register(OpSpec("topk", topk, {"axis": ("optint", -1), "k": ("int", 1),
                               "ret_typ": ("str", "indices", one_of("value", "indices", "mask", "both")),
                               "is_ascend": ("bool", False), "dtype": ("str", "float32", one_of(*DTYPES))},
                num_outputs=lambda attrs: 2 if attrs["ret_typ"] == "both" else 1), "_npx_topk")
register(OpSpec("sort", sort, {"axis": ("optint", -1), "is_ascend": ("bool", True)}), "_npi_sort")
register(OpSpec("argsort", argsort, {"axis": ("optint", -1), "is_ascend": ("bool", True),
                                     "dtype": ("str", "float32", one_of(*DTYPES))}), "_npi_argsort")

# -- matrix products ------------------------------------------------------------------------------


def dot(lhs, rhs, *, transpose_a=False, transpose_b=False, forward_stype="None"):
    """MXNet's dot: the last axis of lhs (first when transposed, as a 2-D view) against the first of rhs."""
    if lhs.ndim == 1 and rhs.ndim == 1:
        return np.asarray(np.dot(lhs, rhs)).reshape(1).astype(lhs.dtype)
    if transpose_a:
        a = lhs.reshape(lhs.shape[0], -1).T
        a_shape = lhs.shape[1:]
    else:
        a = lhs.reshape(-1, lhs.shape[-1])
        a_shape = lhs.shape[:-1]
    if transpose_b:
        b = rhs.reshape(-1, rhs.shape[-1]).T
        b_shape = rhs.shape[:-1]
    else:
        b = rhs.reshape(rhs.shape[0], -1)
        b_shape = rhs.shape[1:]
    if a.shape[1] != b.shape[0]:
        raise ShapeError(f"dot: shapes {lhs.shape} and {rhs.shape} do not fit "
                         f"(transpose_a={transpose_a}, transpose_b={transpose_b})")
    return (a @ b).reshape(a_shape + b_shape)


def batch_dot(lhs, rhs, *, transpose_a=False, transpose_b=False, forward_stype="None"):
    if lhs.ndim < 3 or lhs.ndim != rhs.ndim:
        raise ShapeError(f"batch_dot: needs two arrays of the same rank >= 3, got {lhs.shape} and {rhs.shape}")
    a = np.swapaxes(lhs, -1, -2) if transpose_a else lhs
    b = np.swapaxes(rhs, -1, -2) if transpose_b else rhs
    return np.matmul(a, b)


_DOT_ATTRS = {"transpose_a": ("bool", False), "transpose_b": ("bool", False),
              "forward_stype": ("str", "None", one_of("None", "default", "csr", "row_sparse"))}
register(OpSpec("dot", dot, dict(_DOT_ATTRS), inputs=lambda attrs: ["lhs", "rhs"]))
register(OpSpec("batch_dot", batch_dot, dict(_DOT_ATTRS), inputs=lambda attrs: ["lhs", "rhs"]), "_npx_batch_dot")
register(OpSpec("_npi_matmul", np.matmul, inputs=lambda attrs: ["a", "b"]))
register(OpSpec("_np_dot", lambda a, b: np.dot(a, b), inputs=lambda attrs: ["a", "b"]), "_npi_dot")
