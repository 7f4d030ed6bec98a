"""The operator registry: one numpy kernel per MXNet operator name.

Layers, traced graphs and imported ``-symbol.json`` graphs all run through :func:`invoke`,
so an eager forward pass, an exported graph and a real MXNet export execute the very same
kernels. Each operator declares its attributes with a type, so string attributes from a
graph file (``"(3, 3)"``, ``"True"``) parse to the same values a layer passes directly, and
the writer turns them back into MXNet's spelling.

Convolution lowers to BLAS matrix products over im2col blocks built from a strided view, a
few images (or output rows) at a time so each block is still in cache when BLAS reads it; a
depthwise convolution is a short loop over kernel taps; pooling loops over kernel taps, never
over pixels. For inference, a convolution followed by BatchNorm (and ReLU) can run as one folded
convolution (:func:`convolution_batch_norm`): graph execution does so for every such pair, eager
passes for those inside Sequential containers (core/nn/fusion.py); folding changes float32
rounding only (relative differences around 1e-6).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .errors import ModelSurgeonError, ShapeError, UnsupportedOpError

# -- attribute types ------------------------------------------------------------------------


def _parse_tuple(value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        text = value.strip()
        if text in ("", "None", "()", "[]"):
            return ()
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            raise ModelSurgeonError(f"cannot read {value!r} as a tuple of integers") from exc
    if isinstance(value, (int, np.integer)):
        return (int(value),)
    try:
        return tuple(int(v) for v in value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ModelSurgeonError(f"cannot read {value!r} as a tuple of integers") from exc


def _parse_bool(value: Any) -> bool:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise ModelSurgeonError(f"cannot read {value!r} as a boolean")
    return bool(value)


def _parse_optional_int(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and value.strip() == "None"):
        return None
    return int(value)


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "int": lambda v: int(v),
    "float": lambda v: float(v),
    "bool": _parse_bool,
    "str": lambda v: str(v),
    "tuple": _parse_tuple,
    "optint": _parse_optional_int,
    "optfloat": lambda v: None if v is None or str(v).strip() == "None" else float(v),
}


def _format_attr(value: Any) -> str:
    """MXNet's spelling: ``(3, 3)``, ``True``, ``64``, ``1e-05``."""
    if isinstance(value, tuple):
        return "(" + ", ".join(str(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value)


@dataclass(frozen=True)
class OpSpec:
    """One operator: its MXNet name, inputs, typed attributes and numpy kernel."""

    name: str
    kernel: Callable[..., np.ndarray]
    attrs: dict[str, tuple[str, Any]] = field(default_factory=dict)  # name -> (type, default)
    inputs: Callable[[dict[str, Any]], list[str]] = lambda attrs: ["data"]
    aux_inputs: tuple[int, ...] = ()
    ignored: frozenset[str] = frozenset()  # attributes with no effect on inference results
    variadic: bool = False

    def parse(self, raw: dict[str, Any], node: str = "") -> dict[str, Any]:
        """Typed attributes from ``raw`` (strings or values), defaults filled in."""
        parsed: dict[str, Any] = {}
        for key, value in raw.items():
            if key.startswith("__") or key in self.ignored:
                continue
            if key not in self.attrs:
                where = f" in node '{node}'" if node else ""
                raise UnsupportedOpError(f"operator {self.name}{where}: unsupported attribute "
                                         f"{key}={value!r}")
            kind = self.attrs[key][0]
            try:
                parsed[key] = _PARSERS[kind](value)
            except (TypeError, ValueError, OverflowError, ModelSurgeonError) as exc:
                raise ModelSurgeonError(f"operator {self.name}: bad value {value!r} for {key} ({exc})") from None
        for key, (kind, default) in self.attrs.items():
            if key not in parsed:
                if default is _REQUIRED:
                    raise ModelSurgeonError(f"operator {self.name}: attribute '{key}' is required")
                parsed[key] = default
        return parsed

    def format(self, attrs: dict[str, Any], explicit: Sequence[str]) -> dict[str, str]:
        """String attributes for a graph file: the explicitly given ones, in MXNet's spelling."""
        return {key: _format_attr(attrs[key]) for key in sorted(explicit) if key in attrs}


_REQUIRED = object()
_REGISTRY: dict[str, OpSpec] = {}


def register(spec: OpSpec, *aliases: str) -> OpSpec:
    for name in (spec.name, *aliases):
        _REGISTRY[name] = spec
    return spec


def get(name: str, node: str = "") -> OpSpec:
    """The spec of operator ``name``; a clear error naming it when unsupported."""
    try:
        return _REGISTRY[name]
    except KeyError:
        where = f" (node '{node}')" if node else ""
        raise UnsupportedOpError(
            f"unsupported operator '{name}'{where}; supported: {', '.join(sorted(_REGISTRY))}") from None


def supported_spec(name: str) -> OpSpec | None:
    """The spec of operator ``name``, or None when it is not supported."""
    return _REGISTRY.get(name)


def supported() -> list[str]:
    return sorted(_REGISTRY)


def invoke(name: str, inputs: Sequence[Any], attrs: dict[str, Any] | None = None,
           hint: str | None = None) -> Any:
    """Run operator ``name`` on numpy inputs, or record it when any input is a traced Symbol."""
    from . import symbol  # the tracer imports this module; import late to avoid a cycle

    spec = get(name)
    given = dict(attrs or {})
    parsed = spec.parse(given)
    if any(isinstance(x, symbol.Symbol) for x in inputs):
        return symbol.record(spec, list(inputs), parsed, given, hint)
    try:
        return spec.kernel(*inputs, **parsed)
    except ModelSurgeonError:
        raise
    except (ValueError, TypeError, IndexError) as exc:
        raise ShapeError(f"operator {spec.name} cannot run on inputs of shapes "
                         f"{[getattr(x, 'shape', None) for x in inputs]}: {exc}") from None


# -- kernels --------------------------------------------------------------------------------


def _pair(value: tuple[int, ...], default: int, n: int = 2) -> tuple[int, ...]:
    if not value:
        return (default,) * n
    if len(value) == 1:
        return value * n
    return value


def _pad_spatial(x: np.ndarray, pads: Sequence[tuple[int, int]], value: float = 0.0) -> np.ndarray:
    if not any(before or after for before, after in pads):
        return x
    return np.pad(x, [(0, 0), (0, 0), *pads], mode="constant", constant_values=value)


def fully_connected(data, weight, bias=None, *, num_hidden, no_bias=False, flatten=True):
    if weight.shape[0] != num_hidden:
        raise ShapeError(f"FullyConnected: weight has {weight.shape[0]} rows, num_hidden is {num_hidden}")
    x = data.reshape(data.shape[0], -1) if flatten else data
    if x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"FullyConnected: input has {x.shape[-1]} features, weight expects "
                         f"{weight.shape[1]} (input shape {data.shape})")
    out = x @ weight.T
    if not no_bias and bias is not None:
        out += bias
    return _like_input(out, data)


