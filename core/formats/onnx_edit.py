"""Edits of ONNX models that keep them valid: rename initializers, replace the classification head,
and write the result atomically (external data included); the ONNX format's description
(:data:`FORMAT`: read with :class:`.onnx.OnnxReader`, written back with the edits a plan makes).

Every edit validates first and works on a copy; the result passes ``onnx.checker``.

>>> import os, tempfile, numpy as np
>>> from modelsurgeon.core.engine import nn
>>> from modelsurgeon.core.onnx.export import export_block
>>> net = nn.Dense(3, in_units=4); _ = net.initialize()
>>> model, changes = rename_initializers(export_block(net, (1, 4)), {"weight": "fc.weight"})
>>> changes
[('weight', 'fc.weight')]
>>> model, head = replace_head(model, 5)
>>> head.weight, head.old_classes, head.classes
('fc.weight', 3, 5)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelSurgeonError, OutputFormatError, SurgeryError, brief_list
from .base import TensorInfo
from .onnx import STRUCTURAL_PROP, OnnxReader, is_onnx, require_onnx, sniff
from .spec import Documents, Fetch, Format, Probe, Progress

if TYPE_CHECKING:
    from onnx import GraphProto, ModelProto, NodeProto

#: Models whose initializers add up to more than this are written with external data by default.
EXTERNAL_DATA_THRESHOLD = 1_800_000_000
#: With external data, initializers smaller than this stay inside the model file.
SMALL_TENSOR_BYTES = 1024


# -- loading --------------------------------------------------------------------------------------

def load(path: str) -> tuple[ModelProto, bool]:
    """The model at ``path`` with every initializer's data inline, and whether it used external data.

    External data is read through :class:`.reader.OnnxReader`, so its files must lie inside the
    model's directory and hold every byte claimed.
    """
    onnx = require_onnx()
    reader = OnnxReader(path)
    with reader:
        model = reader.model
        external = bool(reader._external)
        for tensor in model.graph.initializer:
            if tensor.name in reader._external:
                array = reader.read(tensor.name)
                source = reader.tensors[tensor.name].extra.get("source_dtype")
                if source is not None:
                    raise SurgeryError(f"{path}: initializer {tensor.name!r} is {source} in external data; "
                                       "editing such models is not supported")
                tensor.CopyFrom(onnx.numpy_helper.from_array(array, tensor.name))
    if any(onnx.external_data_helper.uses_external_data(t) for t in _all_tensors(model.graph)):
        raise SurgeryError(f"{path}: tensors inside nodes or subgraphs use external data; not supported")
    return model, external


def _all_tensors(graph: GraphProto) -> Iterator[Any]:
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            for sub in _subgraphs_of(attr):
                yield from _all_tensors(sub)


def _subgraphs_of(attr: Any) -> list[Any]:
    return ([attr.g] if attr.HasField("g") else []) + list(attr.graphs)


def _check(model: ModelProto, what: str) -> None:
    onnx = require_onnx()
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise SurgeryError(f"{what} would leave an invalid ONNX model: {str(exc).splitlines()[0]}") from None
    except ValueError as exc:  # models over 2 GiB are checked without their data
        if "2GB" not in str(exc):
            raise


# -- rename -----------------------------------------------------------------------------------------

def _value_names(graph: GraphProto) -> set[str]:
    names = {i.name for i in graph.input} | {o.name for o in graph.output} | {t.name for t in graph.initializer}
    for node in graph.node:
        names.update(n for n in node.output if n)
    return names


def _rename_in_graph(graph: GraphProto, mapping: Mapping[str, str]) -> None:
    """Rename ``mapping``'s names in ``graph`` and its subgraphs (except where a subgraph defines its own)."""
    for tensor in graph.initializer:
        if tensor.name in mapping:
            tensor.name = mapping[tensor.name]
    for entry in [*graph.input, *graph.output, *graph.value_info]:
        if entry.name in mapping:
            entry.name = mapping[entry.name]
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in mapping:
                node.input[i] = mapping[name]
        for attr in node.attribute:
            for sub in _subgraphs_of(attr):
                defined = {t.name for t in sub.initializer} | {i.name for i in sub.input} | \
                    {o for n in sub.node for o in n.output}
                _rename_in_graph(sub, {k: v for k, v in mapping.items() if k not in defined})


