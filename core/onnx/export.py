"""MXNet-style graphs (:class:`~..engine.symbol.Graph`, a ``-symbol.json``) to ONNX models.

The graph first runs once through our own engine on an input of the given shape (zeros), which
fixes every intermediate shape and dtype exactly as MXNet would have them; each node is then
translated by the converter registered for its operator. Operators whose MXNet attributes need
a concrete shape (``Reshape`` with MXNet's special codes, ``repeat``...) get it from that pass,
and the batch dimension stays dynamic: a second pass at another batch size (run only when such an
operator asks) tells which output dimension follows the batch. Initializers keep the graph's
variable names, or the structural names (``features.0.weight``) where the checkpoint records
them. An operator ONNX cannot express raises :class:`UnsupportedOpError` naming it and its node.

>>> import numpy as np
>>> from modelsurgeon.core.engine import nn
>>> net = nn.Dense(3, in_units=4); _ = net.initialize()
>>> model = export_block(net, (2, 4))
>>> [i.name for i in model.graph.initializer]
['weight', 'bias']
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..errors import ModelSurgeonError, SurgeryError, UnsupportedOpError
from . import require_onnx

if TYPE_CHECKING:
    from onnx import ModelProto

    from ..engine.block import Block
    from ..engine.symbol import Graph, Node
    from ..formats.base import CheckpointReader

#: The opset our models declare (ONNX Runtime 1.17 and newer run it).
DEFAULT_OPSET = 18
#: Model metadata: JSON {initializer name: graph variable name} of initializers named structurally.
STRUCTURAL_PROP = "modelsurgeon.structural"
#: The symbolic name of the batch dimension.
BATCH = "N"
_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min


# -- building -----------------------------------------------------------------------------------

class _Builder:
    """ONNX nodes and initializers under construction, with unique value names."""

    def __init__(self, onnx: Any):
        self.onnx = onnx
        self.nodes: list[Any] = []
        self.taken: set[str] = set()

    def unique(self, base: str) -> str:
        name, n = base, 1
        while name in self.taken:
            name, n = f"{base}_{n}", n + 1
        self.taken.add(name)
        return name

    def add(self, op: str, inputs: Sequence[str], hint: str, outputs: int = 1, **attrs: Any) -> Any:
        """Append one node; returns its output name (or list of names when ``outputs > 1``)."""
        names = [self.unique(hint if i == 0 else f"{hint}:{i}") for i in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), names, name=self.unique(f"{hint}/{op}"),
                                                     **{k: v for k, v in attrs.items() if v is not None}))
        return names[0] if outputs == 1 else names

    def const(self, value: Any, hint: str, dtype: Any = None) -> str:
        """A Constant node (helper values are not initializers: those are the model's weights)."""
        tensor = self.onnx.numpy_helper.from_array(np.ascontiguousarray(np.asarray(value, dtype=dtype)))
        return self.add("Constant", [], hint, value=tensor)

    def ints(self, values: Sequence[int], hint: str) -> str:
        return self.const(np.asarray(list(values), np.int64), hint)


@dataclass
class _Ctx:
    """What a converter sees of one MXNet node."""

    b: _Builder
    node: Node
    attrs: dict[str, Any]
    inputs: list[str]
    shapes: list[tuple[int, ...]]
    dtypes: list[np.dtype]
    out_shapes: list[tuple[int, ...]]
    out_dtypes: list[np.dtype]
    out_values: list[np.ndarray | None]
    variables: list[str | None]  # graph variable name of each input, or None
    exporter: _Exporter
    index: int = 0
    overrides: dict[str, np.ndarray] = field(default_factory=dict)
    uses: dict[str, int] = field(default_factory=dict)  # consumers of each graph variable

    @property
    def name(self) -> str:
        return self.node.name

    def add(self, op: str, inputs: Sequence[str], suffix: str = "", outputs: int = 1, **attrs: Any) -> Any:
        return self.b.add(op, inputs, f"{self.name}{suffix}", outputs, **attrs)

    def const(self, value: Any, suffix: str, dtype: Any = None) -> str:
        return self.b.const(value, f"{self.name}/{suffix}", dtype)

    def scalar(self, value: float, suffix: str = "scalar", like: int = 0) -> str:
        """A 0-d constant of input ``like``'s dtype (MXNet scalars take the array's dtype)."""
        return self.const(np.asarray(value, self.dtypes[like]), suffix)

    def ints(self, values: Sequence[int], suffix: str) -> str:
        return self.b.ints(values, f"{self.name}/{suffix}")

    def unsupported(self, why: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"operator {self.node.op} (node '{self.name}') cannot be exported to ONNX: {why}")

    def target_shape(self, k: int = 0) -> list[int]:
        """Output ``k``'s shape for a Reshape: static, with -1 where the batch dimension goes."""
        first = self.out_shapes[k]
        if not self.exporter.dynamic_batch:
            return list(first)
        second = self.exporter.second_pass_shape(self.index, k)
        moved = [i for i, (a, b) in enumerate(zip(first, second)) if a != b]
        if len(first) != len(second) or len(moved) > 1:
            raise self.unsupported(f"its output shape {first} depends on the batch size in more than one "
                                   "dimension; export with a fixed batch size")
        target = list(first)
        if moved:
            target[moved[0]] = -1
        if 0 in target:
            raise self.unsupported(f"output shape {first} has an empty dimension")
        return target

    def cast_to_output(self, value: str, k: int = 0, suffix: str = "/cast") -> str:
        return self.add("Cast", [value], suffix, to=_onnx_dtype(self.b.onnx, self.out_dtypes[k]))


Converter = Callable[[_Ctx], "str | list[str]"]
_CONVERTERS: dict[str, Converter] = {}


_F = TypeVar("_F", bound=Callable[..., Any])


def converts(*names: str) -> Callable[[_F], _F]:
    """Register a converter for MXNet operators ``names`` (and their registered aliases)."""
    def wrap(fn: _F) -> _F:
        for name in names:
            _CONVERTERS[name] = fn
        return fn
    return wrap


def exportable_ops() -> list[str]:
    """MXNet operator names the exporter can translate."""
    return sorted(_CONVERTERS)


def _onnx_dtype(onnx: Any, dtype: np.dtype) -> int:
    return int(onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))


def _converter(node: Node) -> Converter | None:
    from ..engine import ops
    found = _CONVERTERS.get(node.op)
    if found is None:
        spec = ops.supported_spec(node.op)
        if spec is not None:
            found = _CONVERTERS.get(spec.name)
    return found


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
        from ..engine import ops
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
        from ..engine import ops
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
    from ..engine.block import HybridBlock
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
    from ..engine import architecture as arch
    from ..engine import symbol
    from ..formats.base import STRUCTURAL
    if reader.kind == STRUCTURAL:
        from ..binding import load_parameters, model_from_reader
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
    from ..engine.model_zoo import vision
    if isinstance(model, (vision.AlexNet, vision.ResNetV1, vision.ResNetV2, vision.VGG, vision.SqueezeNet,
                          vision.MobileNet)):
        return (1, *vision.INPUT_SHAPE)
    raise SurgeryError("the model's input shape is unknown; give it (e.g. 1,3,224,224)")


def export_file(source: str, output: str, input_shape: Sequence[int] | None = None, model: Block | None = None,
                external_data: bool | None = None, overwrite: bool = True, **options: Any) -> list[str]:
    """``convert SOURCE -o OUTPUT.onnx``: open any checkpoint (with its graph or architecture), export it
    and write it atomically; returns the files written (the external data file first, if any)."""
    from ..binding import open_checkpoint
    with open_checkpoint(source) as reader:
        onnx_model = export_checkpoint(reader, input_shape=input_shape, model=model, **options)
    return save(onnx_model, output, external_data=external_data, overwrite=overwrite, check=True)


def save(model: ModelProto, path: str, external_data: bool | None = None, overwrite: bool = True,
         check: bool = False) -> list[str]:
    """Write ``model`` atomically (see :func:`.edit.save_model`); returns the files written."""
    from .edit import save_model
    return save_model(model, path, external_data=external_data, overwrite=overwrite, check=check)


# -- converters: structure ----------------------------------------------------------------------

def _nd(value: tuple[int, ...], default: int, n: int) -> list[int]:
    if not value:
        return [default] * n
    if len(value) == 1:
        return list(value) * n
    return list(value)


@converts("Convolution")
def _convolution(c: _Ctx) -> str:
    a = c.attrs
    if a.get("layout") not in (None, "None", "NCHW", "NCW", "NCDHW"):
        raise c.unsupported(f"layout {a['layout']}")
    n = len(a["kernel"])
    return c.add("Conv", c.inputs, kernel_shape=list(a["kernel"]), strides=_nd(a.get("stride", ()), 1, n),
                 dilations=_nd(a.get("dilate", ()), 1, n), pads=_nd(a.get("pad", ()), 0, n) * 2,
                 group=a.get("num_group", 1))


