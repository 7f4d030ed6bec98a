"""One seedable random generator for initialisation, like ``mx.random.seed``.

>>> seed(42); a = generator().random(); seed(42); a == generator().random()
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

_generator: Any = None  # made on first use: numpy.random costs ~25 ms to import, and reading files needs none


def seed(value: int | None) -> None:
    """Re-seed the generator used by initializers (``None`` draws fresh entropy)."""
    global _generator
    _generator = np.random.default_rng(value)


def generator() -> np.random.Generator:
    """The current generator."""
    if _generator is None:
        seed(None)
    return _generator