def rename_initializers(model: ModelProto, mapping: Mapping[str, str]) -> tuple[ModelProto, list[tuple[str, str]]]:
    """A copy of ``model`` with initializers renamed (old -> new), every use updated.

    Raises SurgeryError (nothing changed) when a name is unknown or a new name is taken.
    """
    onnx = require_onnx()
    graph = model.graph
    initializers = [t.name for t in graph.initializer]
    mapping = {old: new for old, new in mapping.items() if old != new}
    unknown = sorted(set(mapping) - set(initializers))
    problems = []
    if unknown:
        problems.append(f"no initializer named {brief_list(unknown)} (the model has {len(initializers)}, "
                        f"e.g. {brief_list(initializers[:5])})")
    empty = [old for old, new in mapping.items() if not new]
    if empty:
        problems.append(f"empty new name for {brief_list(empty)}")
    final = [mapping.get(name, name) for name in initializers]
    taken = (_value_names(graph) - set(mapping)) | {n for n in final if final.count(n) > 1}
    clashes = sorted({new for new in mapping.values() if new in taken})
    if clashes:
        problems.append(f"new name(s) {brief_list(clashes)} already name a value in the model")
    if problems:
        raise SurgeryError("cannot rename initializers: " + "; ".join(problems))
    out = onnx.ModelProto()
    out.CopyFrom(model)
    _rename_in_graph(out.graph, mapping)
    _rename_structural_prop(out, mapping)
    _check(out, "this rename")
    return out, [(old, new) for old, new in ((n, mapping[n]) for n in initializers if n in mapping)]


def _rename_structural_prop(model: ModelProto, mapping: Mapping[str, str]) -> None:
    for prop in model.metadata_props:
        if prop.key == STRUCTURAL_PROP:
            try:
                recorded = json.loads(prop.value)
            except ValueError:
                return
            prop.value = json.dumps({mapping.get(k, k): v for k, v in recorded.items()}, sort_keys=True)


# -- replace the head ---------------------------------------------------------------------------------

#: Operators that may sit between the head and the graph output (they keep the class axis).
PASS_THROUGH = frozenset({"Identity", "Softmax", "LogSoftmax", "Sigmoid", "Flatten", "Reshape", "Squeeze",
                          "Unsqueeze", "Relu", "GlobalAveragePool", "GlobalMaxPool", "AveragePool", "MaxPool",
                          "Dropout", "Cast", "ReduceMean", "ReduceMax"})


@dataclass(frozen=True)
class Head:
    """The classification layer found (or replaced) in an ONNX graph."""

    kind: str  # 'Gemm', 'MatMul+Add', 'MatMul' or 'Conv'
    node: str  # name (or first output) of the node holding the weight
    weight: str  # initializer names
    bias: str | None
    features: int
    old_classes: int
    classes: int
    transposed: bool  # weight stored (features, classes) instead of (classes, features)


def _producers(graph: GraphProto) -> dict[str, NodeProto]:
    return {out: node for node in graph.node for out in node.output if out}


