"""Group dotted keys into a tree with per-subtree totals, folding repeated numbered siblings.

>>> from modelsurgeon.core.formats.base import TensorInfo
>>> import numpy as np
>>> infos = [TensorInfo(f"blocks.{i}.{n}", (4,), np.dtype("float32")) for i in range(3) for n in ("w", "b")]
>>> [(node.name, node.repeat, node.tensors) for node in key_tree(infos).children]
[('blocks', 1, 6)]
>>> [(node.name, node.repeat, node.indices) for node in key_tree(infos).children[0].children]
[('#', 3, ['0', '1', '2'])]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .formats.base import TensorInfo


@dataclass
class KeyNode:
    """A path segment: its tensors (leaf) or children, and totals over the whole subtree."""

    name: str
    info: TensorInfo | None = None
    children: list[KeyNode] = field(default_factory=list)
    repeat: int = 1
    indices: list[str] = field(default_factory=list)
    tensors: int = 0
    params: int = 0
    bytes: int = 0

    def signature(self) -> tuple[Any, ...]:
        if self.info is not None:
            return ("leaf", self.name, self.info.shape, str(self.info.dtype), self.info.alias_of is not None)
        return (self.name if not self.name.isdigit() else "#", tuple(c.signature() for c in self.children))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "tensors": self.tensors, "params": self.params, "bytes": self.bytes}
        if self.repeat > 1:
            out["repeat"] = self.repeat
            out["indices"] = self.indices
        if self.info is not None:
            out["shape"] = list(self.info.shape)
            out["dtype"] = str(self.info.dtype)
        if self.children:
            out["children"] = [c.to_dict() for c in self.children]
        return out


#: Deepest tree built: the rest of a longer key stays one segment (``a.b. ... .x.y.z`` with 5,000
#: parts), so every walk over the tree (totals, folding, JSON, printing) stays far from Python's
#: recursion limit. Real models nest a dozen levels.
MAX_DEPTH = 64


def key_tree(infos: Iterable[TensorInfo], fold: bool = True) -> KeyNode:
    """The tree of ``infos`` keys split on ``.``; with ``fold``, identical numbered siblings become ``#``.

    Keys deeper than :data:`MAX_DEPTH` keep their remaining segments together in their last node.
    """
    root = KeyNode("")
    for info in infos:
        node = root
        parts = info.key.split(".", MAX_DEPTH - 1)
        for part in parts[:-1]:
            found = next((c for c in node.children if c.name == part and c.info is None), None)
            if found is None:
                found = KeyNode(part)
                node.children.append(found)
            node = found
        node.children.append(KeyNode(parts[-1], info=info))
    _totals(root)
    if fold:
        _fold(root)
    return root


def _totals(node: KeyNode) -> None:
    if node.info is not None:
        shared = node.info.alias_of is not None
        node.tensors = 1
        node.params = 0 if shared else node.info.size
        node.bytes = 0 if shared else node.info.nbytes
        return
    for child in node.children:
        _totals(child)
    node.tensors = sum(c.tensors * c.repeat for c in node.children)
    node.params = sum(c.params * c.repeat for c in node.children)
    node.bytes = sum(c.bytes * c.repeat for c in node.children)


def _fold(node: KeyNode) -> None:
    for child in node.children:
        _fold(child)
    folded: list[KeyNode] = []
    for child in node.children:
        previous = folded[-1] if folded else None
        if (previous is not None and child.info is None and child.name.isdigit()
                and (previous.name == "#" or previous.name.isdigit())
                and previous.signature() == child.signature()):
            if previous.name != "#":
                previous.indices = [previous.name]
                previous.name = "#"
            previous.repeat += 1
            previous.indices.append(child.name)
            continue
        folded.append(child)
    node.children = folded
