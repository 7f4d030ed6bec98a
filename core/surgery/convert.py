"""Convert between key schemes: trace a model to key tensors by unique name, or map names back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..binding import match, mismatch_error
from ..errors import ModelSurgeonError, SurgeryError, brief_list
from ..formats.base import NAMED, STRUCTURAL, CheckpointReader, TensorInfo
from ..lazy import lazy_module
from .plan import Copy, Plan, carried_metadata

arch = lazy_module("modelsurgeon.core.engine.architecture")
block_mod = lazy_module("modelsurgeon.core.engine.block")
symbol = lazy_module("modelsurgeon.core.engine.symbol")

if TYPE_CHECKING:
    from ..engine.block import Block
    from ..engine.symbol import Graph


def plan_convert(reader: CheckpointReader, kind: str | None = None, model: Block | None = None,
                 input_shape: tuple[int, ...] | None = None) -> Plan:
    """The plan of a conversion to key scheme ``kind`` (default: the input's): every tensor unchanged,
    keyed by unique name (traced from the file's architecture or ``model``) or by structural name
    (recorded, or aligned with ``model``'s graph)."""
    kind = kind or reader.kind
    if kind == reader.kind and model is None:
        return _plan(reader, reader.kind, list(reader.tensors.values()), {k: k for k in reader.tensors},
                     reader.architecture, reader.graph, [])
    if kind == NAMED:
        return plan_to_named(reader, model, input_shape)
    return plan_to_structural(reader, model, input_shape)


def _plan(reader: CheckpointReader, kind: str, infos: list[TensorInfo], source: dict[str, str],
          architecture: dict[str, Any] | None, graph: dict[str, Any] | None, notes: list[str] | None = None) -> Plan:
    details = {"from": {"format": reader.format, "kind": reader.kind}, "kind": kind,
               "mapping": [{"from": source[i.key], "to": i.key} for i in infos]}
    return Plan.of([(info, Copy(reader, source[info.key])) for info in infos], kind, architecture=architecture,
                   graph=graph, metadata=carried_metadata(reader), readers=[reader], notes=notes or [],
                   details=details)


def _shape_model(block: Block, reader: CheckpointReader, keys: dict[str, str]) -> None:
    """Give the model the file's shapes and dtypes without reading any tensor data."""
    report = match(block.collect_params(), {k: (reader.tensors[v].shape, reader.tensors[v].dtype)
                                            for k, v in keys.items()})
    error = mismatch_error(report, f"'{reader.path}'", type(block).__name__, False, False)
    if error is not None:
        raise error
    for key, param in block.collect_params().items():
        info = reader.tensors[keys[key]]
        param.shape = info.shape
        param._dtype = info.dtype


def _input_shape(block: Block, document: dict[str, Any] | None, input_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    if input_shape is not None:
        return input_shape
    if document is not None:
        specs = arch.input_specs(document)
        if len(specs) == 1:
            return specs[0][1]
    from ..engine.model_zoo import vision
    if isinstance(block, (vision.AlexNet, vision.ResNetV1, vision.ResNetV2, vision.VGG, vision.SqueezeNet,
                          vision.MobileNet)):
        return (1, *vision.INPUT_SHAPE)
    raise SurgeryError("the model's input shape is unknown; give `input_shape` (e.g. 1,3,224,224)")


def plan_to_named(reader: CheckpointReader, model: Block | None = None,
                  input_shape: tuple[int, ...] | None = None) -> Plan:
    """Structural -> name-keyed: trace the model (weights untouched) and key tensors by unique name."""
    if reader.kind != STRUCTURAL:
        raise SurgeryError(f"{reader.path} is already name-keyed")
    document = reader.architecture
    if model is None:
        if document is None:
            raise SurgeryError(f"{reader.path} records no architecture; name the model with `model` (a zoo name)")
        model = arch.build(document)
    if not isinstance(model, block_mod.HybridBlock):
        raise SurgeryError("only HybridBlocks can be traced into a graph")
    params = model.collect_params()
    shared = {i.key: params[i.alias_of] for i in reader.tensors.values() if i.alias_of in params}
    if shared:  # tensors stored once are one Parameter, and so one graph variable
        model.share_parameters(shared)
    keys = {k: k for k in reader.tensors}
    _shape_model(model, reader, keys)
    shape = _input_shape(model, document, input_shape)
    graph, params = model.trace(np.zeros(shape, np.float32), placeholders=True)
    structural: dict[int, list[str]] = {}
    for key, param in model.named_parameters():
        structural.setdefault(id(param), []).append(key)
    aux = set(graph.aux_variables())
    infos, source = [], {}
    for name in graph.variables():
        param = params.get(name)
        if param is None:
            continue
        names = tuple(structural[id(param)])
        src = reader.tensors[names[0]]
        infos.append(TensorInfo(name, src.shape, src.dtype, "aux" if name in aux else "arg", names))
        source[name] = names[0]
    notes = []
    unused = [k for k in reader.tensors if not any(k in i.structural for i in infos)]
    if unused:
        notes.append(f"{len(unused)} tensor(s) not used by the graph were left out: {brief_list(unused)}")
    architecture = arch.describe(model, [{"name": "data", "shape": list(shape), "dtype": "float32"}])
    return _plan(reader, NAMED, infos, source, architecture, graph.to_dict(), notes)


def plan_to_structural(reader: CheckpointReader, model: Block | None = None,
                       input_shape: tuple[int, ...] | None = None) -> Plan:
    """Name-keyed -> structural: recorded structural names, else align with ``model``'s graph."""
    if reader.kind != NAMED:
        raise SurgeryError(f"{reader.path} is already structural")
    recorded = all(info.structural for info in reader.tensors.values()) and reader.tensors
    if recorded and model is None:
        infos: list[TensorInfo] = []
        source: dict[str, str] = {}
        first: dict[str, str] = {}
        for info in reader.tensors.values():
            for name in info.structural:
                if name in source:
                    continue
                alias = first.get(info.key)
                infos.append(TensorInfo(name, info.shape, info.dtype, alias_of=alias))
                source[name] = info.key
                first.setdefault(info.key, name)
        order = _architecture_order(reader.architecture)
        if order:
            rank = {k: i for i, k in enumerate(order)}
            infos = _ordered_with_aliases(infos, rank)
        return _plan(reader, STRUCTURAL, infos, source, reader.architecture, None)
    if model is None:
        raise SurgeryError(f"{reader.path} does not record structural names; name the model with `model` "
                           "ZOO_NAME to align its graph")
    return _align(reader, model, input_shape)


def _architecture_order(document: dict[str, Any] | None) -> list[str]:
    if document is None:
        return []
    try:
        return [k for k, _ in arch.build(document).named_parameters()]
    except ModelSurgeonError:
        return []


def _ordered_with_aliases(infos: list[TensorInfo], rank: dict[str, int]) -> list[TensorInfo]:
    ordered = sorted(infos, key=lambda i: rank.get(i.key, len(rank)))
    seen: set[str] = set()
    result = []
    for info in ordered:  # an alias must come after the key it points to
        if info.alias_of is not None and info.alias_of not in seen:
            info = TensorInfo(info.key, info.shape, info.dtype)
        result.append(info)
        seen.add(info.key)
    return result


def _usage(graph: Graph, names: set[str]) -> list[tuple[str, str, str]]:
    """(op, input role, variable) for each use of a parameter variable, in graph order."""
    from ..engine import ops
    uses, seen = [], set()
    for node in graph.op_nodes():
        roles = ops.get(node.op, node.name).inputs(ops.get(node.op).parse(node.attrs, node.name))
        for position, (source, _, _) in enumerate(node.inputs):
            var = graph.nodes[source].name
            if graph.nodes[source].is_variable and var in names and var not in seen:
                role = roles[position] if position < len(roles) else f"input{position}"
                uses.append((node.op, role, var))
                seen.add(var)
    return uses


def _align(reader: CheckpointReader, model: Block, input_shape: tuple[int, ...] | None) -> Plan:
    if not isinstance(model, block_mod.HybridBlock):
        raise SurgeryError("only HybridBlocks can be traced for alignment")
    shape = _input_shape(model, None, input_shape)
    # Dimensions fixed only by the input (deferred in_units...) are wildcards when aligning:
    # the file may come from a different input size.
    declared = {id(p): p.shape for p in model.unique_parameters()}
    ours, params = model.trace(np.zeros(shape, np.float32), placeholders=True)
    key_of: dict[int, str] = {}
    for key, param in model.named_parameters():
        key_of.setdefault(id(param), key)
    our_uses = _usage(ours, set(params))
    notes = []
    if reader.graph is not None:
        theirs = symbol.Graph.from_json(reader.graph)
        their_uses = _usage(theirs, set(reader.tensors))
        how = "graph order, operator and shape"
    else:
        their_uses = [("?", "?", key) for key in reader.tensors]
        our_uses = [("?", "?", var) for var in params]
        how = "file order and shape only (no graph to align with)"
        notes.append("aligned by file order and shape only: there is no -symbol.json beside the file")
    if len(their_uses) != len(our_uses):
        raise SurgeryError(f"cannot align: the file has {len(their_uses)} parameters in its graph, the model "
                           f"{len(our_uses)}")
    infos, source = [], {}
    for position, ((op_a, role_a, var_a), (op_b, role_b, var_b)) in enumerate(zip(their_uses, our_uses)):
        file_shape = reader.tensors[var_a].shape
        param = params[var_b]
        model_shape = declared[id(param)]
        if (op_a, role_a) != (op_b, role_b) or not _compatible(model_shape, file_shape):
            raise SurgeryError(
                f"cannot align parameter #{position + 1}: the file has '{var_a}' ({op_a} {role_a}, shape "
                f"{file_shape}), the model has '{key_of[id(param)]}' ({op_b} {role_b}, shape {model_shape})")
        key = key_of[id(param)]
        infos.append(TensorInfo(key, file_shape, reader.tensors[var_a].dtype))
        source[key] = var_a
    rank = {k: i for i, (k, _) in enumerate(model.named_parameters())}
    infos = sorted(infos, key=lambda i: rank[i.key])
    for key, param in model.collect_params().items():
        param._shape = declared[id(param)]  # forget the shapes the placeholder input implied
        if key in source:
            param.shape = reader.tensors[source[key]].shape
    notes.append(f"aligned {len(infos)} parameters by {how}")
    inputs = [{"name": "data", "shape": list(shape), "dtype": "float32"}]
    try:  # record the input shape only if the file's weights accept it
        model.trace(np.zeros(shape, np.float32), placeholders=True)
    except ModelSurgeonError:
        inputs = []
        notes.append(f"the weights do not fit input {shape}; no input shape recorded (give `input_shape`)")
    return _plan(reader, STRUCTURAL, infos, source, arch.describe(model, inputs), None, notes)


def _compatible(model_shape: tuple[int, ...] | None, file_shape: tuple[int, ...]) -> bool:
    if model_shape is None:
        return True
    return len(model_shape) == len(file_shape) and all(m in (-1, f) for m, f in zip(model_shape, file_shape))
