"""The operator registry: one numpy kernel per MXNet operator name, with typed attributes.

Layers, traced graphs and imported ``-symbol.json`` graphs all run through :func:`invoke`, so an
eager forward pass, an exported graph and a real MXNet export execute the very same kernels. Each
operator declares its attributes with a type, so string attributes from a graph file (``"(3, 3)"``,
``"True"``) parse to the same values a layer passes directly, and the writer turns them back into
MXNet's spelling. Kernel families register themselves from their own modules (``conv``, ``nn``...).
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import CheckpointError, InvalidAttributeError, ModelSurgeonError, ShapeError, UnsupportedOpError

# -- attribute types ------------------------------------------------------------------------

#: Longest attribute string read at all: a 100,000-character kernel string is an error, not a
#: MemoryError or a minute of parsing.
MAX_ATTR_CHARS = 4096
#: Most elements an attribute tuple may have (no operator needs more dimensions).
MAX_TUPLE_ITEMS = 32


class AttrError(ValueError):
    """An attribute value that cannot be read or is out of range (reworded with the node by parse)."""


def _literal(text: str, what: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError) as exc:
        raise AttrError(f"cannot read {text!r} as {what}") from exc


#: The common spellings ``(3, 3)``, ``[1,1]``, ``(1,)``, ``2``: read without the parser.
_SIMPLE_TUPLE = re.compile(r"[(\[]?\s*(-?\d{1,18}(?:\s*,\s*-?\d{1,18})*)?\s*,?\s*[)\]]?")


_BRACKETS = {"(": ")", "[": "]"}


def _parse_tuple(value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        text = value.strip()
        if text in ("", "None", "()", "[]"):
            return ()
        simple = _SIMPLE_TUPLE.fullmatch(text)
        if simple and simple.group(1) and _BRACKETS.get(text[0], text[0]) == (text[-1] if text[0] in "([" else text[0]):
            items = simple.group(1).split(",")
            if len(items) > MAX_TUPLE_ITEMS:
                raise AttrError(f"has {len(items)} elements, more than {MAX_TUPLE_ITEMS}")
            return tuple(int(item) for item in items)
        value = _literal(text, "a tuple of integers")
    if isinstance(value, bool):
        raise AttrError(f"cannot read {value!r} as a tuple of integers")
    if isinstance(value, (int, np.integer)):
        return (_checked_int(int(value)),)
    try:
        items = tuple(value)
    except TypeError:
        raise AttrError(f"cannot read {value!r} as a tuple of integers") from None
    if len(items) > MAX_TUPLE_ITEMS:
        raise AttrError(f"has {len(items)} elements, more than {MAX_TUPLE_ITEMS}")
    if not all((isinstance(v, (int, np.integer)) and not isinstance(v, bool)) or
               (isinstance(v, (float, np.floating)) and float(v).is_integer()) for v in items):
        raise AttrError(f"cannot read {value!r} as a tuple of integers")
    return tuple(_checked_int(int(v)) for v in items)


def _parse_float_tuple(value: Any) -> tuple[float, ...]:
    if isinstance(value, str):
        text = value.strip()
        if text in ("", "None", "()", "[]"):
            return ()
        value = _literal(text, "a tuple of numbers")
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return (float(value),)
    try:
        items = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise AttrError(f"cannot read {value!r} as a tuple of numbers") from None
    if len(items) > MAX_TUPLE_ITEMS:
        raise AttrError(f"has {len(items)} elements, more than {MAX_TUPLE_ITEMS}")
    return items


def _parse_optional_tuple(value: Any) -> tuple[int | None, ...]:
    """A tuple whose entries may be None (``slice``'s ``begin``/``end``/``step``)."""
    if isinstance(value, str):
        text = value.strip()
        if text in ("", "()", "[]"):
            return ()
        value = _literal(text, "a tuple of integers or None")
    if value is None:
        return ()
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),)
    try:
        items = tuple(value)
    except TypeError:
        raise AttrError(f"cannot read {value!r} as a tuple of integers or None") from None
    if len(items) > MAX_TUPLE_ITEMS:
        raise AttrError(f"has {len(items)} elements, more than {MAX_TUPLE_ITEMS}")
    if not all(v is None or (isinstance(v, (int, np.integer)) and not isinstance(v, bool)) for v in items):
        raise AttrError(f"cannot read {value!r} as a tuple of integers or None")
    return tuple(None if v is None else _checked_int(int(v)) for v in items)


def _parse_bool(value: Any) -> bool:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise AttrError(f"cannot read {value!r} as a boolean")
    return bool(value)


#: Integer attributes must fit MXNet's int64.
INT_LIMIT = 1 << 63


def _checked_int(value: int) -> int:
    if not -INT_LIMIT <= value < INT_LIMIT:
        raise AttrError("the integer does not fit in 64 bits")
    return value


