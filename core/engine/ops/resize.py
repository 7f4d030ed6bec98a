"""Resizing: UpSampling (nearest, bilinear), BilinearResize2D (every size mode, both corner
conventions) and AdaptiveAvgPooling2D. Bilinear interpolation is separable: rows then columns,
each one gather and one blend over whole planes; adaptive pooling reads window sums from an
integral image."""

from __future__ import annotations

import numpy as np

from ...errors import ShapeError
from .deconv import deconvolution
from .registry import OpSpec, at_least, one_of, register


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


def _source_index(out_size: int, in_size: int, align_corners: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each output position: the two input positions it blends and the second one's weight."""
    dst = np.arange(out_size, dtype=np.float64)
    if align_corners:
        scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        src = dst * scale
    else:
        scale = in_size / out_size
        src = np.maximum(scale * (dst + 0.5) - 0.5, 0.0)
    low = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    return low, high, (src - low).astype(np.float32)


def bilinear_resize(x: np.ndarray, height: int, width: int, align_corners: bool) -> np.ndarray:
    """Bilinear resize of the last two axes (NCHW)."""
    if height <= 0 or width <= 0:
        raise ShapeError(f"BilinearResize2D: output size {height}x{width} is empty")
    compute = np.promote_types(x.dtype, np.float32)
    y0, y1, wy = _source_index(height, x.shape[2], align_corners)
    x0, x1, wx = _source_index(width, x.shape[3], align_corners)
    src = x.astype(compute, copy=False)
    wy = wy.astype(compute).reshape(-1, 1)
    rows = src[:, :, y0] * (1 - wy) + src[:, :, y1] * wy
    wx = wx.astype(compute)
    out = rows[:, :, :, x0] * (1 - wx) + rows[:, :, :, x1] * wx
    return out.astype(x.dtype, copy=False)


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


def adaptive_avg_pool(data, *, output_size=()):
    _need_4d(data, "AdaptiveAvgPooling2D")
    oh, ow = (1, 1) if not output_size else (output_size * 2 if len(output_size) == 1 else output_size)
    n, c, h, w = data.shape
    integral = np.zeros((n, c, h + 1, w + 1), np.float64)
    np.cumsum(np.cumsum(data, axis=2, dtype=np.float64), axis=3, out=integral[:, :, 1:, 1:])
    ys, ye = (np.arange(oh) * h) // oh, -(-(np.arange(1, oh + 1) * h) // oh)
    xs, xe = (np.arange(ow) * w) // ow, -(-(np.arange(1, ow + 1) * w) // ow)
    total = (integral[:, :, ye][:, :, :, xe] - integral[:, :, ys][:, :, :, xe]
             - integral[:, :, ye][:, :, :, xs] + integral[:, :, ys][:, :, :, xs])
    area = ((ye - ys)[:, None] * (xe - xs)[None, :]).astype(np.float64)
    return (total / area).astype(data.dtype)


register(OpSpec("UpSampling", upsampling,
                {"scale": ("int", 1, at_least(1)), "sample_type": ("str", "nearest", one_of("nearest", "bilinear")),
                 "num_filter": ("int", 0, at_least(0)), "multi_input_mode": ("str", "concat", one_of("concat", "sum")),
                 "num_args": ("optint", 1, at_least(1))},
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
