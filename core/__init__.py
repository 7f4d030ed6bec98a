"""modelsurgeon's engine: Gluon-style Blocks and Parameters on numpy, and checkpoint I/O.

Written so that the Gluon "Parameter and Block Naming" tutorial runs with ``mx.nd`` replaced
by numpy::

    from modelsurgeon import core as gluon
    net = gluon.model_zoo.vision.alexnet(classes=1000)
    net.output = gluon.nn.Dense(100)
"""

from __future__ import annotations

import importlib
from typing import Any

from .engine import persistence as _persistence
from .errors import (
    CheckpointError,
    DeferredInitializationError,
    MismatchError,
    ModelSurgeonError,
    NotInitializedError,
    ShapeError,
    SurgeryError,
    UnsupportedOpError,
)
from .version import __version__

# Blocks reach files through the binding layer, loaded the first time a Block saves or loads.
_persistence.provider = lambda: importlib.import_module(".binding", __name__)

#: Loaded on first use (PEP 562), so a command that only reads a file never imports the engine
#: and the model zoo: name -> (module, attribute or None for the module itself).
_LAZY = {
    "Block": (".engine.block", "Block"), "HybridBlock": (".engine.block", "HybridBlock"),
    "Constant": (".engine.parameter", "Constant"), "Parameter": (".engine.parameter", "Parameter"),
    "SymbolBlock": (".engine.symbol_block", "SymbolBlock"),
    "name_scope": (".engine.naming", "name_scope"), "reset_names": (".engine.naming", "reset_names"),
    "init": (".engine.initializer", None), "initializer": (".engine.initializer", None),
    "model_zoo": (".engine.model_zoo", None),
    "nd": (".engine.nd", None), "nn": (".engine.nn", None), "random": (".engine.random", None),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name, __name__)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["Block", "CheckpointError", "Constant", "DeferredInitializationError", "HybridBlock",
           "MismatchError", "ModelSurgeonError", "NotInitializedError", "Parameter", "ShapeError",
           "SurgeryError", "SymbolBlock", "UnsupportedOpError", "__version__", "init", "initializer",
           "model_zoo", "name_scope", "nd", "nn", "random", "reset_names"]
