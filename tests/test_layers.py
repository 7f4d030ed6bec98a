"""Layers against deliberately naive loop-based numpy references (MXNet's conventions).

The references below loop over every output element and every kernel tap; they are slow and
obviously correct on the tiny inputs used here. Pooling follows MXNet's native kernels
(src/operator/nn/pool.h): 'valid' = floor, 'full' (ceil_mode=True) = ceil output sizes; max
ignores padding; avg divides by the window clipped to the padded input when
count_include_pad, else by the window clipped to the real input.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from modelsurgeon import core
from modelsurgeon.core.engine import nn, ops

HYPOTHESIS = settings(max_examples=60, derandomize=True, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow])
F32 = {"rtol": 1e-5, "atol": 1e-5}


# -- naive references ----------------------------------------------------------------------

def naive_dense(x, weight, bias=None, flatten=True):
    x = np.asarray(x, np.float64)
    if flatten:
        x = x.reshape(x.shape[0], -1)
    lead = x.shape[:-1]
    rows = x.reshape(-1, x.shape[-1])
    out = np.zeros((rows.shape[0], weight.shape[0]))
    for r in range(rows.shape[0]):
        for o in range(weight.shape[0]):
            acc = 0.0
            for i in range(weight.shape[1]):
                acc += rows[r, i] * float(weight[o, i])
            out[r, o] = acc + (float(bias[o]) if bias is not None else 0.0)
    return out.reshape(*lead, weight.shape[0])


def naive_conv2d(x, weight, bias, stride, pad, dilation, groups):
    n, c, h, w = x.shape
    f, cg, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, pad, dilation
    padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    padded[:, :, ph:ph + h, pw:pw + w] = x
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    fg = f // groups
    out = np.zeros((n, f, ho, wo))
    for b in range(n):
        for o in range(f):
            g = o // fg
            for i in range(ho):
                for j in range(wo):
                    acc = 0.0
                    for ci in range(cg):
                        for a in range(kh):
                            for e in range(kw):
                                acc += padded[b, g * cg + ci, i * sh + a * dh, j * sw + e * dw] * weight[o, ci, a, e]
                    out[b, o, i, j] = acc + (bias[o] if bias is not None else 0.0)
    return out


def pool_out_size(size, kernel, stride, pad, ceil_mode):
    span = size + 2 * pad - kernel
    return (math.ceil(span / stride) if ceil_mode else span // stride) + 1


def naive_pool2d(x, kernel, stride, pad, pool_type, ceil_mode=False, count_include_pad=True):
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    ho = pool_out_size(h, kh, sh, ph, ceil_mode)
    wo = pool_out_size(w, kw, sw, pw, ceil_mode)
    out = np.zeros((n, c, ho, wo))
    for b in range(n):
        for ch in range(c):
            for i in range(ho):
                for j in range(wo):
                    hs, ws = i * sh - ph, j * sw - pw
                    if pool_type == "max":
                        he, we = min(hs + kh, h), min(ws + kw, w)
                        hs, ws = max(hs, 0), max(ws, 0)
                        best = -np.inf
                        for y in range(hs, he):
                            for z in range(ws, we):
                                best = max(best, x[b, ch, y, z])
                        out[b, ch, i, j] = best
                    else:
                        he, we = min(hs + kh, h + ph), min(ws + kw, w + pw)
                        size = (he - hs) * (we - ws)
                        hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
                        if not count_include_pad:
                            size = (he - hs) * (we - ws)
                        total = 0.0
                        for y in range(hs, he):
                            for z in range(ws, we):
                                total += x[b, ch, y, z]
                        out[b, ch, i, j] = total / size
    return out


def naive_batchnorm(x, gamma, beta, mean, var, eps, axis, fix_gamma):
    x = np.asarray(x, np.float64)
    axis = axis % x.ndim
    out = np.empty_like(x)
    for ch in range(x.shape[axis]):
        index = [slice(None)] * x.ndim
        index[axis] = ch
        index = tuple(index)
        g = 1.0 if fix_gamma else float(gamma[ch])
        out[index] = (x[index] - float(mean[ch])) / math.sqrt(float(var[ch]) + eps) * g + float(beta[ch])
    return out


NAIVE_ACTIVATIONS = {
    "relu": lambda v: v if v > 0 else 0.0,
    "sigmoid": lambda v: 1.0 / (1.0 + math.exp(-v)),
    "tanh": math.tanh,
    "softrelu": lambda v: math.log1p(math.exp(v)) if v < 30 else v + math.log1p(math.exp(-v)),
    "softsign": lambda v: v / (1.0 + abs(v)),
}


def naive_activation(x, act):
    return np.vectorize(NAIVE_ACTIVATIONS[act], otypes=[np.float64])(np.asarray(x, np.float64))


def _randn(gen, *shape, dtype=np.float32):
    return gen.standard_normal(shape).astype(dtype)


def _initialized(block, x):
    block.initialize(core.init.Xavier())
    block(x)
    gen = np.random.default_rng(11)
    for param in block.collect_params().values():  # non-zero biases, so a dropped bias shows
        if param.short_name == "bias":
            param.set_data(gen.standard_normal(param.shape).astype(param.dtype))
    return block


# -- Dense ------------------------------------------------------------------------------------

@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4), (2, 2, 3, 2)])
def test_dense_flatten(shape, use_bias, rng):
    x = _randn(rng, *shape)
    dense = _initialized(nn.Dense(6, use_bias=use_bias), x)
    assert dense.weight.shape == (6, math.prod(shape[1:]))
    out = dense(x)
    assert out.shape == (shape[0], 6)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, naive_dense(x, dense.weight.data(), dense.bias.data() if use_bias else None),
                               **F32)
    if not use_bias:
        assert dense.bias is None
        assert list(dense.collect_params()) == ["weight"]


@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4), (2, 2, 3, 4)])
def test_dense_no_flatten_acts_on_last_axis(shape, rng):
    x = _randn(rng, *shape)
    dense = _initialized(nn.Dense(6, flatten=False), x)
    assert dense.weight.shape == (6, shape[-1])
    out = dense(x)
    assert out.shape == (*shape[:-1], 6)
    np.testing.assert_allclose(out, naive_dense(x, dense.weight.data(), dense.bias.data(), flatten=False), **F32)


@pytest.mark.parametrize("act", sorted(NAIVE_ACTIVATIONS))
def test_dense_activation(act, rng):
    x = _randn(rng, 4, 5)
    dense = _initialized(nn.Dense(3, activation=act, in_units=5), x)
    expected = naive_activation(naive_dense(x, dense.weight.data(), dense.bias.data()), act)
    np.testing.assert_allclose(dense(x), expected, **F32)


# -- Conv2D -----------------------------------------------------------------------------------

@st.composite
def conv_cases(draw):
    groups_kind = draw(st.sampled_from(["one", "two", "depthwise"]))
    if groups_kind == "one":
        groups, cin, cout = 1, draw(st.integers(1, 3)), draw(st.integers(1, 4))
    elif groups_kind == "two":
        groups, cin, cout = 2, 2 * draw(st.integers(1, 2)), 2 * draw(st.integers(1, 2))
    else:
        cin = draw(st.integers(2, 4))
        groups, cout = cin, cin
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
    pad = (draw(st.integers(0, 2)), draw(st.integers(0, 1)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    for size, k, p, d in ((h, kernel[0], pad[0], dilation[0]), (w, kernel[1], pad[1], dilation[1])):
        assume(size + 2 * p - d * (k - 1) - 1 >= 0)
    batch = draw(st.integers(1, 2))
    use_bias = draw(st.booleans())
    return {"groups": groups, "cin": cin, "cout": cout, "kernel": kernel, "stride": stride, "pad": pad,
                "dilation": dilation, "shape": (batch, cin, h, w), "use_bias": use_bias}


@HYPOTHESIS
@given(case=conv_cases())
def test_conv2d_matches_naive(case):
    gen = np.random.default_rng(5)
    x = _randn(gen, *case["shape"])
    conv = nn.Conv2D(case["cout"], case["kernel"], strides=case["stride"], padding=case["pad"],
                     dilation=case["dilation"], groups=case["groups"], use_bias=case["use_bias"])
    _initialized(conv, x)
    weight = conv.weight.data()
    assert weight.shape == (case["cout"], case["cin"] // case["groups"], *case["kernel"])
    bias = conv.bias.data() if case["use_bias"] else None
    expected = naive_conv2d(x, weight, bias, case["stride"], case["pad"], case["dilation"], case["groups"])
    out = conv(x)
    assert out.shape == expected.shape
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel,stride,pad,dilation,groups,cin,cout,shape", [
    ((3, 3), (1, 1), (1, 1), (1, 1), 1, 3, 4, (2, 3, 6, 5)),      # 'same' 3x3, non-square input
    ((1, 1), (1, 1), (0, 0), (1, 1), 1, 3, 5, (2, 3, 4, 6)),      # 1x1 stride 1 (matmul path)
    ((1, 1), (1, 1), (0, 0), (1, 1), 2, 4, 6, (1, 4, 3, 3)),      # grouped 1x1
    ((1, 1), (2, 2), (0, 0), (1, 1), 1, 3, 2, (1, 3, 5, 5)),      # 1x1 strided (downsample)
    ((3, 3), (2, 2), (1, 1), (1, 1), 4, 4, 4, (2, 4, 7, 6)),      # depthwise strided
    ((3, 3), (1, 1), (2, 2), (2, 2), 3, 3, 3, (1, 3, 5, 5)),      # depthwise dilated
    ((2, 3), (2, 1), (1, 0), (1, 2), 2, 4, 2, (2, 4, 5, 7)),      # everything non-square
    ((5, 5), (1, 1), (2, 2), (1, 1), 1, 2, 3, (1, 2, 5, 5)),
    ((7, 7), (2, 2), (3, 3), (1, 1), 1, 3, 2, (1, 3, 9, 8)),      # ResNet stem shape
    ((11, 11), (4, 4), (2, 2), (1, 1), 1, 3, 2, (1, 3, 15, 15)),  # AlexNet stem shape
])
def test_conv2d_grid(kernel, stride, pad, dilation, groups, cin, cout, shape, rng):
    x = _randn(rng, *shape)
    for use_bias in (True, False):
        conv = _initialized(nn.Conv2D(cout, kernel, stride, pad, dilation, groups, use_bias=use_bias), x)
        bias = conv.bias.data() if use_bias else None
        expected = naive_conv2d(x, conv.weight.data(), bias, stride, pad, dilation, groups)
        np.testing.assert_allclose(conv(x), expected, rtol=1e-5, atol=1e-5)
    assert conv.in_channels == cin


def test_conv2d_activation_and_known_in_channels(rng):
    x = _randn(rng, 2, 3, 5, 5)
    conv = _initialized(nn.Conv2D(4, 3, padding=1, activation="relu", in_channels=3), x)
    expected = naive_activation(naive_conv2d(x, conv.weight.data(), conv.bias.data(), (1, 1), (1, 1), (1, 1), 1),
                                "relu")
    np.testing.assert_allclose(conv(x), expected, **F32)


def test_conv2d_rejects_bad_configuration():
    with pytest.raises(core.ModelSurgeonError, match="in_channels 3 is not divisible by groups 2"):
        nn.Conv2D(4, 3, groups=2, in_channels=3)
    with pytest.raises(core.ModelSurgeonError, match="only the NCHW layout is supported"):
        nn.Conv2D(4, 3, layout="NHWC")
    with pytest.raises(core.ModelSurgeonError, match="kernel_size must be an int or a pair"):
        nn.Conv2D(4, (3, 3, 3))
    conv = nn.Conv2D(4, 5, in_channels=1)
    conv.initialize()
    with pytest.raises(core.ShapeError, match="too small"):
        conv(np.zeros((1, 1, 3, 3), np.float32))


# -- pooling ----------------------------------------------------------------------------------

@st.composite
def pool_cases(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad = (draw(st.integers(0, kernel[0] - 1)), draw(st.integers(0, kernel[1] - 1)))  # MXNet: pad < kernel
    ceil_mode = draw(st.booleans())
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    for size, k, s, p in ((h, kernel[0], stride[0], pad[0]), (w, kernel[1], stride[1], pad[1])):
        assume(size + 2 * p >= k)
        out = pool_out_size(size, k, s, p, ceil_mode)
        assume((out - 1) * s - p < size)  # every window sees at least one real pixel
    return {"kernel": kernel, "stride": stride, "pad": pad, "ceil_mode": ceil_mode,
                "shape": (draw(st.integers(1, 2)), draw(st.integers(1, 2)), h, w),
                "count_include_pad": draw(st.booleans())}


@HYPOTHESIS
@given(case=pool_cases())
def test_max_pool_matches_naive(case):
    x = _randn(np.random.default_rng(2), *case["shape"])
    pool = nn.MaxPool2D(case["kernel"], case["stride"], case["pad"], ceil_mode=case["ceil_mode"])
    expected = naive_pool2d(x, case["kernel"], case["stride"], case["pad"], "max", case["ceil_mode"])
    out = pool(x)
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out, expected.astype(np.float32))


@HYPOTHESIS
@given(case=pool_cases())
def test_avg_pool_matches_naive(case):
    x = _randn(np.random.default_rng(3), *case["shape"])
    pool = nn.AvgPool2D(case["kernel"], case["stride"], case["pad"], ceil_mode=case["ceil_mode"],
                        count_include_pad=case["count_include_pad"])
    expected = naive_pool2d(x, case["kernel"], case["stride"], case["pad"], "avg", case["ceil_mode"],
                            case["count_include_pad"])
    out = pool(x)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, **F32)


def test_avg_pool_divisor_counts_window_clipped_to_padded_input():
    # 5x5 ones, kernel 3, stride 2, pad 1, ceil_mode: 3x3 output. MXNet divides corner windows
    # by 9 with count_include_pad (4 real cells -> 4/9) and by 4 without (-> 1).
    x = np.ones((1, 1, 5, 5), np.float32)
    included = nn.AvgPool2D(3, 2, 1, ceil_mode=True, count_include_pad=True)(x)
    excluded = nn.AvgPool2D(3, 2, 1, ceil_mode=True, count_include_pad=False)(x)
    np.testing.assert_allclose(included[0, 0], [[4 / 9, 6 / 9, 4 / 9], [6 / 9, 1, 6 / 9], [4 / 9, 6 / 9, 4 / 9]],
                               rtol=1e-6)
    np.testing.assert_allclose(excluded[0, 0], np.ones((3, 3)), rtol=1e-6)
    # 'full' windows running past the padded input are clipped to it: 6x6 input, kernel 3,
    # stride 2, no pad -> ceil(3/2)+1 = 3 outputs; the last window covers rows 4..5 only.
    x = np.ones((1, 1, 6, 6), np.float32)
    out = nn.AvgPool2D(3, 2, 0, ceil_mode=True, count_include_pad=True)(x)
    assert out.shape == (1, 1, 3, 3)
    np.testing.assert_allclose(out, 1.0, rtol=1e-6)


def test_pool_ceil_mode_output_sizes():
    x = np.zeros((1, 1, 8, 8), np.float32)
    assert nn.MaxPool2D(3, 2)(x).shape == (1, 1, 3, 3)
    assert nn.MaxPool2D(3, 2, ceil_mode=True)(x).shape == (1, 1, 4, 4)
    assert nn.MaxPool2D(2)(np.zeros((1, 1, 7, 7), np.float32)).shape == (1, 1, 3, 3)


def test_pool_defaults_stride_to_pool_size():
    x = _randn(np.random.default_rng(0), 1, 2, 6, 6)
    np.testing.assert_array_equal(nn.MaxPool2D(3)(x), naive_pool2d(x, (3, 3), (3, 3), (0, 0), "max"))


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 1), (1, 2, 7, 3)])
def test_global_pools(shape, rng):
    x = _randn(rng, *shape)
    avg = nn.GlobalAvgPool2D()(x)
    mx = nn.GlobalMaxPool2D()(x)
    assert avg.shape == mx.shape == (shape[0], shape[1], 1, 1)
    for b in range(shape[0]):
        for c in range(shape[1]):
            np.testing.assert_allclose(avg[b, c, 0, 0], np.float64(x[b, c]).sum() / (shape[2] * shape[3]), rtol=1e-5)
            assert mx[b, c, 0, 0] == max(x[b, c].ravel())


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("strided", [False, True])
def test_global_average_pooling_has_the_bits_of_numpys_mean(dtype, strided, rng):
    """The global average takes a shorter path than np.mean on contiguous float32/float64 maps; the
    same sum in the same order and the same division, so the same bits (float16 sums in float32)."""
    for shape in [(1, 64, 8, 8), (2, 7, 13, 5), (3, 300, 7, 7)]:
        x = rng.standard_normal(shape).astype(dtype)
        if strided:
            x = np.ascontiguousarray(np.swapaxes(x, 2, 3)).swapaxes(2, 3)
        got = ops.invoke("Pooling", [x], {"global_pool": "True", "kernel": "(1, 1)", "pool_type": "avg"})
        expected = np.mean(x, axis=(2, 3), keepdims=True)
        assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()


# -- simple layers ------------------------------------------------------------------------------

def test_flatten(rng):
    x = _randn(rng, 2, 3, 4, 5)
    out = nn.Flatten()(x)
    assert out.shape == (2, 60)
    for b in range(2):
        assert list(out[b]) == list(x[b].ravel())
    assert nn.Flatten()(_randn(rng, 3, 4)).shape == (3, 4)


@pytest.mark.parametrize("rate,axes", [(0.5, ()), (0.9, (1,)), (0.0, ())])
def test_dropout_is_identity_at_inference(rate, axes, rng):
    x = _randn(rng, 4, 6)
    out = nn.Dropout(rate, axes=axes)(x)
    np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize("act", sorted(NAIVE_ACTIVATIONS))
def test_activations(act, rng):
    x = (_randn(rng, 3, 7) * 4).astype(np.float32)
    np.testing.assert_allclose(nn.Activation(act)(x), naive_activation(x, act), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(getattr(core.nd, act)(x), naive_activation(x, act), rtol=1e-5, atol=1e-6)


def test_activations_at_extremes():
    x = np.array([-100.0, -30.0, 0.0, 30.0, 100.0], np.float32)
    with np.errstate(over="ignore"):
        for act in NAIVE_ACTIVATIONS:
            out = nn.Activation(act)(x)
            assert np.isfinite(out).all(), act
            np.testing.assert_allclose(out, naive_activation(x, act), rtol=1e-6, atol=1e-30, err_msg=act)


def test_unknown_activation():
    with pytest.raises(core.ModelSurgeonError, match="unknown activation 'gelu'; choose from relu, sigmoid"):
        nn.Activation("gelu")


# -- BatchNorm --------------------------------------------------------------------------------

def _set_bn(bn, channels, gen, gamma=None):
    bn.initialize()
    bn.gamma.set_data(gamma if gamma is not None else gen.uniform(0.5, 2.0, channels).astype(np.float32))
    bn.beta.set_data(gen.standard_normal(channels).astype(np.float32))
    bn.running_mean.set_data(gen.standard_normal(channels).astype(np.float32))
    bn.running_var.set_data(gen.uniform(0.01, 2.0, channels).astype(np.float32))


@pytest.mark.parametrize("axis,shape", [(1, (2, 3, 4, 5)), (1, (4, 3)), (-1, (4, 3)), (3, (2, 2, 3, 4)),
                                        (2, (2, 3, 5))])
@pytest.mark.parametrize("scale", [True, False])
@pytest.mark.parametrize("epsilon", [1e-5, 0.1])
def test_batchnorm_inference(axis, shape, scale, epsilon, rng):
    channels = shape[axis]
    bn = nn.BatchNorm(axis=axis, epsilon=epsilon, scale=scale, in_channels=channels)
    _set_bn(bn, channels, rng, gamma=np.full(channels, 3.0, np.float32))
    x = _randn(rng, *shape)
    expected = naive_batchnorm(x, bn.gamma.data(), bn.beta.data(), bn.running_mean.data(),
                               bn.running_var.data(), epsilon, axis, fix_gamma=not scale)
    out = bn(x)
    assert out.shape == shape and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_batchnorm_infers_channels_from_axis(rng):
    bn = nn.BatchNorm(axis=2)
    bn.initialize()
    bn(_randn(rng, 2, 3, 6))
    assert bn.gamma.shape == bn.running_var.shape == (6,)
    assert repr(bn).endswith("in_channels=6)")


def test_batchnorm_fix_gamma_ignores_gamma(rng):
    x = _randn(rng, 2, 3, 2, 2)
    outs = []
    for gamma in (1.0, 5.0):
        bn = nn.BatchNorm(scale=False, in_channels=3)
        bn.initialize()
        bn.gamma.set_data(np.full(3, gamma, np.float32))
        bn.running_var.set_data(np.full(3, 4.0, np.float32))
        outs.append(bn(x))
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_allclose(outs[0], x / np.sqrt(4.0 + 1e-5), rtol=1e-6)


# -- HybridConcatenate ------------------------------------------------------------------------

def test_hybrid_concatenate_channels(rng):
    x = _randn(rng, 2, 3, 4, 4)
    cat = nn.HybridConcatenate(axis=1)
    cat.add(nn.Conv2D(2, 1), nn.Conv2D(3, 3, padding=1), nn.Activation("relu"))
    assert list(cat.collect_params()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    _initialized(cat, x)
    conv0, conv1 = cat._children["0"], cat._children["1"]
    expected = np.concatenate([
        naive_conv2d(x, conv0.weight.data(), conv0.bias.data(), (1, 1), (0, 0), (1, 1), 1),
        naive_conv2d(x, conv1.weight.data(), conv1.bias.data(), (1, 1), (1, 1), (1, 1), 1),
        naive_activation(x, "relu")], axis=1)
    out = cat(x)
    assert out.shape == (2, 8, 4, 4)
    np.testing.assert_allclose(out, expected, **F32)


def test_hybrid_concatenate_default_axis_is_last(rng):
    x = _randn(rng, 2, 3)
    cat = nn.HybridConcatenate()
    cat.add(nn.Dense(2, in_units=3), nn.Activation("tanh"))
    _initialized(cat, x)
    dense = cat._children["0"]
    expected = np.concatenate([naive_dense(x, dense.weight.data(), dense.bias.data()),
                               naive_activation(x, "tanh")], axis=-1)
    np.testing.assert_allclose(cat(x), expected, **F32)


# -- dtypes -----------------------------------------------------------------------------------

def _dtype_layers():
    return [
        ("dense", lambda: nn.Dense(3), (2, 4)),
        ("dense_noflat", lambda: nn.Dense(3, flatten=False), (2, 2, 4)),
        ("conv", lambda: nn.Conv2D(2, 3), (1, 2, 5, 5)),
        ("conv1x1", lambda: nn.Conv2D(2, 1), (1, 2, 5, 5)),
        ("depthwise", lambda: nn.Conv2D(2, 3, groups=2), (1, 2, 5, 5)),
        ("maxpool", lambda: nn.MaxPool2D(), (1, 2, 4, 4)),
        ("avgpool", lambda: nn.AvgPool2D(3, 2, 1, count_include_pad=False), (1, 2, 5, 5)),
        ("globalavg", lambda: nn.GlobalAvgPool2D(), (1, 2, 4, 4)),
        ("globalmax", lambda: nn.GlobalMaxPool2D(), (1, 2, 4, 4)),
        ("batchnorm", lambda: nn.BatchNorm(), (1, 2, 4, 4)),
        ("flatten", lambda: nn.Flatten(), (2, 3, 2)),
        ("dropout", lambda: nn.Dropout(0.5), (2, 3)),
    ] + [(act, (lambda a=act: nn.Activation(a)), (2, 3)) for act in sorted(NAIVE_ACTIVATIONS)]


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
@pytest.mark.parametrize("name,make,shape", _dtype_layers(), ids=[n for n, _, _ in _dtype_layers()])
def test_input_dtype_is_kept(name, make, shape, dtype, rng):
    block = make()
    block.initialize()
    x = rng.standard_normal(shape).astype(dtype)
    out = block(x)
    assert out.dtype == dtype, f"{name}: {dtype.__name__} input gave {out.dtype} output"


@pytest.mark.parametrize("name,make,shape", _dtype_layers(), ids=[n for n, _, _ in _dtype_layers()])
def test_float16_layers_after_cast(name, make, shape, rng):
    block = make()
    block.cast("float16")
    block.initialize()
    x = rng.standard_normal(shape).astype(np.float16)
    out = block(x)
    assert out.dtype == np.float16
    reference = make()
    reference.initialize()
    reference(x.astype(np.float32))
    reference.load_dict({k: p.data().astype(np.float32) for k, p in block.collect_params().items()})
    np.testing.assert_allclose(out.astype(np.float32), reference(x.astype(np.float32)), rtol=2e-2, atol=2e-2)


def test_float64_batchnorm_is_float64_accurate(rng):
    bn = nn.BatchNorm(in_channels=3)
    bn.cast("float64")
    bn.initialize()
    bn.gamma.set_data(rng.uniform(0.5, 2.0, 3))
    bn.beta.set_data(rng.standard_normal(3))
    bn.running_mean.set_data(rng.standard_normal(3))
    bn.running_var.set_data(rng.uniform(0.5, 2.0, 3))
    x = rng.standard_normal((2, 3, 4, 4))
    expected = naive_batchnorm(x, bn.gamma.data(), bn.beta.data(), bn.running_mean.data(), bn.running_var.data(),
                               1e-5, 1, fix_gamma=False)
    out = bn(x)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_float64_results_are_float64_accurate(rng):
    x = rng.standard_normal((2, 3, 5, 5))
    conv = _initialized(nn.Conv2D(4, 3, padding=1), x.astype(np.float32))
    expected = naive_conv2d(x, conv.weight.data(), conv.bias.data(), (1, 1), (1, 1), (1, 1), 1)
    np.testing.assert_allclose(conv(x), expected, rtol=1e-12, atol=1e-12)


# -- Conv2D -> BatchNorm (-> relu) fused in eager Sequential passes (core/engine/nn/fusion.py) -------------

def _randomise_norms(net, rng):
    """BatchNorm statistics far from the identity, so a wrong fold shows."""
    for name, param in net.collect_params().items():
        if name.endswith(("gamma", "running_var")):
            param.set_data(rng.uniform(0.5, 2.0, param.shape).astype(np.float32))
        elif name.endswith(("beta", "running_mean")):
            param.set_data(rng.standard_normal(param.shape).astype(np.float32))


def _one_by_one(net, x):
    """The unfused reference: each child called on its own."""
    for block in net:
        x = block(x)
    return x


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("scale", [True, False])
@pytest.mark.parametrize("tail", ["relu", "sigmoid", "none"])
def test_fused_conv_batchnorm_equals_running_the_layers_one_by_one(use_bias, scale, tail, rng, monkeypatch):
    from modelsurgeon.core.engine import ops
    calls = []
    real = ops.convolution_batch_norm
    monkeypatch.setattr(ops, "convolution_batch_norm", lambda *a, **k: calls.append(k["relu"]) or real(*a, **k))
    net = nn.HybridSequential()
    net.add(nn.Conv2D(6, kernel_size=3, strides=2, padding=1, use_bias=use_bias), nn.BatchNorm(scale=scale))
    if tail != "none":
        net.add(nn.Activation(tail))
    net.add(nn.Conv2D(4, kernel_size=1), nn.BatchNorm())
    net.initialize()
    x = rng.standard_normal((3, 5, 9, 8)).astype(np.float32)
    net(x)  # deferred shapes resolve on the first call, which runs fused too
    _randomise_norms(net, rng)
    fused = net(x)
    assert calls == [tail == "relu", False] * 2, "both conv+norm pairs run fused (with the relu when it follows)"
    np.testing.assert_allclose(fused, _one_by_one(net, x), rtol=1e-5, atol=1e-5)
    assert fused.dtype == np.float32


def test_fusion_leaves_traced_graphs_and_other_dtypes_alone(rng):
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, kernel_size=3, padding=1, in_channels=3), nn.BatchNorm(in_channels=4), nn.Activation("relu"))
    net.initialize()
    _randomise_norms(net, rng)
    graph, _ = net.trace(np.zeros((1, 3, 6, 6), np.float32))
    assert [node["op"] for node in graph.to_dict()["nodes"] if node["op"] != "null"] == \
        ["Convolution", "BatchNorm", "Activation"]
    x64 = rng.standard_normal((2, 3, 6, 6))
    np.testing.assert_allclose(net(x64), _one_by_one(net, x64), rtol=1e-6)


def test_children_skipped_by_fusion_can_still_export_without_inputs(rng, tmp_path):
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, kernel_size=3, in_channels=3), nn.BatchNorm(in_channels=4), nn.Activation("relu"))
    net.initialize()
    net(rng.standard_normal((1, 3, 6, 6)).astype(np.float32))
    for child in net:
        child.export(str(tmp_path / type(child).__name__))  # needs the input it last saw
