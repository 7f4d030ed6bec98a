"""Converters: convolution, pooling, dense and normalisation layers."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    pass

from .builder import _Ctx, converts

# -- converters: structure ----------------------------------------------------------------------

def _nd(value: tuple[int, ...], default: int, n: int) -> list[int]:
    if not value:
        return [default] * n
    if len(value) == 1:
        return list(value) * n
    return list(value)


@converts("Convolution")
def _convolution(c: _Ctx) -> str:
    a = c.attrs
    if a.get("layout") not in (None, "None", "NCHW", "NCW", "NCDHW"):
        raise c.unsupported(f"layout {a['layout']}")
    n = len(a["kernel"])
    return c.add("Conv", c.inputs, kernel_shape=list(a["kernel"]), strides=_nd(a.get("stride", ()), 1, n),
                 dilations=_nd(a.get("dilate", ()), 1, n), pads=_nd(a.get("pad", ()), 0, n) * 2,
                 group=a.get("num_group", 1))


@converts("Deconvolution")
def _deconvolution(c: _Ctx) -> str:
    a = c.attrs
    if a.get("layout") not in (None, "None", "NCHW", "NCW", "NCDHW"):
        raise c.unsupported(f"layout {a['layout']}")
    kernel = list(a["kernel"])
    n = len(kernel)
    stride, dilate = _nd(a.get("stride", ()), 1, n), _nd(a.get("dilate", ()), 1, n)
    pad, adj = _nd(a.get("pad", ()), 0, n), _nd(a.get("adj", ()), 0, n)
    target = tuple(a.get("target_shape") or ())
    if target and any(target):
        pad, adj = [], []
        for i in range(n):
            total = stride[i] * (c.shapes[0][2 + i] - 1) + dilate[i] * (kernel[i] - 1) + 1 - target[i]
            pad.append((total + 1) // 2)
            adj.append(total % 2)
    inputs = c.inputs[:2] if a.get("no_bias", True) else c.inputs
    return c.add("ConvTranspose", inputs, kernel_shape=kernel, strides=stride, dilations=dilate, pads=pad * 2,
                 output_padding=adj if any(adj) else None, group=a.get("num_group", 1))


@converts("FullyConnected")
def _fully_connected(c: _Ctx) -> str:
    a = c.attrs
    data, weight = c.inputs[0], c.inputs[1]
    bias = None if a.get("no_bias") else c.inputs[2]
    rank = len(c.shapes[0])
    if a.get("flatten", True) and rank != 2:
        data = c.add("Flatten", [data], "/flatten", axis=1)
        rank = 2
    if rank == 2:
        return c.add("Gemm", [data, weight] + ([bias] if bias else []), transB=1)
    out = c.add("MatMul", [data, c.add("Transpose", [weight], "/weight_t", perm=[1, 0])], "/matmul")
    return c.add("Add", [out, bias]) if bias else out


@converts("Pooling")
def _pooling(c: _Ctx) -> str:
    a = c.attrs
    if a.get("layout") not in (None, "None", "NCHW", "NCW", "NCDHW"):
        raise c.unsupported(f"layout {a['layout']}")
    kind = a.get("pool_type", "max")
    spatial = len(c.shapes[0]) - 2
    if a.get("global_pool"):
        if kind == "max":
            return c.add("GlobalMaxPool", c.inputs)
        if kind == "avg":
            return c.add("GlobalAveragePool", c.inputs)
        if kind == "sum":
            return c.add("ReduceSum", [c.inputs[0], c.ints(range(2, 2 + spatial), "axes")], keepdims=1)
        if kind == "lp":
            powered = _lp_power(c)
            total = c.add("ReduceSum", [powered, c.ints(range(2, 2 + spatial), "axes")], "/lp_sum", keepdims=1)
            return _lp_root(c, total)
        raise c.unsupported(f"pool_type {kind}")
    kernel = _nd(a.get("kernel", ()), 1, spatial)
    stride = _nd(a.get("stride", ()), 1, spatial)
    pad = _nd(a.get("pad", ()), 0, spatial)
    convention = a.get("pooling_convention", "valid")
    if convention not in ("valid", "full"):
        raise c.unsupported(f"pooling_convention {convention}")
    ceil = 1 if convention == "full" else 0
    common: dict[str, Any] = {"kernel_shape": kernel, "strides": stride, "pads": pad * 2, "ceil_mode": ceil}
    if kind == "max":
        return c.add("MaxPool", c.inputs, **common)
    if kind == "avg":
        return c.add("AveragePool", c.inputs, count_include_pad=1 if a.get("count_include_pad", True) else 0,
                     **common)
    if kind in ("sum", "lp"):
        # zeros add nothing to a sum: pad explicitly so every window (the 'full' convention's last
        # ones included) lies inside, then a plain average times the window size is the sum
        source = c.inputs[0] if kind == "sum" else _lp_power(c)
        ends = [max(0, (o - 1) * s + k - (size + p)) for o, s, k, size, p
                in zip(c.out_shapes[0][2:], stride, kernel, c.shapes[0][2:], pad)]
        if any(pad) or any(ends):
            source = c.add("Pad", [source, c.ints([0, 0, *pad, 0, 0, *ends], "pads")], "/padded")
        avg = c.add("AveragePool", [source], "/avg", kernel_shape=kernel, strides=stride)
        total = c.add("Mul", [avg, c.scalar(float(math.prod(kernel)), "window")], "" if kind == "sum" else "/lp_sum")
        return total if kind == "sum" else _lp_root(c, total)
    raise c.unsupported(f"pool_type {kind}")


def _lp_power(c: _Ctx) -> str:
    """MXNet's lp pooling is (sum of x**p) ** (1/p), signs kept (no absolute value, unlike ONNX LpPool)."""
    p = int(c.attrs.get("p_value") or 2)
    x = c.inputs[0]
    if p == 1:
        return x
    return c.add("Pow", [x, c.scalar(float(p), "p")], "/lp_pow")


