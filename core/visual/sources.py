"""Pictures from checkpoints: three sources, tried in this order:

* **architecture** (structural files that embed one): the layer tree is rebuilt, given the
  file's shapes, and traced on a zero input *without reading any weight*; every operator the
  trace records is attributed to the innermost layer whose ``forward`` ran it, so a layer is
  drawn once (``Conv2D`` with its fused relu) and the operators a container runs itself
  (a residual block's addition) get their own node. Output shapes come from the trace.
* **graph** (name-keyed files, MXNet exports, a bare ``-symbol.json``): one node per operator;
  output shapes come from running the graph on zeros when the input shape is known.
* **keys** (files with keys only): one box per group of tensors sharing a key prefix, nested
  by the key tree; :mod:`.placement` draws them as a treemap sized by bytes.

>>> from modelsurgeon.core.formats.base import TensorInfo
>>> import numpy as np
>>> class Keys:  # the part of a CheckpointReader a keys-only picture needs
...     path, format, kind, architecture, graph, metadata = "m.h5", "test", "structural", None, None, {}
...     tensors = {k: TensorInfo(k, (2, 2), np.dtype("float32")) for k in ("a.weight", "a.bias", "b.weight")}
>>> picture = build_picture(Keys(), head=False)
>>> picture.source, [(layer.name, layer.params) for layer in picture.layers]
('keys', [('a', 8), ('b', 4)])
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import numpy as np

from ..dtypes import MX_DTYPE_FLAGS
from ..engine.symbol import Graph
from ..errors import ModelSurgeonError, ShapeError
from ..formats.base import NAMED, STRUCTURAL, CheckpointReader, TensorInfo
from .picture import (
    _TWO_WORD_SUFFIXES,
    Layer,
    Picture,
    TensorRow,
    _attr_tuple,
    _op_word,
    block_summary,
    op_summary,
    tensor_row,
)


def build_picture(reader: CheckpointReader, input_shape: tuple[int, ...] | None = None,
                  title: str | None = None, head: bool = True) -> Picture:
    """The picture of an open checkpoint (see the module docstring for the sources).

    ``input_shape`` overrides the recorded input shape used to trace the data flow and to
    infer output shapes; ``head`` marks the layer :func:`~modelsurgeon.core.surgery.find_head` picks.
    """
    notes: list[str] = []
    picture: Picture | None = None
    if reader.kind == STRUCTURAL and isinstance(reader.architecture, dict):
        picture = _from_architecture(reader, input_shape, notes)
    if picture is None and reader.graph is not None:
        try:
            graph = Graph.from_json(reader.graph)
        except ModelSurgeonError as exc:
            notes.append(f"the graph cannot be read ({exc}); drawn from the keys")
        else:
            if not reader.tensors or set(graph.variables()) & set(reader.tensors):
                recorded = _recorded_inputs(reader.architecture)
                picture = picture_from_graph(graph, reader.tensors, input_shape, recorded=recorded)
                notes.extend(picture.notes)
            else:
                notes.append("the graph's variables are not this file's keys; drawn from the keys")
    if picture is None:
        picture = _from_keys(reader)
    picture.notes = notes + [n for n in picture.notes if n not in notes]
    picture.title = title or str(reader.path)
    _attach_leftovers(picture, reader)
    if head:
        _mark_head(picture, reader)
    unique = [i for i in reader.tensors.values() if i.alias_of is None]
    picture.facts = {"file": str(reader.path), "format": reader.format, "kind": reader.kind,
                     "tensors": len(reader.tensors), "parameters": sum(i.size for i in unique),
                     "bytes": sum(i.nbytes for i in unique), "source": picture.source,
                     "layers": sum(1 for layer in picture.layers if layer.kind != "input")}
    picture.key_column = "key (unique name)" if reader.kind == NAMED else "key"
    return picture


def _recorded_inputs(document: Any) -> dict[str, tuple[tuple[int, ...], str]]:
    if not isinstance(document, dict):
        return {}
    from ..engine import architecture as arch
    try:
        return {name: (shape, dtype) for name, shape, dtype in arch.input_specs(document)}
    except ModelSurgeonError:
        return {}


def _document_nodes(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(path, node) for every node of an architecture document, depth first."""
    if not isinstance(node, dict):
        return []
    found = [(path, node)]
    for entry in node.get("children") or []:
        if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str):
            found += _document_nodes(entry[1], f"{path}.{entry[0]}" if path else entry[0])
    return found


