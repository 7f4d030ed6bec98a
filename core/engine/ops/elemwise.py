"""Element-wise operators: scalar and broadcast arithmetic, comparisons, unary maths, activations.

MXNet 1.x arithmetic keeps the input dtype: a scalar is cast to the data's dtype first
(``DType(scalar)``), comparisons give 1 or 0 in that dtype, integer division truncates. The
MXNet 2 ``_npi_`` spellings follow NumPy instead (comparisons give booleans, true division of
integers gives floats); both families are registered here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...errors import UnsupportedOpError
from .registry import NUM_ARGS, REQUIRED, OpSpec, one_of, register


def _divide(a, b):
    if np.result_type(a, b).kind in "iub":
        with np.errstate(all="ignore"):
            out = np.trunc(np.true_divide(a, b, dtype=np.float64))
        return np.nan_to_num(out, nan=0, posinf=0, neginf=0).astype(np.result_type(a, b))
    return np.true_divide(a, b)


def _power(a, b):
    if np.result_type(a, b).kind in "iu":
        return np.power(a.astype(np.float64), b).astype(np.result_type(a, b))
    return np.power(a, b)


def _keep(op: Callable) -> Callable:
    """A comparison giving 1 or 0 in the inputs' dtype (MXNet 1.x)."""
    def compare(a, b):
        dtype = np.result_type(a, b)
        return op(a, b).astype(dtype)
    return compare


def _logical(op: Callable) -> Callable:
    return _keep(lambda a, b: op(a != 0, b != 0))


BINARY: dict[str, Callable] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": _divide, "mod": np.mod,
    "power": _power, "maximum": np.maximum, "minimum": np.minimum, "hypot": np.hypot,
    "equal": _keep(np.equal), "not_equal": _keep(np.not_equal), "greater": _keep(np.greater),
    "greater_equal": _keep(np.greater_equal), "lesser": _keep(np.less), "lesser_equal": _keep(np.less_equal),
    "logical_and": _logical(np.logical_and), "logical_or": _logical(np.logical_or),
    "logical_xor": _logical(np.logical_xor),
}
#: MXNet 1.x legacy names of the same binary operators (elemwise_* and _Plus-style).
_LEGACY = {"add": ("elemwise_add", "_plus", "_Plus", "_grad_add"), "sub": ("elemwise_sub", "_minus", "_Minus", "_sub"),
           "mul": ("elemwise_mul", "_mul", "_Mul"), "div": ("elemwise_div", "_div", "_Div"),
           "mod": ("_mod", "_Mod"), "power": ("_power", "_Power"), "maximum": ("_maximum", "_Maximum"),
           "minimum": ("_minimum", "_Minimum"), "hypot": ("_hypot", "_Hypot"), "equal": ("_equal",),
           "not_equal": ("_not_equal",), "greater": ("_greater",), "greater_equal": ("_greater_equal",),
           "lesser": ("_lesser",), "lesser_equal": ("_lesser_equal",), "logical_and": ("_logical_and",),
           "logical_or": ("_logical_or",), "logical_xor": ("_logical_xor",)}
#: MXNet 2 (numpy-semantics) names.
_NPI = {"add": "_npi_add", "sub": "_npi_subtract", "mul": "_npi_multiply", "mod": "_npi_mod",
        "power": "_npi_power", "maximum": "_npi_maximum", "minimum": "_npi_minimum", "hypot": "_npi_hypot"}
_NPI_COMPARE = {"equal": np.equal, "not_equal": np.not_equal, "greater": np.greater,
                "greater_equal": np.greater_equal, "less": np.less, "less_equal": np.less_equal,
                "logical_and": np.logical_and, "logical_or": np.logical_or, "logical_xor": np.logical_xor}

_LHS_RHS = lambda attrs: ["lhs", "rhs"]


def _broadcast_kernel(fn: Callable) -> Callable:
    def kernel(lhs, rhs):
        return fn(lhs, rhs)
    return kernel


