"""Modules that load on first use.

The checkpoint and surgery code call into the engine (Blocks, graphs, the architecture registry and
the model zoo behind it) only when a file carries an architecture or a graph, or a model is built.
Imported eagerly, the engine costs every command ~6 ms; most runs over plain tensor files never
touch it. A module returned here is an ordinary module whose code runs at its first attribute access
(``importlib.util.LazyLoader``).
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """``name`` (absolute), imported now if it already was, else the first time it is used."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:  # as the import system does: the package gets its submodule as an attribute
        setattr(sys.modules[parent], child, module)
    return module
