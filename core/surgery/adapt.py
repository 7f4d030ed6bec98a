"""Change the number of input channels of a model's first convolution (RGB -> grey, RGB -> RGB+NIR...).

The weight's input axis (1 for PyTorch/MXNet ``(out, in, kh, kw)``, 2 for Keras ``(kh, kw, in, out)``
kernels) becomes ``channels`` long, as timm's ``adapt_input_conv`` does it: to one channel the old
input channels are summed (a grey image then gives what the old model gave for that grey value in
every channel); to more, the old channels are repeated cyclically and scaled by ``old / channels``
(3/N from RGB), which keeps the activations' scale. The arithmetic is done in float32 (float64 for
float64 weights) and the result written in the weight's dtype.

The first convolution is ``layer``, else the first Conv2D of the architecture, else the first
Convolution of the graph, else the first 4-D floating tensor. The architecture's Conv2D
``in_channels``, the recorded input shape and the graph's input ``__shape__`` follow, so ``run``
takes the new input.

>>> import numpy as np
>>> adapt_weight(np.ones((2, 3, 1, 1), np.float32), 1, axis=1)[:, :, 0, 0].tolist()
[[3.0], [3.0]]
>>> adapt_weight(np.arange(3, dtype=np.float32).reshape(1, 3, 1, 1), 4, axis=1)[0, :, 0, 0].tolist()
[0.0, 0.75, 1.5, 0.0]
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ModelSurgeonError, SurgeryError, brief_list
from ..formats.base import STRUCTURAL, CheckpointReader, TensorInfo
from ..lazy import lazy_module
from .cast import DTYPES, cast_array, stored_dtype
from .plan import Copy, Plan, Source, Transform, carried_metadata

arch = lazy_module("modelsurgeon.core.engine.architecture")
symbol = lazy_module("modelsurgeon.core.engine.symbol")


@dataclass
class FirstConv:
    """The convolution whose input channels change, and how it was found."""

    path: str
    weight: str
    axis: int
    reason: str
    #: the graph's variable feeding it (an MXNet graph's data input), where known
    graph_input: str | None = None


def adapt_weight(weight: np.ndarray, channels: int, axis: int = 1, stored: str | None = None) -> np.ndarray:
    """``weight`` with ``channels`` input channels along ``axis`` (timm's adapt_input_conv semantics)."""
    array = np.asarray(weight)
    work = np.moveaxis(array.astype(np.float64 if array.dtype == np.float64 else np.float32), axis, 0)
    old = work.shape[0]
    if channels == 1:
        new = work.sum(axis=0, keepdims=True)
    else:
        repeat = math.ceil(channels / old)
        new = np.concatenate([work] * repeat, axis=0)[:channels]
        new = new * work.dtype.type(old / channels)
    new = np.ascontiguousarray(np.moveaxis(new, 0, axis))
    if stored in DTYPES:
        return cast_array(new, stored)
    return new.astype(array.dtype)


def _axis(key: str, shape: tuple[int, ...]) -> int:
    """The input-channel axis of a 4-D convolution weight: Keras kernels are (kh, kw, in, out)."""
    leaf = key.rpartition(".")[2].rpartition("/")[2]
    return 2 if leaf in ("kernel", "kernel:0") or key.endswith(("vars.0", "vars/0")) else 1


def find_first_conv(reader: CheckpointReader, layer: str | None = None) -> FirstConv:
    """The convolution to adapt (see the module docstring)."""
    tensors = reader.tensors
    if layer is not None:
        candidates = [layer] + [f"{layer}{sep}{leaf}" for sep in ".:/" for leaf in ("weight", "kernel", "vars.0")]
        key = next((k for k in candidates if k in tensors), None)
        if key is None:
            convs = [k for k, i in tensors.items() if len(i.shape) == 4]
            raise SurgeryError(f"no convolution weight at `layer` '{layer}' (4-D tensors: {brief_list(convs)})")
        return FirstConv(layer, key, _axis(key, tensors[key].shape), "named with `layer`")
    if reader.kind == STRUCTURAL and reader.architecture is not None:
        try:
            block = arch.build(reader.architecture)
        except ModelSurgeonError:
            block = None
        if block is not None:
            from ..engine.nn import Conv2D
            for path, child in block.named_blocks():
                if isinstance(child, Conv2D):
                    key = f"{path}.weight" if path else "weight"
                    if key in tensors:
                        return FirstConv(path, key, 1, "the first Conv2D in the architecture")
    if reader.graph is not None:
        graph = symbol.Graph.from_json(reader.graph)
        for node in graph.op_nodes():
            if node.op == "Convolution" and len(node.inputs) >= 2:
                weight = graph.nodes[node.inputs[1][0]].name
                data = graph.nodes[node.inputs[0][0]]
                if weight in tensors:
                    feeding = data.name if data.is_variable and data.name not in tensors else None
                    return FirstConv(node.name, weight, 1, f"the first Convolution in the graph (node '{node.name}')",
                                     feeding)
    for key, info in tensors.items():
        if len(info.shape) == 4 and np.dtype(info.dtype).kind == "f" and info.alias_of is None:
            return FirstConv(key.rpartition(".")[0] or key, key, _axis(key, info.shape),
                             "the first 4-D weight in the file (no architecture or graph)")
    raise SurgeryError("no convolution found (no 4-D weight); name it with `layer`")


def plan_adapt_input(reader: CheckpointReader, channels: int, layer: str | None = None) -> Plan:
    """A plan with the first convolution taking ``channels`` input channels; every other tensor copied."""
    if channels <= 0:
        raise SurgeryError(f"`channels` must be positive, not {channels}")
    conv = find_first_conv(reader, layer)
    info = reader.tensors[conv.weight]
    if len(info.shape) != 4 or np.dtype(info.dtype).kind != "f":
        raise SurgeryError(f"'{conv.weight}' is {stored_dtype(info)} of shape {tuple(info.shape)}, not a 2-D "
                           "convolution weight")
    if info.alias_of is not None or any(i.alias_of == conv.weight for i in reader.tensors.values()):
        raise SurgeryError(f"'{conv.weight}' is shared with other layers; changing it would change them too")
    old = info.shape[conv.axis]
    groups = _groups(reader, conv)
    if groups != 1:
        raise SurgeryError(f"'{conv.path}' is a grouped convolution ({groups} groups); its input channels cannot "
                           "be changed on their own")
    shape = list(info.shape)
    shape[conv.axis] = channels
    new_info = TensorInfo(conv.weight, tuple(shape), info.dtype, info.role, info.structural, None,
                          {k: v for k, v in (info.extra or {}).items() if k != "data_offsets"})
    stored = stored_dtype(info)
    axis = conv.axis
    planned: list[tuple[TensorInfo, Source]] = []
    for current in reader.tensors.values():
        if current.key == conv.weight:
            planned.append((new_info, Transform(reader, current.key,
                                                lambda array: adapt_weight(array, channels, axis, stored))))
        else:
            planned.append((current, Copy(reader, current.key)))
    notes = []
    architecture = reader.architecture
    if architecture is not None:
        architecture = _architecture(architecture, reader, conv, old, channels)
        if architecture is None:
            notes.append("the architecture could not follow the new input channels and was left out")
    graph = reader.graph
    if graph is not None:
        graph = _graph(graph, conv, tuple(shape), old, channels)
    config = reader.config
    if isinstance(config, dict) and config.get("num_channels") == old:
        config = {**config, "num_channels": channels}  # a Hugging Face vision config
    elif isinstance(config, dict) and reader.format.startswith("keras"):
        config = _keras_config(config, old, channels)
    how = "summed" if channels == 1 else f"repeated and scaled by {old}/{channels}"
    if channels == old:
        how = "unchanged"
    details = {"layer": conv.path, "weight": conv.weight, "reason": conv.reason, "old_channels": old,
               "channels": channels, "how": how, "old_shape": list(info.shape), "new_shape": shape}
    metadata = {**carried_metadata(reader), "modelsurgeon.adapt_input": f"{conv.path} {old}->{channels}"}
    return Plan.of(planned, reader.kind, architecture=architecture, graph=graph, metadata=metadata,
                   readers=[reader], notes=notes, details=details, config=config)


def _groups(reader: CheckpointReader, conv: FirstConv) -> int:
    if reader.kind == STRUCTURAL and reader.architecture is not None:
        node = _node(reader.architecture["root"], conv.path)
        if node is not None and node.get("type") == "Conv2D":
            return int(node["config"].get("groups", 1))
    if reader.graph is not None:
        for node in reader.graph.get("nodes", []):
            if node.get("name") == conv.path and node.get("op") == "Convolution":
                return int((node.get("attrs") or {}).get("num_group", 1))
    return 1


def _node(root: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = root
    for part in path.split(".") if path else []:
        if node is None:
            return None
        node = dict(node.get("children") or []).get(part)
    return node


def _with_input_channels(inputs: list[dict[str, Any]], old: int, channels: int) -> list[dict[str, Any]]:
    result = copy.deepcopy(inputs)
    if len(result) == 1:
        shape = result[0].get("shape") or []
        if len(shape) == 4 and shape[1] == old:
            shape[1] = channels
    return result


def _architecture(document: dict[str, Any], reader: CheckpointReader, conv: FirstConv, old: int,
                  channels: int) -> dict[str, Any] | None:
    result = copy.deepcopy(document)
    result["inputs"] = _with_input_channels(result.get("inputs") or [], old, channels)
    if reader.kind != STRUCTURAL:
        return result  # a name-keyed file's architecture: only its recorded input shape changes
    node = _node(result["root"], conv.path)
    if node is None or node.get("type") != "Conv2D":
        return None
    node["config"]["in_channels"] = channels
    try:
        built = dict(arch.build(result).named_parameters())
    except ModelSurgeonError:
        return None
    param = built.get(conv.weight)
    if param is None or param.shape is None or param.shape[1] != channels:
        return None
    return result


def _graph(document: dict[str, Any], conv: FirstConv, shape: tuple[int, ...], old: int,
           channels: int) -> dict[str, Any]:
    graph = symbol.Graph.from_json(document)
    for node in graph.nodes:
        if node.name == conv.weight and "__shape__" in node.attrs:
            node.attrs["__shape__"] = str(tuple(shape))
        if conv.graph_input is not None and node.name == conv.graph_input and "__shape__" in node.attrs:
            dims = list(symbol_shape(node.attrs["__shape__"]))
            if len(dims) == 4 and dims[1] == old:
                dims[1] = channels
                node.attrs["__shape__"] = str(tuple(dims))
    return graph.to_dict()


def _keras_config(config: dict[str, Any], old: int, channels: int) -> dict[str, Any]:
    """A Keras model config whose input layers and first Conv2D take ``channels`` (channels last)."""
    result = copy.deepcopy(config)
    first_conv = [True]

    def last_axis(shape: Any) -> None:
        if isinstance(shape, list) and len(shape) == 4 and shape[-1] == old:
            shape[-1] = channels

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            name = node.get("class_name")
            if name == "InputLayer":
                last_axis((node.get("config") or {}).get("batch_shape"))
                last_axis((node.get("config") or {}).get("batch_input_shape"))
            elif name == "Conv2D" and first_conv[0]:
                first_conv[0] = False
                last_axis((node.get("build_config") or {}).get("input_shape"))
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(result)
    return result


def symbol_shape(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.strip("()[] ").split(",") if part.strip())


__all__ = ["FirstConv", "adapt_weight", "find_first_conv", "plan_adapt_input"]