def _from_architecture(reader: CheckpointReader, input_shape: tuple[int, ...] | None,
                       notes: list[str]) -> Picture | None:
    from ..engine import architecture as arch
    from ..engine.naming import name_scope
    document = reader.architecture
    if not isinstance(document, dict):
        return None
    configs = {path: (str(node.get("type")), node.get("config") or {}) for path, node in
               _document_nodes(document.get("root"))}
    recorded = _recorded_inputs(document)
    shape, dtype = input_shape, "float32"
    if shape is None and len(recorded) == 1:
        shape, dtype = next(iter(recorded.values()))
    try:
        with name_scope():
            model = arch.build(document)
            if shape is None:
                raise ModelSurgeonError("the file records no input shape (give `input_shape`)")
            for key, param in model.collect_params().items():
                info = reader.tensors.get(key)
                if info is not None:
                    param.shape = info.shape
                    param.dtype = info.dtype
            return _traced_picture(reader, model, tuple(shape), dtype, configs)
    except (ModelSurgeonError, ValueError, TypeError, IndexError, KeyError) as exc:
        notes.append(f"the data flow could not be traced ({exc}); layers are drawn in definition order")
        return _definition_order(reader, document, configs, recorded)


def _trace(model: Any, shape: tuple[int, ...], dtype: str) -> tuple[Graph, dict[str, Any], dict[str, tuple[str, ...]],
                                                                   dict[str, tuple[int, ...]]]:
    """Trace ``model`` shapes-only (nothing is computed, nothing the size of the input allocated);
    remember which blocks were running when each operator was recorded."""
    from ..engine.shapes import placeholder
    from ..engine.symbol import tracing
    owners: dict[str, tuple[str, ...]] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    with tracing(placeholders=True, shapes_only=True) as tracer:
        record = tracer.apply

        def apply(*args: Any, **kwargs: Any) -> Any:
            result = record(*args, **kwargs)
            name = tracer.nodes[result.node].name
            owners[name] = tuple(tracer.block_names)
            shapes[name] = tuple(result.shape)
            return result

        tracer.apply = apply  # type: ignore[method-assign]
        out = model(tracer.input("data", placeholder(shape, np.dtype(dtype))))
        outputs = list(out) if isinstance(out, (list, tuple)) else [out]
        graph, params = tracer.graph(outputs)
    return graph, params, owners, shapes


def _traced_picture(reader: CheckpointReader, model: Any, shape: tuple[int, ...], dtype: str,
                    configs: dict[str, tuple[str, dict[str, Any]]]) -> Picture:
    graph, params, owners, shapes = _trace(model, shape, dtype)
    blocks = dict(model.named_blocks())
    path_of = {block.name: path for path, block in blocks.items()}
    keys_of: dict[int, list[str]] = {}
    for key, param in model.named_parameters():
        keys_of.setdefault(id(param), []).append(key)

    def owner(stack: tuple[str, ...]) -> tuple[str, bool]:
        found = ""
        for name in stack:
            path = path_of.get(name)
            if path is None:
                continue
            found = path
            block = blocks[path]
            if block._arch_leaf or not block._children:
                return path, True
        return found, False

    layers: dict[str, Layer] = {}
    node_layer: dict[int, str] = {}
    edges: dict[tuple[str, str], None] = {}
    seen: set[str] = set()
    for index, node in enumerate(graph.nodes):
        if node.is_variable:
            if node.name not in params:
                lid = f"input:{node.name}"
                layers[lid] = Layer(lid, node.name, "input", shape=shape, kind="input")
                node_layer[index] = lid
            continue
        path, leaf = owner(owners.get(node.name, ()))
        lid = path if leaf else f"{path}/{node.name}"
        layer = layers.get(lid)
        if layer is None:
            kind, config = configs.get(path, (type(blocks[path]).__name__, {}))
            if leaf:
                layer = Layer(lid, path or "(model)", kind, block_summary(kind, config), path=path)
            else:
                word = _op_word(node.op, node.attrs)
                name = f"{path}/{word}" if path else word
                taken = {existing.name for existing in layers.values()}
                suffix = 1
                while name in taken:
                    suffix += 1
                    name = f"{path}/{word}{suffix}" if path else f"{word}{suffix}"
                layer = Layer(lid, name, node.op, op_summary(node.op, node.attrs), path=path)
            layers[lid] = layer
        node_layer[index] = lid
        layer.shape = shapes.get(node.name, layer.shape)
        for source, _, _ in node.inputs:
            src = graph.nodes[source]
            if src.is_variable and src.name in params:
                for key in keys_of.get(id(params[src.name]), []):
                    if key in reader.tensors and key not in seen:
                        layer.tensors.append(tensor_row(reader.tensors[key]))
                        seen.add(key)
            elif source in node_layer and node_layer[source] != lid:
                edges[(node_layer[source], lid)] = None
    return Picture("", "architecture", list(layers.values()), list(edges))