@converts("Deconvolution")
def _deconvolution(c: _Ctx) -> str:
    a = c.attrs
    if a.get("layout") not in (None, "None", "NCHW", "NCW", "NCDHW"):
        raise c.unsupported(f"layout {a['layout']}")
    kernel = list(a["kernel"])
    n = len(kernel)
    stride, dilate = _nd(a.get("stride", ()), 1, n), _nd(a.get("dilate", ()), 1, n)
    pad, adj = _nd(a.get("pad", ()), 0, n), _nd(a.get("adj", ()), 0, n)
    target = tuple(a.get("target_shape") or ())
    if target and any(target):
        pad, adj = [], []
        for i in range(n):
            total = stride[i] * (c.shapes[0][2 + i] - 1) + dilate[i] * (kernel[i] - 1) + 1 - target[i]
            pad.append((total + 1) // 2)
            adj.append(total % 2)
    inputs = c.inputs[:2] if a.get("no_bias", True) else c.inputs
    return c.add("ConvTranspose", inputs, kernel_shape=kernel, strides=stride, dilations=dilate, pads=pad * 2,
                 output_padding=adj if any(adj) else None, group=a.get("num_group", 1))


@converts("FullyConnected")
def _fully_connected(c: _Ctx) -> str:
    a = c.attrs
    data, weight = c.inputs[0], c.inputs[1]
    bias = None if a.get("no_bias") else c.inputs[2]
    rank = len(c.shapes[0])
    if a.get("flatten", True) and rank != 2:
        data = c.add("Flatten", [data], "/flatten", axis=1)
        rank = 2
    if rank == 2:
        return c.add("Gemm", [data, weight] + ([bias] if bias else []), transB=1)
    out = c.add("MatMul", [data, c.add("Transpose", [weight], "/weight_t", perm=[1, 0])], "/matmul")
    return c.add("Add", [out, bias]) if bias else out


@converts("Pooling")
def _pooling(c: _Ctx) -> str:
    a = c.attrs
    if a.get("layout") not in (None, "None", "NCHW", "NCW", "NCDHW"):
        raise c.unsupported(f"layout {a['layout']}")
    kind = a.get("pool_type", "max")
    spatial = len(c.shapes[0]) - 2
    if a.get("global_pool"):
        if kind == "max":
            return c.add("GlobalMaxPool", c.inputs)
        if kind == "avg":
            return c.add("GlobalAveragePool", c.inputs)
        if kind == "sum":
            return c.add("ReduceSum", [c.inputs[0], c.ints(range(2, 2 + spatial), "axes")], keepdims=1)
        if kind == "lp":
            powered = _lp_power(c)
            total = c.add("ReduceSum", [powered, c.ints(range(2, 2 + spatial), "axes")], "/lp_sum", keepdims=1)
            return _lp_root(c, total)
        raise c.unsupported(f"pool_type {kind}")
    kernel = _nd(a.get("kernel", ()), 1, spatial)
    stride = _nd(a.get("stride", ()), 1, spatial)
    pad = _nd(a.get("pad", ()), 0, spatial)
    convention = a.get("pooling_convention", "valid")
    if convention not in ("valid", "full"):
        raise c.unsupported(f"pooling_convention {convention}")
    ceil = 1 if convention == "full" else 0
    common: dict[str, Any] = {"kernel_shape": kernel, "strides": stride, "pads": pad * 2, "ceil_mode": ceil}
    if kind == "max":
        return c.add("MaxPool", c.inputs, **common)
    if kind == "avg":
        return c.add("AveragePool", c.inputs, count_include_pad=1 if a.get("count_include_pad", True) else 0,
                     **common)
    if kind in ("sum", "lp"):
        # zeros add nothing to a sum: pad explicitly so every window (the 'full' convention's last
        # ones included) lies inside, then a plain average times the window size is the sum
        source = c.inputs[0] if kind == "sum" else _lp_power(c)
        ends = [max(0, (o - 1) * s + k - (size + p)) for o, s, k, size, p
                in zip(c.out_shapes[0][2:], stride, kernel, c.shapes[0][2:], pad)]
        if any(pad) or any(ends):
            source = c.add("Pad", [source, c.ints([0, 0, *pad, 0, 0, *ends], "pads")], "/padded")
        avg = c.add("AveragePool", [source], "/avg", kernel_shape=kernel, strides=stride)
        total = c.add("Mul", [avg, c.scalar(float(math.prod(kernel)), "window")], "" if kind == "sum" else "/lp_sum")
        return total if kind == "sum" else _lp_root(c, total)
    raise c.unsupported(f"pool_type {kind}")


def _lp_power(c: _Ctx) -> str:
    """MXNet's lp pooling is (sum of x**p) ** (1/p), signs kept (no absolute value, unlike ONNX LpPool)."""
    p = int(c.attrs.get("p_value") or 2)
    x = c.inputs[0]
    if p == 1:
        return x
    return c.add("Pow", [x, c.scalar(float(p), "p")], "/lp_pow")


def _lp_root(c: _Ctx, total: str) -> str:
    p = int(c.attrs.get("p_value") or 2)
    if p == 1:
        return c.add("Identity", [total])
    if p == 2:
        return c.add("Sqrt", [total])
    magnitude = c.add("Pow", [c.add("Abs", [total], "/lp_abs"), c.scalar(1.0 / p, "inv_p")], "/lp_root")
    return c.add("Mul", [c.add("Sign", [total], "/lp_sign"), magnitude]) if p % 2 else magnitude


@converts("_contrib_AdaptiveAvgPooling2D")
def _adaptive_avg_pool(c: _Ctx) -> str:
    h, w = c.shapes[0][2:]
    oh, ow = c.out_shapes[0][2:]
    if oh == ow == 1:
        return c.add("GlobalAveragePool", c.inputs)
    if h % oh == 0 and w % ow == 0:
        return c.add("AveragePool", c.inputs, kernel_shape=[h // oh, w // ow], strides=[h // oh, w // ow])

    def averaging(size: int, out: int) -> np.ndarray:
        matrix = np.zeros((out, size), np.float64)
        for i in range(out):
            start, end = (i * size) // out, -(-((i + 1) * size) // out)
            matrix[i, start:end] = 1.0 / (end - start)
        return matrix.astype(c.dtypes[0])
    rows = c.add("MatMul", [c.inputs[0], c.const(averaging(w, ow).T, "cols")], "/cols")
    return c.add("MatMul", [c.const(averaging(h, oh), "rows"), rows])


@converts("BatchNorm", "_contrib_SyncBatchNorm")
def _batch_norm(c: _Ctx) -> str | list[str]:
    a = c.attrs
    data, gamma, beta, mean, var = c.inputs
    if a.get("output_mean_var"):  # inference: the moving mean and 1/sqrt(moving var + eps) come out too
        stats = dict(a, output_mean_var=False)
        out = _batch_norm(_Ctx(c.b, c.node, stats, c.inputs, c.shapes, c.dtypes, c.out_shapes[:1], c.out_dtypes[:1],
                               c.out_values[:1], c.variables, c.exporter, c.index, c.overrides, c.uses))
        eps_stats = c.scalar(float(a.get("eps", 1e-3)), "eps_stats", like=4)
        invstd = c.add("Reciprocal", [c.add("Sqrt", [c.add("Add", [var, eps_stats], "/var_eps_s")], "/std_s")], ":2")
        return [out if isinstance(out, str) else out[0], c.add("Identity", [mean], ":1"), invstd]
    if a.get("fix_gamma", True):
        ones = np.ones(c.shapes[1], c.dtypes[1])
        variable = c.variables[1]
        if variable is not None and c.uses.get(variable) == 1:
            c.overrides[variable] = ones  # MXNet ignores a fixed gamma: the model holds ones
        else:
            gamma = c.const(ones, "gamma_fixed")
    axis = a.get("axis", 1) % len(c.shapes[0])
    eps = float(a.get("eps", 1e-3))
    if axis == 1:
        return c.add("BatchNormalization", [data, gamma, beta, mean, var], epsilon=eps)
    shape = [1] * len(c.shapes[0])
    shape[axis] = -1
    target = c.ints(shape, "bshape")
    std = c.add("Sqrt", [c.add("Add", [var, c.scalar(eps, "eps", 4)], "/var_eps")], "/std")
    scale = c.add("Div", [gamma, std], "/scale")
    shift = c.add("Sub", [beta, c.add("Mul", [mean, scale], "/mean_scale")], "/shift")
    out = c.add("Mul", [data, c.add("Reshape", [scale, target], "/scale_b")], "/scaled")
    return c.add("Add", [out, c.add("Reshape", [shift, target], "/shift_b")])


@converts("InstanceNorm")
def _instance_norm(c: _Ctx) -> str:
    return c.add("InstanceNormalization", c.inputs, epsilon=float(c.attrs.get("eps", 1e-3)))


def _normalize(c: _Ctx, data: str, axes: list[int], eps: float, tag: str) -> str:
    axes_name = c.ints(axes, f"{tag}_axes")
    mean = c.add("ReduceMean", [data, axes_name], f"/{tag}_mean", keepdims=1)
    centred = c.add("Sub", [data, mean], f"/{tag}_centred")
    var = c.add("ReduceMean", [c.add("Mul", [centred, centred], f"/{tag}_sq"), axes_name], f"/{tag}_var", keepdims=1)
    std = c.add("Sqrt", [c.add("Add", [var, c.scalar(eps, f"{tag}_eps")], f"/{tag}_var_eps")], f"/{tag}_std")
    return c.add("Div", [centred, std], f"/{tag}_normed")


@converts("LayerNorm")
def _layer_norm(c: _Ctx) -> str | list[str]:
    a = c.attrs
    rank = len(c.shapes[0])
    axis = a.get("axis", -1) % rank
    eps = float(a.get("eps", 1e-5))
    if a.get("output_mean_var"):
        return _layer_norm_with_stats(c, axis, eps)
    if axis == rank - 1:
        return c.add("LayerNormalization", c.inputs, axis=-1, epsilon=eps)
    normed = _normalize(c, c.inputs[0], [axis], eps, "ln")
    shape = [1] * rank
    shape[axis] = -1
    target = c.ints(shape, "bshape")
    scaled = c.add("Mul", [normed, c.add("Reshape", [c.inputs[1], target], "/gamma_b")], "/scaled")
    return c.add("Add", [scaled, c.add("Reshape", [c.inputs[2], target], "/beta_b")])


def _layer_norm_with_stats(c: _Ctx, axis: int, eps: float) -> list[str]:
    """LayerNorm's three outputs: the result, the mean and the standard deviation (kept dims)."""
    x = c.inputs[0]
    axes = c.ints([axis], "axes")
    mean = c.add("ReduceMean", [x, axes], "/mean", keepdims=1)
    centred = c.add("Sub", [x, mean], "/centred")
    var = c.add("ReduceMean", [c.add("Mul", [centred, centred], "/sq"), axes], "/var", keepdims=1)
    std = c.add("Sqrt", [c.add("Add", [var, c.scalar(eps, "eps")], "/var_eps")], "/std")
    shape = [1] * len(c.shapes[0])
    shape[axis] = -1
    target = c.ints(shape, "bshape")
    scaled = c.add("Mul", [c.add("Div", [centred, std], "/normed"), c.add("Reshape", [c.inputs[1], target], "/g")],
                   "/scaled")
    out = c.add("Add", [scaled, c.add("Reshape", [c.inputs[2], target], "/b")])
    return [out, *(c.add("Reshape", [v, c.ints(list(c.out_shapes[k]), f"shape{k}")], f":{k}")
                   for k, v in ((1, mean), (2, std)))]


@converts("GroupNorm")
def _group_norm(c: _Ctx) -> str:
    a = c.attrs
    groups = int(a.get("num_groups", 1))
    shape = c.shapes[0]
    grouped = c.add("Reshape", [c.inputs[0], c.ints([0, groups, -1], "gshape")], "/grouped")
    normed = _normalize(c, grouped, [2], float(a.get("eps", 1e-5)), "gn")
    back = c.add("Reshape", [normed, c.add("Shape", [c.inputs[0]], "/shape")], "/ungrouped")
    channels = shape[1]
    bshape = [1] * len(shape)
    bshape[1] = -1
    gamma, beta = c.inputs[1], c.inputs[2]
    if c.shapes[1][0] != channels:  # MXNet 1.x: one gamma per group
        gamma = c.add("Reshape", [c.add("Expand", [c.add("Unsqueeze", [gamma, c.ints([1], "ax1")], "/g_u"),
                                                   c.ints([groups, channels // groups], "gexp")], "/g_e"),
                                  c.ints([-1], "flat")], "/g_flat")
        beta = c.add("Reshape", [c.add("Expand", [c.add("Unsqueeze", [beta, c.ints([1], "bx1")], "/b_u"),
                                                  c.ints([groups, channels // groups], "bexp")], "/b_e"),
                                 c.ints([-1], "bflat")], "/b_flat")
    target = c.ints(bshape, "bshape")
    scaled = c.add("Mul", [back, c.add("Reshape", [gamma, target], "/gamma_b")], "/scaled")
    return c.add("Add", [scaled, c.add("Reshape", [beta, target], "/beta_b")])


@converts("L2Normalization")
def _l2_normalization(c: _Ctx) -> str:
    a = c.attrs
    rank = len(c.shapes[0])
    mode = a.get("mode", "instance")
    axes = {"instance": list(range(1, rank)), "channel": [1], "spatial": list(range(2, rank))}.get(mode)
    if axes is None:
        raise c.unsupported(f"mode {mode}")
    x = c.inputs[0]
    total = c.add("ReduceSum", [c.add("Mul", [x, x], "/sq"), c.ints(axes, "axes")], "/sum", keepdims=1)
    norm = c.add("Sqrt", [c.add("Add", [total, c.scalar(float(a.get("eps", 1e-10)), "eps")], "/sum_eps")], "/norm")
    return c.add("Div", [x, norm])


# -- converters: activations ----------------------------------------------------------------------

def _unary(onnx_op: str) -> Converter:
    return lambda c: c.add(onnx_op, c.inputs[:1])


for _mx, _onnx_op in {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softsign": "Softsign",
                      "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "abs": "Abs", "sign": "Sign",
                      "negative": "Neg", "reciprocal": "Reciprocal", "floor": "Floor", "ceil": "Ceil",
                      "sin": "Sin", "cos": "Cos", "tan": "Tan", "arcsin": "Asin", "arccos": "Acos",
                      "arctan": "Atan", "sinh": "Sinh", "cosh": "Cosh", "arcsinh": "Asinh",
                      "arccosh": "Acosh", "arctanh": "Atanh", "erf": "Erf",
                      "BlockGrad": "Identity", "stop_gradient": "Identity", "_copy": "Identity",
                      "identity": "Identity", "Dropout": "Identity", "make_loss": "Identity",
                      "softrelu": "Softplus"}.items():
    converts(_mx)(_unary(_onnx_op))


@converts("Activation")
def _activation(c: _Ctx) -> str:
    kind = c.attrs["act_type"]
    table = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softrelu": "Softplus", "softsign": "Softsign"}
    if kind not in table:
        raise c.unsupported(f"act_type {kind}")
    return c.add(table[kind], c.inputs)


def _gelu(c: _Ctx, x: str) -> str:
    inner = c.add("Erf", [c.add("Mul", [x, c.scalar(1 / math.sqrt(2), "rsqrt2")], "/scaled")], "/erf")
    half = c.add("Mul", [x, c.scalar(0.5, "half")], "/half")
    return c.add("Mul", [half, c.add("Add", [inner, c.scalar(1.0, "one")], "/one_plus")])


@converts("LeakyReLU")
def _leaky_relu(c: _Ctx) -> str:
    a = c.attrs
    kind = a.get("act_type", "leaky")
    slope = float(a.get("slope", 0.25))
    x = c.inputs[0]
    if kind == "leaky":
        return c.add("LeakyRelu", [x], alpha=slope)
    if kind == "rrelu":  # inference: the mean of the random slope's range
        slope = (float(a.get("lower_bound", 0.125)) + float(a.get("upper_bound", 0.334))) / 2
        return c.add("LeakyRelu", [x], alpha=slope)
    if kind == "elu":
        return c.add("Elu", [x], alpha=slope)
    if kind == "selu":
        return c.add("Selu", [x], alpha=1.6732632423543772, gamma=1.0507009873554805)
    if kind == "gelu":
        return _gelu(c, x)
    if kind == "prelu":
        gamma = c.inputs[1]
        rank = len(c.shapes[0])
        if rank > 2 and c.shapes[1] != (1,):
            gamma = c.add("Unsqueeze", [gamma, c.ints(list(range(1, rank - 1)), "axes")], "/slope")
        return c.add("PRelu", [x, gamma])
    raise c.unsupported(f"act_type {kind}")


@converts("hard_sigmoid")
def _hard_sigmoid(c: _Ctx) -> str:
    return c.add("HardSigmoid", c.inputs, alpha=float(c.attrs.get("alpha", 0.2)), beta=float(c.attrs.get("beta", 0.5)))


@converts("clip")
def _clip(c: _Ctx) -> str:
    return c.add("Clip", [c.inputs[0], c.scalar(c.attrs["a_min"], "min"), c.scalar(c.attrs["a_max"], "max")])


@converts("square")
def _square(c: _Ctx) -> str:
    return c.add("Mul", [c.inputs[0], c.inputs[0]])


@converts("rsqrt")
def _rsqrt(c: _Ctx) -> str:
    return c.add("Reciprocal", [c.add("Sqrt", c.inputs[:1], "/sqrt")])


@converts("log2", "log10")
def _log_base(c: _Ctx) -> str:
    base = 2.0 if c.node.op.endswith("log2") else 10.0
    return c.add("Div", [c.add("Log", c.inputs[:1], "/ln"), c.scalar(math.log(base), "ln_base")])


@converts("log1p")
def _log1p(c: _Ctx) -> str:
    return c.add("Log", [c.add("Add", [c.inputs[0], c.scalar(1.0, "one")], "/plus1")])


@converts("expm1")
def _expm1(c: _Ctx) -> str:
    return c.add("Sub", [c.add("Exp", c.inputs[:1], "/exp"), c.scalar(1.0, "one")])


@converts("round")
def _round(c: _Ctx) -> str:  # MXNet rounds halves away from zero; ONNX Round rounds them to even
    x = c.inputs[0]
    mag = c.add("Floor", [c.add("Add", [c.add("Abs", [x], "/abs"), c.scalar(0.5, "half")], "/abs_half")], "/floor")
    return c.add("Mul", [c.add("Sign", [x], "/sign"), mag])


@converts("trunc", "fix")
def _trunc(c: _Ctx) -> str:
    x = c.inputs[0]
    return c.add("Mul", [c.add("Sign", [x], "/sign"), c.add("Floor", [c.add("Abs", [x], "/abs")], "/floor")])


@converts("cbrt")
def _cbrt(c: _Ctx) -> str:
    x = c.inputs[0]
    root = c.add("Pow", [c.add("Abs", [x], "/abs"), c.scalar(1 / 3, "third")], "/root")
    return c.add("Mul", [c.add("Sign", [x], "/sign"), root])


@converts("gelu")
def _gelu_op(c: _Ctx) -> str:
    return _gelu(c, c.inputs[0])


# -- converters: arithmetic -----------------------------------------------------------------------

_BINARY = {"add": "Add", "plus": "Add", "sub": "Sub", "minus": "Sub", "mul": "Mul", "div": "Div",
           "power": "Pow", "maximum": "Max", "minimum": "Min"}
_COMPARE = {"equal": "Equal", "not_equal": "Equal", "greater": "Greater", "greater_equal": "GreaterOrEqual",
            "lesser": "Less", "lesser_equal": "LessOrEqual"}
_LOGICAL = {"logical_and": "And", "logical_or": "Or", "logical_xor": "Xor"}


def _binary(onnx_op: str) -> Converter:
    return lambda c: c.add(onnx_op, c.inputs[:2])


def _compare(c: _Ctx, lhs: str, rhs: str, kind: str) -> str:
    out = c.add(_COMPARE[kind], [lhs, rhs], "/cmp")
    if kind == "not_equal":
        out = c.add("Not", [out], "/not")
    return c.cast_to_output(out, suffix="")


def _logical(c: _Ctx, lhs: str, rhs: str, kind: str) -> str:
    as_bool = lambda v, s: c.add("Cast", [v], f"/{s}_bool", to=9)
    return c.cast_to_output(c.add(_LOGICAL[kind], [as_bool(lhs, "l"), as_bool(rhs, "r")], "/logic"), suffix="")


for _kind, _onnx_op in _BINARY.items():
    converts(f"broadcast_{_kind}", f"elemwise_{_kind}", f"_{_kind}")(_binary(_onnx_op))
for _old, _onnx_op in {"_Plus": "Add", "_Minus": "Sub", "_Mul": "Mul", "_Div": "Div", "_Maximum": "Max",
                       "_Minimum": "Min", "_Power": "Pow"}.items():
    converts(_old)(_binary(_onnx_op))
for _kind in _COMPARE:
    converts(f"broadcast_{_kind}", f"_{_kind}")(
        (lambda k: lambda c: _compare(c, c.inputs[0], c.inputs[1], k))(_kind))
    converts(f"_{_kind}_scalar")(
        (lambda k: lambda c: _compare(c, c.inputs[0], c.scalar(c.attrs["scalar"]), k))(_kind))
for _kind in _LOGICAL:
    converts(f"broadcast_{_kind}", f"_{_kind}")(
        (lambda k: lambda c: _logical(c, c.inputs[0], c.inputs[1], k))(_kind))


@converts("broadcast_hypot", "_hypot")
def _hypot(c: _Ctx) -> str:
    x, y = c.inputs[:2]
    total = c.add("Add", [c.add("Mul", [x, x], "/xx"), c.add("Mul", [y, y], "/yy")], "/sum")
    return c.add("Sqrt", [total])


@converts("add_n", "ElementWiseSum", "_npi_add_n")
def _add_n(c: _Ctx) -> str:
    return c.add("Sum", c.inputs)


_SCALAR = {"_plus_scalar": ("Add", False), "_minus_scalar": ("Sub", False), "_rminus_scalar": ("Sub", True),
           "_mul_scalar": ("Mul", False), "_div_scalar": ("Div", False), "_rdiv_scalar": ("Div", True),
           "_power_scalar": ("Pow", False), "_rpower_scalar": ("Pow", True),
           "_maximum_scalar": ("Max", False), "_minimum_scalar": ("Min", False)}


def _scalar_op(onnx_op: str, reverse: bool) -> Converter:
    def convert(c: _Ctx) -> str:
        scalar = c.scalar(float(c.attrs["scalar"]))
        return c.add(onnx_op, [scalar, c.inputs[0]] if reverse else [c.inputs[0], scalar])
    return convert


for _mx, (_onnx_op, _rev) in _SCALAR.items():
    converts(_mx)(_scalar_op(_onnx_op, _rev))


@converts("smooth_l1")
def _smooth_l1(c: _Ctx) -> str:
    sigma2 = float(c.attrs.get("scalar", 1.0)) ** 2
    x = c.inputs[0]
    ax = c.add("Abs", [x], "/abs")
    small = c.add("Mul", [c.add("Mul", [x, x], "/sq"), c.scalar(0.5 * sigma2, "half_s2")], "/small")
    large = c.add("Sub", [ax, c.scalar(0.5 / sigma2, "half_over")], "/large")
    return c.add("Where", [c.add("Less", [ax, c.scalar(1.0 / sigma2, "limit")], "/is_small"), small, large])


# -- converters: shapes ----------------------------------------------------------------------------

@converts("Flatten")
def _flatten(c: _Ctx) -> str:
    return c.add("Flatten", c.inputs, axis=1)


@converts("Reshape", "reshape_like", "_npx_reshape", "_np_reshape", "_npi_reshape")
def _reshape(c: _Ctx) -> str:
    return c.add("Reshape", [c.inputs[0], c.ints(c.target_shape(), "shape")])


@converts("expand_dims")
def _expand_dims(c: _Ctx) -> str:
    axis = int(c.attrs["axis"]) % (len(c.shapes[0]) + 1)
    return c.add("Unsqueeze", [c.inputs[0], c.ints([axis], "axes")])


@converts("squeeze")
def _squeeze(c: _Ctx) -> str:
    axis = c.attrs.get("axis")
    if axis in (None, ()):
        axes = [i for i, d in enumerate(c.shapes[0]) if d == 1]
        if axes and axes[0] == 0 and c.exporter.dynamic_batch:
            raise c.unsupported("it squeezes every axis of size 1, the batch axis too: the output's rank "
                                "depends on the batch size; export with a fixed batch size")
    else:
        axes = [int(a) % len(c.shapes[0]) for a in (axis if isinstance(axis, (tuple, list)) else (axis,))]
    return c.add("Squeeze", [c.inputs[0], c.ints(axes, "axes")])


@converts("transpose")
def _transpose(c: _Ctx) -> str:
    axes = c.attrs.get("axes") or ()
    perm = [int(a) % len(c.shapes[0]) for a in axes] if axes else list(reversed(range(len(c.shapes[0]))))
    return c.add("Transpose", c.inputs, perm=perm)


@converts("SwapAxis", "swapaxes")
def _swap_axis(c: _Ctx) -> str:
    rank = len(c.shapes[0])
    perm = list(range(rank))
    d1, d2 = int(c.attrs.get("dim1", 0)) % rank, int(c.attrs.get("dim2", 0)) % rank
    perm[d1], perm[d2] = perm[d2], perm[d1]
    return c.add("Transpose", c.inputs, perm=perm)


@converts("Concat")
def _concat(c: _Ctx) -> str:
    return c.add("Concat", c.inputs, axis=int(c.attrs.get("dim", 1)))


@converts("stack")
def _stack(c: _Ctx) -> str:
    axis = int(c.attrs.get("axis", 0)) % (len(c.shapes[0]) + 1)
    axes = c.ints([axis], "axes")
    parts = [c.add("Unsqueeze", [x, axes], f"/u{i}") for i, x in enumerate(c.inputs)]
    return c.add("Concat", parts, axis=axis)


@converts("SliceChannel", "split")
def _split(c: _Ctx) -> list[str]:
    a = c.attrs
    n = int(a["num_outputs"])
    axis = int(a.get("axis", 1)) % len(c.shapes[0])
    parts = c.add("Split", c.inputs[:1], "/split", outputs=n, axis=axis, num_outputs=n)
    parts = parts if isinstance(parts, list) else [parts]
    if a.get("squeeze_axis"):
        axes = c.ints([axis], "axes")
        return [c.add("Squeeze", [p, axes], f"/sq{i}") for i, p in enumerate(parts)]
    return [c.add("Identity", [p], f":{i}" if i else "") for i, p in enumerate(parts)]


def _slice(c: _Ctx, begins: Sequence[Any], ends: Sequence[Any], steps: Sequence[Any], axes: Sequence[int]) -> str:
    starts, stops, strides = [], [], []
    for b, e, s in zip(begins, ends, steps):
        s = 1 if s is None else int(s)
        if s == 0:
            raise c.unsupported("a slice step of 0")
        starts.append((0 if s > 0 else _INT64_MAX) if b is None else int(b))
        stops.append((_INT64_MAX if s > 0 else _INT64_MIN) if e is None else int(e))
        strides.append(s)
    return c.add("Slice", [c.inputs[0], c.ints(starts, "starts"), c.ints(stops, "ends"), c.ints(list(axes), "axes"),
                           c.ints(strides, "steps")])


def _optional_tuple(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        import ast
        value = ast.literal_eval(value)
    return list(value) if isinstance(value, (tuple, list)) else [value]


@converts("slice", "crop")
def _slice_op(c: _Ctx) -> str:
    begin, end = _optional_tuple(c.attrs.get("begin")), _optional_tuple(c.attrs.get("end"))
    step = _optional_tuple(c.attrs.get("step")) or [None] * len(begin)
    step = step + [None] * (len(begin) - len(step))
    return _slice(c, begin, end, step, range(len(begin)))


@converts("slice_axis")
def _slice_axis(c: _Ctx) -> str:
    a = c.attrs
    return _slice(c, [a.get("begin", 0)], [a.get("end")], [1], [int(a["axis"]) % len(c.shapes[0])])


@converts("slice_like")
def _slice_like(c: _Ctx) -> str:
    axes = _optional_tuple(c.attrs.get("axes")) or list(range(len(c.shapes[1])))
    axes = [int(a) % len(c.shapes[0]) for a in axes]
    ends = c.add("Gather", [c.add("Shape", [c.inputs[1]], "/like_shape"), c.ints(axes, "axes_idx")], "/ends", axis=0)
    return c.add("Slice", [c.inputs[0], c.ints([0] * len(axes), "starts"), ends, c.ints(axes, "axes")])


@converts("reverse", "flip")
def _reverse(c: _Ctx) -> str:
    axes = [int(a) % len(c.shapes[0]) for a in _optional_tuple(c.attrs.get("axis"))]
    return _slice(c, [None] * len(axes), [None] * len(axes), [-1] * len(axes), axes)


@converts("tile")
def _tile(c: _Ctx) -> str:
    reps = list(c.attrs["reps"])
    rank = len(c.shapes[0])
    x = c.inputs[0]
    if len(reps) > rank:
        x = c.add("Unsqueeze", [x, c.ints(list(range(len(reps) - rank)), "lifted")], "/lift")
        rank = len(reps)
    reps = [1] * (rank - len(reps)) + reps
    return c.add("Tile", [x, c.ints(reps, "reps")])


@converts("repeat")
def _repeat(c: _Ctx) -> str:
    repeats = int(c.attrs["repeats"])
    axis = c.attrs.get("axis")
    x = c.inputs[0]
    if axis is None:
        x = c.add("Reshape", [x, c.ints([-1], "flat")], "/flat")
        axis, rank = 0, 1
    else:
        rank = len(c.shapes[0])
        axis = int(axis) % rank
    lifted = c.add("Unsqueeze", [x, c.ints([axis + 1], "axes")], "/lift")
    reps = [1] * (rank + 1)
    reps[axis + 1] = repeats
    tiled = c.add("Tile", [lifted, c.ints(reps, "reps")], "/tile")
    return c.add("Reshape", [tiled, c.ints(c.target_shape(), "shape")])


@converts("broadcast_to")
def _broadcast_to(c: _Ctx) -> str:
    shape = [1 if d == 0 else int(d) for d in c.attrs["shape"]]
    return c.add("Expand", [c.inputs[0], c.ints(shape, "shape")])


@converts("broadcast_axis", "broadcast_axes")
def _broadcast_axis(c: _Ctx) -> str:
    axes = _optional_tuple(c.attrs.get("axis"))
    sizes = _optional_tuple(c.attrs.get("size"))
    shape = [1] * len(c.shapes[0])
    for axis, size in zip(axes, sizes):
        shape[int(axis) % len(shape)] = int(size)
    return c.add("Expand", [c.inputs[0], c.ints(shape, "shape")])


@converts("broadcast_like")
def _broadcast_like(c: _Ctx) -> str:
    if c.attrs.get("lhs_axes") or c.attrs.get("rhs_axes"):
        raise c.unsupported("lhs_axes/rhs_axes")
    return c.add("Expand", [c.inputs[0], c.add("Shape", [c.inputs[1]], "/like_shape")])


@converts("Pad", "pad")
def _pad(c: _Ctx) -> str:
    a = c.attrs
    mode = a.get("mode", "constant")
    width = list(a["pad_width"])
    begins, ends = width[0::2], width[1::2]
    table = {"constant": "constant", "edge": "edge", "reflect": "reflect"}
    if mode not in table:
        raise c.unsupported(f"mode {mode}")
    inputs = [c.inputs[0], c.ints(begins + ends, "pads")]
    if mode == "constant":
        inputs.append(c.scalar(float(a.get("constant_value", 0.0)), "value"))
    return c.add("Pad", inputs, mode=table[mode])


def _dynamic_sizes(c: _Ctx, data: str) -> str:
    """Resize ``sizes``: the input's batch and channels, and the static spatial output size."""
    head = c.add("Slice", [c.add("Shape", [data], "/shape"), c.ints([0], "zero"), c.ints([2], "two")], "/nc")
    return c.add("Concat", [head, c.ints(list(c.out_shapes[0][2:]), "hw")], "/sizes", axis=0)


@converts("UpSampling")
def _upsampling(c: _Ctx) -> str:
    a = c.attrs
    kind = a.get("sample_type", "nearest")
    scale = int(a["scale"])
    if kind == "nearest":
        height, width = c.shapes[0][2] * scale, c.shapes[0][3] * scale
        outs = []
        for i, (x, shape) in enumerate(zip(c.inputs, c.shapes)):
            sy, sx = height // shape[2], width // shape[3]
            scales = c.const(np.asarray([1, 1, sy, sx], np.float32), f"scales{i}")
            outs.append(c.add("Resize", [x, "", scales], f"/up{i}" if len(c.inputs) > 1 else "", mode="nearest",
                              coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
        if len(outs) == 1:
            return outs[0]
        if c.attrs.get("multi_input_mode", "concat") == "sum":
            return c.add("Sum", outs)
        return c.add("Concat", outs, axis=1)
    if kind == "bilinear":  # a grouped transposed convolution with the given (bilinear) weight
        kernel = 2 * scale - scale % 2
        pad = -(-(scale - 1) // 2)
        groups = int(a.get("num_filter", c.shapes[0][1]))
        return c.add("ConvTranspose", c.inputs[:2], kernel_shape=[kernel, kernel], strides=[scale, scale],
                     pads=[pad, pad, pad, pad], group=groups)
    raise c.unsupported(f"sample_type {kind}")


@converts("_contrib_BilinearResize2D", "_npx_bilinear_resize2d")
def _bilinear_resize(c: _Ctx) -> str:
    align = c.attrs.get("align_corners", True)
    sizes = _dynamic_sizes(c, c.inputs[0])
    return c.add("Resize", [c.inputs[0], "", "", sizes], mode="linear",
                 coordinate_transformation_mode="align_corners" if align else "half_pixel")


@converts("depth_to_space")
def _depth_to_space(c: _Ctx) -> str:
    return c.add("DepthToSpace", c.inputs, blocksize=int(c.attrs["block_size"]), mode="DCR")


@converts("space_to_depth")
def _space_to_depth(c: _Ctx) -> str:
    return c.add("SpaceToDepth", c.inputs, blocksize=int(c.attrs["block_size"]))


# -- converters: softmax, reductions, indexing ----------------------------------------------------

def _tempered(c: _Ctx) -> str:
    t = c.attrs.get("temperature")
    if t in (None, 1.0):
        return c.inputs[0]
    return c.add("Div", [c.inputs[0], c.scalar(float(t), "temperature")], "/tempered")


def _softmax_family(onnx_op: str) -> Converter:
    def convert(c: _Ctx) -> str:
        if c.attrs.get("use_length"):
            raise c.unsupported("use_length=True (ONNX has no masked softmax)")
        axis = int(c.attrs.get("axis", -1))
        if c.out_dtypes[0] == c.dtypes[0]:
            return c.add(onnx_op, [_tempered(c)], axis=axis)
        return c.cast_to_output(c.add(onnx_op, [_tempered(c)], f"/{onnx_op.lower()}", axis=axis), suffix="")
    return convert


converts("softmax")(_softmax_family("Softmax"))
converts("log_softmax")(_softmax_family("LogSoftmax"))


@converts("SoftmaxActivation")
def _softmax_activation(c: _Ctx) -> str:
    return c.add("Softmax", c.inputs, axis=1 if c.attrs.get("mode", "instance") == "channel" else -1)


@converts("SoftmaxOutput", "Softmax")
def _softmax_output(c: _Ctx) -> str:  # inference: the label input plays no part
    return c.add("Softmax", c.inputs[:1], axis=1 if c.attrs.get("multi_output") else -1)


def _reduce_axes(c: _Ctx) -> list[int]:
    rank = len(c.shapes[0])
    axes = _optional_tuple(c.attrs.get("axis"))
    axes = [int(a) % rank for a in axes] if axes else list(range(rank))
    if c.attrs.get("exclude"):
        axes = [i for i in range(rank) if i not in axes]
    return axes


def _reduction(onnx_op: str) -> Converter:
    def convert(c: _Ctx) -> str:
        keep = 1 if c.attrs.get("keepdims") else 0
        axes = _reduce_axes(c)
        rank = len(c.shapes[0]) if keep else len(c.shapes[0]) - len(axes)
        if rank == len(c.out_shapes[0]):
            return c.add(onnx_op, [c.inputs[0], c.ints(axes, "axes")], keepdims=keep)
        out = c.add(onnx_op, [c.inputs[0], c.ints(axes, "axes")], "/reduce", keepdims=keep)
        return c.add("Reshape", [out, c.ints(c.target_shape(), "shape")])  # MXNet gives (1,), not a scalar
    return convert


for _mx, _onnx_op in {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax", "min": "ReduceMin",
                      "prod": "ReduceProd", "nansum": "ReduceSum", "sum_axis": "ReduceSum",
                      "max_axis": "ReduceMax", "min_axis": "ReduceMin"}.items():
    converts(_mx)(_reduction(_onnx_op))


@converts("norm")
def _norm(c: _Ctx) -> str:
    order = int(c.attrs.get("ord", 2))
    if order not in (1, 2):
        raise c.unsupported(f"ord={order}")
    return _reduction("ReduceL2" if order == 2 else "ReduceL1")(c)  # type: ignore[return-value]


def _arg_reduce(onnx_op: str) -> Converter:
    def convert(c: _Ctx) -> str:
        axis = c.attrs.get("axis")
        keep = 1 if c.attrs.get("keepdims") else 0
        x = c.inputs[0]
        if axis is None:
            x = c.add("Reshape", [x, c.ints([-1], "flat")], "/flat")
            axis, keep = 0, 1
        out = c.add(onnx_op, [x], "/index", axis=int(axis), keepdims=keep)
        return c.cast_to_output(out, suffix="")
    return convert


converts("argmax")(_arg_reduce("ArgMax"))
converts("argmin")(_arg_reduce("ArgMin"))


@converts("topk")
def _topk(c: _Ctx) -> Any:
    a = c.attrs
    axis = a.get("axis", -1)
    x = c.inputs[0]
    size = c.shapes[0]
    if axis is None:  # over the flattened array
        x = c.add("Reshape", [x, c.ints([-1], "flat")], "/flat")
        axis, size = 0, (int(np.prod(c.shapes[0])),)
    axis = int(axis) % len(size)
    k = int(a.get("k", 1))
    if k <= 0:
        k = size[axis]
    kind = a.get("ret_typ", "indices")
    values, indices = c.add("TopK", [x, c.ints([k], "k")], "/topk", outputs=2, axis=axis,
                            largest=0 if a.get("is_ascend") else 1, sorted=1)
    if kind == "mask":
        dtype = c.out_dtypes[0]
        zeros = c.add("ConstantOfShape", [c.add("Shape", [x], "/shape")], "/zeros",
                      value=c.b.onnx.numpy_helper.from_array(np.zeros(1, dtype)))
        ones = c.add("ConstantOfShape", [c.add("Shape", [indices], "/kshape")], "/ones",
                     value=c.b.onnx.numpy_helper.from_array(np.ones(1, dtype)))
        return c.add("ScatterElements", [zeros, indices, ones], axis=axis)
    if kind == "value":
        return c.add("Identity", [values])
    index_dtype = c.out_dtypes[-1]
    cast = c.add("Cast", [indices], "/indices" if kind == "both" else "", to=_onnx_dtype(c.b.onnx, index_dtype))
    if kind == "indices":
        return cast
    if kind == "both":
        return [c.add("Identity", [values]), cast]
    raise c.unsupported(f"ret_typ {kind}")


@converts("sort", "argsort")
def _sort(c: _Ctx) -> str:
    axis = c.attrs.get("axis", -1)
    x = c.inputs[0]
    if axis is None:
        x = c.add("Reshape", [x, c.ints([-1], "flat")], "/flat")
        axis = 0
    else:
        axis = int(axis) % len(c.shapes[0])
    size = c.add("Slice", [c.add("Shape", [x], "/shape"), c.ints([axis], "start"), c.ints([axis + 1], "end")],
                 "/size")  # every element, however long the axis is at run time
    values, indices = c.add("TopK", [x, size], "/topk", outputs=2, axis=axis,
                            largest=0 if c.attrs.get("is_ascend", True) else 1, sorted=1)
    if c.node.op.endswith("argsort"):
        return c.cast_to_output(indices, suffix="")
    return c.add("Identity", [values])


def _indices(c: _Ctx, value: str, size: int, mode: str, suffix: str) -> str:
    index = c.add("Cast", [value], f"/{suffix}_i64", to=7)
    if mode == "wrap":
        return c.add("Mod", [index, c.const(np.asarray(size, np.int64), f"{suffix}_size")], f"/{suffix}_wrap")
    return c.add("Clip", [index, c.const(np.asarray(0, np.int64), f"{suffix}_lo"),
                          c.const(np.asarray(size - 1, np.int64), f"{suffix}_hi")], f"/{suffix}_clip")


@converts("take")
def _take(c: _Ctx) -> str:
    axis = int(c.attrs.get("axis", 0)) % len(c.shapes[0])
    index = _indices(c, c.inputs[1], c.shapes[0][axis], c.attrs.get("mode", "clip"), "idx")
    return c.add("Gather", [c.inputs[0], index], axis=axis)


@converts("Embedding")
def _embedding(c: _Ctx) -> str:
    index = _indices(c, c.inputs[0], c.shapes[1][0], "clip", "idx")
    return c.add("Gather", [c.inputs[1], index], axis=0)


@converts("pick")
def _pick(c: _Ctx) -> str:
    rank = len(c.shapes[0])
    axis = int(c.attrs.get("axis", -1) if c.attrs.get("axis") is not None else -1) % rank
    index = _indices(c, c.inputs[1], c.shapes[0][axis], c.attrs.get("mode", "clip"), "idx")
    if len(c.shapes[1]) == rank - 1:
        index = c.add("Unsqueeze", [index, c.ints([axis], "axes")], "/lift")
    picked = c.add("GatherElements", [c.inputs[0], index], "/gather", axis=axis)
    if c.attrs.get("keepdims"):
        return c.add("Identity", [picked])
    return c.add("Squeeze", [picked, c.ints([axis], "sq_axes")])


@converts("gather_nd")
def _gather_nd(c: _Ctx) -> str:
    rank = len(c.shapes[1])
    index = c.add("Cast", [c.inputs[1]], "/i64", to=7)
    index = c.add("Transpose", [index], "/last", perm=[*range(1, rank), 0])
    return c.add("GatherND", [c.inputs[0], index])


@converts("where")
def _where(c: _Ctx) -> str:
    condition = c.add("Cast", [c.inputs[0]], "/cond", to=9)
    extra = len(c.shapes[1]) - len(c.shapes[0])
    if len(c.shapes[0]) == 1 and extra > 0:  # MXNet: a 1-D condition picks whole rows
        condition = c.add("Unsqueeze", [condition, c.ints(list(range(1, 1 + extra)), "row_axes")], "/rows")
    return c.add("Where", [condition, c.inputs[1], c.inputs[2]])


@converts("one_hot")
def _one_hot(c: _Ctx) -> str:
    a = c.attrs
    values = c.const(np.asarray([a.get("off_value", 0.0), a.get("on_value", 1.0)], c.out_dtypes[0]), "values")
    index = c.add("Cast", [c.inputs[0]], "/i64", to=7)
    return c.add("OneHot", [index, c.ints([int(a["depth"])], "depth"), values], axis=-1)


@converts("dot")
def _dot(c: _Ctx) -> str:
    a, b = c.inputs[:2]
    sa, sb = c.shapes[0], c.shapes[1]
    if c.attrs.get("transpose_a"):
        a = c.add("Transpose", [a], "/ta", perm=list(reversed(range(len(sa)))))
        sa = tuple(reversed(sa))
    if c.attrs.get("transpose_b"):
        b = c.add("Transpose", [b], "/tb", perm=list(reversed(range(len(sb)))))
        sb = tuple(reversed(sb))
    if len(sa) <= 2 and len(sb) <= 2:
        return c.add("MatMul", [a, b])
    a2 = c.add("Reshape", [a, c.ints([-1, sa[-1]], "a2")], "/a2")
    b2 = c.add("Reshape", [b, c.ints([sb[0], -1], "b2")], "/b2")
    return c.add("Reshape", [c.add("MatMul", [a2, b2], "/mm"), c.ints(c.target_shape(), "shape")])


@converts("batch_dot")
def _batch_dot(c: _Ctx) -> str:
    a, b = c.inputs[:2]
    if c.attrs.get("transpose_a"):
        perm = list(range(len(c.shapes[0])))
        perm[-1], perm[-2] = perm[-2], perm[-1]
        a = c.add("Transpose", [a], "/ta", perm=perm)
    if c.attrs.get("transpose_b"):
        perm = list(range(len(c.shapes[1])))
        perm[-1], perm[-2] = perm[-2], perm[-1]
        b = c.add("Transpose", [b], "/tb", perm=perm)
    return c.add("MatMul", [a, b])


@converts("Cast", "cast", "amp_cast")
def _cast(c: _Ctx) -> str:
    return c.cast_to_output(c.inputs[0], suffix="")


@converts("shape_array")
def _shape_array(c: _Ctx) -> str:
    return c.cast_to_output(c.add("Shape", c.inputs, "/shape"), suffix="")


@converts("size_array")
def _size_array(c: _Ctx) -> str:
    size = c.add("Reshape", [c.add("Size", c.inputs, "/size"), c.ints([1], "one")], "/one")
    return c.cast_to_output(size, suffix="")


@converts("zeros_like", "ones_like")
def _fill_like(c: _Ctx) -> str:
    value = 1 if c.node.op.startswith("ones") else 0
    tensor = c.b.onnx.numpy_helper.from_array(np.asarray([value], c.out_dtypes[0]))
    return c.add("ConstantOfShape", [c.add("Shape", c.inputs, "/shape")], value=tensor)


@converts("_arange", "_zeros", "_ones", "_full", "_contrib_MultiBoxPrior", "_npi_arange", "_npi_zeros",
          "_contrib_arange_like",
          "_npi_ones", "_npi_full")
def _shape_only(c: _Ctx) -> str:
    """Operators whose output depends only on attributes (and input shapes without the batch)."""
    value = c.out_values[0]
    if value is None:
        raise c.unsupported("its output is too large to store as a constant")
    if c.exporter.dynamic_batch and c.inputs:
        first, second = c.out_shapes[0], c.exporter.second_pass_shape(c.index, 0)
        if first != second:
            raise c.unsupported("its output depends on the batch size")
    return c.b.const(value, c.name)


# -- MXNet 2 (numpy-style) spellings and small extras ----------------------------------------------

_NPI_BINARY = {"_npi_add": "Add", "_npi_subtract": "Sub", "_npi_multiply": "Mul", "_npi_true_divide": "Div",
               "_npi_power": "Pow", "_npi_maximum": "Max", "_npi_minimum": "Min", "_npi_matmul": "MatMul"}
for _mx, _onnx_op in _NPI_BINARY.items():
    converts(_mx)(_binary(_onnx_op))
_NPI_COMPARE = {"_npi_equal": "equal", "_npi_not_equal": "not_equal", "_npi_greater": "greater",
                "_npi_greater_equal": "greater_equal", "_npi_less": "lesser", "_npi_less_equal": "lesser_equal"}
for _mx, _kind in _NPI_COMPARE.items():
    converts(_mx)((lambda k: lambda c: _compare(c, c.inputs[0], c.inputs[1], k))(_kind))
    converts(f"{_mx}_scalar")((lambda k: lambda c: _compare(c, c.inputs[0], c.scalar(c.attrs["scalar"]), k))(_kind))
for _mx, _kind in {"_npi_logical_and": "logical_and", "_npi_logical_or": "logical_or",
                   "_npi_logical_xor": "logical_xor"}.items():
    converts(_mx)((lambda k: lambda c: _logical(c, c.inputs[0], c.inputs[1], k))(_kind))
converts("_npi_true_divide_scalar")(_scalar_op("Div", False))
converts("_npi_rtrue_divide_scalar")(_scalar_op("Div", True))
converts("_npi_tanh")(_unary("Tanh"))
for _mx, _onnx_op in {"_npi_sum": "ReduceSum", "_np_sum": "ReduceSum", "_npi_mean": "ReduceMean",
                      "_npi_max": "ReduceMax", "_np_max": "ReduceMax", "_npi_min": "ReduceMin", "_np_min": "ReduceMin",
                      "_npi_prod": "ReduceProd", "_np_prod": "ReduceProd"}.items():
    converts(_mx)(_reduction(_onnx_op))
converts("_npi_astype")(_cast)
converts("_npx_gelu")(_gelu_op)


@converts("_npi_concatenate")
def _np_concatenate(c: _Ctx) -> str:
    return c.add("Concat", c.inputs, axis=int(c.attrs.get("axis", 0)))


@converts("logical_not")
def _logical_not(c: _Ctx) -> str:
    return c.cast_to_output(c.add("Not", [c.add("Cast", c.inputs[:1], "/bool", to=9)], "/not"), suffix="")


@converts("log_sigmoid")
def _log_sigmoid(c: _Ctx) -> str:
    return c.add("Log", [c.add("Sigmoid", c.inputs[:1], "/sigmoid")])


@converts("degrees", "radians")
def _angle(c: _Ctx) -> str:
    factor = 180.0 / math.pi if c.node.op.endswith("degrees") else math.pi / 180.0
    return c.add("Mul", [c.inputs[0], c.scalar(factor, "factor")])


@converts("rcbrt")
def _rcbrt(c: _Ctx) -> str:
    return c.add("Reciprocal", [_cbrt(c)])


@converts("rint")
def _rint(c: _Ctx) -> str:  # MXNet's rint takes halves down (1.5 -> 1, -0.5 -> -1)
    return c.add("Ceil", [c.add("Sub", [c.inputs[0], c.scalar(0.5, "half")], "/minus_half")])


def _np_mod(c: _Ctx, lhs: str, rhs: str) -> str:
    """numpy's mod (the sign of the divisor): lhs - rhs * floor(lhs / rhs); ONNX Mod needs fmod for floats."""
    if c.out_dtypes[0].kind in "iu":
        return c.add("Mod", [lhs, rhs], fmod=0)
    quotient = c.add("Floor", [c.add("Div", [lhs, rhs], "/div")], "/floor")
    return c.add("Sub", [lhs, c.add("Mul", [rhs, quotient], "/times")])


converts("broadcast_mod", "_mod", "_Mod", "_npi_mod")(lambda c: _np_mod(c, c.inputs[0], c.inputs[1]))
converts("_mod_scalar")(lambda c: _np_mod(c, c.inputs[0], c.scalar(float(c.attrs["scalar"]))))
converts("_rmod_scalar")(lambda c: _np_mod(c, c.scalar(float(c.attrs["scalar"])), c.inputs[0]))


@converts("_hypot_scalar")
def _hypot_scalar(c: _Ctx) -> str:
    x = c.inputs[0]
    value = float(c.attrs["scalar"])
    return c.add("Sqrt", [c.add("Add", [c.add("Mul", [x, x], "/xx"), c.scalar(value * value, "yy")], "/sum")])


for _kind in _LOGICAL:
    converts(f"_{_kind}_scalar")((lambda k: lambda c: _logical(c, c.inputs[0], c.scalar(c.attrs["scalar"]), k))(_kind))
converts("MakeLoss")(_unary("Identity"))
converts("_npi_hypot")(_hypot)


@converts("_np_dot")
def _np_dot(c: _Ctx) -> str:
    if len(c.shapes[1]) > 2:
        raise c.unsupported("numpy dot with a right operand of more than 2 dimensions")
    if not c.shapes[0] or not c.shapes[1]:
        return c.add("Mul", c.inputs[:2])
    return c.add("MatMul", c.inputs[:2])


@converts("_split_v2")
def _split_v2(c: _Ctx) -> list[str]:
    axis = int(c.attrs.get("axis", 1)) % len(c.shapes[0])
    squeeze = bool(c.attrs.get("squeeze_axis"))
    sizes = [1 if squeeze else shape[axis] for shape in c.out_shapes]
    parts = c.add("Split", [c.inputs[0], c.ints(sizes, "sizes")], "/split", outputs=len(sizes), axis=axis)
    parts = parts if isinstance(parts, list) else [parts]
    if squeeze:
        axes = c.ints([axis], "axes")
        return [c.add("Squeeze", [p, axes], f":{i}" if i else "") for i, p in enumerate(parts)]
    return [c.add("Identity", [p], f":{i}" if i else "") for i, p in enumerate(parts)]


@converts("argmax_channel")
def _argmax_channel(c: _Ctx) -> str:
    return c.cast_to_output(c.add("ArgMax", c.inputs[:1], "/index", axis=-1, keepdims=0), suffix="")


@converts("nanprod")
def _nanprod(c: _Ctx) -> str:
    x = c.inputs[0]
    cleaned = c.add("Where", [c.add("IsNaN", [x], "/isnan"), c.scalar(1.0, "one"), x], "/cleaned")
    inner = _Ctx(c.b, c.node, c.attrs, [cleaned, *c.inputs[1:]], c.shapes, c.dtypes, c.out_shapes, c.out_dtypes,
                 c.out_values, c.variables, c.exporter, c.index, c.overrides, c.uses)
    return _reduction("ReduceProd")(inner)  # type: ignore[return-value]


# -- detection ---------------------------------------------------------------------------------------

def _no_translation(reason: str) -> Converter:
    def convert(c: _Ctx) -> str:
        raise c.unsupported(reason)
    return convert


converts("_contrib_box_nms", "_contrib_box_non_maximum_suppression", "_npx_box_nms")(_no_translation(
    "MXNet's box_nms returns every row sorted in place with suppressed rows set to -1, ONNX NonMaxSuppression "
    "returns selected indices; there is no faithful translation (export the network before its NMS)"))
converts("_contrib_MultiBoxDetection", "_npx_multibox_detection")(_no_translation(
    "it ends in MXNet's own non-maximum suppression, which ONNX cannot express (export the network before it)"))
converts("_contrib_box_encode", "_npx_box_encode")(_no_translation("it encodes training targets"))


def _columns(c: _Ctx, x: str, tag: str, count: int = 4) -> list[str]:
    """The last axis of ``x`` split into ``count`` slices of width 1 (kept dims)."""
    parts = c.add("Split", [x], f"/{tag}_cols", outputs=count, axis=-1, num_outputs=count)
    return parts if isinstance(parts, list) else [parts]


@converts("_contrib_box_decode", "_npx_box_decode")
def _box_decode(c: _Ctx) -> str:
    a = c.attrs
    n = c.shapes[0][1]
    anchors = c.add("Reshape", [c.inputs[1], c.ints([-1, 4], "flat")], "/anchors")
    anchors = c.add("Slice", [anchors, c.ints([0], "a0"), c.ints([n], "an"), c.ints([0], "ax")], "/anchors_n")
    ax, ay, aw, ah = _columns(c, anchors, "a")
    if a.get("format", "center") == "corner":
        aw = c.add("Sub", [aw, ax], "/aw")
        ah = c.add("Sub", [ah, ay], "/ah")
        half = c.scalar(0.5, "half_a")
        ax = c.add("Add", [ax, c.add("Mul", [aw, half], "/aw_half")], "/ax")
        ay = c.add("Add", [ay, c.add("Mul", [ah, half], "/ah_half")], "/ay")
    dx, dy, dw, dh = _columns(c, c.inputs[0], "d")
    std = [c.scalar(float(a.get(f"std{i}", 1.0)), f"std{i}") for i in range(4)]
    ox = c.add("Add", [c.add("Mul", [c.add("Mul", [dx, std[0]], "/dx_s"), aw], "/dx_w"), ax], "/ox")
    oy = c.add("Add", [c.add("Mul", [c.add("Mul", [dy, std[1]], "/dy_s"), ah], "/dy_h"), ay], "/oy")
    dw, dh = c.add("Mul", [dw, std[2]], "/dw_s"), c.add("Mul", [dh, std[3]], "/dh_s")
    clip = float(a.get("clip", -1.0))
    if clip > 0:
        limit = c.scalar(clip, "clip")
        dw, dh = c.add("Min", [dw, limit], "/dw_clip"), c.add("Min", [dh, limit], "/dh_clip")
    half = c.scalar(0.5, "half")
    ow = c.add("Mul", [c.add("Mul", [c.add("Exp", [dw], "/ew"), aw], "/ow2"), half], "/ow")
    oh = c.add("Mul", [c.add("Mul", [c.add("Exp", [dh], "/eh"), ah], "/oh2"), half], "/oh")
    corners = [c.add("Sub", [ox, ow], "/x1"), c.add("Sub", [oy, oh], "/y1"), c.add("Add", [ox, ow], "/x2"),
               c.add("Add", [oy, oh], "/y2")]
    return c.add("Concat", corners, axis=-1)


@converts("_contrib_box_iou", "_npx_box_iou")
def _box_iou(c: _Ctx) -> str:
    fmt = c.attrs.get("format", "corner")
    lhs = c.add("Unsqueeze", [c.add("Reshape", [c.inputs[0], c.ints([-1, 4], "lflat")], "/lflat"),
                              c.ints([1], "l_axis")], "/lhs")  # (N, 1, 4)
    rhs = c.add("Unsqueeze", [c.add("Reshape", [c.inputs[1], c.ints([-1, 4], "rflat")], "/rflat"),
                              c.ints([0], "r_axis")], "/rhs")  # (1, M, 4)
    l0, l1, l2, l3 = _columns(c, lhs, "l")
    r0, r1, r2, r3 = _columns(c, rhs, "r")
    zero = c.scalar(0.0, "zero")
    half = c.scalar(0.5, "half")

    def extent(a0: str, a1: str, b0: str, b1: str, tag: str) -> str:
        if fmt == "corner":
            lo, hi = c.add("Max", [a0, b0], f"/{tag}_lo"), c.add("Min", [a1, b1], f"/{tag}_hi")
        else:
            ha, hb = c.add("Mul", [a1, half], f"/{tag}_ha"), c.add("Mul", [b1, half], f"/{tag}_hb")
            b_hi, a_hi = c.add("Add", [b0, hb], f"/{tag}_bh"), c.add("Add", [a0, ha], f"/{tag}_ah")
            b_lo, a_lo = c.add("Sub", [b0, hb], f"/{tag}_bl"), c.add("Sub", [a0, ha], f"/{tag}_al")
            hi = c.add("Min", [b_hi, a_hi], f"/{tag}_hi")
            lo = c.add("Max", [b_lo, a_lo], f"/{tag}_lo")
        return c.add("Max", [c.add("Sub", [hi, lo], f"/{tag}_w"), zero], f"/{tag}_pos")

    def area(b0: str, b1: str, b2: str, b3: str, tag: str) -> str:
        if fmt == "corner":
            w, h = c.add("Sub", [b2, b0], f"/{tag}_w"), c.add("Sub", [b3, b1], f"/{tag}_h")
        else:
            w, h = b2, b3
        negative = c.add("Or", [c.add("Less", [w, zero], f"/{tag}_wn"), c.add("Less", [h, zero], f"/{tag}_hn")],
                         f"/{tag}_neg")
        return c.add("Where", [negative, zero, c.add("Mul", [w, h], f"/{tag}_wh")], f"/{tag}_area")

    inter = c.add("Mul", [extent(l0, l2, r0, r2, "ix"), extent(l1, l3, r1, r3, "iy")], "/inter")
    union = c.add("Sub", [c.add("Add", [area(l0, l1, l2, l3, "la"), area(r0, r1, r2, r3, "ra")], "/sum"), inter],
                  "/union")
    overlapping = c.add("Greater", [inter, zero], "/overlap")
    safe = c.add("Where", [overlapping, union, c.scalar(1.0, "one")], "/safe_union")
    iou = c.add("Where", [overlapping, c.add("Div", [inter, safe], "/ratio"), zero], "/iou")
    iou = c.add("Squeeze", [iou, c.ints([2], "sq")], "/pairs")  # (N, M)
    return c.add("Reshape", [iou, c.ints(c.target_shape(), "shape")])


@converts("_contrib_ROIAlign", "_npx_roi_align")
def _roi_align(c: _Ctx) -> str:
    a = c.attrs
    if a.get("position_sensitive"):
        raise c.unsupported("position_sensitive=True")
    pooled = list(a["pooled_size"]) * (2 if len(a["pooled_size"]) == 1 else 1)
    rois = c.inputs[1]
    batch = c.add("Squeeze", [c.add("Slice", [rois, c.ints([0], "b0"), c.ints([1], "b1"), c.ints([1], "bax")],
                                    "/batch_col"), c.ints([1], "bsq")], "/batch")
    live = c.add("Cast", [c.add("GreaterOrEqual", [batch, c.const(np.asarray(0, c.dtypes[1]), "zero")], "/live_b")],
                 "/live", to=_onnx_dtype(c.b.onnx, c.dtypes[0]))
    index = c.add("Cast", [c.add("Relu", [batch], "/batch_pos")], "/batch_i64", to=7)  # MXNet truncates
    boxes = c.add("Slice", [rois, c.ints([1], "c0"), c.ints([5], "c1"), c.ints([1], "cax")], "/boxes")
    ratio = int(a.get("sample_ratio", -1))
    pooled_out = c.add("RoiAlign", [c.inputs[0], boxes, index], "/align", mode="avg",
                       output_height=int(pooled[0]), output_width=int(pooled[1]),
                       sampling_ratio=max(ratio, 0), spatial_scale=float(a["spatial_scale"]),
                       coordinate_transformation_mode="half_pixel" if a.get("aligned") else "output_half_pixel")
    # a ROI with a negative batch index gives zeros, as in MXNet
    return c.add("Mul", [pooled_out, c.add("Unsqueeze", [live, c.ints([1, 2, 3], "live_axes")], "/live_b4")])


@converts("softmin")
def _softmin(c: _Ctx) -> str:
    if c.attrs.get("use_length"):
        raise c.unsupported("use_length=True (ONNX has no masked softmax)")
    negated = c.add("Neg", [_tempered(c)], "/neg")
    out = c.add("Softmax", [negated], "/softmax" if c.out_dtypes[0] != c.dtypes[0] else "",
                axis=int(c.attrs.get("axis", -1)))
    return out if c.out_dtypes[0] == c.dtypes[0] else c.cast_to_output(out, suffix="")


@converts("_np_cumsum", "_npi_cumsum", "cumsum")
def _cumsum(c: _Ctx) -> str:
    x = c.inputs[0]
    axis = c.attrs.get("axis")
    if axis is None:
        x = c.add("Reshape", [x, c.ints([-1], "flat")], "/flat")
        axis = 0
    if c.out_dtypes[0] != c.dtypes[0]:
        x = c.add("Cast", [x], "/cast_in", to=_onnx_dtype(c.b.onnx, c.out_dtypes[0]))
    return c.add("CumSum", [x, c.const(np.asarray(int(axis) % max(1, len(c.shapes[0])), np.int64), "axis")])


@converts("Crop")
def _crop(c: _Ctx) -> str:
    a = c.attrs
    height, width = c.out_shapes[0][2:4]
    if a.get("center_crop"):
        top, left = (c.shapes[0][2] - height) // 2, (c.shapes[0][3] - width) // 2
    else:
        top, left = (*tuple(a.get("offset") or ()), 0, 0)[:2]
    return c.add("Slice", [c.inputs[0], c.ints([top, left], "starts"), c.ints([top + height, left + width], "ends"),
                           c.ints([2, 3], "axes")])