def _parse_int(value: Any) -> int:
    if isinstance(value, float) and not value.is_integer():
        raise AttrError(f"cannot read {value!r} as an integer")
    if isinstance(value, bool):
        return int(value)
    return _checked_int(int(value))


def _parse_optional_int(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and value.strip() == "None"):
        return None
    return _parse_int(value)


def _parse_float(value: Any) -> float:
    number = float(value)
    if isinstance(value, str) and value.strip().lower() in ("nan", "+nan", "-nan"):
        raise AttrError(f"{value!r} is not a number")
    return number


def _parse_optional_axis(value: Any) -> int | tuple[int, ...] | None:
    """``axis`` of reductions: None, one integer or a tuple of them."""
    if value is None or (isinstance(value, str) and value.strip() in ("None", "")):
        return None
    parsed = _parse_tuple(value)
    return parsed


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "int": _parse_int,
    "float": _parse_float,
    "bool": _parse_bool,
    "str": lambda v: str(v),
    "tuple": _parse_tuple,
    "ftuple": _parse_float_tuple,
    "optint": _parse_optional_int,
    "optfloat": lambda v: None if v is None or str(v).strip() == "None" else _parse_float(v),
    "axes": _parse_optional_axis,
    "otuple": _parse_optional_tuple,
}

# -- attribute ranges: each returns a problem or None -----------------------------------------

Check = Callable[[Any], "str | None"]


def at_least(low: float) -> Check:
    """Every element (of a tuple) or the value is >= ``low``."""
    def check(value: Any) -> str | None:
        items = value if isinstance(value, tuple) else (value,)
        if any(v is not None and v < low for v in items):
            return f"must be >= {low}"
        return None
    return check


def between(low: float, high: float) -> Check:
    """The value (or each element) lies in [low, high]."""
    def check(value: Any) -> str | None:
        items = value if isinstance(value, tuple) else (value,)
        if any(v is not None and not low <= v <= high for v in items):
            return f"must be between {low} and {high}"
        return None
    return check


#: Most inputs a variadic operator (Concat, add_n, stack, UpSampling) may declare.
MAX_INPUTS = 1 << 16


def one_of(*choices: Any) -> Check:
    def check(value: Any) -> str | None:
        if value not in choices:
            return "must be one of " + ", ".join(repr(c) for c in choices)
        return None
    return check


NUM_ARGS = between(1, MAX_INPUTS)  #: the range of ``num_args``


def _format_attr(value: Any) -> str:
    """MXNet's spelling: ``(3, 3)``, ``True``, ``64``, ``1e-05``."""
    if isinstance(value, tuple):
        return "(" + ", ".join(str(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value)


@dataclass(frozen=True)
class OpSpec:
    """One operator: its MXNet name, inputs, typed attributes and numpy kernel.

    ``attrs`` maps each attribute to ``(type, default)`` or ``(type, default, check)``, where
    ``check`` (see :func:`at_least`, :func:`between`, :func:`one_of`) returns the problem with a
    value or None; ``validate`` checks attributes against each other. Both run whenever
    attributes are parsed, so a graph or architecture with impossible attributes is refused when
    it is read, naming the node and the attribute. ``num_outputs`` gives the number of outputs
    (a kernel with more than one returns a list).
    """

    name: str
    kernel: Callable[..., Any]
    attrs: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    inputs: Callable[[dict[str, Any]], list[str]] = lambda attrs: ["data"]
    aux_inputs: tuple[int, ...] = ()
    ignored: frozenset[str] = frozenset()  # attributes with no effect on inference results
    variadic: bool = False
    num_outputs: Callable[[dict[str, Any]], int] = lambda attrs: 1
    #: input positions only training reads (SoftmaxOutput's label): at inference they may be absent
    label_inputs: tuple[int, ...] = ()
    validate: Callable[[dict[str, Any]], str | None] | None = None

    def parse(self, raw: dict[str, Any], node: str = "") -> dict[str, Any]:
        """Typed attributes from ``raw`` (strings or values), defaults filled in and ranges checked.

        Results are remembered (a graph's nodes are parsed again on every forward pass); each
        call returns a fresh dict."""
        try:
            key: tuple[Any, ...] | None = (id(self), node, tuple(raw.items()))
            known = _PARSED.get(key)  # type: ignore[arg-type]
        except TypeError:  # unhashable values (arrays...): parse every time
            key, known = None, None
        if known is not None:
            return dict(known)
        parsed = self._parse(raw, node)
        if key is not None:
            if len(_PARSED) >= _PARSED_LIMIT:
                _PARSED.clear()
            _PARSED[key] = parsed
        return dict(parsed)

    def _parse(self, raw: dict[str, Any], node: str) -> dict[str, Any]:
        where = f"operator {self.name}" + (f" in node '{node}'" if node else "")
        parsed: dict[str, Any] = {}
        for key, value in raw.items():
            if key.startswith("__") or key in self.ignored:
                continue
            if key not in self.attrs:
                raise UnsupportedOpError(f"{where}: unsupported attribute {key}={_brief(value)}")
            kind = self.attrs[key][0]
            if isinstance(value, str) and len(value) > MAX_ATTR_CHARS:
                raise InvalidAttributeError(where, f"attribute {key} is {len(value)} characters long, "
                                                   f"more than {MAX_ATTR_CHARS}")
            try:
                parsed[key] = _PARSERS[kind](value)
            except (TypeError, ValueError, OverflowError, MemoryError, RecursionError, ModelSurgeonError) as exc:
                reason = str(exc) if len(str(exc)) <= 120 else str(exc)[:100] + "..."
                raise InvalidAttributeError(where, f"bad value {_brief(value)} for {key} ({reason})") from None
            check = self.attrs[key][2] if len(self.attrs[key]) > 2 else None
            problem = check(parsed[key]) if check is not None else None
            if problem:
                raise InvalidAttributeError(where, f"attribute {key}={_brief(value)} {problem}")
        for key, spec in self.attrs.items():
            if key not in parsed:
                if spec[1] is _REQUIRED:
                    raise InvalidAttributeError(where, f"attribute '{key}' is required")
                parsed[key] = spec[1]
        if self.validate is not None:
            problem = self.validate(parsed)
            if problem:
                raise InvalidAttributeError(where, problem)
        return parsed

    def format(self, attrs: dict[str, Any], explicit: Sequence[str]) -> dict[str, str]:
        """String attributes for a graph file: the explicitly given ones, in MXNet's spelling."""
        return {key: _format_attr(attrs[key]) for key in sorted(explicit) if key in attrs}


_PARSED: dict[tuple[Any, ...], dict[str, Any]] = {}
_PARSED_LIMIT = 1 << 14


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + f"...' ({len(text)} characters)"


_REQUIRED = object()
REQUIRED = _REQUIRED  #: the default of an attribute that must be given
_REGISTRY: dict[str, OpSpec] = {}


def register(spec: OpSpec, *aliases: str) -> OpSpec:
    for name in (spec.name, *aliases):
        _REGISTRY[name] = spec
    return spec


def get(name: str, node: str = "") -> OpSpec:
    """The spec of operator ``name``; a clear error naming it when unsupported."""
    try:
        return _REGISTRY[name]
    except KeyError:
        where = f" (node '{node}')" if node else ""
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.75)
        hint = f"; similar supported operators: {', '.join(close)}" if close else ""
        raise UnsupportedOpError(f"unsupported operator '{name}'{where}{hint}") from None