for _name, _fn in BINARY.items():
    _spec = OpSpec(f"broadcast_{_name}", _broadcast_kernel(_fn), inputs=_LHS_RHS)
    _aliases = [f"broadcast_{'minus' if _name == 'sub' else 'plus'}"] if _name in ("add", "sub") else []
    register(_spec, *_aliases)
    register(OpSpec(_LEGACY[_name][0], _broadcast_kernel(_fn), inputs=_LHS_RHS), *_LEGACY[_name][1:])
    if _name in _NPI:
        register(OpSpec(_NPI[_name], _broadcast_kernel(_fn), inputs=_LHS_RHS))


def _true_divide(lhs, rhs):
    if np.result_type(lhs, rhs).kind in "iub":
        return np.true_divide(lhs, rhs, dtype=np.float32)
    return np.true_divide(lhs, rhs)


register(OpSpec("_npi_true_divide", _true_divide, inputs=_LHS_RHS))
for _name, _fn in _NPI_COMPARE.items():
    register(OpSpec(f"_npi_{_name}", _broadcast_kernel(_fn), inputs=_LHS_RHS))


def add_n(*args, num_args=None):
    out = args[0].copy()
    for arg in args[1:]:
        out += arg
    return out


register(OpSpec("add_n", add_n, {"num_args": ("optint", None, NUM_ARGS)},
                inputs=lambda attrs: [f"arg{i}" for i in range(attrs.get("num_args") or 0)],
                variadic=True), "ElementWiseSum", "_npi_add_n")

# -- scalar arithmetic ------------------------------------------------------------------------

_SCALAR_ATTRS = {"scalar": ("float", 1.0), "is_int": ("bool", True)}


def _scalar_kernel(fn: Callable, reverse: bool = False) -> Callable:
    def kernel(data, *, scalar=1.0, is_int=True):
        value = np.asarray(scalar).astype(data.dtype) if data.dtype.kind != "b" else np.asarray(scalar)
        return fn(value, data) if reverse else fn(data, value)
    return kernel


_SCALAR = {"_plus_scalar": ("add", False, ("_PlusScalar", "_npi_add_scalar")),
           "_minus_scalar": ("sub", False, ("_MinusScalar", "_npi_subtract_scalar")),
           "_rminus_scalar": ("sub", True, ("_RMinusScalar", "_npi_rsubtract_scalar")),
           "_mul_scalar": ("mul", False, ("_MulScalar", "_npi_multiply_scalar")),
           "_div_scalar": ("div", False, ("_DivScalar",)),
           "_rdiv_scalar": ("div", True, ("_RDivScalar",)),
           "_mod_scalar": ("mod", False, ("_ModScalar", "_npi_mod_scalar")),
           "_rmod_scalar": ("mod", True, ("_RModScalar", "_npi_rmod_scalar")),
           "_power_scalar": ("power", False, ("_PowerScalar", "_npi_power_scalar")),
           "_rpower_scalar": ("power", True, ("_RPowerScalar", "_npi_rpower_scalar")),
           "_maximum_scalar": ("maximum", False, ("_MaximumScalar", "_npi_maximum_scalar")),
           "_minimum_scalar": ("minimum", False, ("_MinimumScalar", "_npi_minimum_scalar")),
           "_hypot_scalar": ("hypot", False, ("_HypotScalar", "_npi_hypot_scalar")),
           "_equal_scalar": ("equal", False, ("_EqualScalar",)),
           "_not_equal_scalar": ("not_equal", False, ("_NotEqualScalar",)),
           "_greater_scalar": ("greater", False, ("_GreaterScalar",)),
           "_greater_equal_scalar": ("greater_equal", False, ("_GreaterEqualScalar",)),
           "_lesser_scalar": ("lesser", False, ("_LesserScalar",)),
           "_lesser_equal_scalar": ("lesser_equal", False, ("_LesserEqualScalar",)),
           "_logical_and_scalar": ("logical_and", False, ("_LogicalAndScalar",)),
           "_logical_or_scalar": ("logical_or", False, ("_LogicalOrScalar",)),
           "_logical_xor_scalar": ("logical_xor", False, ("_LogicalXorScalar",))}
for _name, (_op, _reverse, _names) in _SCALAR.items():
    register(OpSpec(_name, _scalar_kernel(BINARY[_op], _reverse), dict(_SCALAR_ATTRS)), *_names)


