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
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ModelSurgeonError, ResourceLimitError, ShapeError, UnsupportedOpError
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


@dataclass(frozen=True)
class MemoryEstimate:
    """What a forward pass needs: the peak of live activations (bytes) and where it is reached."""

    peak: int
    node: str  # the operator node whose output makes the peak
    shape: Shape
    dtype: str
    shapes: dict[str, Shape]  # every node's output shape


def graph_shapes(graph: Any, feeds: dict[str, tuple[Shape, Any]]) -> dict[str, tuple[Shape, np.dtype]]:
    """Output shape and dtype of every node of ``graph`` from the shapes (and dtypes) of its variables."""
    return {name: (tuple(v.shape), v.dtype) for name, v in _walk(graph, feeds)[0].items()}


def _walk(graph: Any, feeds: dict[str, tuple[Shape, Any]]) -> tuple[dict[str, np.ndarray], MemoryEstimate]:
    last_use: dict[int, int] = {}
    for index, node in enumerate(graph.nodes):
        for source, _, _ in node.inputs:
            last_use[source] = index
    keep = {head[0] for head in graph.heads}
    values: dict[int, np.ndarray] = {}
    every: dict[str, np.ndarray] = {}
    live = peak = 0
    where: tuple[str, Shape, str] = ("", (), "")
    for index, node in enumerate(graph.nodes):
        if node.is_variable:
            if node.name not in feeds:
                raise ModelSurgeonError(f"no shape for graph variable '{node.name}'")
            shape, dtype = feeds[node.name]
            values[index] = placeholder(shape, dtype)
        else:
            spec = ops.get(node.op, node.name)
            parsed = spec.parse(node.attrs, node.name)
            values[index] = shape_only(spec, parsed, [values[source] for source, _, _ in node.inputs])
            size = math.prod(values[index].shape) * values[index].dtype.itemsize
            if live + size > peak:
                peak, where = live + size, (node.name, tuple(values[index].shape), str(values[index].dtype))
            live += size
        every[node.name] = values[index]
        for source, _, _ in node.inputs:
            if last_use.get(source) == index and source not in keep and not graph.nodes[source].is_variable:
                value = values.pop(source, None)
                if value is not None:
                    live -= math.prod(value.shape) * value.dtype.itemsize
    return every, MemoryEstimate(peak, where[0], where[1], where[2],
                                 {name: tuple(v.shape) for name, v in every.items()})


def default_budget() -> int:
    """Half of this machine's physical memory (8 GiB where it cannot be told)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * DEFAULT_FRACTION)
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def trace_shapes(model: Any, shape: Shape, dtype: Any = np.float32) -> Any:
    """The graph of ``model`` (a Block) run on an input of ``shape``, traced without computing anything:
    parameters without data stand in as placeholders, every operator as :func:`shape_only`."""
    return _trace(model, shape, dtype)[:2]


def _trace(model: Any, shape: Shape, dtype: Any) -> tuple[Any, dict[str, Any], dict[str, str]]:
    """:func:`trace_shapes`, and the path of the innermost block that recorded each operator node."""
    from .symbol import tracing
    paths = {block.name: path for path, block in model.named_blocks()} if hasattr(model, "named_blocks") else {}
    owners: dict[str, str] = {}
    with tracing(placeholders=True, shapes_only=True) as tracer:
        record = tracer.apply

        def apply(*args: Any, **kwargs: Any) -> Any:
            result = record(*args, **kwargs)
            running = [paths[name] for name in tracer.block_names if name in paths]
            owners[tracer.nodes[result.node].name] = running[-1] if running else ""
            return result

        tracer.apply = apply  # type: ignore[method-assign]
        out = model(tracer.input("data", placeholder(shape, dtype)))
        outputs = list(out) if isinstance(out, (list, tuple)) else [out]
        graph, params = tracer.graph(outputs)
    return graph, params, owners


def check_forward(model: Any, shape: Shape, dtype: Any = np.float32, *, max_memory: int | None = None,
                  source: str = "the model") -> MemoryEstimate:
    """Refuse (ResourceLimitError) a forward pass of ``model`` (a Block, or a Graph with its
    variables' shapes recorded) on an input of ``shape`` that needs more than ``max_memory`` bytes
    (default :func:`default_budget`) of activations; returns the estimate otherwise.

    ``source`` (the file the model came from) starts the message.
    """
    budget = default_budget() if max_memory is None else int(max_memory)
    try:
        input_bytes = math.prod(shape) * np.dtype(dtype).itemsize
    except (TypeError, ValueError, OverflowError):
        raise ShapeError(f"invalid input shape {shape!r}") from None
    if input_bytes > budget:
        raise ResourceLimitError(source, f"the input {tuple(shape)} {np.dtype(dtype)} alone takes {human(input_bytes)}, "
                                         f"more than the memory budget of {human(budget)} (--max-memory)")
    graph, params, owners = _as_graph(model, shape, dtype)
    feeds = {name: (tuple(p.shape), p.dtype) for name, p in params.items()}
    data = [name for name in graph.arguments() if name not in feeds]
    for name in data:
        feeds[name] = (tuple(shape), np.dtype(dtype))
    estimate = _walk(graph, feeds)[1]
    total = estimate.peak + input_bytes
    if total > budget:
        layer = owners.get(estimate.node)
        where = f"layer '{layer}' (operator {estimate.node})" if layer else f"operator '{estimate.node}'"
        raise ResourceLimitError(source, f"a forward pass on input {tuple(shape)} needs about {human(total)} "
                                         f"of memory ({where} outputs {estimate.shape} {estimate.dtype}), more "
                                         f"than the memory budget of {human(budget)}; use a smaller input or "
                                         "raise --max-memory")
    return MemoryEstimate(total, estimate.node, estimate.shape, estimate.dtype, estimate.shapes)


def _as_graph(model: Any, shape: Shape, dtype: Any) -> tuple[Any, dict[str, Any], dict[str, str]]:
    from .symbol import Graph
    if isinstance(model, Graph):
        params = {}
        for node in model.nodes:
            declared = node.attrs.get("__shape__") if node.is_variable else None
            if declared is not None:
                parsed = ops.registry._parse_tuple(declared)
                if parsed and all(d > 0 for d in parsed):
                    params[node.name] = _Declared(parsed, np.float32)
        inputs = [name for name in model.arguments() if name not in params]
        for name in inputs[:1]:
            params.pop(name, None)
        return model, params, {}
    return _trace(model, tuple(shape), dtype)


@dataclass(frozen=True)
class _Declared:
    shape: Shape
    dtype: Any
