"""Dense, pooling, normalisation, activation and the small structural operators.

Pooling loops over kernel taps, never over pixels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...errors import ShapeError, UnsupportedOpError
from . import parallel
from .common import CUDNN, like_input, pair
from .registry import REQUIRED, OpSpec, register


def fully_connected(data, weight, bias=None, *, num_hidden, no_bias=False, flatten=True):
    if weight.shape[0] != num_hidden:
        raise ShapeError(f"FullyConnected: weight has {weight.shape[0]} rows, num_hidden is {num_hidden}")
    x = data.reshape(data.shape[0], -1) if flatten else data
    if x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"FullyConnected: input has {x.shape[-1]} features, weight expects "
                         f"{weight.shape[1]} (input shape {data.shape})")
    out = parallel.matmul(x, weight.T)
    if not no_bias and bias is not None:
        out += bias
    return like_input(out, data)


def _pool_output_size(size: int, kernel: int, stride: int, pad: int, full: bool) -> int:
    span = size + 2 * pad - kernel
    return (-(-span // stride) if full else span // stride) + 1


def pooling(data, *, kernel=(), pool_type="max", global_pool=False, stride=(), pad=(),
            pooling_convention="valid", count_include_pad=True, layout=None):
    if layout not in (None, "NCHW", "None"):
        raise UnsupportedOpError(f"Pooling layout {layout} is not supported (only NCHW)")
    if pool_type not in ("max", "avg", "sum"):
        raise UnsupportedOpError(f"Pooling pool_type '{pool_type}' is not supported")
    if data.ndim != 4:
        raise UnsupportedOpError(f"only 2-D pooling on NCHW input is supported (input shape {data.shape})")
    if global_pool:
        reduce = {"max": np.max, "avg": np.mean, "sum": np.sum}[pool_type]
        return reduce(data, axis=(2, 3), keepdims=True)
    if pooling_convention not in ("valid", "full"):
        raise UnsupportedOpError(f"Pooling convention '{pooling_convention}' is not supported")
    full = pooling_convention == "full"
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel, 1), pair(stride, 1), pair(pad, 0)
    n, c, h, w = data.shape
    ho, wo = _pool_output_size(h, kh, sh, ph, full), _pool_output_size(w, kw, sw, pw, full)
    if ho <= 0 or wo <= 0:
        raise ShapeError(f"Pooling: input {data.shape} is too small for kernel {(kh, kw)}")
    if pool_type == "max":
        lowest = np.finfo(data.dtype).min if data.dtype.kind == "f" else np.iinfo(data.dtype).min
        out = _tap_reduce(data, (kh, kw), (sh, sw), (ph, pw), (ho, wo), np.maximum, lowest)
    else:
        out = _tap_reduce(data, (kh, kw), (sh, sw), (ph, pw), (ho, wo), np.add, 0)
        if pool_type == "avg":
            out /= _avg_divisor(h, w, (kh, kw), (sh, sw), (ph, pw), (ho, wo), count_include_pad,
                                out.dtype)
    return out


def _tap_reduce(x, kernel, stride, pad, out_size, combine, fill):
    """Combine every kernel tap into the output, each tap only where it falls inside the image.

    Padding (and the extra windows of the 'full' convention) is never materialised: an output
    pixel whose window is all padding keeps ``fill``, as MXNet pads with it.
    """
    out = np.full((*x.shape[:2], *out_size), fill, x.dtype)
    ranges = [[_tap_range(tap, s, p, size, o) for tap in range(k)]
              for k, s, p, size, o in zip(kernel, stride, pad, x.shape[2:], out_size)]
    for (oy0, oy1, iy0), (ox0, ox1, ix0) in ((ry, rx) for ry in ranges[0] for rx in ranges[1]):
        if oy1 <= oy0 or ox1 <= ox0:
            continue
        tap = x[:, :, iy0: iy0 + stride[0] * (oy1 - oy0 - 1) + 1: stride[0],
                ix0: ix0 + stride[1] * (ox1 - ox0 - 1) + 1: stride[1]]
        target = out[:, :, oy0:oy1, ox0:ox1]
        combine(target, tap, out=target)
    return out


def _tap_range(tap: int, stride: int, pad: int, size: int, out: int) -> tuple[int, int, int]:
    """Outputs [first, last) whose window puts kernel tap ``tap`` inside the image; and that input index."""
    first = max(0, -(-(pad - tap) // stride))  # smallest o with o*stride + tap - pad >= 0
    last = min(out, (size - 1 + pad - tap) // stride + 1)  # o*stride + tap - pad <= size - 1
    return first, last, first * stride + tap - pad


def _avg_divisor(h, w, kernel, stride, pad, out_size, count_include_pad, dtype):
    """Per-output window sizes, as MXNet counts them (clipped to the padded or the real image)."""
    sizes = []
    for size, k, s, p, o in zip((h, w), kernel, stride, pad, out_size):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, size + p)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, size)
        sizes.append(np.maximum(end - start, 1))
    return (sizes[0][:, None] * sizes[1][None, :]).astype(dtype)


def batch_norm(data, gamma, beta, moving_mean, moving_var, *, eps=1e-3, momentum=0.9,
               fix_gamma=True, use_global_stats=False, axis=1, output_mean_var=False):
    axis = axis % data.ndim
    shape = [1] * data.ndim
    shape[axis] = data.shape[axis]
    compute = np.promote_types(data.dtype, np.float32)
    scale = 1.0 / np.sqrt(moving_var.astype(compute) + compute.type(eps))
    if not fix_gamma:
        scale = scale * gamma.astype(compute)
    shift = beta.astype(compute) - moving_mean.astype(compute) * scale
    out = data * scale.astype(data.dtype).reshape(shape)
    out += shift.astype(data.dtype).reshape(shape)
    return out


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softrelu(x):
    return np.logaddexp(x, 0).astype(x.dtype, copy=False)


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "softrelu": _softrelu,
    "softsign": lambda x: x / (1 + np.abs(x)),
}


def activation(data, *, act_type):
    try:
        return ACTIVATIONS[act_type](data)
    except KeyError:
        raise UnsupportedOpError(f"Activation act_type '{act_type}' is not supported; "
                                 f"choose from {', '.join(ACTIVATIONS)}") from None


def softmax(data, *, axis=-1, temperature=None):
    x = data if temperature in (None, 1.0) else data / temperature
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def _fc_inputs(attrs):
    return ["data", "weight"] if attrs.get("no_bias") else ["data", "weight", "bias"]


register(OpSpec("FullyConnected", fully_connected,
                {"num_hidden": ("int", REQUIRED), "no_bias": ("bool", False), "flatten": ("bool", True)},
                inputs=_fc_inputs), "_npx_fully_connected")
register(OpSpec("Pooling", pooling,
                {"kernel": ("tuple", ()), "pool_type": ("str", "max"), "global_pool": ("bool", False),
                 "stride": ("tuple", ()), "pad": ("tuple", ()), "pooling_convention": ("str", "valid"),
                 "count_include_pad": ("bool", True), "layout": ("str", None)},
                ignored=CUDNN | {"p_value"}), "_npx_pooling")
register(OpSpec("BatchNorm", batch_norm,
                {"eps": ("float", 1e-3), "momentum": ("float", 0.9), "fix_gamma": ("bool", True),
                 "use_global_stats": ("bool", False), "axis": ("int", 1),
                 "output_mean_var": ("bool", False)},
                inputs=lambda attrs: ["data", "gamma", "beta", "moving_mean", "moving_var"],
                aux_inputs=(3, 4), ignored=CUDNN | {"min_calib_range", "max_calib_range"}),
         "_npx_batch_norm")
register(OpSpec("Activation", activation, {"act_type": ("str", REQUIRED)}), "_npx_activation")
for _act in ("relu", "sigmoid", "tanh", "softsign"):
    register(OpSpec(_act, ACTIVATIONS[_act]), f"_npx_{_act}")
register(OpSpec("Dropout", lambda data, **_: data,
                {"p": ("float", 0.5), "mode": ("str", "training"), "axes": ("tuple", ())},
                ignored=CUDNN), "_npx_dropout")
register(OpSpec("Flatten", lambda data: data.reshape(data.shape[0], -1)), "flatten", "_npx_batch_flatten")
register(OpSpec("Concat", lambda *data, dim=1, num_args=None: np.concatenate(data, axis=dim),
                {"dim": ("int", 1), "num_args": ("optint", None)},
                inputs=lambda attrs: [f"arg{i}" for i in range(attrs.get("num_args") or 0)],
                variadic=True), "concat", "_npi_concatenate")
register(OpSpec("elemwise_add", lambda lhs, rhs: lhs + rhs,
                inputs=lambda attrs: ["lhs", "rhs"]), "_plus", "_Plus", "broadcast_add", "_npi_add")
register(OpSpec("elemwise_mul", lambda lhs, rhs: lhs * rhs,
                inputs=lambda attrs: ["lhs", "rhs"]), "_mul", "_Mul", "broadcast_mul", "_npi_multiply")
register(OpSpec("_copy", lambda data: data.copy()), "identity")
register(OpSpec("softmax", softmax, {"axis": ("int", -1), "temperature": ("optfloat", None)}))
register(OpSpec("clip", lambda data, a_min, a_max: np.clip(data, a_min, a_max),
                {"a_min": ("float", REQUIRED), "a_max": ("float", REQUIRED)}))
