"""The exporter: runs a graph once through the engine for shapes and dtypes, converts each node, checks the model."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import ModelSurgeonError, OutputFormatError, SurgeryError, UnsupportedOpError
from ...formats.base import STRUCTURAL, TensorInfo
from ...formats.onnx import require_onnx
from ...formats.onnx_edit import save_model
from ...formats.spec import Documents, Fetch, Progress

if TYPE_CHECKING:
    from onnx import ModelProto

    from ...engine.block import Block
    from ...engine.symbol import Graph
    from ...formats.base import CheckpointReader

from ...formats.onnx import STRUCTURAL_PROP
from .builder import BATCH, DEFAULT_OPSET, _Builder, _converter, _Ctx, _onnx_dtype

# -- the exporter -------------------------------------------------------------------------------

class _Exporter:
    def __init__(self, graph: Graph, tensors: Mapping[str, np.ndarray],
                 inputs: dict[str, tuple[tuple[int, ...], np.dtype]],
                 names: Mapping[str, str], dynamic_batch: bool):
        self.graph = graph
        self.tensors = tensors
        self.inputs = inputs
        self.names = names
        self.dynamic_batch = dynamic_batch
        self._second: list[list[tuple[int, ...]]] | None = None
        label_variables = getattr(graph, "label_variables", None)
        self.labels: list[str] = [name for name in (label_variables() if label_variables else [])
                                  if name not in inputs and name not in tensors]

    def run_shapes(self, batch_delta: int) -> tuple[list[list[tuple[int, ...]]], list[list[np.dtype]],
                                                    list[list[np.ndarray | None]]]:
        """Shapes, dtypes (and small values) of every node output, from one pass of our engine."""
        from ...engine import ops
        graph = self.graph
        last_use: dict[int, int] = {}
        for index, node in enumerate(graph.nodes):
            for source, _, _ in node.inputs:
                last_use[source] = index
        heads = {h[0] for h in graph.heads}
        values: dict[int, list[Any]] = {}
        shapes: list[list[tuple[int, ...]]] = []
        dtypes: list[list[np.dtype]] = []
        small: list[list[np.ndarray | None]] = []
        labels = set(self.labels)
        for index, node in enumerate(graph.nodes):
            if node.is_variable:
                if node.name in labels:  # a training label (softmax_label): inference reads nothing
                    out: list[Any] = [None]
                elif node.name in self.inputs:
                    shape, dtype = self.inputs[node.name]
                    if batch_delta and shape:
                        shape = (shape[0] + batch_delta, *shape[1:])
                    out = [np.zeros(shape, dtype)]
                else:
                    out = [np.asarray(self.tensors[node.name])]
            else:
                args = [values[s][i] for s, i, _ in node.inputs]
                result = ops.invoke(node.op, args, node.attrs, hint=node.name)
                out = list(result) if isinstance(result, (tuple, list)) else [result]
            values[index] = out
            shapes.append([tuple(np.shape(v)) for v in out])
            dtypes.append([np.asarray(v).dtype for v in out])
            small.append([np.asarray(v) if not node.is_variable and np.size(v) <= 1 << 16 else None for v in out])
            for source, _, _ in node.inputs:
                if last_use.get(source) == index and source not in heads:
                    values.pop(source, None)
        return shapes, dtypes, small

    def second_pass_shape(self, index: int, k: int) -> tuple[int, ...]:
        if self._second is None:
            try:
                self._second = self.run_shapes(1)[0]
            except ModelSurgeonError as exc:
                raise UnsupportedOpError(f"the graph does not run at another batch size ({exc}); export it "
                                         "with a fixed batch size (dynamic_batch=False)") from None
        return self._second[index][k]

    def build(self, opset: int, graph_name: str) -> ModelProto:
        onnx = require_onnx()
        from ...engine import ops
        graph = self.graph
        missing = []
        for node in graph.op_nodes():
            if _converter(node) is None:
                missing.append(f"{node.op} (node '{node.name}')")
        if missing:
            raise UnsupportedOpError(f"no ONNX translation for operator {missing[0]}"
                                     + (f" and {len(missing) - 1} more node(s)" if len(missing) > 1 else ""))
        for node in graph.nodes:
            if node.is_variable and node.name not in self.inputs and node.name not in self.tensors \
                    and node.name not in self.labels:
                raise ModelSurgeonError(f"no value for graph variable '{node.name}' (give its tensor, or its "
                                        "shape if it is an input)")
        shapes, dtypes, small = self.run_shapes(0)
        b = _Builder(onnx)
        value_of: dict[tuple[int, int], str] = {}
        used: dict[str, int] = {}
        for node in graph.nodes:
            for s, _, _ in node.inputs:
                if graph.nodes[s].is_variable:
                    used[graph.nodes[s].name] = used.get(graph.nodes[s].name, 0) + 1
        # names: inputs keep theirs, initializers take the structural name where known
        for index, node in enumerate(graph.nodes):
            if node.is_variable:
                name = node.name if node.name in self.inputs else self.names.get(node.name, node.name)
                if name in b.taken:
                    name = node.name
                value_of[(index, 0)] = b.unique(name)
        b.taken.update(node.name for node in graph.nodes)
        overrides: dict[str, np.ndarray] = {}
        for index, node in enumerate(graph.nodes):
            if node.is_variable:
                continue
            spec = ops.get(node.op, node.name)
            ctx = _Ctx(b, node, spec.parse(node.attrs, node.name),
                       [value_of[(s, i)] for s, i, _ in node.inputs],
                       [shapes[s][i] for s, i, _ in node.inputs], [dtypes[s][i] for s, i, _ in node.inputs],
                       shapes[index], dtypes[index], small[index],
                       [graph.nodes[s].name if graph.nodes[s].is_variable and graph.nodes[s].name not in self.inputs
                        else None for s, _, _ in node.inputs], self, index, overrides, used)
            result = _converter(node)(ctx)  # type: ignore[misc]
            outs = result if isinstance(result, list) else [result]
            for k, name in enumerate(outs):
                value_of[(index, k)] = name
        inputs, initializers = [], []
        for index, node in enumerate(graph.nodes):
            if not node.is_variable:
                continue
            name = value_of[(index, 0)]
            if node.name in self.inputs:
                shape, dtype = self.inputs[node.name]
                dims: list[Any] = list(shape)
                if self.dynamic_batch and dims:
                    dims[0] = BATCH
                inputs.append(onnx.helper.make_tensor_value_info(name, _onnx_dtype(onnx, dtype), dims))
            elif node.name in used and node.name not in self.labels:
                array = overrides.get(node.name)
                if array is None:
                    array = np.asarray(self.tensors[node.name])
                initializers.append(onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        outputs = []
        head_names = {}
        for s, i, _ in graph.heads:
            name = value_of[(s, i)]
            if name in head_names or graph.nodes[s].is_variable:  # an output must be a node's own value
                name = b.add("Identity", [name], f"{graph.nodes[s].name}_output")
            head_names[name] = True
            outputs.append(onnx.helper.make_tensor_value_info(name, _onnx_dtype(onnx, dtypes[s][i]),
                                                              [None] * len(shapes[s][i])))
        onnx_graph = onnx.helper.make_graph(b.nodes, graph_name, inputs, outputs, initializer=initializers)
        model = onnx.helper.make_model(onnx_graph, opset_imports=[onnx.helper.make_opsetid("", opset)],
                                       producer_name="modelsurgeon")
        model.ir_version = min(model.ir_version, 9)  # ONNX Runtime 1.17 reads IR 9
        structural = {value_of[(i, 0)]: n.name for i, n in enumerate(graph.nodes)
                      if n.is_variable and n.name in self.names and value_of[(i, 0)] == self.names[n.name]}
        if structural:  # which initializers carry structural names, and the graph variable each was
            onnx.helper.set_model_props(model, {STRUCTURAL_PROP: json.dumps(structural, sort_keys=True)})
        expected = {value_of[(index, k)]: dtype for index, node in enumerate(graph.nodes) if not node.is_variable
                    for k, dtype in enumerate(dtypes[index])}
        return _with_output_shapes(onnx, model, expected)


def _with_output_shapes(onnx: Any, model: ModelProto, expected: dict[str, np.dtype]) -> ModelProto:
    """Check every value's inferred dtype against our engine's (a Cast fixes any difference), then copy
    the inferred shapes of the graph outputs into their declarations."""
    declared = [onnx.TypeProto() for _ in model.graph.output]
    for saved, output in zip(declared, model.graph.output):  # infer what the nodes give, not what we declared
        saved.CopyFrom(output.type)
        output.ClearField("type")
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        inferred = None
    for saved, output in zip(declared, model.graph.output):
        output.type.CopyFrom(saved)
    if inferred is None:
        return model
    known = {v.name: v for v in [*inferred.graph.value_info, *inferred.graph.output]}
    casts: dict[str, int] = {}
    for name, dtype in expected.items():
        found = known.get(name)
        if found is None or not found.type.HasField("tensor_type"):
            continue
        want = _onnx_dtype(onnx, dtype)
        if found.type.tensor_type.elem_type not in (0, want):
            casts[name] = want
    if casts:  # the producer writes name/raw, a Cast right after it gives MXNet's dtype under the old name
        nodes = []
        for node in model.graph.node:
            nodes.append(node)
            for i, out in enumerate(node.output):
                if out in casts:
                    node.output[i] = f"{out}/raw"
                    nodes.append(onnx.helper.make_node("Cast", [f"{out}/raw"], [out], name=f"{out}/dtype",
                                                       to=casts[out]))
        del model.graph.node[:]
        model.graph.node.extend(nodes)
        known = {}
        try:
            inferred = onnx.shape_inference.infer_shapes(model)
            known = {v.name: v for v in [*inferred.graph.value_info, *inferred.graph.output]}
        except Exception:
            pass
    for output in model.graph.output:
        found = known.get(output.name)
        if found is not None and found.type.tensor_type.HasField("shape"):
            output.type.tensor_type.shape.CopyFrom(found.type.tensor_type.shape)
    return model


def export_graph(graph: Graph, tensors: Mapping[str, np.ndarray], input_shapes: Mapping[str, Sequence[int]],
                 *, input_dtypes: Mapping[str, Any] | None = None, names: Mapping[str, str] | None = None,
                 opset: int = DEFAULT_OPSET, dynamic_batch: bool = True, graph_name: str = "modelsurgeon",
                 check: bool = True) -> ModelProto:
    """An ONNX model of ``graph``.

    Args:
        tensors: every non-input variable's array, by graph variable name.
        input_shapes: the shape of each graph input (the first dimension is the batch: it is
            declared dynamic unless ``dynamic_batch=False``).
        names: initializer names by variable name (structural names); others keep the variable name.
        check: run ``onnx.checker.check_model(full_check=True)`` on the result.
    """
    onnx = require_onnx()
    if opset < 17:
        raise ModelSurgeonError(f"opset {opset} is older than the oldest supported (17)")
    known = set(graph.variables())
    unknown = sorted(set(input_shapes) - known)
    if unknown:
        raise ModelSurgeonError(f"graph has no input named {unknown[0]}; its variables include "
                                f"{', '.join(v for v in graph.variables() if v not in tensors)}")
    inputs = {name: (tuple(int(d) for d in shape), np.dtype((input_dtypes or {}).get(name, "float32")))
              for name, shape in input_shapes.items()}
    model = _Exporter(graph, tensors, inputs, dict(names or {}), dynamic_batch).build(opset, graph_name)
    if check:
        try:
            onnx.checker.check_model(model, full_check=True)
        except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
            raise ModelSurgeonError(f"the exported ONNX model does not pass onnx.checker: {exc}") from None
        except ValueError:  # over protobuf's 2 GiB: export_file checks the saved file by path instead
            pass
    return model


def _structural_names(block: Block, params: Mapping[str, Any]) -> dict[str, str]:
    first: dict[int, str] = {}
    for key, param in block.named_parameters():
        first.setdefault(id(param), key)
    return {name: first[id(p)] for name, p in params.items() if id(p) in first}


def export_block(block: Block, input_shape: Sequence[int] | None = None, **options: Any) -> ModelProto:
    """Trace a (weighted) HybridBlock on zeros of ``input_shape`` and export it.

    Without ``input_shape``, the shape of the block's last forward pass is used.
    """
    from ...engine.block import HybridBlock
    if not isinstance(block, HybridBlock):
        raise SurgeryError("only HybridBlocks can be traced into a graph for ONNX export")
    if input_shape is not None:
        graph, params = block.trace(np.zeros(tuple(input_shape), np.float32))
    else:
        graph, params = block.trace()
    inputs = [name for name in graph.variables() if name not in params]
    specs = getattr(block, "_input_specs", None) or []
    if len(inputs) != len(specs):
        raise SurgeryError(f"the traced graph has inputs {inputs} but {len(specs)} input shapes are known")
    tensors = {name: param.data() for name, param in params.items()}
    return export_graph(graph, tensors, {n: s for n, (s, _) in zip(inputs, specs)},
                        input_dtypes={n: d for n, (_, d) in zip(inputs, specs)},
                        names=_structural_names(block, params), **options)


def export_checkpoint(reader: CheckpointReader, input_shape: Sequence[int] | None = None,
                      model: Block | None = None, **options: Any) -> ModelProto:
    """Export a checkpoint that carries a graph (MXNet export, symbol checkpoint, our named files) or
    an architecture (structural files), or whose weights fit ``model`` (a zoo model)."""
    from ...engine import architecture as arch
    from ...engine import symbol
    if reader.kind == STRUCTURAL:
        from ...binding import load_parameters, model_from_reader
        if model is None:
            if reader.architecture is None:
                raise SurgeryError(f"{reader.path} records no architecture; name the model (a zoo name)")
            model = model_from_reader(reader)
        else:
            load_parameters(model, reader.path)
        shape = input_shape
        if shape is None and reader.architecture is not None:
            specs = arch.input_specs(reader.architecture)
            if len(specs) == 1:
                shape = specs[0][1]
        if shape is None:
            shape = _zoo_input_shape(model)
        return export_block(model, shape, **options)
    if reader.graph is None:
        raise SurgeryError(f"{reader.path} is name-keyed but carries no graph; give its -symbol.json")
    graph = symbol.Graph.from_json(reader.graph)
    tensors = _LazyTensors(reader)
    labels = set(graph.label_variables()) if hasattr(graph, "label_variables") else set()
    inputs = [name for name in graph.variables() if name not in reader.tensors and name not in labels]
    specs = arch.input_specs(reader.architecture) if reader.architecture is not None else []
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, Any] = {}
    if input_shape is not None:
        if len(inputs) != 1:
            raise SurgeryError(f"the graph has {len(inputs)} inputs ({', '.join(inputs)}); one shape was given")
        shapes[inputs[0]] = tuple(input_shape)
    elif specs and len(specs) == len(inputs):
        for (_, shape, dtype), var in zip(specs, inputs):
            shapes[var], dtypes[var] = shape, dtype
    else:
        raise SurgeryError("the model's input shape is unknown; give it (e.g. 1,3,224,224)")
    names = {info.key: info.structural[0] for info in reader.tensors.values() if info.structural}
    return export_graph(graph, tensors, shapes, input_dtypes=dtypes, names=names, **options)


class _LazyTensors(Mapping[str, np.ndarray]):
    """A reader's tensors, each read once on first use."""

    def __init__(self, reader: CheckpointReader):
        self.reader = reader
        self.cache: dict[str, np.ndarray] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self.cache:
            if key not in self.reader.tensors:
                raise KeyError(key)
            self.cache[key] = self.reader.read(key)
        return self.cache[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.reader.tensors)

    def __len__(self) -> int:
        return len(self.reader.tensors)

    def __contains__(self, key: object) -> bool:
        return key in self.reader.tensors


