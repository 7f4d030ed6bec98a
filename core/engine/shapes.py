"""Output shapes without running kernels, and the memory a forward pass needs before it runs.

A 40 KB checkpoint can declare an input of ``[2000, 3, 224, 224]`` or a convolution padded by 4000:
running it allocates gigabytes. Two things keep the work bounded by what was asked for:

* **Shapes only.** Every registered operator has a shape function here (the same checks as its
  kernel: channels, groups, weight shapes, windows that fit). :func:`shape_only` gives an
  operator's result as a zero-stride ``np.broadcast_to`` view of the right shape and dtype, which
  costs one element however large the shape; tracing in this mode (``tracing(shapes_only=True)``)
  and :func:`graph_shapes` draw a model's data flow without computing any of it. An operator with
  no shape function (none today) falls back to its kernel on zero-stride inputs.
* **A memory budget.** :func:`check_forward` traces the model shapes-only and walks the graph in
  execution order, holding every
  output until its last consumer ran, as :meth:`Graph.execute` does, to find the peak of live
  activations (plus the input); it refuses a forward pass whose peak exceeds the budget
  (``max_memory``; default :func:`default_budget`, half the machine's memory) with a
  :class:`~modelsurgeon.core.errors.ResourceLimitError` naming the layer where it is exceeded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import ShapeError, UnsupportedOpError
from . import ops
from .ops.common import pair
from .ops.conv import _conv_output_size
from .ops.nn import ACTIVATIONS, _pool_output_size

Shape = tuple[int, ...]
#: Fraction of physical memory a forward pass may use by default.
DEFAULT_FRACTION = 0.5


def _same(shapes: Sequence[Shape], attrs: dict[str, Any]) -> Shape:
    return shapes[0]


def _activation(shapes: Sequence[Shape], attrs: dict[str, Any]) -> Shape:
    if attrs["act_type"] not in ACTIVATIONS:
        raise UnsupportedOpError(f"Activation act_type '{attrs['act_type']}' is not supported; "
                                 f"choose from {', '.join(ACTIVATIONS)}")
    return shapes[0]


def _convolution(shapes: Sequence[Shape], attrs: dict[str, Any]) -> Shape:
    data, weight = shapes[0], shapes[1]
    kernel, filters, groups = attrs["kernel"], attrs["num_filter"], attrs["num_group"]
    if attrs["layout"] not in (None, "NCHW", "None"):
        raise UnsupportedOpError(f"Convolution layout {attrs['layout']} is not supported (only NCHW)")
    if len(data) != 4 or len(kernel) != 2:
        raise UnsupportedOpError(f"only 2-D convolution on NCHW input is supported "
                                 f"(input shape {data}, kernel {kernel})")
    (kh, kw), (sh, sw) = kernel, pair(attrs["stride"], 1)
    (dh, dw), (ph, pw) = pair(attrs["dilate"], 1), pair(attrs["pad"], 0)
    n, c, h, w = data
    if groups <= 0 or c % groups or filters % groups:
        raise ShapeError(f"Convolution: {c} input channels and {filters} filters are not divisible into "
                         f"{groups} groups")
    if tuple(weight) != (filters, c // groups, kh, kw):
        raise ShapeError(f"Convolution: weight shape {tuple(weight)} does not fit input {data} "
                         f"(expected {(filters, c // groups, kh, kw)})")
    if min(sh, sw, dh, dw) <= 0:
        raise ShapeError(f"Convolution: stride {(sh, sw)} and dilation {(dh, dw)} must be positive")
    ho, wo = _conv_output_size(h, kh, sh, ph, dh), _conv_output_size(w, kw, sw, pw, dw)
    if ho <= 0 or wo <= 0:
        raise ShapeError(f"Convolution: input {data} is too small for kernel {kernel}")
    return (n, filters, ho, wo)


def _pooling(shapes: Sequence[Shape], attrs: dict[str, Any]) -> Shape:
    data = shapes[0]
    if attrs["layout"] not in (None, "NCHW", "None"):
        raise UnsupportedOpError(f"Pooling layout {attrs['layout']} is not supported (only NCHW)")
    if attrs["pool_type"] not in ("max", "avg", "sum"):
        raise UnsupportedOpError(f"Pooling pool_type '{attrs['pool_type']}' is not supported")
    if len(data) != 4:
        raise UnsupportedOpError(f"only 2-D pooling on NCHW input is supported (input shape {data})")
    if attrs["global_pool"]:
        return (*data[:2], 1, 1)
    if attrs["pooling_convention"] not in ("valid", "full"):
        raise UnsupportedOpError(f"Pooling convention '{attrs['pooling_convention']}' is not supported")
    (kh, kw), (sh, sw), (ph, pw) = pair(attrs["kernel"], 1), pair(attrs["stride"], 1), pair(attrs["pad"], 0)
    if min(sh, sw) <= 0:
        raise ShapeError(f"Pooling: stride {(sh, sw)} must be positive")
    full = attrs["pooling_convention"] == "full"
    ho, wo = _pool_output_size(data[2], kh, sh, ph, full), _pool_output_size(data[3], kw, sw, pw, full)
    if ho <= 0 or wo <= 0:
        raise ShapeError(f"Pooling: input {data} is too small for kernel {(kh, kw)}")
    return (*data[:2], ho, wo)


def _fully_connected(shapes: Sequence[Shape], attrs: dict[str, Any]) -> Shape:
    data, weight = shapes[0], shapes[1]
    if not data or len(weight) != 2 or weight[0] != attrs["num_hidden"]:
        raise ShapeError(f"FullyConnected: weight {tuple(weight)} does not fit num_hidden {attrs['num_hidden']}")
    features = math.prod(data[1:]) if attrs["flatten"] else data[-1]
    if features != weight[1]:
        raise ShapeError(f"FullyConnected: input has {features} features, weight expects {weight[1]} "
                         f"(input shape {data})")
    return (data[0], attrs["num_hidden"]) if attrs["flatten"] else (*data[:-1], attrs["num_hidden"])


def _batch_norm(shapes: Sequence[Shape], attrs: dict[str, Any]) -> Shape:
    data = shapes[0]
    if not -len(data) <= attrs["axis"] < len(data):
        raise ShapeError(f"BatchNorm: axis {attrs['axis']} is outside input {data}")
    channels = data[attrs["axis"] % len(data)]
    if any(math.prod(s) != channels for s in shapes[1:]):
        raise ShapeError(f"BatchNorm: parameters {[tuple(s) for s in shapes[1:]]} do not fit {channels} channels")
    return data


def _flatten(shapes: Sequence[Shape], attrs: dict[str, Any]) -> Shape:
    data = shapes[0]
    if not data:
        raise ShapeError("Flatten: a scalar has no batch axis")
    return (data[0], math.prod(data[1:]))


def _concat(shapes: Sequence[Shape], attrs: dict[str, Any]) -> Shape:
    first, dim = shapes[0], attrs["dim"]
    if not -len(first) <= dim < len(first):
        raise ShapeError(f"Concat: dim {dim} is outside input {first}")
    axis = dim % len(first)
    for other in shapes[1:]:
        if len(other) != len(first) or any(a != b for i, (a, b) in enumerate(zip(first, other)) if i != axis):
            raise ShapeError(f"Concat: inputs {[tuple(s) for s in shapes]} differ outside dim {dim}")
    return (*first[:axis], sum(s[axis] for s in shapes), *first[axis + 1:])


def _broadcast(shapes: Sequence[Shape], attrs: dict[str, Any]) -> Shape:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(f"cannot broadcast shapes {[tuple(s) for s in shapes]}") from None


def _softmax(shapes: Sequence[Shape], attrs: dict[str, Any]) -> Shape:
    if shapes[0] and not -len(shapes[0]) <= attrs["axis"] < len(shapes[0]):
        raise ShapeError(f"softmax: axis {attrs['axis']} is outside input {shapes[0]}")
    return shapes[0]


#: Shape function of each operator, by its canonical name (aliases share the spec).
SHAPES: dict[str, Callable[[Sequence[Shape], dict[str, Any]], Shape]] = {
    "Activation": _activation, "BatchNorm": _batch_norm, "Concat": _concat, "Convolution": _convolution,
    "Dropout": _same, "Flatten": _flatten, "FullyConnected": _fully_connected, "Pooling": _pooling,
    "elemwise_mul": _broadcast, "elemwise_add": _broadcast, "_copy": _same, "relu": _same, "sigmoid": _same,
    "softsign": _same, "tanh": _same, "clip": _same, "softmax": _softmax,
}


def _result_dtype(spec: ops.OpSpec, dtypes: Sequence[np.dtype]) -> np.dtype:
    if spec.name in ("elemwise_add", "elemwise_mul", "Concat"):
        return np.result_type(*dtypes)
    first = dtypes[0]
    if spec.name in ("sigmoid", "tanh", "softsign", "softmax") and first.kind not in "fc":
        return np.dtype(np.float64)
    return first


def placeholder(shape: Sequence[int], dtype: Any = np.float32) -> np.ndarray:
    """A read-only array of ``shape`` that occupies one element (every element is 0)."""
    return np.broadcast_to(np.zeros((), np.dtype(dtype)), tuple(shape))


def shape_only(spec: ops.OpSpec, parsed: dict[str, Any], inputs: Sequence[Any]) -> np.ndarray:
    """The result of operator ``spec`` on ``inputs`` as a :func:`placeholder` of the right shape and
    dtype, with the kernel's checks but none of its work."""
    present = [x for x in inputs if x is not None]
    function = SHAPES.get(spec.name)
    if function is None:  # no shape function: the kernel on zero-stride inputs (allocates its output)
        return spec.kernel(*(placeholder(np.shape(x), getattr(x, "dtype", np.float32)) for x in present), **parsed)
    shapes = [tuple(int(d) for d in np.shape(x)) for x in present]
    shape = function(shapes, parsed)
    if any(d < 0 for d in shape):
        raise ShapeError(f"operator {spec.name}: negative output shape {shape}")
    return placeholder(shape, _result_dtype(spec, [np.dtype(getattr(x, "dtype", np.float32)) for x in present]))
