"""Dense, pooling, normalisation, activation and the small structural operators.

Pooling loops over kernel taps, never over pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ...errors import ShapeError, UnsupportedOpError
from . import parallel
from .common import CUDNN, batch_norm_affine, like_input, pair, relu
from .registry import NUM_ARGS, REQUIRED, OpSpec, at_least, between, get, one_of, register


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
            pooling_convention="valid", count_include_pad=True, layout=None, p_value=None):
    if layout not in (None, "NCHW", "NCW", "None"):
        raise UnsupportedOpError(f"Pooling layout {layout} is not supported (only NCHW and NCW)")
    if pooling_convention == "same":
        raise UnsupportedOpError("Pooling convention 'same' is not supported (MXNet 1.9.1 cannot run it either)")
    if pool_type == "lp" and p_value not in (1, 2, 3):
        raise UnsupportedOpError(f"Pooling lp needs p_value 1, 2 or 3 (got {p_value})")
    if data.ndim == 3:  # 1-D pooling: 2-D pooling of height 1
        out = pooling(data[:, :, None], kernel=(1, *kernel[-1:]), pool_type=pool_type, global_pool=global_pool,
                      stride=(1, *stride[-1:]), pad=(0, *pad[-1:]), pooling_convention=pooling_convention,
                      count_include_pad=count_include_pad, p_value=p_value)
        return out[:, :, 0]
    if data.ndim != 4:
        raise UnsupportedOpError(f"only 1-D and 2-D pooling on NCW/NCHW input is supported (input shape {data.shape})")
    if global_pool:
        if pool_type == "lp":
            return _lp_root(np.sum(_lp_power(data, p_value), axis=(2, 3), keepdims=True), p_value)
        n, c, h, w = data.shape
        if pool_type == "avg" and data.dtype.kind == "f" and data.dtype.itemsize >= 4 and h * w \
                and data.flags.c_contiguous:
            # np.mean's sum and division, without its Python layers (the pass's last layers pay for every call)
            total = np.add.reduce(data.reshape(n, c, h * w), axis=2)
            return np.true_divide(total, h * w, out=total).reshape(n, c, 1, 1)
        reduce = {"max": np.max, "avg": np.mean, "sum": np.sum}[pool_type]
        return reduce(data, axis=(2, 3), keepdims=True)
    if not kernel:
        raise UnsupportedOpError("Pooling needs a kernel unless global_pool is set")
    full = pooling_convention == "full"
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel, 1), pair(stride, 1), pair(pad, 0)
    h, w = data.shape[2:]
    ho, wo = _pool_output_size(h, kh, sh, ph, full), _pool_output_size(w, kw, sw, pw, full)
    if ho <= 0 or wo <= 0:
        raise ShapeError(f"Pooling: input {data.shape} is too small for kernel {(kh, kw)}")
    if pool_type == "max":
        lowest = np.finfo(data.dtype).min if data.dtype.kind == "f" else np.iinfo(data.dtype).min
        out = _tap_reduce(data, (kh, kw), (sh, sw), (ph, pw), (ho, wo), np.maximum, lowest)
    elif pool_type == "lp":
        out = _lp_root(_tap_reduce(_lp_power(data, p_value), (kh, kw), (sh, sw), (ph, pw), (ho, wo), np.add, 0),
                       p_value)
    else:
        out = _tap_reduce(data, (kh, kw), (sh, sw), (ph, pw), (ho, wo), np.add, 0)
        if pool_type == "avg":
            out /= _avg_divisor(h, w, (kh, kw), (sh, sw), (ph, pw), (ho, wo), count_include_pad,
                                out.dtype)
    return out


def _lp_power(x, p):
    """x ** p with the sign kept for odd p (MXNet's lp pooling sums x, x^2 or x^3, not |x|^p)."""
    return x if p == 1 else np.square(x) if p == 2 else x * x * x


def _lp_root(x, p):
    return x if p == 1 else np.sqrt(x) if p == 2 else np.cbrt(x)


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
    if not -data.ndim <= axis < data.ndim:
        raise ShapeError(f"BatchNorm: axis {axis} is out of range for {data.ndim}-D input {data.shape}")
    axis = axis % data.ndim
    if not gamma.size == beta.size == moving_mean.size == moving_var.size == data.shape[axis]:
        raise ShapeError(f"BatchNorm: gamma/beta/mean/var of sizes {gamma.size}/{beta.size}/{moving_mean.size}/"
                         f"{moving_var.size} do not fit {data.shape[axis]} channels on axis {axis}")
    shape = [1] * data.ndim
    shape[axis] = data.shape[axis]
    compute = np.promote_types(data.dtype, np.float32)
    scale, shift = batch_norm_affine(gamma, beta, moving_mean, moving_var, eps=eps, fix_gamma=fix_gamma,
                                     compute=compute, dtype=data.dtype)
    out = data * scale.reshape(shape)
    out += shift.reshape(shape)
    if output_mean_var:  # at inference MXNet outputs the moving mean and 1/sqrt(moving var + eps)
        invstd = 1.0 / np.sqrt(moving_var.astype(compute) + compute.type(eps))
        return [out, moving_mean.astype(data.dtype), invstd.astype(data.dtype)]
    return out


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softrelu(x):
    return np.logaddexp(x, 0).astype(x.dtype, copy=False)


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": relu,
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "softrelu": _softrelu,
    "softsign": lambda x: x / (1 + np.abs(x)),
    # MXNet 2 only (its _npx_activation); MXNet 1.9.1 refuses them
    "log_sigmoid": lambda x: -_softrelu(-x),
    "mish": lambda x: x * np.tanh(_softrelu(x)),
}


