"""Replace the classification head: find it, draw the new tensors, resize the architecture or graph."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..binding import structural_view
from ..errors import ParameterError, SurgeryError, brief_list
from ..formats import hf, keras3
from ..formats.base import STRUCTURAL, CheckpointReader, TensorInfo
from ..lazy import lazy_module
from .plan import Copy, New, Plan, Source, carried_metadata

arch = lazy_module("modelsurgeon.core.engine.architecture")
init_mod = lazy_module("modelsurgeon.core.engine.initializer")
symbol = lazy_module("modelsurgeon.core.engine.symbol")


#: ``--init`` choices for replace-head and what they mean.
HEAD_INITS = {
    "xavier": "Gluon's Xavier (uniform, avg, magnitude 3); zero bias",
    "uniform": "Gluon's default Uniform(0.07); zero bias",
    "normal": "Normal(sigma=0.01); zero bias",
    "zeros": "all zeros",
    "torch": "PyTorch nn.Linear/Conv2d default: U(+-1/sqrt(fan_in)) for weight and bias",
    "keras": "Keras Dense default: glorot_uniform weight, zero bias",
}


@dataclass
class Head:
    """The layer chosen as the head, and why."""

    path: str
    kind: str  # 'dense' or 'conv'
    weight: str  # key in the file
    bias: str | None
    reason: str
    #: the axis that counts classes: 0 for (out, in, ...) weights, -1 for Keras (..., in, out) kernels
    out_axis: int = 0
    #: the layer's name in a framework config (Keras), where it differs from the path
    layer_name: str | None = None


#: weight names a head may have, and where each keeps its output axis
WEIGHT_NAMES = {"weight": 0, "kernel": -1}


def structural_keys(reader: CheckpointReader) -> dict[str, str]:
    """structural key -> file key (identity for structural files)."""
    if reader.kind == STRUCTURAL:
        return {k: k for k in reader.tensors}
    return structural_view(reader)


def _head_at(reader: CheckpointReader, keys: dict[str, str], path: str, reason: str) -> Head:
    direct = [f"{path}.{name}" for name in WEIGHT_NAMES if f"{path}.{name}" in keys]
    if direct:
        weight = direct[0]
    else:
        weights = [k for k in keys if k.startswith(path + ".") and k.rpartition(".")[2] in WEIGHT_NAMES]
        if len(weights) != 1:
            if not weights:
                tops = sorted({k.split(".")[0] for k in keys})
                raise ParameterError("head", f"no layer with a weight at '{path}' "
                                             f"(top-level blocks: {brief_list(tops)})")
            raise SurgeryError(f"'{path}' holds several layers with weights ({brief_list(weights)}); "
                               "name one with `head`")
        weight = weights[0]
    layer = weight.rpartition(".")[0]
    return _head_from_keys(reader, keys[weight], keys.get(f"{layer}.bias"), layer, reason)


def _head_from_keys(reader: CheckpointReader, weight: str, bias: str | None, path: str, reason: str) -> Head:
    shape = reader.tensors[weight].shape
    if len(shape) == 2:
        kind = "dense"
    elif len(shape) == 4:
        kind = "conv"
    else:
        raise SurgeryError(f"'{path}' has a weight of shape {shape}; a head must be dense (2-D) or a convolution (4-D)")
    out_axis = WEIGHT_NAMES.get(weight.rpartition(".")[2].rpartition("_")[2], 0)
    if bias is not None and reader.tensors[bias].shape != (shape[out_axis],):
        bias = None
    return Head(path, kind, weight, bias, reason, out_axis)


def find_head(reader: CheckpointReader, head: str | None = None) -> Head:
    """Find the classification head: ``--head``, else the zoo's ``output``, else the last dense layer."""
    keys = structural_keys(reader)
    keras_layout = any(key.endswith(".vars.0") or key == "vars.0" for key in reader.tensors)
    if head is not None and keras_layout:
        named = keras3.find_dense_head(reader.tensors.values(), reader.config, layer=head)
        return Head(named.path, "dense", named.kernel, named.bias, "named with `head`", -1,
                    layer_name=named.layer_name)
    if head is not None:
        return _head_at(reader, keys, head, "named with `head`")
    if any(k.startswith("output.") for k in keys):
        return _head_at(reader, keys, "output", "the model zoo's convention: the head is named 'output'")
    if reader.kind == STRUCTURAL and reader.architecture is not None:
        block = arch.build(reader.architecture)
        from ..engine.nn import Dense
        dense = [p for p, b in block.named_blocks() if isinstance(b, Dense)]
        if dense:
            return _head_at(reader, keys, dense[-1], "the last Dense layer in the architecture")
    if reader.graph is not None:
        graph = symbol.Graph.from_json(reader.graph)
        for node in reversed(graph.op_nodes()):
            if node.op in ("FullyConnected", "Convolution") and len(node.inputs) >= 2:
                names = [graph.nodes[i].name for i, _, _ in node.inputs]
                if names[1] in reader.tensors:
                    bias = names[2] if len(names) > 2 and names[2] in reader.tensors else None
                    kind = "dense" if node.op == "FullyConnected" else "convolution"
                    return _head_from_keys(reader, names[1], bias, node.name,
                                           f"the last {kind} layer in graph order (node '{node.name}')")
    if keras_layout:
        found: keras3.DenseHead | None
        try:
            found = keras3.find_dense_head(reader.tensors.values(), reader.config)
        except SurgeryError:
            found = None
        if found is not None:
            return Head(found.path, "dense", found.kernel, found.bias, found.reason, -1,
                        layer_name=found.layer_name)
    for key in reversed(list(reader.tensors)):
        info = reader.tensors[key]
        for name, axis in WEIGHT_NAMES.items():
            if key.endswith(name) and len(info.shape) == 2:
                stem = key[: -len(name)]
                bias = stem + "bias"
                if bias in reader.tensors and reader.tensors[bias].shape == (info.shape[axis],):
                    return _head_from_keys(reader, key, bias, stem.rstrip("._") or key,
                                           "the last 2-D weight with a matching bias (no architecture or graph)")
    raise SurgeryError("cannot find a head: no 'output' block, no dense layer; name one with `head`")


