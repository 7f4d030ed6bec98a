"""A model picture as data: layers (name, op, output shape, tensors), edges, the head, diff states.

:mod:`.sources` builds pictures from a checkpoint (its architecture, graph or keys); :mod:`.diff`
colours one with what a comparison found; :mod:`.placement` and :mod:`.render` draw them.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from typing import Any

from ..formats.base import TensorInfo

#: Diff states from the most to the least important; a layer takes the first state any of its
#: tensors has. ``changed`` means same key, shape and dtype but different values.
DIFF_STATES = ("removed", "reshaped", "added", "renamed", "changed", "same")
STATE_LABELS = {"removed": "removed", "reshaped": "reshaped / retyped", "added": "added",
                "renamed": "renamed", "changed": "values changed", "same": "unchanged"}

#: Parameter names MXNet spells with an underscore inside (kept whole when keys are split on '_').
_TWO_WORD_SUFFIXES = ("running_mean", "running_var", "moving_mean", "moving_var")


@dataclass
class TensorRow:
    """One tensor as a picture shows it."""

    key: str
    shape: tuple[int, ...] | None
    dtype: str
    nbytes: int = 0
    structural: tuple[str, ...] = ()
    role: str | None = None
    alias_of: str | None = None
    state: str | None = None
    detail: str = ""

    @property
    def size(self) -> int:
        return math.prod(self.shape) if self.shape is not None else 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "shape": list(self.shape) if self.shape is not None else None,
                               "dtype": self.dtype, "size": self.size, "bytes": self.nbytes}
        if self.structural:
            out["structural"] = list(self.structural)
        if self.role:
            out["role"] = self.role
        if self.alias_of:
            out["alias_of"] = self.alias_of
        if self.state:
            out["state"] = self.state
        if self.detail:
            out["detail"] = self.detail
        return out


def tensor_row(info: TensorInfo) -> TensorRow:
    return TensorRow(info.key, tuple(info.shape), str(info.dtype), 0 if info.alias_of else info.nbytes,
                     tuple(info.structural), info.role, info.alias_of)


@dataclass
class Layer:
    """One drawn node: a layer, an operator, a model input, or (keys only) a group of tensors."""

    id: str
    name: str
    op: str
    summary: str = ""
    shape: tuple[int, ...] | None = None
    tensors: list[TensorRow] = field(default_factory=list)
    kind: str = "layer"  # 'layer' or 'input'
    path: str = ""  # the block path the layer belongs to, where known
    head: bool = False
    state: str | None = None
    detached: bool = False  # drawn apart: not connected to the data flow
    ghost: bool = False  # a diff's removed layer, only in A

    @property
    def params(self) -> int:
        return sum(t.size for t in self.tensors if t.alias_of is None)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name, "op": self.op, "kind": self.kind,
                               "shape": list(self.shape) if self.shape is not None else None,
                               "params": self.params, "bytes": self.nbytes,
                               "tensors": [t.to_dict() for t in self.tensors]}
        for key in ("summary", "path"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        for key in ("head", "detached", "ghost"):
            if getattr(self, key):
                out[key] = True
        if self.state:
            out["state"] = self.state
        return out


@dataclass
class Picture:
    """Everything a drawing shows; :meth:`to_dict` is what the HTML page and ``--json`` carry."""

    title: str
    source: str  # 'architecture', 'graph' or 'keys'
    layers: list[Layer]
    edges: list[tuple[str, str]]
    facts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    head: str | None = None
    key_column: str = "key"
    diff: dict[str, Any] | None = None

    def layer(self, layer_id: str) -> Layer:
        for layer in self.layers:
            if layer.id == layer_id:
                return layer
        raise KeyError(layer_id)

    def layer_of(self, key: str) -> Layer | None:
        """The layer holding tensor ``key``."""
        for layer in self.layers:
            if any(t.key == key for t in layer.tensors):
                return layer
        return None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"title": self.title, "source": self.source, "facts": self.facts,
                               "notes": self.notes, "head": self.head, "key_column": self.key_column,
                               "layers": [layer.to_dict() for layer in self.layers],
                               "edges": [list(edge) for edge in self.edges]}
        if self.diff is not None:
            out["diff"] = self.diff
        return out


# -- labels shared by layout and render ----------------------------------------------------------

def shape_text(shape: tuple[int, ...] | list[int] | None) -> str:
    """``(1, 3, 32, 32)`` -> ``1×3×32×32``; ``()`` -> ``scalar``."""
    if shape is None:
        return ""
    return "×".join(str(d) for d in shape) if len(shape) else "scalar"


def count_text(n: int) -> str:
    """1234567 -> ``1.2M``, 2048 -> ``2.0k``, 512 -> ``512``."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= limit:
            return f"{n / limit:.1f}{suffix}"
    return str(n)