def _zoo_input_shape(model: Block) -> tuple[int, ...]:
    specs = getattr(model, "_input_specs", None)
    if specs:
        return tuple(specs[0][0])
    from ...engine.model_zoo import vision
    if isinstance(model, (vision.AlexNet, vision.ResNetV1, vision.ResNetV2, vision.VGG, vision.SqueezeNet,
                          vision.MobileNet)):
        return (1, *vision.INPUT_SHAPE)
    raise SurgeryError("the model's input shape is unknown; give it (e.g. 1,3,224,224)")


def export_file(source: str, output: str, input_shape: Sequence[int] | None = None, model: Block | None = None,
                external_data: bool | None = None, overwrite: bool = True, **options: Any) -> list[str]:
    """``convert SOURCE -o OUTPUT.onnx``: open any checkpoint (with its graph or architecture), export it
    and write it atomically; returns the files written (the external data file first, if any)."""
    from ...binding import open_checkpoint
    with open_checkpoint(source) as reader:
        onnx_model = export_checkpoint(reader, input_shape=input_shape, model=model, **options)
    return save(onnx_model, output, external_data=external_data, overwrite=overwrite, check=True)


def save(model: ModelProto, path: str, external_data: bool | None = None, overwrite: bool = True,
         check: bool = False) -> list[str]:
    """Write ``model`` atomically (see :func:`.edit.save_model`); returns the files written."""
    return save_model(model, path, external_data=external_data, overwrite=overwrite, check=check)