def _definition_order(reader: CheckpointReader, document: dict[str, Any],
                      configs: dict[str, tuple[str, dict[str, Any]]],
                      recorded: dict[str, tuple[tuple[int, ...], str]]) -> Picture:
    """Leaves of the layer tree in order, chained: right for sequential models, a sketch otherwise."""
    from ..engine import architecture as arch
    layers: list[Layer] = []
    for name, (shape, _) in recorded.items():
        layers.append(Layer(f"input:{name}", name, "input", shape=shape, kind="input"))
    for path, node in _document_nodes(document.get("root")):
        cls = arch.REGISTRY.get(str(node.get("type")))
        if node.get("children") and not (cls is not None and cls._arch_leaf):
            continue
        kind, config = configs.get(path, (str(node.get("type")), {}))
        prefix = f"{path}." if path else ""
        rows = [tensor_row(i) for k, i in reader.tensors.items() if k.startswith(prefix) and "." not in k[len(prefix):]]
        layers.append(Layer(path or "(model)", path or "(model)", kind, block_summary(kind, config), tensors=rows,
                            path=path))
    edges = [(a.id, b.id) for a, b in pairwise(layers)]
    return Picture("", "architecture", layers, edges)


def _is_parameter_variable(node: Any, tensors: dict[str, TensorInfo]) -> bool:
    if tensors:
        return node.name in tensors
    return any(key in node.attrs for key in ("__shape__", "__dtype__", "__init__", "__storage_type__"))


def _variable_row(node: Any) -> TensorRow:
    shape = _attr_tuple(node.attrs, "__shape__")
    if shape is not None and any(d <= 0 for d in shape):
        shape = None
    flag = node.attrs.get("__dtype__", "0")
    dtype = MX_DTYPE_FLAGS.get(int(flag), np.dtype("float32")) if flag.lstrip("-").isdigit() else np.dtype("float32")
    nbytes = math.prod(shape) * dtype.itemsize if shape is not None else 0
    return TensorRow(node.name, shape, str(dtype), nbytes)


