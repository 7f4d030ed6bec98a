"""Converters: box decoding, IoU and ROI operators (NMS cannot be expressed in ONNX)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    pass

from .builder import Converter, _Ctx, _onnx_dtype, converts
from .reductions import _tempered

# -- detection ---------------------------------------------------------------------------------------

def _no_translation(reason: str) -> Converter:
    def convert(c: _Ctx) -> str:
        raise c.unsupported(reason)
    return convert


converts("_contrib_box_nms", "_contrib_box_non_maximum_suppression", "_npx_box_nms")(_no_translation(
    "MXNet's box_nms returns every row sorted in place with suppressed rows set to -1, ONNX NonMaxSuppression "
    "returns selected indices; there is no faithful translation (export the network before its NMS)"))
converts("_contrib_MultiBoxDetection", "_npx_multibox_detection")(_no_translation(
    "it ends in MXNet's own non-maximum suppression, which ONNX cannot express (export the network before it)"))
converts("_contrib_box_encode", "_npx_box_encode")(_no_translation("it encodes training targets"))


def _columns(c: _Ctx, x: str, tag: str, count: int = 4) -> list[str]:
    """The last axis of ``x`` split into ``count`` slices of width 1 (kept dims)."""
    parts = c.add("Split", [x], f"/{tag}_cols", outputs=count, axis=-1, num_outputs=count)
    return parts if isinstance(parts, list) else [parts]


@converts("_contrib_box_decode", "_npx_box_decode")
def _box_decode(c: _Ctx) -> str:
    a = c.attrs
    n = c.shapes[0][1]
    anchors = c.add("Reshape", [c.inputs[1], c.ints([-1, 4], "flat")], "/anchors")
    anchors = c.add("Slice", [anchors, c.ints([0], "a0"), c.ints([n], "an"), c.ints([0], "ax")], "/anchors_n")
    ax, ay, aw, ah = _columns(c, anchors, "a")
    if a.get("format", "center") == "corner":
        aw = c.add("Sub", [aw, ax], "/aw")
        ah = c.add("Sub", [ah, ay], "/ah")
        half = c.scalar(0.5, "half_a")
        ax = c.add("Add", [ax, c.add("Mul", [aw, half], "/aw_half")], "/ax")
        ay = c.add("Add", [ay, c.add("Mul", [ah, half], "/ah_half")], "/ay")
    dx, dy, dw, dh = _columns(c, c.inputs[0], "d")
    std = [c.scalar(float(a.get(f"std{i}", 1.0)), f"std{i}") for i in range(4)]
    ox = c.add("Add", [c.add("Mul", [c.add("Mul", [dx, std[0]], "/dx_s"), aw], "/dx_w"), ax], "/ox")
    oy = c.add("Add", [c.add("Mul", [c.add("Mul", [dy, std[1]], "/dy_s"), ah], "/dy_h"), ay], "/oy")
    dw, dh = c.add("Mul", [dw, std[2]], "/dw_s"), c.add("Mul", [dh, std[3]], "/dh_s")
    clip = float(a.get("clip", -1.0))
    if clip > 0:
        limit = c.scalar(clip, "clip")
        dw, dh = c.add("Min", [dw, limit], "/dw_clip"), c.add("Min", [dh, limit], "/dh_clip")
    half = c.scalar(0.5, "half")
    ow = c.add("Mul", [c.add("Mul", [c.add("Exp", [dw], "/ew"), aw], "/ow2"), half], "/ow")
    oh = c.add("Mul", [c.add("Mul", [c.add("Exp", [dh], "/eh"), ah], "/oh2"), half], "/oh")
    corners = [c.add("Sub", [ox, ow], "/x1"), c.add("Sub", [oy, oh], "/y1"), c.add("Add", [ox, ow], "/x2"),
               c.add("Add", [oy, oh], "/y2")]
    return c.add("Concat", corners, axis=-1)


@converts("_contrib_box_iou", "_npx_box_iou")
def _box_iou(c: _Ctx) -> str:
    fmt = c.attrs.get("format", "corner")
    lhs = c.add("Unsqueeze", [c.add("Reshape", [c.inputs[0], c.ints([-1, 4], "lflat")], "/lflat"),
                              c.ints([1], "l_axis")], "/lhs")  # (N, 1, 4)
    rhs = c.add("Unsqueeze", [c.add("Reshape", [c.inputs[1], c.ints([-1, 4], "rflat")], "/rflat"),
                              c.ints([0], "r_axis")], "/rhs")  # (1, M, 4)
    l0, l1, l2, l3 = _columns(c, lhs, "l")
    r0, r1, r2, r3 = _columns(c, rhs, "r")
    zero = c.scalar(0.0, "zero")
    half = c.scalar(0.5, "half")

    def extent(a0: str, a1: str, b0: str, b1: str, tag: str) -> str:
        if fmt == "corner":
            lo, hi = c.add("Max", [a0, b0], f"/{tag}_lo"), c.add("Min", [a1, b1], f"/{tag}_hi")
        else:
            ha, hb = c.add("Mul", [a1, half], f"/{tag}_ha"), c.add("Mul", [b1, half], f"/{tag}_hb")
            b_hi, a_hi = c.add("Add", [b0, hb], f"/{tag}_bh"), c.add("Add", [a0, ha], f"/{tag}_ah")
            b_lo, a_lo = c.add("Sub", [b0, hb], f"/{tag}_bl"), c.add("Sub", [a0, ha], f"/{tag}_al")
            hi = c.add("Min", [b_hi, a_hi], f"/{tag}_hi")
            lo = c.add("Max", [b_lo, a_lo], f"/{tag}_lo")
        return c.add("Max", [c.add("Sub", [hi, lo], f"/{tag}_w"), zero], f"/{tag}_pos")

    def area(b0: str, b1: str, b2: str, b3: str, tag: str) -> str:
        if fmt == "corner":
            w, h = c.add("Sub", [b2, b0], f"/{tag}_w"), c.add("Sub", [b3, b1], f"/{tag}_h")
        else:
            w, h = b2, b3
        negative = c.add("Or", [c.add("Less", [w, zero], f"/{tag}_wn"), c.add("Less", [h, zero], f"/{tag}_hn")],
                         f"/{tag}_neg")
        return c.add("Where", [negative, zero, c.add("Mul", [w, h], f"/{tag}_wh")], f"/{tag}_area")

    inter = c.add("Mul", [extent(l0, l2, r0, r2, "ix"), extent(l1, l3, r1, r3, "iy")], "/inter")
    union = c.add("Sub", [c.add("Add", [area(l0, l1, l2, l3, "la"), area(r0, r1, r2, r3, "ra")], "/sum"), inter],
                  "/union")
    overlapping = c.add("Greater", [inter, zero], "/overlap")
    safe = c.add("Where", [overlapping, union, c.scalar(1.0, "one")], "/safe_union")
    iou = c.add("Where", [overlapping, c.add("Div", [inter, safe], "/ratio"), zero], "/iou")
    iou = c.add("Squeeze", [iou, c.ints([2], "sq")], "/pairs")  # (N, M)
    return c.add("Reshape", [iou, c.ints(c.target_shape(), "shape")])


@converts("_contrib_ROIAlign", "_npx_roi_align")
def _roi_align(c: _Ctx) -> str:
    a = c.attrs
    if a.get("position_sensitive"):
        raise c.unsupported("position_sensitive=True")
    pooled = list(a["pooled_size"]) * (2 if len(a["pooled_size"]) == 1 else 1)
    rois = c.inputs[1]
    batch = c.add("Squeeze", [c.add("Slice", [rois, c.ints([0], "b0"), c.ints([1], "b1"), c.ints([1], "bax")],
                                    "/batch_col"), c.ints([1], "bsq")], "/batch")
    live = c.add("Cast", [c.add("GreaterOrEqual", [batch, c.const(np.asarray(0, c.dtypes[1]), "zero")], "/live_b")],
                 "/live", to=_onnx_dtype(c.b.onnx, c.dtypes[0]))
    index = c.add("Cast", [c.add("Relu", [batch], "/batch_pos")], "/batch_i64", to=7)  # MXNet truncates
    boxes = c.add("Slice", [rois, c.ints([1], "c0"), c.ints([5], "c1"), c.ints([1], "cax")], "/boxes")
    ratio = int(a.get("sample_ratio", -1))
    pooled_out = c.add("RoiAlign", [c.inputs[0], boxes, index], "/align", mode="avg",
                       output_height=int(pooled[0]), output_width=int(pooled[1]),
                       sampling_ratio=max(ratio, 0), spatial_scale=float(a["spatial_scale"]),
                       coordinate_transformation_mode="half_pixel" if a.get("aligned") else "output_half_pixel")
    # a ROI with a negative batch index gives zeros, as in MXNet
    return c.add("Mul", [pooled_out, c.add("Unsqueeze", [live, c.ints([1, 2, 3], "live_axes")], "/live_b4")])


@converts("softmin")
def _softmin(c: _Ctx) -> str:
    if c.attrs.get("use_length"):
        raise c.unsupported("use_length=True (ONNX has no masked softmax)")
    negated = c.add("Neg", [_tempered(c)], "/neg")
    out = c.add("Softmax", [negated], "/softmax" if c.out_dtypes[0] != c.dtypes[0] else "",
                axis=int(c.attrs.get("axis", -1)))
    return out if c.out_dtypes[0] == c.dtypes[0] else c.cast_to_output(out, suffix="")


@converts("_np_cumsum", "_npi_cumsum", "cumsum")
def _cumsum(c: _Ctx) -> str:
    x = c.inputs[0]
    axis = c.attrs.get("axis")
    if axis is None:
        x = c.add("Reshape", [x, c.ints([-1], "flat")], "/flat")
        axis = 0
    if c.out_dtypes[0] != c.dtypes[0]:
        x = c.add("Cast", [x], "/cast_in", to=_onnx_dtype(c.b.onnx, c.out_dtypes[0]))
    return c.add("CumSum", [x, c.const(np.asarray(int(axis) % max(1, len(c.shapes[0])), np.int64), "axis")])


@converts("Crop")
def _crop(c: _Ctx) -> str:
    a = c.attrs
    height, width = c.out_shapes[0][2:4]
    if a.get("center_crop"):
        top, left = (c.shapes[0][2] - height) // 2, (c.shapes[0][3] - width) // 2
    else:
        top, left = (*tuple(a.get("offset") or ()), 0, 0)[:2]
    return c.add("Slice", [c.inputs[0], c.ints([top, left], "starts"), c.ints([top + height, left + width], "ends"),
                           c.ints([2, 3], "axes")])