def _lp_root(c: _Ctx, total: str) -> str:
    p = int(c.attrs.get("p_value") or 2)
    if p == 1:
        return c.add("Identity", [total])
    if p == 2:
        return c.add("Sqrt", [total])
    magnitude = c.add("Pow", [c.add("Abs", [total], "/lp_abs"), c.scalar(1.0 / p, "inv_p")], "/lp_root")
    return c.add("Mul", [c.add("Sign", [total], "/lp_sign"), magnitude]) if p % 2 else magnitude


@converts("_contrib_AdaptiveAvgPooling2D")
def _adaptive_avg_pool(c: _Ctx) -> str:
    h, w = c.shapes[0][2:]
    oh, ow = c.out_shapes[0][2:]
    if oh == ow == 1:
        return c.add("GlobalAveragePool", c.inputs)
    if h % oh == 0 and w % ow == 0:
        return c.add("AveragePool", c.inputs, kernel_shape=[h // oh, w // ow], strides=[h // oh, w // ow])

    def averaging(size: int, out: int) -> np.ndarray:
        matrix = np.zeros((out, size), np.float64)
        for i in range(out):
            start, end = (i * size) // out, -(-((i + 1) * size) // out)
            matrix[i, start:end] = 1.0 / (end - start)
        return matrix.astype(c.dtypes[0])
    rows = c.add("MatMul", [c.inputs[0], c.const(averaging(w, ow).T, "cols")], "/cols")
    return c.add("MatMul", [c.const(averaging(h, oh), "rows"), rows])


@converts("BatchNorm", "_contrib_SyncBatchNorm")
def _batch_norm(c: _Ctx) -> str | list[str]:
    a = c.attrs
    data, gamma, beta, mean, var = c.inputs
    if a.get("output_mean_var"):  # inference: the moving mean and 1/sqrt(moving var + eps) come out too
        stats = dict(a, output_mean_var=False)
        out = _batch_norm(_Ctx(c.b, c.node, stats, c.inputs, c.shapes, c.dtypes, c.out_shapes[:1], c.out_dtypes[:1],
                               c.out_values[:1], c.variables, c.exporter, c.index, c.overrides, c.uses))
        eps_stats = c.scalar(float(a.get("eps", 1e-3)), "eps_stats", like=4)
        invstd = c.add("Reciprocal", [c.add("Sqrt", [c.add("Add", [var, eps_stats], "/var_eps_s")], "/std_s")], ":2")
        return [out if isinstance(out, str) else out[0], c.add("Identity", [mean], ":1"), invstd]
    if a.get("fix_gamma", True):
        ones = np.ones(c.shapes[1], c.dtypes[1])
        variable = c.variables[1]
        if variable is not None and c.uses.get(variable) == 1:
            c.overrides[variable] = ones  # MXNet ignores a fixed gamma: the model holds ones
        else:
            gamma = c.const(ones, "gamma_fixed")
    axis = a.get("axis", 1) % len(c.shapes[0])
    eps = float(a.get("eps", 1e-3))
    if axis == 1:
        return c.add("BatchNormalization", [data, gamma, beta, mean, var], epsilon=eps)
    shape = [1] * len(c.shapes[0])
    shape[axis] = -1
    target = c.ints(shape, "bshape")
    std = c.add("Sqrt", [c.add("Add", [var, c.scalar(eps, "eps", 4)], "/var_eps")], "/std")
    scale = c.add("Div", [gamma, std], "/scale")
    shift = c.add("Sub", [beta, c.add("Mul", [mean, scale], "/mean_scale")], "/shift")
    out = c.add("Mul", [data, c.add("Reshape", [scale, target], "/scale_b")], "/scaled")
    return c.add("Add", [out, c.add("Reshape", [shift, target], "/shift_b")])


@converts("InstanceNorm")
def _instance_norm(c: _Ctx) -> str:
    return c.add("InstanceNormalization", c.inputs, epsilon=float(c.attrs.get("eps", 1e-3)))


def _normalize(c: _Ctx, data: str, axes: list[int], eps: float, tag: str) -> str:
    axes_name = c.ints(axes, f"{tag}_axes")
    mean = c.add("ReduceMean", [data, axes_name], f"/{tag}_mean", keepdims=1)
    centred = c.add("Sub", [data, mean], f"/{tag}_centred")
    var = c.add("ReduceMean", [c.add("Mul", [centred, centred], f"/{tag}_sq"), axes_name], f"/{tag}_var", keepdims=1)
    std = c.add("Sqrt", [c.add("Add", [var, c.scalar(eps, f"{tag}_eps")], f"/{tag}_var_eps")], f"/{tag}_std")
    return c.add("Div", [centred, std], f"/{tag}_normed")


@converts("LayerNorm")
def _layer_norm(c: _Ctx) -> str | list[str]:
    a = c.attrs
    rank = len(c.shapes[0])
    axis = a.get("axis", -1) % rank
    eps = float(a.get("eps", 1e-5))
    if a.get("output_mean_var"):
        return _layer_norm_with_stats(c, axis, eps)
    if axis == rank - 1:
        return c.add("LayerNormalization", c.inputs, axis=-1, epsilon=eps)
    normed = _normalize(c, c.inputs[0], [axis], eps, "ln")
    shape = [1] * rank
    shape[axis] = -1
    target = c.ints(shape, "bshape")
    scaled = c.add("Mul", [normed, c.add("Reshape", [c.inputs[1], target], "/gamma_b")], "/scaled")
    return c.add("Add", [scaled, c.add("Reshape", [c.inputs[2], target], "/beta_b")])


def _layer_norm_with_stats(c: _Ctx, axis: int, eps: float) -> list[str]:
    """LayerNorm's three outputs: the result, the mean and the standard deviation (kept dims)."""
    x = c.inputs[0]
    axes = c.ints([axis], "axes")
    mean = c.add("ReduceMean", [x, axes], "/mean", keepdims=1)
    centred = c.add("Sub", [x, mean], "/centred")
    var = c.add("ReduceMean", [c.add("Mul", [centred, centred], "/sq"), axes], "/var", keepdims=1)
    std = c.add("Sqrt", [c.add("Add", [var, c.scalar(eps, "eps")], "/var_eps")], "/std")
    shape = [1] * len(c.shapes[0])
    shape[axis] = -1
    target = c.ints(shape, "bshape")
    scaled = c.add("Mul", [c.add("Div", [centred, std], "/normed"), c.add("Reshape", [c.inputs[1], target], "/g")],
                   "/scaled")
    out = c.add("Add", [scaled, c.add("Reshape", [c.inputs[2], target], "/b")])
    return [out, *(c.add("Reshape", [v, c.ints(list(c.out_shapes[k]), f"shape{k}")], f":{k}")
                   for k, v in ((1, mean), (2, std)))]


@converts("GroupNorm")
def _group_norm(c: _Ctx) -> str:
    a = c.attrs
    groups = int(a.get("num_groups", 1))
    shape = c.shapes[0]
    grouped = c.add("Reshape", [c.inputs[0], c.ints([0, groups, -1], "gshape")], "/grouped")
    normed = _normalize(c, grouped, [2], float(a.get("eps", 1e-5)), "gn")
    back = c.add("Reshape", [normed, c.add("Shape", [c.inputs[0]], "/shape")], "/ungrouped")
    channels = shape[1]
    bshape = [1] * len(shape)
    bshape[1] = -1
    gamma, beta = c.inputs[1], c.inputs[2]
    if c.shapes[1][0] != channels:  # MXNet 1.x: one gamma per group
        gamma = c.add("Reshape", [c.add("Expand", [c.add("Unsqueeze", [gamma, c.ints([1], "ax1")], "/g_u"),
                                                   c.ints([groups, channels // groups], "gexp")], "/g_e"),
                                  c.ints([-1], "flat")], "/g_flat")
        beta = c.add("Reshape", [c.add("Expand", [c.add("Unsqueeze", [beta, c.ints([1], "bx1")], "/b_u"),
                                                  c.ints([groups, channels // groups], "bexp")], "/b_e"),
                                 c.ints([-1], "bflat")], "/b_flat")
    target = c.ints(bshape, "bshape")
    scaled = c.add("Mul", [back, c.add("Reshape", [gamma, target], "/gamma_b")], "/scaled")
    return c.add("Add", [scaled, c.add("Reshape", [beta, target], "/beta_b")])


@converts("L2Normalization")
def _l2_normalization(c: _Ctx) -> str:
    a = c.attrs
    rank = len(c.shapes[0])
    mode = a.get("mode", "instance")
    axes = {"instance": list(range(1, rank)), "channel": [1], "spatial": list(range(2, rank))}.get(mode)
    if axes is None:
        raise c.unsupported(f"mode {mode}")
    x = c.inputs[0]
    total = c.add("ReduceSum", [c.add("Mul", [x, x], "/sq"), c.ints(axes, "axes")], "/sum", keepdims=1)
    norm = c.add("Sqrt", [c.add("Add", [total, c.scalar(float(a.get("eps", 1e-10)), "eps")], "/sum_eps")], "/norm")
    return c.add("Div", [x, norm])