# -- a surgery plan's documents, as an ONNX model --------------------------------------------------

def write_documents(path: str, infos: Sequence[TensorInfo], fetch: Fetch, documents: Documents, *,
                    progress: Progress | None = None, overwrite: bool = True,
                    input_shape: Sequence[int] | None = None) -> list[str]:
    """Export an ONNX model of ``infos`` from the documents' MXNet graph, or from the architecture of a
    structural checkpoint (built, loaded and traced); the input shape is the one the file records, else
    ``input_shape``. Returns notes (none)."""
    from ...engine import architecture as arch
    recorded = arch.input_specs(documents.architecture) if documents.architecture is not None else []
    if documents.graph is None and documents.architecture is not None and documents.kind == STRUCTURAL:
        shape = tuple(input_shape) if input_shape is not None else (recorded[0][1] if len(recorded) == 1 else None)
        if shape is None:
            raise OutputFormatError("the model's input shape is not recorded; give `input_shape`")
        from ...binding import load_arrays
        block = arch.build(documents.architecture)
        load_arrays(block, {info.key: fetch(info) for info in infos}, source="the checkpoint")
        save_model(export_block(block, shape), path, overwrite=overwrite, check=True)
        return []
    if documents.graph is None:
        raise OutputFormatError("an ONNX output needs a graph to export: convert from a file with an MXNet graph "
                                "or with its architecture (or a zoo model)")
    from ...engine.symbol import Graph
    graph = Graph.from_json(documents.graph)
    by_key = {info.key: info for info in infos}
    labels = set(graph.label_variables())
    inputs = [name for name in graph.variables() if name not in by_key and name not in labels]
    if input_shape is not None and len(inputs) == 1:
        shapes, dtypes = {inputs[0]: tuple(input_shape)}, {inputs[0]: "float32"}
    elif len(recorded) == len(inputs):
        shapes = {v: s[1] for v, s in zip(inputs, recorded)}
        dtypes = {v: s[2] for v, s in zip(inputs, recorded)}
    else:
        raise OutputFormatError(f"the graph's input shape ({', '.join(inputs)}) is not recorded; give `input_shape`")
    tensors = {}
    for done, info in enumerate(infos):
        tensors[info.key] = fetch(info)
        if progress is not None:
            progress(done + 1, len(infos))
    names = {info.key: info.structural[0] for info in infos if info.structural}
    model = export_graph(graph, tensors, shapes, input_dtypes=dtypes, names=names)
    save_model(model, path, overwrite=overwrite, check=True)
    return []
