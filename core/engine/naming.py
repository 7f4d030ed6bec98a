"""Block names with incrementing suffixes, kept in one scoped naming context.

The tutorial promises that ``Dense(100)`` is named ``dense0`` and the next one ``dense1``.
Those counters live in a :class:`contextvars.ContextVar`, so a test (or a thread) can take a
fresh set with :func:`name_scope` and nothing depends on how many blocks someone else made.
Structural keys (``features.0.weight``) never depend on these counters.

>>> from modelsurgeon.core import nn
>>> with name_scope():
...     nn.Dense(3).name, nn.Dense(3).name
('dense0', 'dense1')
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from contextvars import ContextVar

_counters: ContextVar[dict[str, int] | None] = ContextVar("modelsurgeon_name_counters", default=None)

UNIQUE_NAME_RE = re.compile(
    r"^param_[0-9a-f]{8}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{12}_(?P<short>.+)$"
)


def next_block_name(hint: str) -> str:
    """Return ``hint`` with the next free suffix in the current scope (``dense0``, ``dense1``...)."""
    counters = _counters.get()
    if counters is None:
        counters = {}
        _counters.set(counters)
    count = counters.get(hint, 0)
    counters[hint] = count + 1
    return f"{hint}{count}"


@contextlib.contextmanager
def name_scope() -> Iterator[None]:
    """Count block names afresh inside the ``with`` body; the outer counters come back after."""
    token = _counters.set({})
    try:
        yield
    finally:
        _counters.reset(token)


def reset_names() -> None:
    """Forget every counter of the current context (the next Dense is ``dense0`` again)."""
    _counters.set({})


def unique_param_name(short: str) -> str:
    """A Parameter's unique name: ``param_{uuid4 with underscores}_{short}``."""
    return f"param_{str(uuid.uuid4()).replace('-', '_')}_{short}"


def short_name(name: str) -> str:
    """The short name inside a unique name (``param_..._weight`` -> ``weight``); others unchanged."""
    match = UNIQUE_NAME_RE.match(name)
    return match.group("short") if match else name
