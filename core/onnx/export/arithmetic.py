"""Converters: elementwise and scalar arithmetic, comparisons, logic."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

from .builder import Converter, _Ctx, converts

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