def supported_spec(name: str) -> OpSpec | None:
    """The spec of operator ``name``, or None when it is not supported."""
    return _REGISTRY.get(name)


def supported() -> list[str]:
    return sorted(_REGISTRY)


def invoke(name: str, inputs: Sequence[Any], attrs: dict[str, Any] | None = None,
           hint: str | None = None, *, quiet: bool = False) -> Any:
    """Run operator ``name`` on numpy inputs, or record it when any input is a traced Symbol.

    Numeric edge cases behave as in MXNet (``log(-1)`` is nan, ``1/0`` is inf) without numpy
    warnings (``quiet``: the caller has silenced them already, as a graph pass does once for all its
    operators); errors name the node (``hint``) when there is one.
    """
    spec = get(name, hint or "")
    given = dict(attrs or {})
    parsed = spec.parse(given, hint or "")
    traced = next((x for x in inputs if hasattr(x, "record_op")), None)
    if traced is not None:  # a Symbol being traced: the graph records the call instead of running it
        return traced.record_op(spec, list(inputs), parsed, given, hint)
    try:
        if quiet:
            return spec.kernel(*inputs, **parsed)
        with np.errstate(all="ignore"):
            return spec.kernel(*inputs, **parsed)
    except ModelSurgeonError as exc:
        if hint and f"'{hint}'" not in str(exc):
            raise type(exc)(*_with_node(exc, hint, spec.name)) from None
        raise
    except MemoryError:
        where = f" (node '{hint}')" if hint else ""
        raise ShapeError(f"operator {spec.name}{where} needs more memory than is available for inputs of "
                         f"shapes {[getattr(x, 'shape', None) for x in inputs]}") from None
    except (ValueError, TypeError, IndexError, ArithmeticError) as exc:
        where = f" (node '{hint}')" if hint else ""
        raise ShapeError(f"operator {spec.name}{where} cannot run on inputs of shapes "
                         f"{[getattr(x, 'shape', None) for x in inputs]}: {exc}") from None


def _with_node(exc: ModelSurgeonError, node: str, op: str) -> tuple[str, ...]:
    """The arguments of ``exc`` reworded to name the node it happened in."""
    if isinstance(exc, InvalidAttributeError):
        return (f"node '{node}' ({op})", exc.problem)
    if isinstance(exc, CheckpointError):
        return (exc.path, f"{exc.problem} (node '{node}')")
    return (f"node '{node}' ({op}): {exc}",)
