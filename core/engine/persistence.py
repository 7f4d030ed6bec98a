"""How Blocks reach checkpoint files, without the engine knowing the file layer.

``Block.save_parameters``, ``load_parameters``, ``export`` and ``SymbolBlock.imports`` are the
Gluon API, so they live on the engine's classes; the work is the binding layer's
(:mod:`modelsurgeon.core.binding`), which sits above the engine. The package that holds both
(``modelsurgeon.core``) installs the binding here as a provider, loaded on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from ..errors import ModelSurgeonError

#: Returns the binding module; set by ``modelsurgeon.core`` when it is imported.
provider: Callable[[], ModuleType] | None = None


def binding() -> ModuleType:
    """The module that binds checkpoints to Blocks (save/load/export/read graphs)."""
    if provider is None:
        raise ModelSurgeonError("no checkpoint binding is installed (import modelsurgeon.core)")
    return provider()
