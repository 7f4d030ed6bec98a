"""Convolution kernels: BLAS products over im2col blocks, depthwise taps, folded BatchNorm.

Convolution lowers to BLAS matrix products over im2col blocks built from a strided view, a few
images (or a band of output rows) at a time so each block is still in cache when BLAS reads it; a
1x1 stride-1 convolution multiplies the weight with the pixels in place (no copy); a depthwise
convolution is one batched product of each channel's taps with its own im2col rows, or, on large
maps whose sums stay in cache, a sum over its taps of shifted views of the input. Layers are cut
into as many independent tasks as their work pays for, which run on the free cores with
single-threaded BLAS (``parallel.py``); bias, folded BatchNorm shift and ReLU
are applied by each task to its own block while it is in cache. (Winograd F(2x2, 3x3) was measured
and left out: its transforms, as numpy passes, cost more than the products they save; see
bench/README.md.) For inference, a convolution followed by BatchNorm
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
from . import parallel
from .common import CUDNN, batch_norm_affine, like_input, pair
from .common import relu as apply_relu
from .registry import REQUIRED, OpSpec, register


def _conv_output_size(size: int, kernel: int, stride: int, pad: int, dilate: int) -> int:
    return (size + 2 * pad - dilate * (kernel - 1) - 1) // stride + 1


def convolution(data, weight, bias=None, *, kernel, num_filter, stride=(), dilate=(), pad=(),
                num_group=1, no_bias=False, layout=None):
    return _convolve(data, weight, None if no_bias else bias, False, kernel=kernel, num_filter=num_filter,
                     stride=stride, dilate=dilate, pad=pad, num_group=num_group, layout=layout)


def _convolve(data, weight, bias, relu, *, kernel, num_filter, stride=(), dilate=(), pad=(), num_group=1,
              layout=None, scale=None):
    """The convolution, then ``* scale + bias`` per filter and a ReLU, applied by each task to its own part."""
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
    if (ho - 1) * sh < ph or (kh - 1) * dh - ph >= h or (wo - 1) * sw < pw or (kw - 1) * dw - pw >= w:
        # the first or last taps read only padding: a smaller kernel gives the same sums
        rows, cols = _live_taps(h, ho, kh, sh, ph, dh), _live_taps(w, wo, kw, sw, pw, dw)
        (i0, kh, ph), (j0, kw, pw) = rows or (0, kh, ph), cols or (0, kw, pw)
        weight = weight[:, :, i0:i0 + kh, j0:j0 + kw]
    if scale is not None and weight.size <= n * num_filter * ho * wo:
        weight, scale = weight * scale.reshape(-1, 1, 1, 1), None  # scaling the weight is the cheaper pass
    epilogue = _Epilogue(bias, relu, num_group, scale)
    if cg == 1 and fg == 1 and num_group > 1:
        kernel_of = _depthwise_taps if _taps_pay(data, weight, (ho, -(-(w + 2 * pw) // sw))) else _depthwise
        out = kernel_of(data, weight, (kh, kw), (sh, sw), (dh, dw), (ph, pw), (ho, wo), epilogue)
    elif kh == kw == 1 and sh == sw == 1 and ph == pw == 0:
        out = _pointwise(data, weight, num_group, epilogue)
    else:
        out = _conv_gemm(data, weight, num_group, (kh, kw), (sh, sw), (dh, dw), (ph, pw), (ho, wo), epilogue)
    return like_input(out, data)


def _live_taps(size: int, out: int, kernel: int, stride: int, pad: int, dilate: int) -> tuple[int, int, int] | None:
    """(first tap, taps, padding) of one kernel axis without the taps that read only padding.

    A dilated kernel on a small input (DeepLab's ASPP: rate 12 to 36 on an 8x8 map) reads
    mostly zeros: tap ``i`` reads positions ``o * stride - pad + i * dilate`` for the ``out`` outputs
    ``o``. Dropping the taps whose positions all fall outside ``[0, size)`` leaves the same sums
    (their weights times zeros; only a non-finite weight there would have made them NaN), as long as
    the remaining taps, with a symmetric padding, give the same output positions (the kernels take
    one padding per axis). None when no tap can go.
    """
    live = [i for i in range(kernel) if -pad + i * dilate < size and (out - 1) * stride - pad + i * dilate >= 0]
    if not live or len(live) == kernel:
        return None
    first, taps = live[0], len(live)
    padding = pad - first * dilate
    if padding < 0 or _conv_output_size(size, taps, stride, padding, dilate) != out:
        return None
    return first, taps, padding


class _Epilogue:
    """Scale and bias per filter (and ReLU) applied to a block of output rows while it is still in cache."""

    def __init__(self, bias, relu, groups, scale=None):
        self.bias = None if bias is None else bias.reshape(groups, -1)
        self.scale = None if scale is None else scale.reshape(groups, -1)
        self.relu = relu

    def groups(self, g0, g1):
        """The same epilogue for groups [g0, g1) only."""
        part = _Epilogue(None, self.relu, 1)
        part.bias = None if self.bias is None else self.bias[g0:g1]
        part.scale = None if self.scale is None else self.scale[g0:g1]
        return part

    def __call__(self, block, f0):
        """Applied in place to ``block``: (..., groups, filters f0.. of each group, pixels)."""
        count = block.shape[-2]
        if self.scale is not None:
            np.multiply(block, self.scale[:, f0:f0 + count].reshape(-1, count, 1), out=block)
        if self.bias is not None:
            np.add(block, self.bias[:, f0:f0 + count].reshape(-1, count, 1), out=block)
        if self.relu:
            apply_relu(block, out=block)


#: Bytes of im2col matrix built at a time: small enough to stay in cache while BLAS reads it.
IM2COL_BLOCK = 4 << 20
#: Fewest output columns (pixels) of one task's matrix product: narrower products waste BLAS's time.
MIN_COLUMNS = 96
#: Tasks a layer is cut into at most (enough for the threads to balance their load).
MAX_TASKS = 8
#: Fewest filters of one task when a small layer is cut by filters.
MIN_FILTERS = 64
#: A stride-1 layer takes its im2col matrix wide when the products' unused columns (filters x unused
#: columns per row) stay within this many times the output row: copying runs of whole padded rows
#: saves more than those columns cost.
WIDE_WASTE = 16


def _pointwise(data, weight, groups, epilogue):
    """1x1 stride-1 convolution: a product of the weight with each image's pixels, no copy at all.

    Tasks take whole images when the batch gives enough of them, else bands of one image's pixels."""
    n, c, h, w = data.shape
    num_filter = weight.shape[0]
    cg, fg, pixels = c // groups, num_filter // groups, h * w
    kernels = weight.reshape(groups, fg, cg)
    dtype = np.result_type(data, weight)
    out = np.empty((n, groups, fg, pixels), dtype)
    cols = data.reshape(n, groups, cg, pixels)
    wanted = parallel.pieces(n * num_filter * cg * pixels, MAX_TASKS)
    if n >= wanted:
        images = -(-n // wanted)

        def by_images(i0):
            def compute(dest):
                np.matmul(kernels, cols[i0:i0 + images], out=dest)
                epilogue(dest, 0)
            return parallel.Task(out[i0:i0 + images], compute)
        parallel.run([by_images(i0) for i0 in range(0, n, images)])
        return out.reshape(n, num_filter, h, w)
    bands = max(1, min(-(-wanted // n), pixels // MIN_COLUMNS))
    band = -(-pixels // bands)

    def by_pixels(i, p0):
        def compute(dest):
            np.matmul(kernels, cols[i, :, :, p0:p0 + band], out=dest)
            epilogue(dest, 0)
        return parallel.Task(out[i, :, :, p0:p0 + band], compute)
    parallel.run([by_pixels(i, p0) for i in range(n) for p0 in range(0, pixels, band)])
    return out.reshape(n, num_filter, h, w)


def _conv_gemm(data, weight, groups, kernel, stride, dilate, pad, out_size, epilogue):
    """Convolution as BLAS matrix products over im2col blocks, cut into independent tasks.

    A task builds the im2col matrix of a few whole images, or of a band of output rows of one
    image, in its thread's own buffer (sized to stay in cache) and multiplies it with the weight
    straight into the NCHW output; padding is copied into a small zero-bordered buffer holding
    only the input rows the task reads. A single image too small to cut into bands of rows is cut
    by filters instead, over one shared matrix. The layer's work sets how many tasks it is worth
    (``parallel.pieces``); the cut depends on the shapes only.
    """
    (kh, kw), (ho, wo) = kernel, out_size
    n, c = data.shape[:2]
    num_filter = weight.shape[0]
    fg = num_filter // groups
    depth = c // groups * kh * kw
    dtype = np.result_type(data, weight)
    out = np.empty((n, num_filter, ho, wo), dtype)
    kernels = weight.reshape(groups, fg, depth)
    row_bytes = c * kh * kw * wo * dtype.itemsize
    build = _Im2col(data, groups, kernel, stride, dilate, pad, wo, dtype)
    width = build.width
    wide = build.can_widen and fg * (width - wo) <= WIDE_WASTE * wo
    wanted = parallel.pieces(n * num_filter * depth * ho * wo, MAX_TASKS)
    if n == 1 and wanted > 1 and ho * wo < wanted * MIN_COLUMNS and fg >= 2 * MIN_FILTERS:
        matrix = build(0, 1, 0, ho, "shared")
        target = out.reshape(groups, fg, ho * wo)
        chunk = max(MIN_FILTERS, -(-fg // wanted))

        def by_filters(f0):
            def compute(dest):
                np.matmul(kernels[:, f0:f0 + chunk], matrix, out=dest)
                epilogue(dest, f0)
            return parallel.Task(target[:, f0:f0 + chunk], compute)
        parallel.run([by_filters(f0) for f0 in range(0, fg, chunk)])
        return out
    images = max(1, min(-(-n // wanted), IM2COL_BLOCK // max(1, row_bytes * ho)))
    if images > 1 or n >= wanted:
        band = ho
    else:
        bands = max(1, min(-(-wanted // n), ho * wo // MIN_COLUMNS))
        band = min(max(1, IM2COL_BLOCK // row_bytes), -(-ho // bands))

    def task(i0, m, r0, r):
        def compute(dest):  # dest: (m, num_filter, r, wo)
            matrix = build(i0, m, r0, r, "cols", wide)
            if wide:
                product = parallel.scratch("product", num_filter * m * r * width, dtype)
                product = product.reshape(groups, fg, m * r * width)
                np.matmul(kernels, matrix, out=product)
                epilogue(product, 0)  # on the unused columns too: contiguous passes beat strided ones
                target = dest.reshape(m, groups, fg, r, wo).transpose(1, 2, 0, 3, 4)
                np.copyto(target, product.reshape(groups, fg, m, r, width)[..., :wo])
                return
            if m == 1:
                block = dest[0].reshape(groups, fg, r * wo)
                np.matmul(kernels, matrix, out=block)
                epilogue(block, 0)
                return
            product = parallel.scratch("product", num_filter * m * r * wo, dtype).reshape(groups, fg, m * r * wo)
            np.matmul(kernels, matrix, out=product)
            epilogue(product, 0)
            dest[...] = product.reshape(num_filter, m, r, wo).transpose(1, 0, 2, 3)
        return parallel.Task(out[i0:i0 + m, :, r0:r0 + r], compute)

    parallel.run([task(i0, min(images, n - i0), r0, min(band, ho - r0))
                  for i0 in range(0, n, images) for r0 in range(0, ho, band)])
    return out


class _Im2col:
    """Builds the im2col matrix of images [i0, i0+m), output rows [r0, r0+r) in a thread's buffer.

    Stride-1 layers can take the matrix *wide*: each output row as wide as the padded input row, so
    that every row of the matrix is one contiguous run of the (padded) input, copied in one piece
    rather than in runs of one output row. The product then has ``width - wo`` unused columns per
    row, which one narrowing copy leaves behind after the epilogue.
    """

    def __init__(self, data, groups, kernel, stride, dilate, pad, wo, dtype):
        self.data, self.groups, self.kernel, self.stride = data, groups, kernel, stride
        self.dilate, self.pad, self.wo, self.dtype = dilate, pad, wo, dtype
        self.width = data.shape[3] + 2 * pad[1]
        self.can_widen = tuple(stride) == (1, 1) and (bool(pad[0] or pad[1]) or data.flags.c_contiguous)

    def __call__(self, i0, m, r0, r, name, wide=False):
        (kh, kw), (sh, sw), (dh, dw), (ph, pw) = self.kernel, self.stride, self.dilate, self.pad
        data, groups, wo = self.data, self.groups, self.wo
        _, c, h, w = data.shape
        cg = c // groups
        y0, y1 = r0 * sh - ph, (r0 + r - 1) * sh + (kh - 1) * dh + 1 - ph  # input rows read (padded coords)
        if ph or pw:
            lo, hi = max(y0, 0), min(y1, h)
            lo, hi = min(lo, y1), max(hi, lo)  # a band of a 1-row kernel may lie wholly in the padding
            # only the interior is written, the same one for every call with this geometry: the
            # buffer's zero border stays
            x = parallel.bordered(("padded", lo - y0, hi - y0, pw), (m, c, y1 - y0, w + 2 * pw), data.dtype)
            x[:, :, lo - y0:hi - y0, pw:pw + w] = data[i0:i0 + m, :, lo:hi]
        else:
            x = data[i0:i0 + m, :, y0:y1]
        sn, sc, sy, sx = x.strides
        if wide:
            # row-major runs: output pixel p (of r rows x width) reads input p + i*dh*width + j*dw; the
            # last row's unused tail would read past the rows loaded, so it is zeroed instead
            width, span = self.width, (r - 1) * self.width + wo
            window = _windows(x, (groups, cg, kh, kw, m, span), (sc * cg, sc, sy * dh, sx * dw, sn, sx))
            block = parallel.scratch(name, groups * cg * kh * kw * m * r * width, self.dtype)
            block = block.reshape(groups, cg, kh, kw, m, r * width)
            np.copyto(block[..., :span], window)
            block[..., span:] = 0
            return block.reshape(groups, cg * kh * kw, m * r * width)
        # windows ordered (group, cg, kh, kw, image, row, column): one copy makes the matrix
        window = _windows(x, (groups, cg, kh, kw, m, r, wo), (sc * cg, sc, sy * dh, sx * dw, sn, sy * sh, sx * sw))
        block = parallel.scratch(name, groups * cg * kh * kw * m * r * wo, self.dtype)
        block = block.reshape(groups, cg, kh, kw, m, r, wo)
        np.copyto(block, window)
        return block.reshape(groups, cg * kh * kw, m * r * wo)


def _windows(x, shape, strides):
    """A read-only strided view of ``x`` (overlapping windows); the plain constructor when ``x`` is
    contiguous (~1 µs against ~6 µs for ``as_strided``, once or twice a layer)."""
    if not x.flags.c_contiguous:
        return as_strided(x, shape=shape, strides=strides, writeable=False)
    view = np.ndarray(shape, x.dtype, x, 0, strides)
    view.flags.writeable = False
    return view


def _depthwise(data, weight, kernel, stride, dilate, pad, out_size, epilogue):
    """Depthwise convolution: each channel's kh*kw taps times its im2col rows, one batched product.

    Tasks take blocks of channels (of all images, or of one image when the batch's matrix would not
    stay in cache); the layer's work sets how many (``parallel.pieces``)."""
    (kh, kw), (ho, wo) = kernel, out_size
    n, c = data.shape[:2]
    dtype = np.result_type(data, weight)
    out = np.empty((n, c, ho, wo), dtype)
    taps = weight.reshape(c, 1, kh * kw)
    whole = _Im2col(data, c, kernel, stride, dilate, pad, wo, dtype)
    wide = whole.can_widen
    width = whole.width if wide else wo
    channel_bytes = kh * kw * ho * width * dtype.itemsize  # one channel's im2col rows for one image
    images = n if n * channel_bytes <= IM2COL_BLOCK else 1
    wanted = parallel.pieces(n * c * kh * kw * ho * wo, MAX_TASKS)
    block = max(1, min(-(-c // max(1, -(-wanted * images // n))), IM2COL_BLOCK // (channel_bytes * images)))

    def task(i0, c0):
        cb = min(block, c - c0)

        def compute(dest):  # dest: (images, cb, ho, wo)
            build = _Im2col(data[i0:i0 + images, c0:c0 + cb], cb, kernel, stride, dilate, pad, wo, dtype)
            matrix = build(0, images, 0, ho, "cols", wide)
            product = parallel.scratch("product", cb * images * ho * width, dtype)
            product = product.reshape(cb, 1, images * ho * width)
            np.matmul(taps[c0:c0 + cb], matrix, out=product)
            epilogue.groups(c0, c0 + cb)(product, 0)
            target = dest.reshape(images, cb, 1, ho, wo).transpose(1, 2, 0, 3, 4)
            np.copyto(target, product.reshape(cb, 1, images, ho, width)[..., :wo])
        return parallel.Task(out[i0:i0 + images, c0:c0 + cb], compute)

    parallel.run([task(i0, c0) for i0 in range(0, n, images) for c0 in range(0, c, block)])
    return out


#: Fewest output pixels per channel for which a depthwise layer adds its taps up over its input
#: (:func:`_depthwise_taps`) rather than multiplying an im2col matrix...
TAP_PIXELS = 512
#: ...as long as the sum (all channels and images, wide rows) stays in cache: beyond it each of the
#: passes over the sum goes to memory, and MobileNet 1.0's 256 channels at 28x28 take 1.5x the time.
TAP_BYTES = 512 << 10


def _taps_pay(data, weight, wide_size) -> bool:
    """Whether a depthwise layer with outputs of ``wide_size`` (rows, wide row) sums its taps."""
    dtype = np.result_type(data, weight)
    rows, width = wide_size
    n, c = data.shape[:2]
    return dtype.kind == "f" and dtype.itemsize >= 4 and rows * width >= TAP_PIXELS \
        and n * c * rows * width * dtype.itemsize <= TAP_BYTES


def _depthwise_taps(data, weight, kernel, stride, dilate, pad, out_size, epilogue):
    """Depthwise convolution as a sum over its taps: each tap multiplies a shifted view of the padded
    input by that tap's weight per channel, and the products add up in an output kept in cache.

    On large maps this beats the im2col product, whose matrix (kh*kw copies of the input) falls out of
    cache between layers (MobileNet 0.25's 8 channels at 112x112: bench/README.md). A stride-s layer
    reads s*s *phases* of its padded input (every s-th row and column from each offset), so every tap
    is again a run of whole rows of one phase. Tasks take blocks of channels; sums run in the output
    dtype (float32 or wider), tap by tap in row-major order.
    """
    (kh, kw), (ho, wo) = kernel, out_size
    n, c = data.shape[:2]
    dtype = np.result_type(data, weight)
    out = np.empty((n, c, ho, wo), dtype)
    taps = weight.reshape(c, kh * kw).astype(dtype, copy=False)
    wanted = parallel.pieces(n * c * kh * kw * ho * wo, MAX_TASKS)
    block = -(-c // wanted)

    def compute(c0, cb, dest):  # dest: (n, cb, ho, wo)
        plan = parallel.kept(("depthwise taps", (n, cb, *data.shape[2:]), data.dtype.str, dtype.str,
                              tuple(kernel), tuple(stride), tuple(dilate), tuple(pad)),
                             lambda: _tap_plan((n, cb, *data.shape[2:]), kernel, stride, dilate, pad, out_size,
                                               data.dtype, dtype))
        phases, reads, total, spare = plan
        part = data[:, c0:c0 + cb]
        for target, rows, cols in phases:
            np.copyto(target, part[:, :, rows, cols])
        weights = taps[c0:c0 + cb, :, None]
        np.multiply(reads[0], weights[:, 0], out=total)
        for tap in range(1, kh * kw):
            np.multiply(reads[tap], weights[:, tap], out=spare)
            np.add(total, spare, out=total)
        epilogue.groups(c0, c0 + cb)(total.reshape(n, cb, 1, -1), 0)
        np.copyto(dest, total.reshape(n, cb, ho, -1)[..., :wo])

    parallel.run([parallel.Task(out[:, c0:c0 + block], lambda dest, c0=c0: compute(c0, dest.shape[1], dest))
                  for c0 in range(0, c, block)])
    return out


def _tap_plan(shape, kernel, stride, dilate, pad, out_size, data_dtype, dtype):
    """Buffers of :func:`_depthwise_taps` for input ``shape`` (kept per thread): each phase of the padded
    input with the slices of the data that fill it, the view each tap reads, the sum and a spare."""
    n, c, h, w = shape
    (kh, kw), (sh, sw), (dh, dw), (ph, pw), (ho, _) = kernel, stride, dilate, pad, out_size
    # phase (py, px) holds padded rows py, py+sh, ... and columns px, px+sw, ...; a spare row lets the
    # last output row's wide run read past the last column without leaving the buffer
    rows, width = -(-(h + 2 * ph) // sh) + 1, -(-(w + 2 * pw) // sw)
    pixels = ho * width
    buffers, phases = {}, []
    for py in range(sh):
        for px in range(sw):
            buffer = np.zeros((n, c, rows, width), data_dtype)
            i0, i1 = -(-(ph - py) // sh), -(-(h + ph - py) // sh)  # phase rows that hold data
            j0, j1 = -(-(pw - px) // sw), -(-(w + pw - px) // sw)
            i0, j0 = max(i0, 0), max(j0, 0)
            if i1 > i0 and j1 > j0:
                phases.append((buffer[:, :, i0:i1, j0:j1], slice(i0 * sh + py - ph, None, sh),
                               slice(j0 * sw + px - pw, None, sw)))
            buffers[py, px] = buffer.reshape(n, c, rows * width)
    reads = []
    for i in range(kh):
        for j in range(kw):
            y, x = i * dh, j * dw
            offset = (y // sh) * width + x // sw
            reads.append(buffers[y % sh, x % sw][:, :, offset:offset + pixels])
    total, spare = np.empty((n, c, pixels), dtype), np.empty((n, c, pixels), dtype)
    held = sum(b.nbytes for b in buffers.values()) + total.nbytes + spare.nbytes
    return (phases, reads, total, spare), held


def convolution_batch_norm(data, weight, bias, gamma, beta, moving_mean, moving_var, *, conv: dict[str, Any],
                           eps: float, fix_gamma: bool, relu: bool = False) -> np.ndarray:
    """``Convolution`` then inference ``BatchNorm`` (then ``relu``) in one pass over the output.

    The normalisation folds into the convolution: the output is multiplied by scale = gamma /
    sqrt(var + eps) and (bias - mean) * scale + beta is added, then the ReLU, by each task on its
    fresh block while it is in cache. The scale goes into the weight instead when the weight is the
    smaller of the two (depthwise and early layers): folding it into every weight on every call
    would touch 11M of them for resnet18, ~7% of a batch-1 pass.
    """
    dtype = np.result_type(data, weight)
    scale, shift = batch_norm_affine(gamma, beta, moving_mean, moving_var, eps=eps, fix_gamma=fix_gamma,
                                     compute=np.dtype(np.float64), dtype=dtype, bias=bias)
    return _convolve(data, weight, shift, relu, **conv, scale=scale)


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