def picture_from_graph(graph: Graph, tensors: dict[str, TensorInfo] | None = None,
                       input_shape: tuple[int, ...] | None = None, title: str = "graph",
                       recorded: dict[str, tuple[tuple[int, ...], str]] | None = None) -> Picture:
    """One node per operator of ``graph``; ``tensors`` (a reader's) give the parameters' shapes.

    Output shapes are inferred by running the graph on zeros (parameters are zero-cost
    placeholders) when every input's shape is known: ``input_shape`` for the first input, else
    ``recorded`` shapes by input name, else a ``__shape__`` attribute on the input variable.
    """
    tensors = tensors or {}
    recorded = recorded or {}
    notes: list[str] = []
    try:
        aux = set(graph.aux_variables())
    except ModelSurgeonError:
        aux = set()
    layers: list[Layer] = []
    node_layer: dict[int, Layer] = {}
    taken: set[str] = set()
    inputs: list[int] = []
    edges: dict[tuple[str, str], None] = {}
    consumed = {source for node in graph.nodes for source, _, _ in node.inputs}
    for index, node in enumerate(graph.nodes):
        if node.is_variable:
            if not _is_parameter_variable(node, tensors) and index in consumed:
                lid = f"input:{node.name}"
                layer = Layer(lid, node.name, "input", kind="input")
                layers.append(layer)
                node_layer[index] = layer
                inputs.append(index)
            continue
        lid = node.name if node.name not in taken else f"{node.name}#{index}"
        taken.add(lid)
        layer = Layer(lid, node.name, node.op, op_summary(node.op, node.attrs))
        for source, _, _ in node.inputs:
            src = graph.nodes[source]
            if src.is_variable and source not in node_layer:
                if src.name in tensors:
                    row = tensor_row(tensors[src.name])
                else:
                    row = _variable_row(src)
                    row.role = "aux" if src.name in aux else "arg"
                if all(t.key != row.key for t in layer.tensors):
                    layer.tensors.append(row)
            elif source in node_layer:
                edges[(node_layer[source].id, lid)] = None
        paths = {s.rsplit(".", 1)[0] for t in layer.tensors for s in t.structural[:1] if "." in s}
        if len(paths) == 1:
            layer.path = paths.pop()
        layers.append(layer)
        node_layer[index] = layer
    shapes = _input_shapes(graph, inputs, input_shape, recorded)
    if shapes is not None:
        for index, shape in shapes.items():
            node_layer[index].shape = shape
        try:
            outputs, inferred = _infer_shapes(graph, tensors, shapes)
            for index, shape in outputs.items():
                if index in node_layer:
                    node_layer[index].shape = shape
            for layer in layers:
                for row in layer.tensors:
                    if row.shape is None and row.key in inferred:
                        row.shape = inferred[row.key]
                        row.nbytes = math.prod(row.shape) * np.dtype(row.dtype).itemsize
        except (ModelSurgeonError, ValueError, TypeError, IndexError, KeyError) as exc:
            notes.append(f"output shapes are unknown: {exc}")
    elif inputs:
        notes.append("output shapes are unknown: the input shape is not recorded (give `input_shape`)")
    picture = Picture(title, "graph", layers, list(edges), notes=notes)
    rows = [t for layer in layers for t in layer.tensors]
    picture.facts = {"file": title, "format": "mxnet-symbol", "kind": "graph", "tensors": len(rows),
                     "parameters": sum(t.size for t in rows), "bytes": sum(t.nbytes for t in rows),
                     "source": "graph", "layers": sum(1 for layer in layers if layer.kind != "input")}
    if not tensors:  # a graph on its own: the last dense layer, as find_head would pick
        dense = [layer for layer in layers if layer.op == "FullyConnected"]
        if dense:
            dense[-1].head = True
            picture.head = f"{dense[-1].name}: the last dense layer in graph order"
    return picture


def _input_shapes(graph: Graph, inputs: list[int], input_shape: tuple[int, ...] | None,
                  recorded: dict[str, tuple[tuple[int, ...], str]]) -> dict[int, tuple[int, ...]] | None:
    shapes = {}
    for position, index in enumerate(inputs):
        node = graph.nodes[index]
        if position == 0 and input_shape is not None:
            shapes[index] = tuple(input_shape)
        elif node.name in recorded:
            shapes[index] = tuple(recorded[node.name][0])
        else:
            declared = _attr_tuple(node.attrs, "__shape__")
            if declared is None or not declared or any(d <= 0 for d in declared):
                return None
            shapes[index] = declared
    return shapes


