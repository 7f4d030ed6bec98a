"""Convolution kernels: BLAS products over im2col blocks, depthwise taps, folded BatchNorm.

Convolution lowers to BLAS matrix products over im2col blocks built from a strided view, a few
images (or output rows) at a time so each block is still in cache when BLAS reads it; a depthwise
convolution is a short loop over kernel taps. For inference, a convolution followed by BatchNorm
(and ReLU) can run as one folded convolution (:func:`convolution_batch_norm`): graph execution does
so for every such pair, eager passes for those inside Sequential containers
(``core/engine/nn/fusion.py``); folding changes float32 rounding only (relative differences around
1e-6).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ...errors import ShapeError, UnsupportedOpError
from .common import CUDNN, like_input, pad_spatial, pair
from .registry import REQUIRED, OpSpec, register


def _conv_output_size(size: int, kernel: int, stride: int, pad: int, dilate: int) -> int:
    return (size + 2 * pad - dilate * (kernel - 1) - 1) // stride + 1


def convolution(data, weight, bias=None, *, kernel, num_filter, stride=(), dilate=(), pad=(),
                num_group=1, no_bias=False, layout=None):
    if layout not in (None, "NCHW", "None"):
        raise UnsupportedOpError(f"Convolution layout {layout} is not supported (only NCHW)")
    if data.ndim != 4 or len(kernel) != 2:
        raise UnsupportedOpError(f"only 2-D convolution on NCHW input is supported "
                                 f"(input shape {data.shape}, kernel {kernel})")
    (kh, kw), (sh, sw) = kernel, pair(stride, 1)
    (dh, dw), (ph, pw) = pair(dilate, 1), pair(pad, 0)
    n, c, h, w = data.shape
    if c % num_group or num_filter % num_group:
        raise ShapeError(f"Convolution: {c} input channels and {num_filter} filters are not "
                         f"divisible into {num_group} groups")
    cg, fg = c // num_group, num_filter // num_group
    if weight.shape != (num_filter, cg, kh, kw):
        raise ShapeError(f"Convolution: weight shape {weight.shape} does not fit input {data.shape} "
                         f"(expected {(num_filter, cg, kh, kw)})")
    ho = _conv_output_size(h, kh, sh, ph, dh)
    wo = _conv_output_size(w, kw, sw, pw, dw)
    if ho <= 0 or wo <= 0:
        raise ShapeError(f"Convolution: input {data.shape} is too small for kernel {kernel}")
    if cg == 1 and fg == 1 and num_group > 1:
        out = _depthwise(pad_spatial(data, [(ph, ph), (pw, pw)]), weight, ho, wo, (sh, sw), (dh, dw))
    elif kh == kw == 1 and sh == sw == 1 and ph == pw == 0:
        cols = data.reshape(n, num_group, cg, ho * wo)
        out = np.matmul(weight.reshape(num_group, fg, cg), cols).reshape(n, num_filter, ho, wo)
    else:
        out = _conv_gemm(data, weight, num_group, (kh, kw), (sh, sw), (dh, dw), (ph, pw), (ho, wo))
    if not no_bias and bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return like_input(out, data)


#: Bytes of im2col matrix built at a time: small enough to stay in cache while BLAS reads it.
IM2COL_BLOCK = 4 << 20


def _conv_gemm(data, weight, groups, kernel, stride, dilate, pad, out_size):
    """Convolution as BLAS matrix products over im2col blocks built while they fit in cache.

    A block holds a few whole images (written straight into the NCHW output when it is one
    image), or a band of output rows of one image when a single image's matrix is too large.
    Padding goes into one reused zero-bordered buffer, never a padded copy of the whole batch.
    """
    (kh, kw), (sh, sw), (dh, dw), (ph, pw), (ho, wo) = kernel, stride, dilate, pad, out_size
    n, c, h, w = data.shape
    num_filter = weight.shape[0]
    cg, fg = c // groups, num_filter // groups
    depth = cg * kh * kw
    dtype = np.result_type(data, weight)
    out = np.empty((n, num_filter, ho, wo), dtype)
    kernels = weight.reshape(groups, fg, depth)
    row_bytes = c * kh * kw * wo * dtype.itemsize
    images = max(1, min(n, IM2COL_BLOCK // (row_bytes * ho)))
    band = ho if images > 1 or row_bytes * ho <= IM2COL_BLOCK else max(1, IM2COL_BLOCK // row_bytes)
    padded = np.zeros((images, c, h + 2 * ph, w + 2 * pw), data.dtype) if ph or pw else None
    space = np.empty(c * kh * kw * images * band * wo, dtype)
    for i0 in range(0, n, images):
        m = min(images, n - i0)
        if padded is None:
            x = data[i0:i0 + m]
        else:
            padded[:m, :, ph:ph + h, pw:pw + w] = data[i0:i0 + m]
            x = padded[:m]
        sn, sc, sy, sx = x.strides
        for r0 in range(0, ho, band):
            r = min(band, ho - r0)
            # windows ordered (group, cg, kh, kw, image, row, column): one copy makes the matrix
            window = as_strided(x[:, :, r0 * sh:], shape=(groups, cg, kh, kw, m, r, wo),
                                strides=(sc * cg, sc, sy * dh, sx * dw, sn, sy * sh, sx * sw), writeable=False)
            block = space[:groups * depth * m * r * wo].reshape(groups, cg, kh, kw, m, r, wo)
            np.copyto(block, window)
            matrix = block.reshape(groups, depth, m * r * wo)
            if m == 1:
                np.matmul(kernels, matrix, out=out[i0, :, r0:r0 + r].reshape(groups, fg, r * wo))
            else:
                product = np.matmul(kernels, matrix)
                out[i0:i0 + m] = product.reshape(num_filter, m, ho, wo).transpose(1, 0, 2, 3)
    return out


def _depthwise(x, weight, ho, wo, stride, dilate):
    (sh, sw), (dh, dw) = stride, dilate
    kh, kw = weight.shape[2:]
    out = np.zeros((x.shape[0], x.shape[1], ho, wo), dtype=np.result_type(x, weight))
    for i in range(kh):
        for j in range(kw):
            tap = x[:, :, i * dh: i * dh + sh * (ho - 1) + 1: sh, j * dw: j * dw + sw * (wo - 1) + 1: sw]
            out += tap * weight[:, 0, i, j].reshape(1, -1, 1, 1)
    return out


def convolution_batch_norm(data, weight, bias, gamma, beta, moving_mean, moving_var, *, conv: dict[str, Any],
                           eps: float, fix_gamma: bool, relu: bool = False) -> np.ndarray:
    """``Convolution`` then inference ``BatchNorm`` (then ``relu``) in one pass over the output.

    The normalisation folds into the convolution, as inference engines do (MXNet's oneDNN
    backend included): weight * scale and (bias - mean) * scale + beta, with
    scale = gamma / sqrt(var + eps); the ReLU then runs in place on the fresh output.
    """
    compute = np.promote_types(weight.dtype, np.float32)
    scale = 1.0 / np.sqrt(moving_var.astype(compute) + compute.type(eps))
    if not fix_gamma:
        scale = scale * gamma.astype(compute)
    shift = beta.astype(compute) - moving_mean.astype(compute) * scale
    if bias is not None:
        shift = shift + bias.astype(compute) * scale
    folded = (weight * scale.reshape(-1, 1, 1, 1)).astype(weight.dtype, copy=False)
    out = convolution(data, folded, shift.astype(weight.dtype), **conv, no_bias=False)
    if relu:
        np.maximum(out, 0, out=out)
    return out


def conv_output_shape(shape, kernel, stride, pad, dilate, num_filter):
    """Output shape of a 2-D convolution (used by layers to report shapes)."""
    n, _, h, w = shape
    return (n, num_filter, _conv_output_size(h, kernel[0], stride[0], pad[0], dilate[0]),
            _conv_output_size(w, kernel[1], stride[1], pad[1], dilate[1]))



def _bias_inputs(attrs):
    return ["data", "weight"] if attrs.get("no_bias") else ["data", "weight", "bias"]


register(OpSpec("Convolution", convolution,
                {"kernel": ("tuple", REQUIRED), "num_filter": ("int", REQUIRED),
                 "stride": ("tuple", ()), "dilate": ("tuple", ()), "pad": ("tuple", ()),
                 "num_group": ("int", 1), "no_bias": ("bool", False), "layout": ("str", None)},
                inputs=_bias_inputs, ignored=CUDNN), "_npx_convolution")