def _consumers(graph: GraphProto) -> dict[str, list[NodeProto]]:
    users: dict[str, list[NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    return users


def _attr(node: NodeProto, name: str, default: Any) -> Any:
    onnx = require_onnx()
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def find_head(model: ModelProto, output: str | None = None) -> Head:
    """The last Gemm, MatMul(+Add) or 1x1 Conv feeding ``output`` (the first graph output by default)."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producers = _producers(graph)
    outputs = [o.name for o in graph.output]
    if output is None:
        if not outputs:
            raise SurgeryError("the model has no outputs")
        output = outputs[0]
    elif output not in outputs:
        raise SurgeryError(f"the model has no output {output!r}; its outputs: {brief_list(outputs)}")
    name, path = output, []
    while name in producers:
        node = producers[name]
        path.append(node.op_type)
        found = _head_node(node, inits, producers)
        if found is not None:
            return found
        if node.op_type not in PASS_THROUGH:
            break
        name = node.input[0]
    raise SurgeryError(f"no Gemm, MatMul(+Add) or 1x1 Conv with initializer weights feeds output {output!r} "
                       f"(walked back through {' <- '.join(path) or 'nothing'})")


def _weight_source(name: str, inits: Mapping[str, Any], producers: Mapping[str, NodeProto]) -> tuple[str, bool] | None:
    """(initializer, stored transposed?) behind a weight input: the initializer itself or a 2-D Transpose of it."""
    if name in inits:
        return name, False
    node = producers.get(name)
    if node is not None and node.op_type == "Transpose" and node.input[0] in inits \
            and list(_attr(node, "perm", [1, 0])) == [1, 0]:
        return node.input[0], True
    return None


def _head_node(node: NodeProto, inits: Mapping[str, Any], producers: Mapping[str, NodeProto]) -> Head | None:
    label = node.name or node.output[0]
    if node.op_type == "Gemm" and len(node.input) >= 2:
        if _attr(node, "transA", 0):
            return None
        source = _weight_source(node.input[1], inits, producers)
        if source is None:
            return None
        weight, via_transpose = source
        rows, cols = inits[weight].dims
        trans_b = bool(_attr(node, "transB", 0))
        stored_transposed = trans_b == via_transpose  # the stored array is (features, classes)
        features, classes = (rows, cols) if stored_transposed else (cols, rows)
        bias = node.input[2] if len(node.input) > 2 and node.input[2] in inits else None
        if len(node.input) > 2 and node.input[2] and bias is None:
            return None
        return Head("Gemm", label, weight, bias, features, classes, classes, stored_transposed)
    if node.op_type == "Add":
        for i, j in ((0, 1), (1, 0)):
            matmul = producers.get(node.input[i])
            if matmul is not None and matmul.op_type == "MatMul" and node.input[j] in inits:
                found = _matmul_head(matmul, inits, producers)
                if found is not None and tuple(inits[node.input[j]].dims) in ((found.old_classes,),):
                    return Head("MatMul+Add", found.node, found.weight, node.input[j], found.features,
                                found.old_classes, found.old_classes, found.transposed)
        return None
    if node.op_type == "MatMul":
        return _matmul_head(node, inits, producers)
    if node.op_type == "Conv" and len(node.input) >= 2 and node.input[1] in inits:
        dims = tuple(inits[node.input[1]].dims)
        if len(dims) < 3 or any(d != 1 for d in dims[2:]) or _attr(node, "group", 1) != 1:
            return None
        bias = node.input[2] if len(node.input) > 2 and node.input[2] in inits else None
        return Head("Conv", label, node.input[1], bias, dims[1], dims[0], dims[0], False)
    return None


def _matmul_head(node: NodeProto, inits: Mapping[str, Any], producers: Mapping[str, NodeProto]) -> Head | None:
    source = _weight_source(node.input[1], inits, producers)
    if source is None or len(inits[source[0]].dims) != 2:
        return None
    weight, via_transpose = source
    rows, cols = inits[weight].dims
    features, classes = (cols, rows) if via_transpose else (rows, cols)
    return Head("MatMul", node.name or node.output[0], weight, None, features, classes, classes, not via_transpose)


def _downstream(graph: GraphProto, start: list[str]) -> set[str]:
    users = _consumers(graph)
    seen: set[str] = set()
    stack = list(start)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in users.get(name, []):
            stack.extend(o for o in node.output if o)
    return seen


def replace_head(model: ModelProto, classes: int, weight: np.ndarray | None = None, bias: np.ndarray | None = None,
                 output: str | None = None, seed: int = 0) -> tuple[ModelProto, Head]:
    """A copy of ``model`` whose head predicts ``classes`` classes.

    ``weight`` is (classes, features) (or (classes, features, 1, 1) for a Conv head) and ``bias``
    (classes,); without them the weight is drawn Xavier-uniform from ``seed`` and the bias is zero.
    The graph output's class dimension is updated and stale shape annotations after the head
    are dropped (then inferred again where ONNX can).
    """
    onnx = require_onnx()
    if not isinstance(classes, (int, np.integer)) or classes <= 0:
        raise SurgeryError(f"the number of classes must be a positive integer, not {classes!r}")
    head = find_head(model, output)
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    stored = inits[head.weight]
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(stored.data_type))
    users = _consumers(graph)
    shared = [n.name or n.output[0] for n in users.get(head.weight, [])
              if n.op_type not in ("Gemm", "MatMul", "Conv", "Transpose")]
    if len(users.get(head.weight, [])) > 1 or shared:
        raise SurgeryError(f"the head weight {head.weight!r} is used by several nodes; not replacing it")
    shape = (classes, head.features) + (tuple(stored.dims[2:]) if head.kind == "Conv" else ())
    if weight is None:
        limit = np.sqrt(6.0 / (head.features + classes))
        weight = np.random.default_rng(seed).uniform(-limit, limit, shape)
    weight = np.asarray(weight)
    if weight.shape != shape:
        raise SurgeryError(f"the new head weight must have shape {shape}, not {weight.shape}")
    if bias is None:
        bias = np.zeros(classes)
    bias = np.asarray(bias)
    if bias.shape != (classes,):
        raise SurgeryError(f"the new head bias must have shape {(classes,)}, not {bias.shape}")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    new_inits = {t.name: t for t in g.initializer}
    stored_weight = weight.T if head.transposed else weight
    new_inits[head.weight].CopyFrom(onnx.numpy_helper.from_array(np.ascontiguousarray(stored_weight.astype(dtype)),
                                                                 head.weight))
    if head.bias is not None:
        bias_dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(new_inits[head.bias].data_type))
        new_inits[head.bias].CopyFrom(onnx.numpy_helper.from_array(bias.astype(bias_dtype), head.bias))
    # shapes after the head: the class dimension of the outputs changes, stale annotations go
    head_node = next(n for n in g.node if (n.name or n.output[0]) == head.node)
    after = _downstream(g, [o for o in head_node.output if o])
    replaced = {head.weight, head.bias} - {None}
    kept = [v for v in g.value_info if v.name not in after and v.name not in replaced]
    for value in g.input:  # old IR versions also list initializers as inputs
        if value.name in replaced:
            value.CopyFrom(onnx.helper.make_tensor_value_info(value.name, new_inits[value.name].data_type,
                                                              list(new_inits[value.name].dims)))
    del g.value_info[:]
    g.value_info.extend(kept)
    for value in g.output:
        if value.name in after and value.type.HasField("tensor_type"):
            dims = value.type.tensor_type.shape.dim
            matches = [d for d in dims if d.HasField("dim_value") and d.dim_value == head.old_classes]
            if matches:
                conv_channels = head.kind == "Conv" and len(matches) > 1 and len(dims) == 4
                (matches[1] if conv_channels else matches[-1]).dim_value = classes
    _check(out, "this head replacement")
    try:
        inferred = onnx.shape_inference.infer_shapes(out)
        known = {v.name for v in g.value_info}
        g.value_info.extend(v for v in inferred.graph.value_info if v.name in after and v.name not in known)
    except Exception:
        pass
    return out, Head(head.kind, head.node, head.weight, head.bias, head.features, head.old_classes, classes,
                     head.transposed)


# -- writing ------------------------------------------------------------------------------------------

def save_model(model: ModelProto, path: str, external_data: bool | None = None, location: str | None = None,
               overwrite: bool = True, check: bool = False) -> list[str]:
    """Write ``model`` to ``path`` whole or not at all; returns the files written.

    With ``external_data`` (by default: when the weights pass :data:`EXTERNAL_DATA_THRESHOLD`),
    initializers of 1 KiB or more go to ``location`` (default ``<file name>.data``) beside the
    model, written first and atomically too. ``model`` must hold its data inline (see :func:`load`).
    """
    onnx = require_onnx()
    from .atomic import atomic_output
    path = os.fspath(path)
    if external_data is None:
        external_data = sum(len(t.raw_data) for t in model.graph.initializer) > EXTERNAL_DATA_THRESHOLD
    written = []
    out = model
    if external_data:
        location = location or os.path.basename(path) + ".data"
        if os.path.dirname(location) or location in (".", ".."):
            raise ModelSurgeonError(f"external data location {location!r} must be a plain file name")
        data_path = os.path.join(os.path.dirname(os.path.abspath(path)), location)
        out = onnx.ModelProto()
        out.CopyFrom(model)
        with atomic_output(data_path, overwrite=overwrite) as tmp:
            with open(tmp, "wb") as handle:
                offset = 0
                for tensor in out.graph.initializer:
                    if onnx.external_data_helper.uses_external_data(tensor):
                        raise ModelSurgeonError(f"initializer {tensor.name!r} still refers to external data")
                    array = onnx.numpy_helper.to_array(tensor)
                    if array.nbytes < SMALL_TENSOR_BYTES:
                        continue
                    data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
                    pad = (-offset) % 4096  # page-aligned, so readers can map each tensor
                    handle.write(b"\0" * pad)
                    offset += pad
                    handle.write(data)
                    tensor.CopyFrom(onnx.numpy_helper.from_array(array, tensor.name))
                    onnx.external_data_helper.set_external_data(tensor, location, offset, len(data))
                    tensor.data_location = onnx.TensorProto.EXTERNAL
                    tensor.ClearField("raw_data")
                    offset += len(data)
        written.append(data_path)
    with atomic_output(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(out.SerializeToString())
        if check:  # by path, so models over 2 GiB (external data beside tmp) are checked too
            try:
                onnx.checker.check_model(tmp, full_check=True)
            except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
                raise ModelSurgeonError(f"{path}: the model does not pass onnx.checker: "
                                        f"{str(exc).splitlines()[0]}") from None
    written.append(path)
    return written


__all__ = [
    "EXTERNAL_DATA_THRESHOLD",
    "PASS_THROUGH",
    "Head",
    "find_head",
    "load",
    "rename_initializers",
    "replace_head",
    "save_model",
]


# -- the format's description -------------------------------------------------------------------------

def _sniff(probe: Probe) -> bool:
    if not sniff(probe.head):
        return False
    return probe.path.lower().endswith(".onnx") or is_onnx(probe.path)


def write(path: str, infos: Sequence[TensorInfo], fetch: Fetch, documents: Documents, *,
          progress: Progress | None = None, overwrite: bool = True, **_: Any) -> list[str]:
    """Write back an ONNX input (``documents.origin``) with the plan's tensors: renamed initializers (the
    plan keeps their order), a replaced head, new values. A model made from another format's graph or
    architecture is built by :mod:`modelsurgeon.core.onnx.export`, which the surgery layer calls."""
    if documents.origin is None or not os.path.isfile(documents.origin) or not is_onnx(documents.origin):
        raise OutputFormatError("an ONNX model is written from an ONNX input, or exported from a graph or an "
                                "architecture (modelsurgeon.core.onnx.export)")
    _write_back(path, infos, fetch, documents.origin, progress, overwrite)
    return []


def _write_back(path: str, infos: Sequence[TensorInfo], fetch: Fetch, origin: str, progress: Progress | None,
                overwrite: bool) -> None:
    """The ONNX input with the plan's tensors: renamed initializers (the plan keeps their order), a
    replaced head (through :func:`.edit.replace_head`, so the graph's shapes follow), new values."""
    onnx = require_onnx()
    model, external = load(origin)
    names = [t.name for t in model.graph.initializer]
    keys = [info.key for info in infos]
    if set(keys) <= set(names) and len(keys) == len(names):
        mapping: dict[str, str] = {}
    elif len(keys) == len(names):  # a rename keeps every tensor in its place
        mapping = {old: new for old, new in zip(names, keys) if old != new}
        model, _ = rename_initializers(model, mapping)
    else:
        missing = sorted(set(names) - set(keys)) or sorted(set(keys) - set(names))
        raise SurgeryError(f"an ONNX model keeps its initializers: {brief_list(missing)} "
                           f"{'would be missing from' if set(names) - set(keys) else 'are not in'} {origin}")
    stored = {t.name: t for t in model.graph.initializer}
    arrays = {}
    for done, info in enumerate(infos):
        arrays[info.key] = np.asarray(fetch(info))
        if progress is not None:
            progress(done + 1, len(infos))
    reshaped = {k for k, a in arrays.items() if tuple(a.shape) != tuple(stored[k].dims)}
    if reshaped:
        head = find_head(model)
        if not reshaped <= {head.weight, head.bias}:
            raise SurgeryError(f"the shapes of {brief_list(sorted(reshaped))} change, and only the head's "
                               f"({head.weight}) may change in an ONNX model")
        weight = arrays[head.weight]
        weight = weight.T if head.transposed else weight
        bias = arrays.get(head.bias) if head.bias is not None else None
        model, _ = replace_head(model, int(weight.shape[0]), weight, bias)
        stored = {t.name: t for t in model.graph.initializer}
    for key, array in arrays.items():
        if key not in reshaped:
            stored[key].CopyFrom(onnx.numpy_helper.from_array(np.ascontiguousarray(array), key))
    save_model(model, path, external_data=external or None, overwrite=overwrite, check=True)


FORMAT = Format("onnx", "ONNX model", (".onnx",), _sniff, OnnxReader, write, reports=("onnx",))
