"""Transposed convolution (``Deconvolution``): one BLAS product, then col2im as strided adds.

The product of the transposed weight and the input gives, for every input pixel, its
contribution to each kernel tap; col2im adds each tap's plane into the output at that tap's
offset with the stride as step: a loop over kernel taps, never over pixels.
"""

from __future__ import annotations

import numpy as np

from ...errors import ShapeError, UnsupportedOpError
from .common import CUDNN, check_output_size, like_input, pair
from .registry import REQUIRED, OpSpec, at_least, register


def deconv_geometry(size: int, kernel: int, stride: int, dilate: int, pad: int, adj: int,
                    target: int) -> tuple[int, int, int]:
    """(output size, pad, adj) of one spatial axis; a target size overrides pad and adj as MXNet does."""
    span = stride * (size - 1) + dilate * (kernel - 1) + 1
    if target > 0:
        if span < target:
            raise ShapeError(f"Deconvolution: target size {target} is larger than the largest output {span}")
        total = span - target
        adj, pad = total % 2, (total + 1) // 2
    return span - 2 * pad + adj, pad, adj


def deconvolution(data, weight, bias=None, *, kernel, num_filter, stride=(), dilate=(), pad=(), adj=(),
                  target_shape=(), num_group=1, no_bias=True, layout=None):
    if layout not in (None, "NCHW", "NCW", "None"):
        raise UnsupportedOpError(f"Deconvolution layout {layout} is not supported (only NCHW/NCW)")
    if len(kernel) == 1 and data.ndim == 3:  # 1-D: a 2-D deconvolution of height 1
        out = deconvolution(data[:, :, None], weight[:, :, None], bias, kernel=(1, kernel[0]),
                            num_filter=num_filter, stride=(1, *pair(stride, 1, 1)), dilate=(1, *pair(dilate, 1, 1)),
                            pad=(0, *pair(pad, 0, 1)), adj=(0, *pair(adj, 0, 1)),
                            target_shape=(0, *target_shape) if target_shape else (), num_group=num_group,
                            no_bias=no_bias)
        return out[:, :, 0]
    if data.ndim != 4 or len(kernel) != 2:
        raise UnsupportedOpError(f"only 1-D and 2-D deconvolution on NCHW input is supported "
                                 f"(input shape {data.shape}, kernel {kernel})")
    n, c, h, w = data.shape
    if c % num_group or num_filter % num_group:
        raise ShapeError(f"Deconvolution: {c} input channels and {num_filter} filters are not divisible "
                         f"into {num_group} groups")
    cg, fg = c // num_group, num_filter // num_group
    kh, kw = kernel
    if weight.shape != (c, fg, kh, kw):
        raise ShapeError(f"Deconvolution: weight shape {weight.shape} does not fit input {data.shape} "
                         f"(expected {(c, fg, kh, kw)})")
    (sh, sw), (dh, dw), (ph, pw) = pair(stride, 1), pair(dilate, 1), pair(pad, 0)
    (ah, aw), (th, tw) = pair(adj, 0), pair(target_shape, 0)
    ho, ph, ah = deconv_geometry(h, kh, sh, dh, ph, ah, th)
    wo, pw, aw = deconv_geometry(w, kw, sw, dw, pw, aw, tw)
    if ho <= 0 or wo <= 0:
        raise ShapeError(f"Deconvolution: padding {(ph, pw)} leaves no output for input {data.shape}")
    check_output_size([n, num_filter, kh * kw, h, w], "Deconvolution")
    dtype = np.result_type(data, weight)
    # every input pixel's contribution to every (filter, tap): (n, groups, fg*kh*kw, h*w)
    kernels = weight.reshape(num_group, cg, fg * kh * kw).transpose(0, 2, 1)
    cols = np.matmul(kernels, data.reshape(n, num_group, cg, h * w)).reshape(n, num_filter, kh, kw, h, w)
    full_h = max(sh * (h - 1) + dh * (kh - 1) + 1, ph + ho)
    full_w = max(sw * (w - 1) + dw * (kw - 1) + 1, pw + wo)
    full = np.zeros((n, num_filter, full_h, full_w), dtype)
    for i in range(kh):
        for j in range(kw):
            target = full[:, :, i * dh: i * dh + sh * (h - 1) + 1: sh, j * dw: j * dw + sw * (w - 1) + 1: sw]
            target += cols[:, :, i, j]
    out = np.ascontiguousarray(full[:, :, ph:ph + ho, pw:pw + wo])
    if not no_bias and bias is not None:
        out += bias.reshape(1, -1, 1, 1).astype(dtype, copy=False)
    return like_input(out, data)


def _bias_inputs(attrs):
    return ["data", "weight"] if attrs.get("no_bias") else ["data", "weight", "bias"]


register(OpSpec("Deconvolution", deconvolution,
                {"kernel": ("tuple", REQUIRED, at_least(1)), "num_filter": ("int", REQUIRED, at_least(1)),
                 "stride": ("tuple", (), at_least(1)), "dilate": ("tuple", (), at_least(1)),
                 "pad": ("tuple", (), at_least(0)), "adj": ("tuple", (), at_least(0)),
                 "target_shape": ("tuple", (), at_least(0)), "num_group": ("int", 1, at_least(1)),
                 "no_bias": ("bool", True), "layout": ("str", None)},
                inputs=_bias_inputs, ignored=CUDNN), "_npx_deconvolution")