def _parameter_shapes(node: Any, data: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Shapes of an operator's parameter inputs from its data input (as MXNet infers them), by position."""
    attrs = node.attrs
    if node.op == "Convolution":
        kernel = _attr_tuple(attrs, "kernel") or ()
        filters, groups = int(attrs.get("num_filter", "0")), int(attrs.get("num_group", "1"))
        return [data, (filters, data[1] // groups, *kernel), (filters,)]
    if node.op == "FullyConnected":
        hidden = int(attrs.get("num_hidden", "0"))
        flatten = attrs.get("flatten", "True").lower() in ("true", "1")
        units = math.prod(data[1:]) if flatten else data[-1]
        return [data, (hidden, units), (hidden,)]
    if node.op == "BatchNorm":
        channels = data[int(attrs.get("axis", "1"))]
        return [data] + [(channels,)] * 4
    raise ModelSurgeonError(f"cannot infer the parameter shapes of {node.op} node '{node.name}'")


def _infer_shapes(graph: Graph, tensors: dict[str, TensorInfo], inputs: dict[int, tuple[int, ...]]
                  ) -> tuple[dict[int, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """Each operator's output shape, computed shapes-only (engine/shapes.py: inputs, parameters and
    results are zero-cost broadcast views; no kernel runs, so a declared input of (64, 3, 1024, 1024)
    costs nothing).

    Parameters of unknown shape (a bare MXNet ``-symbol.json`` says ``(64, 0, 3, 3)``) are
    inferred from their operator's input; returns (output shape by node, inferred parameter shapes).
    """
    from ..engine import ops
    from ..engine.shapes import placeholder, shape_only
    graph.check_ops()
    last_use: dict[int, int] = {}
    for index, node in enumerate(graph.nodes):
        for source, _, _ in node.inputs:
            last_use[source] = index
    values: dict[int, Any] = {}
    shapes: dict[int, tuple[int, ...]] = {}
    inferred: dict[str, tuple[int, ...]] = {}
    for index, node in enumerate(graph.nodes):
        if node.is_variable:
            if index in inputs:
                values[index] = placeholder(inputs[index], np.float32)
            elif node.name in tensors:
                info = tensors[node.name]
                values[index] = np.broadcast_to(np.zeros((), info.dtype), info.shape)
            else:
                row = _variable_row(node)
                values[index] = None if row.shape is None else np.broadcast_to(np.zeros((), np.dtype(row.dtype)),
                                                                                 row.shape)
            continue
        args = [values[source] for source, _, _ in node.inputs]
        if any(arg is None for arg in args):
            wanted = _parameter_shapes(node, tuple(np.shape(args[0])))
            for position, (source, _, _) in enumerate(node.inputs):
                if args[position] is None and position < len(wanted):
                    name = graph.nodes[source].name
                    inferred[name] = wanted[position]
                    args[position] = values[source] = np.broadcast_to(np.zeros((), np.float32), wanted[position])
        spec = ops.get(node.op, node.name)
        try:
            result = shape_only(spec, spec.parse(node.attrs, node.name), args)
        except (ValueError, TypeError, IndexError) as exc:
            raise ShapeError(f"operator {spec.name} (node '{node.name}') cannot run on inputs of shapes "
                             f"{[np.shape(a) for a in args]}: {exc}") from None
        values[index] = result
        shapes[index] = tuple(np.shape(result))
        for source, _, _ in node.inputs:
            if last_use.get(source) == index:
                values.pop(source, None)
    return shapes, inferred


def _tree_key(key: str, split_underscores: bool) -> str:
    """The key as a dotted path for the key tree; MXNet-style ``prefix_name`` keys split at the last part."""
    if not split_underscores or "_" not in key:
        return key
    for suffix in _TWO_WORD_SUFFIXES:
        if key.endswith("_" + suffix):
            return key[: -len(suffix) - 1] + "." + suffix
    prefix, _, last = key.rpartition("_")
    return f"{prefix}.{last}" if prefix else key


def _from_keys(reader: CheckpointReader) -> Picture:
    """One layer per group of tensors with the same key prefix; layout nests them by path."""
    split = bool(reader.tensors) and not any("." in k for k in reader.tensors)
    groups: dict[str, list[TensorRow]] = {}
    for key, info in reader.tensors.items():
        path = _tree_key(key, split).rpartition(".")[0]
        groups.setdefault(path, []).append(tensor_row(info))
    layers = [Layer(path or "(top level)", path or "(top level)", "", tensors=rows, path=path)
              for path, rows in groups.items()]
    notes = []
    if split:
        notes.append("keys have no dots; grouped by the part before the last underscore")
    return Picture("", "keys", layers, [], notes=notes)


def _attach_leftovers(picture: Picture, reader: CheckpointReader) -> None:
    """Tensors no drawn layer uses go to the layer of their block, else to a detached box."""
    shown = {t.key for layer in picture.layers for t in layer.tensors}
    missing = [info for key, info in reader.tensors.items() if key not in shown]
    if not missing:
        return
    by_path = {layer.path: layer for layer in picture.layers if layer.path and layer.kind != "input"
               and "/" not in layer.id}
    unused: list[TensorRow] = []
    for info in missing:
        parts = info.key.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            layer = by_path.get(".".join(parts[:cut]))
            if layer is not None:
                layer.tensors.append(tensor_row(info))
                break
        else:
            unused.append(tensor_row(info))
    if unused:
        picture.layers.append(Layer("(unused)", "not used by the forward pass", "", tensors=unused, detached=True))
        picture.notes.append(f"{len(unused)} tensor(s) are not used by the forward pass")


def _mark_head(picture: Picture, reader: CheckpointReader) -> None:
    from ..surgery.head import find_head
    try:
        head = find_head(reader)
    except (ModelSurgeonError, KeyError, ValueError):
        return
    layer = picture.layer_of(head.weight)
    if layer is not None:
        layer.head = True
        picture.head = f"{layer.name}: {head.reason}"
