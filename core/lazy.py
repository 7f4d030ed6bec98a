"""Modules that load on first use, safely from any number of threads.

The checkpoint and surgery code call into the engine (Blocks, graphs, the architecture registry and
the model zoo behind it) only when a file carries an architecture or a graph, or a model is built.
Imported eagerly, the engine costs every command ~6 ms; most runs over plain tensor files never
touch it. A module returned here is an ordinary module whose code runs at its first attribute access.

Why not ``importlib.util.LazyLoader`` alone: on Python 3.11 its module turns itself into a plain
module *before* running the module's code, so a second thread touching it meanwhile sees a
half-empty module ("module ... has no attribute 'build'": the shard reader's threads did exactly
that). Here the first access takes the module's lock and runs its code; any other thread waits on
that lock and sees the module only once it is complete. The loading thread itself (a circular
import during the load) sees the partly built module, as with an ordinary import.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

#: name -> lock of a lazy module not yet loaded (or being loaded); the entry goes once it is loaded.
_LOCKS: dict[str, threading.RLock] = {}
#: name -> the thread loading it now.
_LOADING: dict[str, int] = {}


class _LazyModule(ModuleType):
    """A module whose code runs, under its lock, on the first attribute access."""

    def __getattribute__(self, attr: str) -> Any:
        name = ModuleType.__getattribute__(self, "__name__")
        lock = _LOCKS.get(name)
        if lock is not None:
            with lock:
                if type(self) is _LazyModule:
                    if _LOADING.get(name) == threading.get_ident():  # a circular import while loading
                        return ModuleType.__getattribute__(self, attr)
                    _load(self, name)
        return ModuleType.__getattribute__(self, attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        self.__getattribute__("__name__")  # load first, so the module's code cannot overwrite it
        ModuleType.__setattr__(self, attr, value)

    def __delattr__(self, attr: str) -> None:
        self.__getattribute__(attr)
        ModuleType.__delattr__(self, attr)


def _load(module: ModuleType, name: str) -> None:
    """Run ``module``'s code (its lock held); on failure it stays lazy, and the next access retries."""
    spec = ModuleType.__getattribute__(module, "__spec__")
    _LOADING[name] = threading.get_ident()
    try:
        spec.loader.exec_module(module)
        object.__setattr__(module, "__class__", ModuleType)
        _LOCKS.pop(name, None)
    finally:
        _LOADING.pop(name, None)


def lazy_module(name: str) -> ModuleType:
    """``name`` (absolute), imported now if it already was, else the first time it is used."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}", name=name)
    module = importlib.util.module_from_spec(spec)
    _LOCKS[name] = threading.RLock()
    object.__setattr__(module, "__class__", _LazyModule)
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:  # as the import system does: the package gets its submodule as an attribute
        setattr(sys.modules[parent], child, module)
    return module