def plan_replace_head(reader: CheckpointReader, classes: int | None, head: str | None = None,
                      init: str = "xavier", seed: int | None = None,
                      keep_classes: list[int] | None = None, ignore_consumers: bool = False) -> Plan:
    """A plan with new head tensors of ``classes`` outputs, every other tensor copied; the
    architecture and graph updated to match. ``details`` names the head and why it was chosen.

    Without an architecture or graph, a head whose outputs later tensors consume (their shapes
    name its output size) is refused unless ``ignore_consumers``.
    """
    if init not in HEAD_INITS:
        raise ParameterError("init", f"unknown `init` {init!r}; choose from {', '.join(HEAD_INITS)}")
    chosen = find_head(reader, head)
    _check_replaceable(reader, chosen, ignore_consumers)
    weight_info = reader.tensors[chosen.weight]
    axis = chosen.out_axis % len(weight_info.shape)
    old_classes = weight_info.shape[axis]
    kept = list(keep_classes or [])
    if classes is None:
        if not kept:
            raise ParameterError("classes", "give `classes` (or `keep_classes` to keep some of the old classes)")
        classes = len(kept)
    if classes <= 0:
        raise ParameterError("classes", f"`classes` must be positive, not {classes}")
    bad = [i for i in kept if not 0 <= i < old_classes]
    if bad:
        raise ParameterError("keep_classes", f"`keep_classes` {brief_list(bad)} out of range: "
                                             f"the old head has {old_classes} classes")
    if len(kept) > classes:
        raise ParameterError("keep_classes", f"`keep_classes` lists {len(kept)} classes but `classes` is {classes}")
    if len(set(kept)) != len(kept):
        raise ParameterError("keep_classes", "`keep_classes` lists a class twice")
    rng = np.random.default_rng(seed)
    initializer = init_mod.create(init)
    assert initializer is not None  # every HEAD_INITS name is an initializer alias
    rest = tuple(int(d) for i, d in enumerate(weight_info.shape) if i != axis)
    # initializers expect (out, in, ...): draw in that layout, then move the axis back
    drawn = initializer("weight", (classes, *rest), weight_info.dtype, rng)
    tensors = {chosen.weight: np.ascontiguousarray(np.moveaxis(drawn, 0, axis))}
    if chosen.bias is not None:
        bias_dtype = reader.tensors[chosen.bias].dtype
        tensors[chosen.bias] = initializer("bias", (classes,), bias_dtype, rng, fan_in=init_mod.fans(drawn.shape)[0])
    if kept:
        old_weight = np.moveaxis(reader.read(chosen.weight), axis, 0)
        np.moveaxis(tensors[chosen.weight], axis, 0)[: len(kept)] = old_weight[kept]
        if chosen.bias is not None:
            tensors[chosen.bias][: len(kept)] = reader.read(chosen.bias)[kept]
    architecture = reader.architecture
    if architecture is not None:
        architecture = _resize_in_architecture(architecture, chosen, classes)
    graph = reader.graph
    if graph is not None:
        graph = _resize_in_graph(graph, chosen, classes, {k: v.shape for k, v in tensors.items()})
    config = _resized_config(reader, chosen, classes, kept)
    metadata = {**carried_metadata(reader), "modelsurgeon.head": chosen.path,
                "modelsurgeon.head_init": init if seed is None else f"{init} seed={seed}"}
    planned: list[tuple[TensorInfo, Source]] = []
    for info in reader.tensors.values():
        if info.key in tensors:
            new = tensors[info.key]
            planned.append((TensorInfo(info.key, new.shape, info.dtype, info.role, info.structural), New(new)))
        else:
            planned.append((info, Copy(reader, info.key)))
    notes = []
    if reader.architecture is not None and architecture is None:
        notes.append("the architecture could not follow the new head and was left out")
    details = {"head": {"path": chosen.path, "kind": chosen.kind, "weight": chosen.weight, "bias": chosen.bias,
                        "reason": chosen.reason},
               "old_classes": old_classes, "classes": classes, "init": init, "seed": seed, "kept_classes": kept,
               "resized": [{"key": key, "old_shape": list(reader.tensors[key].shape), "new_shape": list(array.shape)}
                           for key, array in tensors.items()]}
    return Plan.of(planned, reader.kind, architecture=architecture, graph=graph, metadata=metadata,
                   readers=[reader], notes=notes, details=details, config=config)


