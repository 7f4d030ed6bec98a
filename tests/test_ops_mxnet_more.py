"""The operators of real MXNet models (issue 15) against real MXNet 1.9.1.

Each case is one graph node with MXNet's string attributes, exactly as a ``-symbol.json`` holds
them. All cases run in one MXNet subprocess, which loads each one-node graph with
``mx.sym.load_json`` and runs it in inference mode; each is compared with
:func:`modelsurgeon.core.engine.ops.invoke` on the same inputs and attributes (every output of a
multi-output operator). Without MXNet the comparisons skip locally and fail under CI.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelsurgeon.core.engine import ops

_GEN = np.random.default_rng(15)


def _x(*shape, scale=1.0):
    return (_GEN.standard_normal(shape) * scale).astype(np.float32)


def _pos(*shape, low=0.1, high=2.0):
    return _GEN.uniform(low, high, shape).astype(np.float32)


def _ints(high, *shape):
    return _GEN.integers(0, high, shape).astype(np.float32)


def _s(value):
    if isinstance(value, tuple):
        return "(" + ", ".join("None" if v is None else str(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value)


def _cases():
    cases = []

    def add(case_id, op, inputs, **attrs):
        cases.append((case_id, op, inputs, {k: _s(v) for k, v in attrs.items()}))

    # scalar arithmetic and comparisons
    xs = _x(3, 4, scale=2.0)
    xp = _pos(3, 4)
    for op in ("_plus_scalar", "_minus_scalar", "_rminus_scalar", "_mul_scalar", "_div_scalar", "_rdiv_scalar",
               "_maximum_scalar", "_minimum_scalar", "_mod_scalar", "_rmod_scalar", "_hypot_scalar",
               "_equal_scalar", "_not_equal_scalar", "_greater_scalar", "_greater_equal_scalar",
               "_lesser_scalar", "_lesser_equal_scalar", "_logical_and_scalar", "_logical_or_scalar"):
        add(op, op, [xs], scalar=0.5)
    add("_equal_scalar_hit", "_equal_scalar", [np.array([[0.5, 1.0], [0.5, -2.0]], np.float32)], scalar=0.5)
    add("_power_scalar", "_power_scalar", [xp], scalar=2.5)
    add("_rpower_scalar", "_rpower_scalar", [xs], scalar=1.7)
    add("_div_scalar_norm", "_div_scalar", [xs], scalar=58.395)
    add("_minus_scalar_norm", "_minus_scalar", [xs], scalar=127.5)
    # broadcast_* and elemwise_* arithmetic and comparisons
    a, b = _x(2, 3, 4), _x(2, 1, 4)
    bp = _pos(2, 1, 4)
    for name in ("add", "sub", "mul", "div", "maximum", "minimum", "hypot", "equal", "not_equal", "greater",
                 "greater_equal", "lesser", "lesser_equal", "logical_and", "logical_or", "logical_xor",
                 "plus", "minus"):
        add(f"broadcast_{name}", f"broadcast_{name}", [a, bp if name == "div" else b])
    add("broadcast_power", "broadcast_power", [_pos(2, 3, 4), b])
    add("broadcast_mod", "broadcast_mod", [a * 3, bp])
    c = _x(2, 3, 4)
    for name in ("elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div", "_maximum", "_minimum",
                 "_power", "_equal", "_greater", "_lesser_equal", "_plus", "_minus", "_mul", "_div"):
        rhs = _pos(2, 3, 4) if name in ("elemwise_div", "_div") else c
        lhs = _pos(2, 3, 4) if name == "_power" else a
        add(name, name, [lhs, rhs])
    add("add_n", "add_n", [a, c, a], num_args=3)
    add("ElementWiseSum", "ElementWiseSum", [a, c], num_args=2)
    # unary maths
    for name in ("exp", "sqrt", "square", "abs", "sign", "negative", "reciprocal", "floor", "ceil", "round",
                 "rint", "fix", "trunc", "log", "log2", "log10", "log1p", "expm1", "rsqrt", "cbrt", "sin", "cos",
                 "tanh", "sigmoid", "relu", "softsign", "erf", "arctan", "logical_not"):
        data = _pos(3, 5) if name in ("sqrt", "log", "log2", "log10", "rsqrt", "reciprocal") else _x(3, 5, scale=2)
        if name in ("round", "rint"):
            data = np.array([[0.5, 1.5, 2.5, -0.5, -1.5], [0.49, 2.51, -2.5, 3.0, 0.0]], np.float32)
        add(f"unary_{name}", name, [data])
    # activations
    xa = _x(2, 3, 4, 5, scale=2)
    for act in ("leaky", "elu", "selu", "gelu", "rrelu"):
        add(f"leaky_{act}", "LeakyReLU", [xa], act_type=act)
    add("leaky_slope", "LeakyReLU", [xa], act_type="leaky", slope=0.1)
    add("elu_slope", "LeakyReLU", [xa], act_type="elu", slope=0.7)
    add("rrelu_bounds", "LeakyReLU", [xa], act_type="rrelu", lower_bound=0.2, upper_bound=0.5)
    add("prelu", "LeakyReLU", [xa, _pos(3, low=0.0, high=0.5)], act_type="prelu")
    add("prelu_one", "LeakyReLU", [xa, np.array([0.3], np.float32)], act_type="prelu")
    add("prelu_2d", "LeakyReLU", [_x(4, 6), _pos(6, low=0.0, high=0.5)], act_type="prelu")
    add("act_softrelu", "Activation", [xa], act_type="softrelu")
    add("hard_sigmoid", "hard_sigmoid", [xa])
    add("hard_sigmoid_ab", "hard_sigmoid", [xa], alpha=0.3, beta=0.4)
    add("clip", "clip", [xa], a_min=-1.0, a_max=0.5)
    # shape operators
    x4 = _x(2, 3, 4, 5)
    for i, (shape, reverse) in enumerate([((0, -1), False), ((-1,), False), ((0, 0, -1), False), ((-2,), False),
                                          ((0, -2), False), ((-3, -2), False), ((0, -3, 5), False),
                                          ((-4, 1, 2, -2), False), ((0, -4, -1, 3, 0, 0), False),
                                          ((2, -1, 5), False), ((-1, 5), True), ((0, 0, -1), True),
                                          ((-3, 0, 0), True), ((6, 20), False), ((0, 3, -4, 2, -1, 5), False),
                                          ((0, 0, 0, 1, -1, -4), True)]):
        add(f"reshape{i}", "Reshape", [x4], shape=shape, reverse=reverse)
    add("reshape_like", "reshape_like", [x4, _x(6, 20)])
    add("reshape_like_range", "reshape_like", [_x(30, 12), _x(4, 2, 2, 3)], lhs_begin=-1, rhs_begin=1)
    add("flatten", "Flatten", [x4])
    add("transpose", "transpose", [x4], axes=(0, 2, 3, 1))
    add("transpose_default", "transpose", [x4])
    add("expand_dims", "expand_dims", [x4], axis=1)
    add("expand_dims_neg", "expand_dims", [x4], axis=-1)
    add("squeeze_all", "squeeze", [_x(1, 3, 1, 2)])
    add("squeeze_axis", "squeeze", [_x(1, 3, 1, 2)], axis=(2,))
    add("split", "SliceChannel", [x4], num_outputs=3, axis=1)
    add("split_squeeze", "split", [x4], num_outputs=2, axis=0, squeeze_axis=True)
    add("split_last", "SliceChannel", [x4], num_outputs=5, axis=-1)
    add("slice", "slice", [x4], begin=(0, 1, 1), end=(2, 3, 4))
    add("slice_none", "slice", [x4], begin=(None, None, 0), end=(None, None, 3), step=(1, -1, 2))
    add("slice_neg", "slice", [x4], begin=(1, -2), end=(None, None))
    add("slice_axis", "slice_axis", [x4], axis=2, begin=1, end=3)
    add("slice_axis_none", "slice_axis", [x4], axis=-1, begin=-3, end="None")
    add("slice_like", "slice_like", [x4, _x(1, 2, 3, 3)])
    add("slice_like_axes", "slice_like", [x4, _x(1, 2, 3, 3)], axes=(2, 3))
    add("take", "take", [_x(5, 3), np.array([[0, 4], [2, 7]], np.float32)])
    add("take_axis_wrap", "take", [_x(2, 5, 3), np.array([0, -1, 6, 2], np.float32)], axis=1, mode="wrap")
    add("pick", "pick", [_x(4, 5), _ints(5, 4)])
    add("pick_axis0_keep", "pick", [_x(4, 5), _ints(4, 5)], axis=0, keepdims=True)
    add("pick_wrap", "pick", [_x(4, 5), np.array([-1, 6, 2, 0], np.float32)], axis=1, mode="wrap")
    add("gather_nd", "gather_nd", [x4, np.array([[0, 1, 1], [2, 0, 1]], np.float32)])
    add("where", "where", [_ints(2, 3, 4), _x(3, 4), _x(3, 4)])
    add("where_rows", "where", [np.array([1, 0, 1], np.float32), _x(3, 4), _x(3, 4)])
    add("tile", "tile", [_x(2, 3)], reps=(2, 3))
    add("tile_more", "tile", [_x(2, 3)], reps=(2, 1, 2))
    add("repeat", "repeat", [_x(2, 3)], repeats=2, axis=1)
    add("repeat_flat", "repeat", [_x(2, 3)], repeats=3)
    add("concat_neg", "Concat", [_x(2, 3, 4), _x(2, 3, 1)], dim=-1, num_args=2)
    add("stack", "stack", [_x(2, 3), _x(2, 3), _x(2, 3)], axis=1, num_args=3)
    for mode in ("constant", "edge", "reflect"):
        add(f"pad_{mode}", "Pad", [x4], mode=mode, pad_width=(0, 0, 0, 0, 1, 2, 3, 1))
    add("pad_constant_value", "Pad", [x4], mode="constant", pad_width=(0, 0, 0, 0, 2, 2, 2, 2), constant_value=1.5)
    add("broadcast_to", "broadcast_to", [_x(2, 1, 4)], shape=(2, 3, 4))
    add("broadcast_to_zero", "broadcast_to", [_x(2, 1, 4)], shape=(0, 3, 0))
    add("broadcast_axis", "broadcast_axis", [_x(2, 1, 1)], axis=(1, 2), size=(3, 4))
    add("broadcast_like", "broadcast_like", [_x(2, 1, 4), _x(2, 3, 4)])
    add("swapaxes", "SwapAxis", [x4], dim1=1, dim2=3)
    add("reverse", "reverse", [x4], axis=(1, 3))
    add("depth_to_space", "depth_to_space", [_x(1, 8, 2, 3)], block_size=2)
    add("space_to_depth", "space_to_depth", [_x(1, 2, 4, 6)], block_size=2)
    add("zeros_like", "zeros_like", [x4])
    add("ones_like", "ones_like", [x4])
    add("shape_array", "shape_array", [x4])
    add("size_array", "size_array", [x4])
    add("cast_f16", "Cast", [x4], dtype="float16")
    add("cast_i32", "Cast", [x4 * 3], dtype="int32")
    add("blockgrad", "BlockGrad", [x4])
    add("stop_gradient", "stop_gradient", [x4])
    add("copy", "_copy", [x4])
    add("arange", "_arange", [], start=2, stop=11, step=1.5)
    add("arange_repeat", "_arange", [], start=5, repeat=2)
    add("arange_like", "_contrib_arange_like", [_x(2, 3)], start=1, step=0.5)
    add("arange_like_axis", "_contrib_arange_like", [_x(2, 3)], axis=1)
    add("zeros", "_zeros", [], shape=(2, 3))
    add("ones", "_ones", [], shape=(3, 1), dtype="int32")
    add("full", "_full", [], shape=(2, 2), value=3.25)
    # resizing
    xr = _x(2, 3, 5, 4)
    for scale in (2, 3):
        add(f"upsampling_nearest{scale}", "UpSampling", [xr], scale=scale, sample_type="nearest", num_args=1)
        k = 2 * scale - scale % 2
        add(f"upsampling_bilinear{scale}", "UpSampling", [xr, _x(3, 1, k, k)], scale=scale, sample_type="bilinear",
            num_filter=3, num_args=2)
    add("upsampling_multi_concat", "UpSampling", [_x(1, 2, 4, 4), _x(1, 3, 2, 2)], scale=2, sample_type="nearest",
        num_args=2)
    add("upsampling_multi_sum", "UpSampling", [_x(1, 2, 4, 4), _x(1, 2, 2, 2)], scale=2, sample_type="nearest",
        num_args=2, multi_input_mode="sum")
    for corners in (True, False):
        tag = "ac" if corners else "noac"
        add(f"bilinear_size_up_{tag}", "_contrib_BilinearResize2D", [xr], height=9, width=11, align_corners=corners)
        add(f"bilinear_size_down_{tag}", "_contrib_BilinearResize2D", [_x(1, 2, 9, 8)], height=4, width=3,
            align_corners=corners)
        add(f"bilinear_scale_{tag}", "_contrib_BilinearResize2D", [xr], scale_height=2.0, scale_width=1.5,
            align_corners=corners)
        add(f"bilinear_like_{tag}", "_contrib_BilinearResize2D", [xr, _x(1, 1, 7, 6)], mode="like",
            align_corners=corners)
    add("bilinear_one_pixel", "_contrib_BilinearResize2D", [xr], height=1, width=1)
    for mode in ("odd_scale", "to_even_down", "to_even_up", "to_odd_down", "to_odd_up"):
        add(f"bilinear_{mode}", "_contrib_BilinearResize2D", [xr], mode=mode, scale_height=2.0, scale_width=0.5)
    add("bilinear_odd_scale_even", "_contrib_BilinearResize2D", [_x(1, 1, 6, 4)], mode="odd_scale",
        scale_height=1.5, scale_width=2.0)
    for size in ((1,), (2,), (3, 2), (5, 4), (7, 3)):
        add(f"adaptive_avg_{'x'.join(map(str, size))}", "_contrib_AdaptiveAvgPooling2D", [_x(2, 3, 11, 9)],
            output_size=size)
    # Deconvolution
    for i, (k, s, p, adj, d, g, cin, cout, hw, target) in enumerate([
            ((3, 3), (1, 1), (0, 0), (0, 0), (1, 1), 1, 3, 4, (5, 4), ()),
            ((4, 4), (2, 2), (1, 1), (0, 0), (1, 1), 1, 2, 3, (4, 5), ()),
            ((3, 3), (2, 2), (1, 1), (1, 1), (1, 1), 1, 2, 2, (4, 4), ()),
            ((3, 3), (2, 2), (1, 1), (0, 0), (2, 2), 2, 4, 6, (3, 5), ()),
            ((4, 4), (2, 2), (1, 1), (0, 0), (1, 1), 4, 4, 4, (3, 3), ()),
            ((3, 2), (3, 2), (0, 1), (2, 1), (1, 1), 1, 3, 2, (3, 4), ()),
            ((4, 4), (2, 2), (0, 0), (0, 0), (1, 1), 1, 3, 3, (4, 6), (8, 12)),
            ((3, 3), (2, 2), (0, 0), (0, 0), (1, 1), 1, 3, 2, (5, 5), (9, 10)),
            ((1, 1), (1, 1), (0, 0), (0, 0), (1, 1), 1, 5, 3, (3, 3), ())]):
        attrs = {"kernel": k, "stride": s, "pad": p, "adj": adj, "dilate": d, "num_group": g, "num_filter": cout}
        if target:  # MXNet computes pad and adj itself (giving them as well trips its oneDNN kernel)
            attrs = {"kernel": k, "stride": s, "num_filter": cout, "target_shape": target}
        x, w = _x(2, cin, *hw), _x(cin, cout // g, *k)
        add(f"deconv{i}", "Deconvolution", [x, w, _x(cout)], no_bias=False, **attrs)
        add(f"deconv{i}_nobias", "Deconvolution", [x, w], no_bias=True, **attrs)
    add("deconv_1d", "Deconvolution", [_x(2, 3, 6), _x(3, 2, 3)], kernel=(3,), stride=(2,), pad=(1,), num_filter=2)
    # Pooling: lp and more conventions
    xq = _x(2, 3, 7, 6)
    for pv in (1, 2, 3):
        add(f"pool_lp{pv}", "Pooling", [xq], kernel=(2, 2), stride=(2, 2), pool_type="lp", p_value=pv)
        add(f"pool_lp{pv}_pad", "Pooling", [xq], kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="lp",
            p_value=pv, pooling_convention="full")
    add("pool_lp_global", "Pooling", [xq], kernel=(1, 1), global_pool=True, pool_type="lp", p_value=2)
    add("pool_global_sum", "Pooling", [xq], kernel=(1, 1), global_pool=True, pool_type="sum")
    add("pool_global_nokernel", "Pooling", [xq], global_pool=True, pool_type="avg")
    add("pool_full_nocip", "Pooling", [xq], kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="avg",
        pooling_convention="full", count_include_pad=False)
    add("pool_full_cip", "Pooling", [xq], kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="avg",
        pooling_convention="full", count_include_pad=True)
    add("pool_1d_max", "Pooling", [_x(2, 3, 9)], kernel=(3,), stride=(2,), pad=(1,), pool_type="max")
    add("pool_1d_avg", "Pooling", [_x(2, 3, 9)], kernel=(2,), stride=(2,), pool_type="avg",
        pooling_convention="full")
    # normalisation
    xn = _x(2, 6, 4, 5, scale=3) + 1.0
    for i, (axis, fix_gamma, global_stats) in enumerate([(1, True, False), (1, False, True), (-1, False, False),
                                                         (2, True, True)]):
        ch = xn.shape[axis]
        add(f"batchnorm{i}", "BatchNorm", [xn, _pos(ch), _x(ch), _x(ch), _pos(ch)], axis=axis, fix_gamma=fix_gamma,
            use_global_stats=global_stats, eps=2e-5)
    add("batchnorm_mean_var", "BatchNorm", [xn, _pos(6), _x(6), _x(6), _pos(6)], fix_gamma=False,
        output_mean_var=True)
    add("instancenorm", "InstanceNorm", [xn, _pos(6), _x(6)], eps=1e-3)
    add("instancenorm_3d", "InstanceNorm", [_x(2, 3, 7), _pos(3), _x(3)], eps=1e-5)
    add("layernorm", "LayerNorm", [xn, _pos(5), _x(5)])
    add("layernorm_axis1", "LayerNorm", [xn, _pos(6), _x(6)], axis=1, eps=1e-3)
    add("layernorm_mean_var", "LayerNorm", [_x(3, 8), _pos(8), _x(8)], output_mean_var=True)
    add("groupnorm", "GroupNorm", [xn, _pos(3), _x(3)], num_groups=3)
    add("groupnorm_one", "GroupNorm", [xn, _pos(1), _x(1)], num_groups=1, eps=1e-3)
    for mode in ("instance", "channel", "spatial"):
        add(f"l2norm_{mode}", "L2Normalization", [xn], mode=mode)
    add("l2norm_2d", "L2Normalization", [_x(4, 7)], mode="instance", eps=1e-6)
    # softmax family
    xm = _x(2, 3, 4, scale=3)
    add("softmax_axis1", "softmax", [xm], axis=1)
    add("softmax_temperature", "softmax", [xm], temperature=2.5)
    add("log_softmax", "log_softmax", [xm])
    add("log_softmax_axis0", "log_softmax", [xm], axis=0, temperature=0.5)
    add("softmax_activation", "SoftmaxActivation", [xm])
    add("softmax_activation_channel", "SoftmaxActivation", [_x(2, 3, 4, 2)], mode="channel")
    add("softmax_output", "SoftmaxOutput", [_x(4, 5), _ints(5, 4)])
    add("softmax_output_4d", "SoftmaxOutput", [_x(2, 3, 2, 2), _ints(2, 2, 3, 2)])
    add("softmax_output_multi", "SoftmaxOutput", [_x(2, 3, 4), _ints(3, 2, 4)], multi_output=True)
    add("softmax_output_preserve", "SoftmaxOutput", [_x(2, 3, 4), _ints(4, 2, 3)], preserve_shape=True)
    # dense and products
    add("embedding", "Embedding", [np.array([[0, 3], [4, 1]], np.float32), _x(5, 6)], input_dim=5, output_dim=6)
    add("dot", "dot", [_x(3, 4), _x(4, 5)])
    add("dot_ta", "dot", [_x(4, 3), _x(4, 5)], transpose_a=True)
    add("dot_tb", "dot", [_x(3, 4), _x(5, 4)], transpose_b=True)
    add("dot_both", "dot", [_x(4, 3), _x(5, 4)], transpose_a=True, transpose_b=True)
    add("dot_nd", "dot", [_x(2, 3, 4), _x(4, 2, 5)])
    add("batch_dot", "batch_dot", [_x(2, 3, 4), _x(2, 4, 5)])
    add("batch_dot_ta", "batch_dot", [_x(2, 4, 3), _x(2, 4, 5)], transpose_a=True)
    add("batch_dot_tb", "batch_dot", [_x(2, 3, 4), _x(2, 5, 4)], transpose_b=True)
    add("fc_noflatten_4d", "FullyConnected", [_x(2, 3, 4, 6), _x(5, 6), _x(5)], num_hidden=5, flatten=False)
    # reductions
    xr3 = _x(2, 3, 4, scale=2)
    for name in ("sum", "mean", "max", "min", "prod"):
        add(f"{name}_all", name, [xr3])
        add(f"{name}_axis", name, [xr3], axis=(1,))
        add(f"{name}_keep", name, [xr3], axis=(0, 2), keepdims=True)
        add(f"{name}_exclude", name, [xr3], axis=(1,), exclude=True)
    add("sum_neg_axis", "sum", [xr3], axis=-1)
    add("norm_all", "norm", [xr3])
    add("norm_axis", "norm", [xr3], axis=(1,), keepdims=True)
    add("norm_l1", "norm", [xr3], ord=1, axis=(2,))
    add("argmax", "argmax", [xr3], axis=1)
    add("argmax_keep", "argmax", [xr3], axis=-1, keepdims=True)
    add("argmax_flat", "argmax", [xr3])
    add("argmin", "argmin", [xr3], axis=2)
    # sorting
    xt = _x(3, 6)
    for ret in ("value", "indices", "both", "mask"):
        add(f"topk_{ret}", "topk", [xt], k=3, ret_typ=ret)
        add(f"topk_{ret}_asc", "topk", [xt], k=2, ret_typ=ret, is_ascend=True, axis=0)
    add("topk_all", "topk", [xt], k=0, ret_typ="value")
    add("topk_flat", "topk", [xt], k=4, axis="None", ret_typ="indices")
    add("topk_int_dtype", "topk", [xt], k=2, dtype="int32")
    add("sort", "sort", [xt])
    add("sort_desc", "sort", [xt], axis=0, is_ascend=False)
    add("argsort", "argsort", [xt])
    add("argsort_desc", "argsort", [xt], is_ascend=False, axis=0)
    # older and rarer operators of real exports
    add("crop_hw", "Crop", [x4], h_w=(2, 3), offset=(1, 2), num_args=1)
    add("crop_like", "Crop", [_x(1, 2, 7, 8), _x(1, 1, 4, 5)], num_args=2)
    add("crop_center", "Crop", [_x(1, 2, 7, 8), _x(1, 1, 4, 5)], num_args=2, center_crop=True)
    add("sync_batchnorm", "_contrib_SyncBatchNorm", [xn, _pos(6), _x(6), _x(6), _pos(6)], fix_gamma=False,
        key="bn0")
    add("softmin", "softmin", [xm], axis=1)
    add("np_cumsum", "_np_cumsum", [xr3], axis=1)
    add("np_cumsum_flat", "_np_cumsum", [xr3])
    # MXNet 2 (numpy) spellings, which MXNet 1.9.1 registers too
    add("npi_add", "_npi_add", [a, b])
    add("npi_subtract", "_npi_subtract", [a, b])
    add("npi_multiply", "_npi_multiply", [a, b])
    add("npi_true_divide", "_npi_true_divide", [a, bp])
    add("npi_power", "_npi_power", [_pos(2, 3, 4), b])
    add("npi_maximum", "_npi_maximum", [a, b])
    add("npi_add_scalar", "_npi_add_scalar", [xs], scalar=1.5, is_int=False)
    add("npi_subtract_scalar", "_npi_subtract_scalar", [xs], scalar=0.25, is_int=False)
    add("npi_rsubtract_scalar", "_npi_rsubtract_scalar", [xs], scalar=2, is_int=True)
    add("npi_multiply_scalar", "_npi_multiply_scalar", [xs], scalar=0.017, is_int=False)
    add("npi_true_divide_scalar", "_npi_true_divide_scalar", [xs], scalar=255, is_int=True)
    add("npi_rtrue_divide_scalar", "_npi_rtrue_divide_scalar", [xp], scalar=2.0, is_int=False)
    add("npi_power_scalar", "_npi_power_scalar", [xp], scalar=2, is_int=True)
    add("npi_greater", "_npi_greater", [a, b])
    add("npi_less_scalar", "_npi_less_scalar", [xs], scalar=0.0, is_int=False)
    add("npi_exp", "_npi_exp", [xs])
    add("npi_sqrt", "_npi_sqrt", [xp])
    add("npi_absolute", "_npi_absolute", [xs])
    add("np_transpose", "_np_transpose", [x4], axes=(0, 2, 3, 1))
    add("npi_concatenate", "_npi_concatenate", [_x(2, 3), _x(2, 4)], axis=1, num_args=2)
    add("npi_stack", "_npi_stack", [_x(2, 3), _x(2, 3)], axis=-1, num_args=2)
    add("npi_expand_dims", "_npi_expand_dims", [x4], axis=0)
    add("np_squeeze", "_np_squeeze", [_x(1, 3, 1, 2)], axis=(0,))
    add("npi_mean", "_npi_mean", [xr3], axis=(1, 2))
    add("np_sum_all", "_np_sum", [xr3])
    add("np_max_keep", "_np_max", [xr3], axis=(0,), keepdims=True)
    add("np_reshape", "_np_reshape", [x4], newshape=(6, -1))
    add("npx_reshape", "_npx_reshape", [x4], newshape=(-2, -5, -1))
    add("npx_reshape_split", "_npx_reshape", [x4], newshape=(-6, 1, -1, -4))
    add("npx_reshape_drop", "_npx_reshape", [_x(2, 1, 4)], newshape=(-2, -3, -2))
    add("npi_tile", "_npi_tile", [_x(2, 3)], reps=(2, 2))
    add("npi_where", "_npi_where", [_ints(2, 3, 4) > 0, _x(3, 4), _x(3, 4)])
    add("npx_softmax", "_npx_softmax", [xm], axis=1)
    add("npx_log_softmax", "_npx_log_softmax", [xm])
    add("npx_leaky_relu", "_npx_leaky_relu", [xa], act_type="gelu")
    add("npx_activation", "_npx_activation", [xa], act_type="softrelu")
    add("npx_batch_dot", "_npx_batch_dot", [_x(2, 3, 4), _x(2, 4, 5)])
    add("npx_layer_norm", "_npx_layer_norm", [xn, _pos(5), _x(5)])
    add("npx_pick", "_npx_pick", [_x(4, 5), _ints(5, 4)])
    add("npx_topk", "_npx_topk", [xt], k=2, ret_typ="value")
    add("npi_arange", "_npi_arange", [], start=1, stop=7, step=2)
    add("npi_zeros", "_npi_zeros", [], shape=(2, 3))
    add("npi_full", "_npi_full", [], shape=(2, 3), value=1.5)
    add("npx_relu", "_npx_relu", [xs])
    add("npx_sigmoid", "_npx_sigmoid", [xs])
    add("np_copy", "_np_copy", [xs])
    return cases


CASES = _cases()
CASE_IDS = [case[0] for case in CASES]
assert len(set(CASE_IDS)) == len(CASE_IDS)

MXNET_SCRIPT = r"""
import json, os, sys
os.environ["MXNET_SUBGRAPH_VERBOSE"] = "0"
os.environ["MXNET_STORAGE_FALLBACK_LOG_VERBOSE"] = "0"
os.environ["MXNET_SUBGRAPH_BACKEND"] = "NONE"
if sys.argv[4] == "reference":  # MXNet's own CPU kernels instead of oneDNN's
    os.environ["MXNET_MKLDNN_ENABLED"] = "0"