def _npi_scalar(fn: Callable, reverse: bool = False) -> Callable:
    """NumPy semantics: a float scalar with integer data gives floats."""
    def kernel(data, *, scalar=1.0, is_int=True):
        value = int(scalar) if is_int and float(scalar).is_integer() else float(scalar)
        if data.dtype.kind != "f" and isinstance(value, float):
            data = data.astype(np.float32)
        value = np.asarray(value, dtype=data.dtype) if data.dtype.kind == "f" else value
        return fn(value, data) if reverse else fn(data, value)
    return kernel


register(OpSpec("_npi_true_divide_scalar", _npi_scalar(_true_divide), dict(_SCALAR_ATTRS)))
register(OpSpec("_npi_rtrue_divide_scalar", _npi_scalar(_true_divide, True), dict(_SCALAR_ATTRS)))
for _name, _fn in _NPI_COMPARE.items():
    if not _name.startswith("logical"):
        register(OpSpec(f"_npi_{_name}_scalar", _npi_scalar(_fn), dict(_SCALAR_ATTRS)))

# -- unary maths -------------------------------------------------------------------------------


def _round_half_away(x):
    return np.copysign(np.floor(np.abs(x) + 0.5), x).astype(x.dtype, copy=False)


def _rint(x):
    """MXNet's rint: halves go down (1.5 -> 1, -0.5 -> -1)."""
    low = np.floor(x)
    return np.where(x - low <= 0.5, low, np.ceil(x)).astype(x.dtype, copy=False)


def _erf(x):
    """erf in float64 from erfc's Chebyshev fit (fractional error below 1.2e-7 everywhere)."""
    z = np.abs(x.astype(np.float64))
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(poly)
    return np.where(x >= 0, 1.0 - erfc, erfc - 1.0)


def _float(fn: Callable) -> Callable:
    """Float results keep the input's float dtype (numpy would upcast some functions)."""
    def kernel(data):
        out = fn(data)
        return out.astype(data.dtype, copy=False) if data.dtype.kind == "f" else out
    return kernel


UNARY: dict[str, Callable] = {
    "exp": np.exp, "log": np.log, "log2": np.log2, "log10": np.log10, "log1p": np.log1p, "expm1": np.expm1,
    "sqrt": np.sqrt, "rsqrt": lambda x: 1.0 / np.sqrt(x), "cbrt": np.cbrt, "rcbrt": lambda x: 1.0 / np.cbrt(x),
    "square": np.square, "abs": np.abs, "sign": np.sign, "negative": np.negative,
    "reciprocal": lambda x: 1.0 / x, "floor": np.floor, "ceil": np.ceil, "round": _round_half_away,
    "rint": _rint, "fix": np.trunc, "trunc": np.trunc, "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "arcsin": np.arcsin, "arccos": np.arccos, "arctan": np.arctan, "sinh": np.sinh, "cosh": np.cosh,
    "arcsinh": np.arcsinh, "arccosh": np.arccosh, "arctanh": np.arctanh, "erf": _erf,
    "logical_not": lambda x: (x == 0).astype(x.dtype), "degrees": np.degrees, "radians": np.radians,
}
_NPI_UNARY = {"exp": "_npi_exp", "log": "_npi_log", "sqrt": "_npi_sqrt", "square": "_npi_square",
              "abs": "_npi_absolute", "sign": "_npi_sign", "negative": "_npi_negative", "floor": "_npi_floor",
              "ceil": "_npi_ceil", "rint": "_npi_rint", "trunc": "_npi_trunc", "fix": "_npi_fix",
              "log2": "_npi_log2", "log10": "_npi_log10", "log1p": "_npi_log1p", "expm1": "_npi_expm1",
              "reciprocal": "_npi_reciprocal", "sin": "_npi_sin", "cos": "_npi_cos", "tan": "_npi_tan",
              "cbrt": "_npi_cbrt", "arctan": "_npi_arctan", "sinh": "_npi_sinh", "cosh": "_npi_cosh"}
for _name, _fn in UNARY.items():
    _aliases = [_NPI_UNARY[_name]] if _name in _NPI_UNARY else []
    if _name == "erf":
        _aliases.append("_npx_erf")
    register(OpSpec(_name, _float(_fn)), *_aliases)
