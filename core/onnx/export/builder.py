"""ONNX graphs under construction: the node builder, each node's conversion context, the converter registry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ...errors import UnsupportedOpError

if TYPE_CHECKING:
    from ...engine.symbol import Node
    from .exporter import _Exporter


#: The opset our models declare (ONNX Runtime 1.17 and newer run it).
DEFAULT_OPSET = 18
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
    from ...engine import ops
    found = _CONVERTERS.get(node.op)
    if found is None:
        spec = ops.supported_spec(node.op)
        if spec is not None:
            found = _CONVERTERS.get(spec.name)
    return found