import numpy as np
import mxnet as mx
cases = json.load(open(sys.argv[1]))
arrays = np.load(sys.argv[2])
out = {}
for case_id, op, count, attrs, outputs in cases:
    nodes = [{"op": "null", "name": f"in{i}", "inputs": []} for i in range(count)]
    nodes.append({"op": op, "name": "node", "attrs": attrs, "inputs": [[i, 0, 0] for i in range(count)]})
    graph = {"nodes": nodes, "arg_nodes": list(range(count)), "heads": [[count, j, 0] for j in range(outputs)],
             "attrs": {"mxnet_version": ["int", 10901]}}
    try:
        sym = mx.sym.load_json(json.dumps(graph))
        given = {f"in{i}": mx.nd.array(arrays[f"{case_id}__{i}"], dtype=arrays[f"{case_id}__{i}"].dtype)
                 for i in range(count)}
        aux = {name: given[name] for name in sym.list_auxiliary_states()}
        args = {name: given[name] for name in sym.list_arguments()}
        exe = sym.bind(mx.cpu(), args=args, aux_states=aux, grad_req="null")
        for j, value in enumerate(exe.forward(is_train=False)):
            out[f"{case_id}__out{j}"] = value.asnumpy()
    except mx.base.MXNetError as exc:  # reported by the case's test
        out[f"{case_id}__error"] = np.array(str(exc).strip().splitlines()[-1][:400])
