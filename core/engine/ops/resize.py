"""Resizing: UpSampling (nearest, bilinear), BilinearResize2D (every size mode, both corner
conventions) and AdaptiveAvgPooling2D. Bilinear interpolation is separable: rows then columns,
each one gather and one blend over whole planes; adaptive pooling reads window sums from an
integral image."""

from __future__ import annotations

import numpy as np

from ...errors import ShapeError
from .common import check_output_size
from .deconv import deconvolution
from .registry import NUM_ARGS, OpSpec, at_least, one_of, register


def _need_4d(data, op):
    if data.ndim != 4:
        raise ShapeError(f"{op}: input {data.shape} is not 4-D (NCHW)")


def upsampling(*data, scale, sample_type, num_filter=0, multi_input_mode="concat", num_args=1):
    if sample_type == "bilinear":
        if len(data) != 2:
            raise ShapeError("UpSampling bilinear takes the data and a weight")
        x, weight = data
        _need_4d(x, "UpSampling")
        kernel = 2 * scale - scale % 2
        pad = -(-(scale - 1) // 2)
        return deconvolution(x, weight, kernel=(kernel, kernel), stride=(scale, scale), pad=(pad, pad),
                             num_filter=x.shape[1], num_group=x.shape[1], no_bias=True)
    for x in data:
        _need_4d(x, "UpSampling")
    height, width = data[0].shape[2] * scale, data[0].shape[3] * scale
    check_output_size([data[0].shape[0], sum(x.shape[1] for x in data), height, width], "UpSampling")
    outs = []
    for x in data:
        if height % x.shape[2] or width % x.shape[3]:
            raise ShapeError(f"UpSampling: input {x.shape} does not scale to {height}x{width}")
        sy, sx = height // x.shape[2], width // x.shape[3]
        outs.append(np.repeat(np.repeat(x, sy, axis=2), sx, axis=3))
    if len(outs) == 1:
        return outs[0]
    if multi_input_mode == "sum":
        total = outs[0].copy()
        for out in outs[1:]:
            total += out
        return total
    return np.concatenate(outs, axis=1)


def _upsampling_inputs(attrs):
    if attrs.get("sample_type") == "bilinear":
        return ["data", "weight"]
    return [f"arg{i}" for i in range(attrs.get("num_args") or 1)]


def _interpolation_matrix(out_size: int, in_size: int, align_corners: bool, dtype: np.dtype) -> np.ndarray:
    """(out_size, in_size) matrix of linear interpolation weights along one axis, as MXNet computes them:
    each output blends input positions floor(src) and the next one (clamped to the edge)."""
    dst = np.arange(out_size, dtype=np.float64)
    if align_corners:
        scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        src = dst * scale
    else:
        scale = in_size / out_size
        src = np.maximum(scale * (dst + 0.5) - 0.5, 0.0)
    low = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    weight = (src - low).astype(np.float32)
    matrix = np.zeros((out_size, in_size), dtype)
    rows = np.arange(out_size)
    np.add.at(matrix, (rows, low), 1 - weight)
    np.add.at(matrix, (rows, high), weight)
    return matrix


def bilinear_resize(x: np.ndarray, height: int, width: int, align_corners: bool) -> np.ndarray:
    """Bilinear resize of the last two axes (NCHW): rows then columns, each one matrix product."""
    if height <= 0 or width <= 0:
        raise ShapeError(f"BilinearResize2D: output size {height}x{width} is empty")
    check_output_size([*x.shape[:2], height, width], "BilinearResize2D")
    compute = np.promote_types(x.dtype, np.float32)
    rows = _interpolation_matrix(height, x.shape[2], align_corners, compute)
    cols = _interpolation_matrix(width, x.shape[3], align_corners, compute)
    return _separable(x.astype(compute, copy=False), rows, cols).astype(x.dtype, copy=False)


def _separable(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """rows @ x @ cols.T over every (N, C) plane, the cheaper product first."""
    (ho, h), (wo, w) = rows.shape, cols.shape
    if ho * h * w + ho * w * wo <= h * w * wo + ho * h * wo:
        return np.matmul(np.matmul(rows, x), cols.T)
    return np.matmul(rows, np.matmul(x, cols.T))


def _resize_size(size: int, mode: str, target: int, scale: float | None) -> int:
    if mode == "size":
        return int(size * scale) if scale is not None else target
    if mode == "odd_scale":
        if scale is None:
            raise ShapeError("BilinearResize2D: odd_scale mode needs scale_height and scale_width")
        return int(size * scale) if size % 2 == 0 else int((size - 1) * scale) + 1
    if mode == "to_even_down":
        return size if size % 2 == 0 else size - 1
    if mode == "to_even_up":
        return size if size % 2 == 0 else size + 1
    if mode == "to_odd_down":
        return size if size % 2 == 1 else size - 1
    return size if size % 2 == 1 else size + 1  # to_odd_up


def bilinear_resize_2d(data, like=None, *, height=1, width=1, scale_height=None, scale_width=None, mode="size",
                       align_corners=True):
    _need_4d(data, "BilinearResize2D")
    if mode == "like":
        if like is None:
            raise ShapeError("BilinearResize2D: like mode needs a second input")
        new_h, new_w = like.shape[2], like.shape[3]
    else:
        new_h = _resize_size(data.shape[2], mode, height, scale_height)
        new_w = _resize_size(data.shape[3], mode, width, scale_width)
    return bilinear_resize(data, new_h, new_w, align_corners)


def _averaging_matrix(out_size: int, in_size: int) -> np.ndarray:
    """(out_size, in_size) matrix averaging the adaptive bins [floor(i*in/out), ceil((i+1)*in/out))."""
    starts = (np.arange(out_size) * in_size) // out_size
    ends = -(-(np.arange(1, out_size + 1) * in_size) // out_size)
    positions = np.arange(in_size)
    inside = (positions >= starts[:, None]) & (positions < ends[:, None])
    return inside / (ends - starts)[:, None]


def adaptive_avg_pool(data, *, output_size=()):
    _need_4d(data, "AdaptiveAvgPooling2D")
    oh, ow = (1, 1) if not output_size else (output_size * 2 if len(output_size) == 1 else output_size)
    compute = np.promote_types(data.dtype, np.float32)
    rows = _averaging_matrix(oh, data.shape[2]).astype(compute)
    cols = _averaging_matrix(ow, data.shape[3]).astype(compute)
    return _separable(data.astype(compute, copy=False), rows, cols).astype(data.dtype, copy=False)


register(OpSpec("UpSampling", upsampling,
                {"scale": ("int", 1, at_least(1)), "sample_type": ("str", "nearest", one_of("nearest", "bilinear")),
                 "num_filter": ("int", 0, at_least(0)), "multi_input_mode": ("str", "concat", one_of("concat", "sum")),
                 "num_args": ("optint", 1, NUM_ARGS)},
                inputs=_upsampling_inputs, variadic=False, ignored=frozenset({"workspace"})), "_npx_upsampling")
_RESIZE_MODES = ("size", "like", "odd_scale", "to_even_down", "to_even_up", "to_odd_down", "to_odd_up")
register(OpSpec("_contrib_BilinearResize2D", bilinear_resize_2d,
                {"height": ("int", 1, at_least(0)), "width": ("int", 1, at_least(0)),
                 "scale_height": ("optfloat", None, at_least(0)), "scale_width": ("optfloat", None, at_least(0)),
                 "mode": ("str", "size", one_of(*_RESIZE_MODES)), "align_corners": ("bool", True)},
                inputs=lambda attrs: ["data", "like"] if attrs.get("mode") == "like" else ["data"]),
         "_npx_bilinear_resize2d", "BilinearResize2D")
register(OpSpec("_contrib_AdaptiveAvgPooling2D", adaptive_avg_pool, {"output_size": ("tuple", (), at_least(1))}),
         "_npx_adaptive_avg_pool2d", "AdaptiveAvgPooling2D")
