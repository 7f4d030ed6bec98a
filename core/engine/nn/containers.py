"""Sequential containers: children run one after another, Conv2D -> BatchNorm (-> relu) fused at inference."""

from __future__ import annotations

from typing import Any

from ..block import Block, HybridBlock
from .fusion import run_fused


class _SequentialMixin:
    """Children run one after another; ``add`` registers them as ``0``, ``1``, ..."""

    _arch_chain = True

    def add(self, *blocks: Block) -> None:
        for block in blocks:
            self.register_child(block)  # type: ignore[attr-defined]

    def forward(self, x: Any, *args: Any) -> Any:
        children = list(self._children.values())  # type: ignore[attr-defined]
        index = 0
        while index < len(children):
            fused = None if args else run_fused(children, index, x)
            if fused is not None:
                x, index = fused
                continue
            x = children[index](x, *args)
            args = ()
            index += 1
        return x

    def __getitem__(self, key: int | slice) -> Any:
        layers = list(self._children.values())  # type: ignore[attr-defined]
        if isinstance(key, slice):
            net = type(self)()
            net.add(*layers[key])
            return net
        return layers[key]

    def __len__(self) -> int:
        return len(self._children)  # type: ignore[attr-defined]

    def __iter__(self):
        return iter(list(self._children.values()))


class Sequential(_SequentialMixin, Block):
    """Stacks Blocks sequentially.

    >>> from .basic_layers import Dense
    >>> net = Sequential(); net.add(Dense(20), Dense(20)); len(net)
    2
    """


class HybridSequential(_SequentialMixin, HybridBlock):
    """Stacks HybridBlocks sequentially (exportable)."""