def _resized_config(reader: CheckpointReader, head: Head, classes: int, kept: list[int]) -> dict[str, Any] | None:
    """The framework config describing the new head: a Hugging Face ``config.json``'s labels, a
    ``.keras`` config's layer units."""
    if reader.config is None:
        return None
    if reader.format == "hf-folder":
        return hf.config_for_head(reader.config, classes, kept)
    name = head.layer_name or head.path.rpartition(".")[2]
    return keras3.set_layer_outputs(reader.config, name, classes)


def _check_replaceable(reader: CheckpointReader, head: Head, ignore_consumers: bool = False) -> None:
    """A head must be the model's last layer with weights, and its tensors its own."""
    own = {head.weight, head.bias} - {None}
    shared = [f"{i.key} = {i.alias_of}" for i in reader.tensors.values()
              if (i.key in own and i.alias_of is not None) or (i.alias_of in own and i.key not in own)]
    if shared:
        raise SurgeryError(f"the head '{head.path}' has parameters shared with other layers ({brief_list(shared)}); "
                           "replacing it would change them too")
    later: list[str] = []
    if reader.kind == STRUCTURAL and reader.architecture is not None:
        block = arch.build(reader.architecture)
        layers = [path for path, b in block.named_blocks() if b._reg_params]
        if head.path in layers:
            later = layers[layers.index(head.path) + 1:]
    elif reader.graph is not None:
        graph = symbol.Graph.from_json(reader.graph)
        users = [node for node in graph.op_nodes()
                 if any(graph.nodes[i].is_variable and graph.nodes[i].name in reader.tensors
                        for i, _, _ in node.inputs)]
        index = next((n for n, node in enumerate(users)
                      if any(graph.nodes[i].name == head.weight for i, _, _ in node.inputs)), None)
        if index is not None:
            later = [node.name for node in users[index + 1:]]
    elif not ignore_consumers:
        later = _consumers(reader, head)
        if later:
            raise SurgeryError(f"the outputs of '{head.path}' are consumed by later tensors ({brief_list(later)}), "
                               "so it is not the head; name the head with `head`, or set `ignore_consumers`")
    if later:
        raise SurgeryError(f"'{head.path}' is not the model's last layer with weights (after it: {brief_list(later)}); "
                           "changing its outputs would break the layers after it")


def _consumers(reader: CheckpointReader, head: Head) -> list[str]:
    """Without an architecture or graph: later tensors whose shapes take the head's outputs as input
    (a normalisation's per-channel vectors, a dense or convolution weight's input axis)."""
    outputs = reader.tensors[head.weight].shape[head.out_axis]
    keys = list(reader.tensors)
    own = {head.weight, head.bias}
    start = max(keys.index(k) for k in own if k is not None) + 1
    found = []
    for key in keys[start:]:
        shape = reader.tensors[key].shape
        if key in own or not shape:
            continue
        if (len(shape) == 1 and shape[0] == outputs) or (len(shape) >= 2 and shape[1] == outputs):
            found.append(key)
    return found


def _resize_in_architecture(document: dict[str, Any], head: Head, classes: int) -> dict[str, Any] | None:
    result = copy.deepcopy(document)
    node = result["root"]
    parts = head.path.split(".") if head.path else []
    if (head.path == "output" or head.path.startswith("output.")) and "classes" in node.get("config", {}):
        node["config"]["classes"] = classes
    for part in parts:
        children = dict(node.get("children") or [])
        if part not in children:
            return None  # the head is not in the recorded tree (e.g. a named file's graph node)
        node = children[part]
    key = {"Dense": "units", "Conv2D": "channels"}.get(node["type"])
    if key is None:
        raise SurgeryError(f"the head at '{head.path}' is a {node['type']}, not a Dense or Conv2D layer")
    node["config"][key] = classes
    return result


def _resize_in_graph(document: dict[str, Any], head: Head, classes: int,
                     shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    graph = symbol.Graph.from_json(document)
    index = {node.name: i for i, node in enumerate(graph.nodes)}
    if head.weight not in index:
        return graph.to_dict()
    weight_node = index[head.weight]
    for name, shape in shapes.items():
        if name in index and "__shape__" in graph.nodes[index[name]].attrs:
            graph.nodes[index[name]].attrs["__shape__"] = str(tuple(shape))
    for node in graph.op_nodes():
        if any(source == weight_node for source, _, _ in node.inputs):
            if node.op == "FullyConnected":
                node.attrs["num_hidden"] = str(classes)
            elif node.op == "Convolution":
                node.attrs["num_filter"] = str(classes)
    return graph.to_dict()