np.savez(sys.argv[3], **out)
"""


def _num_outputs(op, attrs):
    spec = ops.get(op)
    return spec.num_outputs(spec.parse(attrs))


def _reference_only(attrs):
    """MXNet 1.9.1's oneDNN deconvolution fails on target_shape ("could not create a descriptor for a
    dilated deconvolution"): those cases run on MXNet's reference CPU kernels."""
    return "target_shape" in attrs


@pytest.fixture(scope="module")
def mxnet_outputs(mxnet_run, tmp_path_factory):
    """Every case's outputs computed by real MXNet (one subprocess, plus one for reference-kernel cases)."""
    work = tmp_path_factory.mktemp("mxnet_more_ops")
    np.savez(work / "inputs.npz", **{f"{c}__{i}": a for c, _, inputs, _ in CASES for i, a in enumerate(inputs)})
    results = {}
    for kernels in ("default", "reference"):
        chosen = [case for case in CASES if _reference_only(case[3]) == (kernels == "reference")]
        (work / f"{kernels}.json").write_text(json.dumps([[c, op, len(inputs), attrs, _num_outputs(op, attrs)]
                                                          for c, op, inputs, attrs in chosen]))
        mxnet_run(MXNET_SCRIPT, str(work / f"{kernels}.json"), str(work / "inputs.npz"),
                  str(work / f"{kernels}.npz"), kernels)
        with np.load(work / f"{kernels}.npz") as data:
            results.update({key: data[key] for key in data.files})
    return results


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_operator_matches_mxnet(case, mxnet_outputs):
    case_id, op, inputs, attrs = case
    if f"{case_id}__error" in mxnet_outputs:
        pytest.fail(f"MXNet refused the case: {mxnet_outputs[case_id + '__error']}")
    ours = ops.invoke(op, inputs, attrs)
    ours = ours if isinstance(ours, list) else [ours]
    assert len(ours) == _num_outputs(op, attrs)
    for j, mine in enumerate(ours):
        theirs = mxnet_outputs[f"{case_id}__out{j}"]
        assert mine.shape == theirs.shape, (mine.shape, theirs.shape)
        assert mine.dtype == theirs.dtype, (mine.dtype, theirs.dtype)
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op,attrs,reference", [
    ("Activation", {"act_type": "mish"}, lambda t, x: t.nn.functional.mish(x)),
    ("Activation", {"act_type": "log_sigmoid"}, lambda t, x: t.nn.functional.logsigmoid(x)),
    ("LeakyReLU", {"act_type": "gelu_tanh"}, lambda t, x: t.nn.functional.gelu(x, approximate="tanh")),
    ("LeakyReLU", {"act_type": "gelu_erf"}, lambda t, x: t.nn.functional.gelu(x)),
])
def test_mxnet2_only_activations_match_torch(op, attrs, reference):
    """Activations MXNet 1.9.1 does not have (MXNet 2 graphs use them): checked against torch."""
    torch = pytest.importorskip("torch")
    x = _x(4, 50, scale=4)
    expected = reference(torch, torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ops.invoke(op, [x], attrs), expected, rtol=1e-4, atol=1e-6)
