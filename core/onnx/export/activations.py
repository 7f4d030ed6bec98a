"""Converters: activations and unary maths."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

from .builder import Converter, _Ctx, converts

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