register(OpSpec("_npi_tanh", _float(np.tanh)))

# -- activations -------------------------------------------------------------------------------


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def hard_sigmoid(data, *, alpha=0.2, beta=0.5):
    return np.clip(data * data.dtype.type(alpha) + data.dtype.type(beta), 0, 1).astype(data.dtype, copy=False)


def gelu(x):
    return (0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))).astype(x.dtype, copy=False)


_SELU_LAMBDA = 1.0507009873554804934193349852946
_SELU_ALPHA = 1.6732632423543772848170429916717


def leaky_relu(data, gamma=None, *, act_type="leaky", slope=0.25, lower_bound=0.125, upper_bound=0.334):
    if act_type == "leaky":
        return np.where(data > 0, data, data * data.dtype.type(slope))
    if act_type == "rrelu":  # inference: the mean of the random slope's range
        return np.where(data > 0, data, data * data.dtype.type((lower_bound + upper_bound) / 2))
    if act_type == "prelu":
        if gamma is None:
            raise UnsupportedOpError("LeakyReLU prelu needs its gamma input")
        if gamma.size == 1 or data.ndim < 2:
            weights = gamma.reshape(-1)[0] if gamma.size == 1 else gamma
        else:  # one slope per channel (axis 1)
            weights = gamma.reshape((1, -1) + (1,) * (data.ndim - 2))
        return np.where(data > 0, data, data * weights).astype(data.dtype, copy=False)
    if act_type == "elu":
        return np.where(data > 0, data, data.dtype.type(slope) * np.expm1(np.minimum(data, 0)))
    if act_type == "selu":
        negative = data.dtype.type(_SELU_ALPHA) * np.expm1(np.minimum(data, 0))
        return (data.dtype.type(_SELU_LAMBDA) * np.where(data > 0, data, negative)).astype(data.dtype)
    if act_type in ("gelu", "gelu_erf"):
        return gelu(data)
    if act_type == "gelu_tanh":  # MXNet 2's tanh approximation
        inner = np.sqrt(2.0 / np.pi) * (data + 0.044715 * data * data * data)
        return (0.5 * data * (1.0 + np.tanh(inner))).astype(data.dtype, copy=False)
    raise UnsupportedOpError(f"LeakyReLU act_type '{act_type}' is not supported")


def _leaky_inputs(attrs):
    return ["data", "gamma"] if attrs.get("act_type") == "prelu" else ["data"]


register(OpSpec("LeakyReLU", leaky_relu,
                {"act_type": ("str", "leaky", one_of("leaky", "prelu", "elu", "selu", "gelu", "rrelu",
                                                                "gelu_erf", "gelu_tanh")),
                 "slope": ("float", 0.25), "lower_bound": ("float", 0.125), "upper_bound": ("float", 0.334)},
                inputs=_leaky_inputs), "_npx_leaky_relu")
register(OpSpec("hard_sigmoid", hard_sigmoid, {"alpha": ("float", 0.2), "beta": ("float", 0.5)}),
         "_npx_hard_sigmoid")
register(OpSpec("log_sigmoid", _float(lambda x: -np.logaddexp(0, -x))), "_npx_log_sigmoid")
register(OpSpec("_npx_gelu", gelu))

# -- clip and where -----------------------------------------------------------------------------


def clip(data, *, a_min, a_max):
    if data.dtype.kind == "f":
        return np.clip(data, data.dtype.type(a_min), data.dtype.type(a_max))
    return np.clip(data, a_min, a_max).astype(data.dtype)


def where(condition, x, y):
    if condition.shape != x.shape and condition.ndim == 1 and condition.shape[0] == x.shape[0]:
        condition = condition.reshape((-1,) + (1,) * (x.ndim - 1))  # one choice per row
    return np.where(condition != 0, x, y)


register(OpSpec("clip", clip, {"a_min": ("float", REQUIRED), "a_max": ("float", REQUIRED)}))
register(OpSpec("where", where, inputs=lambda attrs: ["condition", "x", "y"]), "_npi_where")