def _like_input(out: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Floating inputs keep their dtype (float16 data with float32 weights gives float16)."""
    if data.dtype.kind == "f" and out.dtype != data.dtype:
        return out.astype(data.dtype)
    return out


def _conv_output_size(size: int, kernel: int, stride: int, pad: int, dilate: int) -> int:
    return (size + 2 * pad - dilate * (kernel - 1) - 1) // stride + 1


def convolution(data, weight, bias=None, *, kernel, num_filter, stride=(), dilate=(), pad=(),
                num_group=1, no_bias=False, layout=None):
    if layout not in (None, "NCHW", "None"):
        raise UnsupportedOpError(f"Convolution layout {layout} is not supported (only NCHW)")
    if data.ndim != 4 or len(kernel) != 2:
        raise UnsupportedOpError(f"only 2-D convolution on NCHW input is supported "
                                 f"(input shape {data.shape}, kernel {kernel})")
    (kh, kw), (sh, sw) = kernel, _pair(stride, 1)
    (dh, dw), (ph, pw) = _pair(dilate, 1), _pair(pad, 0)
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
        out = _depthwise(_pad_spatial(data, [(ph, ph), (pw, pw)]), weight, ho, wo, (sh, sw), (dh, dw))
    elif kh == kw == 1 and sh == sw == 1 and ph == pw == 0:
        cols = data.reshape(n, num_group, cg, ho * wo)
        out = np.matmul(weight.reshape(num_group, fg, cg), cols).reshape(n, num_filter, ho, wo)
    else:
        out = _conv_gemm(data, weight, num_group, (kh, kw), (sh, sw), (dh, dw), (ph, pw), (ho, wo))
    if not no_bias and bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return _like_input(out, data)


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
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel, 1), _pair(stride, 1), _pair(pad, 0)
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


_CUDNN = frozenset({"workspace", "cudnn_tune", "cudnn_off"})

register(OpSpec("FullyConnected", fully_connected,
                {"num_hidden": ("int", _REQUIRED), "no_bias": ("bool", False), "flatten": ("bool", True)},
                inputs=_fc_inputs), "_npx_fully_connected")
register(OpSpec("Convolution", convolution,
                {"kernel": ("tuple", _REQUIRED), "num_filter": ("int", _REQUIRED),
                 "stride": ("tuple", ()), "dilate": ("tuple", ()), "pad": ("tuple", ()),
                 "num_group": ("int", 1), "no_bias": ("bool", False), "layout": ("str", None)},
                inputs=_fc_inputs, ignored=_CUDNN), "_npx_convolution")
register(OpSpec("Pooling", pooling,
                {"kernel": ("tuple", ()), "pool_type": ("str", "max"), "global_pool": ("bool", False),
                 "stride": ("tuple", ()), "pad": ("tuple", ()), "pooling_convention": ("str", "valid"),
                 "count_include_pad": ("bool", True), "layout": ("str", None)},
                ignored=_CUDNN | {"p_value"}), "_npx_pooling")
register(OpSpec("BatchNorm", batch_norm,
                {"eps": ("float", 1e-3), "momentum": ("float", 0.9), "fix_gamma": ("bool", True),
                 "use_global_stats": ("bool", False), "axis": ("int", 1),
                 "output_mean_var": ("bool", False)},
                inputs=lambda attrs: ["data", "gamma", "beta", "moving_mean", "moving_var"],
                aux_inputs=(3, 4), ignored=_CUDNN | {"min_calib_range", "max_calib_range"}),
         "_npx_batch_norm")
register(OpSpec("Activation", activation, {"act_type": ("str", _REQUIRED)}), "_npx_activation")
for _act in ("relu", "sigmoid", "tanh", "softsign"):
    register(OpSpec(_act, ACTIVATIONS[_act]), f"_npx_{_act}")
register(OpSpec("Dropout", lambda data, **_: data,
                {"p": ("float", 0.5), "mode": ("str", "training"), "axes": ("tuple", ())},
                ignored=_CUDNN), "_npx_dropout")
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
                {"a_min": ("float", _REQUIRED), "a_max": ("float", _REQUIRED)}))


def conv_output_shape(shape, kernel, stride, pad, dilate, num_filter):
    """Output shape of a 2-D convolution (used by layers to report shapes)."""
    n, _, h, w = shape
    return (n, num_filter, _conv_output_size(h, kernel[0], stride[0], pad[0], dilate[0]),
            _conv_output_size(w, kernel[1], stride[1], pad[1], dilate[1]))

