"""Memory a forward pass will need, from shapes alone: refuse the passes a file's declared shapes make
too large (:func:`check_forward`), before anything is allocated."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ModelSurgeonError, ResourceLimitError, ShapeError
from . import ops
from .shapes import DEFAULT_FRACTION, Shape, placeholder, shape_only
from .symbol import Graph, tracing


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
        raise ResourceLimitError(source, f"the input {tuple(shape)} {np.dtype(dtype)} alone takes "
                                         f"{human(input_bytes)}, "
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
    graph = getattr(model, "graph", None)
    if isinstance(graph, Graph):  # a SymbolBlock: its graph as it is, its Parameters' shapes
        known = {name: p for name, p in model.collect_params().items() if p.shape is not None and min(p.shape) > 0}
        return graph, {name: _Declared(tuple(p.shape), p.dtype) for name, p in known.items()}, {}
    return _trace(model, tuple(shape), dtype)


@dataclass(frozen=True)
class _Declared:
    shape: Shape
    dtype: Any