def bytes_text(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def shorten(text: str, limit: int) -> str:
    """Cut the middle out of long names (``features.4.0.bo…dy.0``) so both ends stay readable."""
    if len(text) <= limit:
        return text
    keep = limit - 1
    return text[: (keep + 1) // 2] + "…" + text[len(text) - keep // 2:]


def label_lines(layer: Layer, width: float | None = None) -> list[str]:
    """The text lines of a layer's box: name; op and settings; output shape and parameters.

    With ``width`` (the box's, in pixels) long lines are shortened to fit.
    """
    if layer.kind == "input":
        return [f"{layer.name}  {shape_text(layer.shape)}".strip()]
    first, rest = (42, 48) if width is None else (max(8, int((width - 26) / 7.4)), max(8, int((width - 26) / 6.3)))
    lines = [shorten(layer.name, first)]
    second = layer.op + (f" · {layer.summary}" if layer.summary else "")
    lines.append(shorten(second, rest))
    third = []
    if layer.shape is not None:
        third.append(shape_text(layer.shape))
    if layer.tensors:
        third.append(f"{count_text(layer.params)} params")
    if third:
        lines.append(" · ".join(third))
    return lines


# -- summaries of layer settings -----------------------------------------------------------------

def _pair_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "×".join(str(v) for v in value)
    return f"{value}×{value}"


def _stride_of(value: Any) -> int | None:
    if isinstance(value, (list, tuple)) and value:
        return int(max(value))
    if isinstance(value, (int, float)):
        return int(value)
    return None


def block_summary(kind: str, config: dict[str, Any]) -> str:
    """A short description of a layer's settings from its architecture config."""
    parts: list[str] = []
    if kind == "Conv2D":
        parts.append(f"{_pair_text(config.get('kernel_size', '?'))}, {config.get('channels', '?')} ch")
        stride = _stride_of(config.get("strides"))
        if stride and stride > 1:
            parts.append(f"/{stride}")
        groups = config.get("groups", 1)
        if groups and groups != 1:
            parts.append(f"{groups} groups")
    elif kind == "Dense":
        parts.append(f"{config.get('units', '?')} units")
    elif kind in ("MaxPool2D", "AvgPool2D"):
        parts.append(_pair_text(config.get("pool_size", "?")))
        stride = _stride_of(config.get("strides"))
        if stride and stride > 1:
            parts.append(f"/{stride}")
    elif kind == "Dropout":
        parts.append(f"p={config.get('rate')}")
    elif kind == "Activation":
        parts.append(str(config.get("activation", "")))
    elif kind in ("Concatenate", "HybridConcatenate"):
        parts.append(f"axis {config.get('axis', 1)}")
    activation = config.get("activation") if kind != "Activation" else None
    if activation:
        parts.append(str(activation))
    return ", ".join(p for p in parts if p)


def _attr_tuple(attrs: dict[str, str], key: str) -> tuple[int, ...] | None:
    try:
        value = ast.literal_eval(attrs[key])
    except (KeyError, ValueError, SyntaxError):
        return None
    if isinstance(value, int):
        return (value,)
    if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
        return value
    return None


def op_summary(op: str, attrs: dict[str, str]) -> str:
    """A short description of a graph operator's attributes."""
    parts: list[str] = []
    kernel = _attr_tuple(attrs, "kernel")
    stride = _attr_tuple(attrs, "stride")
    strided = stride is not None and max(stride, default=1) > 1
    if op == "Convolution":
        parts.append(f"{'×'.join(map(str, kernel)) if kernel else '?'}, {attrs.get('num_filter', '?')} ch")
        if strided:
            parts.append(f"/{max(stride or (1,))}")
        if attrs.get("num_group", "1") not in ("1", ""):
            parts.append(f"{attrs['num_group']} groups")
    elif op == "FullyConnected":
        parts.append(f"{attrs.get('num_hidden', '?')} units")
    elif op == "Pooling":
        kind = attrs.get("pool_type", "max")
        if attrs.get("global_pool", "False").lower() in ("true", "1"):
            parts.append(f"global {kind}")
        else:
            parts.append(f"{kind} {'×'.join(map(str, kernel)) if kernel else ''}".strip())
            if strided:
                parts.append(f"/{max(stride or (1,))}")
    elif op in ("Activation", "LeakyReLU"):
        parts.append(attrs.get("act_type", ""))
    elif op == "Dropout":
        parts.append(f"p={attrs.get('p', '?')}")
    elif op == "Concat":
        parts.append(f"axis {attrs.get('dim', '1')}")
    return ", ".join(p for p in parts if p)


def _op_word(op: str, attrs: dict[str, str]) -> str:
    if op == "Activation":
        return attrs.get("act_type", "activation")
    return {"elemwise_add": "add", "elemwise_mul": "mul", "Concat": "concat"}.get(op, op.lower())


# -- building -------------------------------------------------------------------------------------
