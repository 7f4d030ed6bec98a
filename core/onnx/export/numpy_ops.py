"""Converters: MXNet 2's numpy-style spellings and small extras."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

from .activations import _cbrt, _gelu_op, _unary
from .arithmetic import _LOGICAL, _binary, _compare, _hypot, _logical, _scalar_op
from .builder import _Ctx, converts
from .reductions import _cast, _reduction

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