def activation(data, *, act_type):
    try:
        return ACTIVATIONS[act_type](data)
    except KeyError:
        raise UnsupportedOpError(f"Activation act_type '{act_type}' is not supported; "
                                 f"choose from {', '.join(ACTIVATIONS)}") from None


def softmax(data, length=None, *, axis=-1, temperature=None, dtype=None, use_length=False):
    x = data.astype(np.promote_types(data.dtype, np.float32), copy=False)
    if temperature not in (None, 1.0):
        x = x / x.dtype.type(temperature)
    if use_length and length is not None:
        x = np.where(_length_mask(x, length, axis), x, -np.inf)
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    out = shifted / shifted.sum(axis=axis, keepdims=True)
    if use_length and length is not None:
        out = np.where(_length_mask(x, length, axis), out, 0)
    return out.astype(_out_dtype(data, dtype), copy=False)


def softmin(data, length=None, *, axis=-1, temperature=None, dtype=None, use_length=False):
    return softmax(-data, length, axis=axis, temperature=temperature, dtype=dtype, use_length=use_length)


def log_softmax(data, length=None, *, axis=-1, temperature=None, dtype=None, use_length=False):
    x = data.astype(np.promote_types(data.dtype, np.float32), copy=False)
    if temperature not in (None, 1.0):
        x = x / x.dtype.type(temperature)
    shifted = x - x.max(axis=axis, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return out.astype(_out_dtype(data, dtype), copy=False)


def _out_dtype(data, dtype):
    return data.dtype if dtype in (None, "None") else np.dtype(dtype)


def _length_mask(x, length, axis):
    axis = axis % x.ndim
    positions = np.arange(x.shape[axis]).reshape([-1 if a == axis else 1 for a in range(x.ndim)])
    return positions < np.expand_dims(length, axis)


def softmax_activation(data, *, mode="instance"):
    return softmax(data, axis=1 if mode == "channel" else -1)


def softmax_output(data, label=None, *, multi_output=False, preserve_shape=False, **_):
    """Inference: the softmax of the data (the label only matters for training)."""
    return softmax(data, axis=1 if multi_output else -1)


def _fc_inputs(attrs):
    return ["data", "weight"] if attrs.get("no_bias") else ["data", "weight", "bias"]


def _spatial(*keys: str) -> Callable[[dict], str | None]:
    """Tuple attributes of one spatial rank each: the kernel's (or 1, or empty)."""
    def validate(attrs: dict) -> str | None:
        rank = len(attrs.get("kernel") or ())
        for key in keys:
            value = attrs.get(key) or ()
            if rank and len(value) not in (0, 1, rank):
                return f"attribute {key}={value} does not have {rank} values like kernel={attrs['kernel']}"
        return None
    return validate


def _pool_validate(attrs: dict) -> str | None:
    if not attrs["global_pool"] and not attrs["kernel"]:
        return "attribute 'kernel' is required unless global_pool is set"
    if attrs["pool_type"] == "lp" and attrs["p_value"] not in (1, 2, 3):
        return f"lp pooling needs p_value 1, 2 or 3 (got {attrs['p_value']})"
    return _spatial("stride", "pad")(attrs)


register(OpSpec("FullyConnected", fully_connected,
                {"num_hidden": ("int", REQUIRED, at_least(1)), "no_bias": ("bool", False), "flatten": ("bool", True)},
                inputs=_fc_inputs), "_npx_fully_connected")
register(OpSpec("Pooling", pooling,
                {"kernel": ("tuple", (), at_least(1)),
                 "pool_type": ("str", "max", one_of("max", "avg", "sum", "lp")), "global_pool": ("bool", False),
                 "stride": ("tuple", (), at_least(1)), "pad": ("tuple", (), at_least(0)),
                 "pooling_convention": ("str", "valid", one_of("valid", "full", "same")),
                 "count_include_pad": ("bool", True), "layout": ("str", None), "p_value": ("optint", None)},
                ignored=CUDNN, validate=_pool_validate), "_npx_pooling")
register(OpSpec("BatchNorm", batch_norm,
                {"eps": ("float", 1e-3, at_least(0)), "momentum": ("float", 0.9), "fix_gamma": ("bool", True),
                 "use_global_stats": ("bool", False), "axis": ("int", 1, between(-8, 7)),
                 "output_mean_var": ("bool", False)},
                inputs=lambda attrs: ["data", "gamma", "beta", "moving_mean", "moving_var"],
                aux_inputs=(3, 4), ignored=CUDNN | {"min_calib_range", "max_calib_range"},
                num_outputs=lambda attrs: 3 if attrs["output_mean_var"] else 1),
         "_npx_batch_norm", "BatchNorm_v1")
register(OpSpec("_contrib_SyncBatchNorm",
                lambda data, gamma, beta, mean, var, *, ndev=1, key="", **attrs: batch_norm(data, gamma, beta, mean,
                                                                                           var, **attrs),
                {"eps": ("float", 1e-3, at_least(0)), "momentum": ("float", 0.9), "fix_gamma": ("bool", True),
                 "use_global_stats": ("bool", False), "output_mean_var": ("bool", False),
                 "ndev": ("int", 1, at_least(1)), "key": ("str", "")},
                inputs=lambda attrs: ["data", "gamma", "beta", "moving_mean", "moving_var"], aux_inputs=(3, 4),
                num_outputs=lambda attrs: 3 if attrs["output_mean_var"] else 1),
         "SyncBatchNorm")
register(OpSpec("Activation", activation,
                {"act_type": ("str", REQUIRED)}), "_npx_activation")
for _act in ("relu", "sigmoid", "tanh", "softsign"):
    register(OpSpec(_act, ACTIVATIONS[_act]), f"_npx_{_act}")
register(OpSpec("Dropout", lambda data, **_: data,
                {"p": ("float", 0.5, between(0, 1)), "mode": ("str", "training"), "axes": ("tuple", ())},
                ignored=CUDNN), "_npx_dropout")
register(OpSpec("Flatten", lambda data: data.reshape(data.shape[0], -1)), "flatten", "_npx_batch_flatten")
register(OpSpec("Concat", lambda *data, dim=1, num_args=None: np.concatenate(data, axis=dim),
                {"dim": ("int", 1, between(-32, 31)), "num_args": ("optint", None, NUM_ARGS)},
                inputs=lambda attrs: [f"arg{i}" for i in range(attrs.get("num_args") or 0)],
                variadic=True), "concat")
register(OpSpec("_copy", lambda data: data.copy()), "identity", "_npi_copy", "_np_copy")
_SOFTMAX_ATTRS = {"axis": ("int", -1), "temperature": ("optfloat", None), "dtype": ("str", None),
                  "use_length": ("bool", False)}


def _softmax_inputs(attrs):
    return ["data", "length"] if attrs.get("use_length") else ["data"]


register(OpSpec("softmax", softmax, dict(_SOFTMAX_ATTRS), inputs=_softmax_inputs), "_npx_softmax")
register(OpSpec("softmin", softmin, dict(_SOFTMAX_ATTRS), inputs=_softmax_inputs))
register(OpSpec("log_softmax", log_softmax, dict(_SOFTMAX_ATTRS), inputs=_softmax_inputs), "_npx_log_softmax")
register(OpSpec("SoftmaxActivation", softmax_activation, {"mode": ("str", "instance", one_of("instance", "channel"))}))
register(OpSpec("SoftmaxOutput", softmax_output,
                {"grad_scale": ("float", 1.0), "ignore_label": ("float", -1.0), "multi_output": ("bool", False),
                 "use_ignore": ("bool", False), "preserve_shape": ("bool", False),
                 "normalization": ("str", "null", one_of("null", "batch", "valid")), "out_grad": ("bool", False),
                 "smooth_alpha": ("float", 0.0)},
                inputs=lambda attrs: ["data", "label"], label_inputs=(1,)), "Softmax")

# -- attribute ranges of the convolution (its kernel is registered by conv.py) ------------------
_conv = get("Convolution")
register(replace(_conv, attrs={**_conv.attrs, "kernel": ("tuple", REQUIRED, at_least(1)),
                               "num_filter": ("int", REQUIRED, at_least(1)), "stride": ("tuple", (), at_least(1)),
                               "dilate": ("tuple", (), at_least(1)), "pad": ("tuple", (), at_least(0)),
                               "num_group": ("int", 1, at_least(1))},
                 validate=_spatial("stride", "dilate", "pad")), "_npx_convolution")
