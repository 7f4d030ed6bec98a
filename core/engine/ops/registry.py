"""The operator registry: one numpy kernel per MXNet operator name, with typed attributes.

Layers, traced graphs and imported ``-symbol.json`` graphs all run through :func:`invoke`, so an
eager forward pass, an exported graph and a real MXNet export execute the very same kernels. Each
operator declares its attributes with a type, so string attributes from a graph file (``"(3, 3)"``,
``"True"``) parse to the same values a layer passes directly, and the writer turns them back into
MXNet's spelling. Kernel families register themselves from their own modules (``conv``, ``nn``...).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import ModelSurgeonError, ShapeError, UnsupportedOpError

# -- attribute types ------------------------------------------------------------------------


def _parse_tuple(value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        text = value.strip()
        if text in ("", "None", "()", "[]"):
            return ()
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            raise ModelSurgeonError(f"cannot read {value!r} as a tuple of integers") from exc
    if isinstance(value, (int, np.integer)):
        return (int(value),)
    try:
        return tuple(int(v) for v in value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ModelSurgeonError(f"cannot read {value!r} as a tuple of integers") from exc


def _parse_bool(value: Any) -> bool:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise ModelSurgeonError(f"cannot read {value!r} as a boolean")
    return bool(value)


def _parse_optional_int(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and value.strip() == "None"):
        return None
    return int(value)


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "int": lambda v: int(v),
    "float": lambda v: float(v),
    "bool": _parse_bool,
    "str": lambda v: str(v),
    "tuple": _parse_tuple,
    "optint": _parse_optional_int,
    "optfloat": lambda v: None if v is None or str(v).strip() == "None" else float(v),
}


def _format_attr(value: Any) -> str:
    """MXNet's spelling: ``(3, 3)``, ``True``, ``64``, ``1e-05``."""
    if isinstance(value, tuple):
        return "(" + ", ".join(str(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value)


@dataclass(frozen=True)
class OpSpec:
    """One operator: its MXNet name, inputs, typed attributes and numpy kernel."""

    name: str
    kernel: Callable[..., np.ndarray]
    attrs: dict[str, tuple[str, Any]] = field(default_factory=dict)  # name -> (type, default)
    inputs: Callable[[dict[str, Any]], list[str]] = lambda attrs: ["data"]
    aux_inputs: tuple[int, ...] = ()
    ignored: frozenset[str] = frozenset()  # attributes with no effect on inference results
    variadic: bool = False

    def parse(self, raw: dict[str, Any], node: str = "") -> dict[str, Any]:
        """Typed attributes from ``raw`` (strings or values), defaults filled in."""
        parsed: dict[str, Any] = {}
        for key, value in raw.items():
            if key.startswith("__") or key in self.ignored:
                continue
            if key not in self.attrs:
                where = f" in node '{node}'" if node else ""
                raise UnsupportedOpError(f"operator {self.name}{where}: unsupported attribute "
                                         f"{key}={value!r}")
            kind = self.attrs[key][0]
            try:
                parsed[key] = _PARSERS[kind](value)
            except (TypeError, ValueError, OverflowError, ModelSurgeonError) as exc:
                raise ModelSurgeonError(f"operator {self.name}: bad value {value!r} for {key} ({exc})") from None
        for key, (kind, default) in self.attrs.items():
            if key not in parsed:
                if default is _REQUIRED:
                    raise ModelSurgeonError(f"operator {self.name}: attribute '{key}' is required")
                parsed[key] = default
        return parsed

    def format(self, attrs: dict[str, Any], explicit: Sequence[str]) -> dict[str, str]:
        """String attributes for a graph file: the explicitly given ones, in MXNet's spelling."""
        return {key: _format_attr(attrs[key]) for key in sorted(explicit) if key in attrs}


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
        raise UnsupportedOpError(
            f"unsupported operator '{name}'{where}; supported: {', '.join(sorted(_REGISTRY))}") from None


def supported_spec(name: str) -> OpSpec | None:
    """The spec of operator ``name``, or None when it is not supported."""
    return _REGISTRY.get(name)


def supported() -> list[str]:
    return sorted(_REGISTRY)


def invoke(name: str, inputs: Sequence[Any], attrs: dict[str, Any] | None = None,
           hint: str | None = None) -> Any:
    """Run operator ``name`` on numpy inputs, or record it when any input is a traced Symbol."""
    spec = get(name)
    given = dict(attrs or {})
    parsed = spec.parse(given)
    traced = next((x for x in inputs if hasattr(x, "record_op")), None)
    if traced is not None:  # a Symbol being traced: the graph records the call instead of running it
        return traced.record_op(spec, list(inputs), parsed, given, hint)
    try:
        return spec.kernel(*inputs, **parsed)
    except ModelSurgeonError:
        raise
    except (ValueError, TypeError, IndexError) as exc:
        raise ShapeError(f"operator {spec.name} cannot run on inputs of shapes "
                         f"{[getattr(x, 'shape', None) for x in inputs]}: {exc}") from None


