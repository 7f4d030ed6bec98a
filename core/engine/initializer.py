"""Initializers with Gluon's defaults, plus presets matching PyTorch's and Keras's heads.

An initializer fills one array from its Parameter's short name and shape. Like Gluon, a
global initializer leaves biases, betas and running means at zero and gammas and running
variances at one; only weights take its distribution. A Parameter's own ``init`` wins over
the global one.

>>> import numpy as np
>>> w = Xavier()("weight", (4, 3), np.float32, np.random.default_rng(0))
>>> w.shape, w.dtype, float(abs(w).max()) <= (3 / 3.5) ** 0.5
((4, 3), dtype('float32'), True)
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ModelSurgeonError

_ZERO_NAMES = ("bias", "beta", "running_mean", "moving_mean")
_ONE_NAMES = ("gamma", "running_var", "moving_var")


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shaped (out, in, *kernel), as Gluon's Xavier computes them."""
    if len(shape) < 2:
        return (shape[0] if shape else 1), (shape[0] if shape else 1)
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _uniform(rng: np.random.Generator, low: float, high: float, shape, dtype) -> np.ndarray:
    """U(low, high), drawn directly in float32 when that is the target (twice as fast)."""
    if np.dtype(dtype) == np.float32:
        out = rng.random(shape, dtype=np.float32)
        out *= np.float32(high - low)
        out += np.float32(low)
        return out
    return rng.uniform(low, high, shape).astype(dtype)


def _normal(rng: np.random.Generator, sigma: float, shape, dtype) -> np.ndarray:
    if np.dtype(dtype) == np.float32:
        out = rng.standard_normal(shape, dtype=np.float32)
        out *= np.float32(sigma)
        return out
    return rng.normal(0.0, sigma, shape).astype(dtype)


class Initializer:
    """Base class: ``init(name, shape, dtype, rng, fan_in=None) -> ndarray``."""

    #: short name used in architecture records and the CLI's ``--init``
    alias = "initializer"

    def __call__(self, name: str, shape: tuple[int, ...], dtype, rng: np.random.Generator,
                 fan_in: int | None = None) -> np.ndarray:
        if name.endswith(_ZERO_NAMES):
            return np.zeros(shape, dtype)
        if name.endswith(_ONE_NAMES):
            return np.ones(shape, dtype)
        return self.weight(shape, dtype, rng)

    def weight(self, shape: tuple[int, ...], dtype, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Uniform(Initializer):
    """U(-scale, scale); Gluon's default initializer with scale 0.07."""

    alias = "uniform"

    def __init__(self, scale: float = 0.07):
        self.scale = scale

    def weight(self, shape, dtype, rng):
        return _uniform(rng, -self.scale, self.scale, shape, dtype)

    def __repr__(self) -> str:
        return f"Uniform(scale={self.scale})"


class Normal(Initializer):
    """N(0, sigma^2); Gluon's default sigma is 0.01."""

    alias = "normal"

    def __init__(self, sigma: float = 0.01):
        self.sigma = sigma

    def weight(self, shape, dtype, rng):
        return _normal(rng, self.sigma, shape, dtype)

    def __repr__(self) -> str:
        return f"Normal(sigma={self.sigma})"


class Xavier(Initializer):
    """Gluon's Xavier: ``rnd_type`` uniform or gaussian, ``factor_type`` avg/in/out, magnitude 3."""

    alias = "xavier"

    def __init__(self, rnd_type: str = "uniform", factor_type: str = "avg", magnitude: float = 3):
        if rnd_type not in ("uniform", "gaussian"):
            raise ModelSurgeonError(f"Xavier rnd_type must be 'uniform' or 'gaussian', not {rnd_type!r}")
        if factor_type not in ("avg", "in", "out"):
            raise ModelSurgeonError(f"Xavier factor_type must be 'avg', 'in' or 'out', not {factor_type!r}")
        self.rnd_type, self.factor_type, self.magnitude = rnd_type, factor_type, float(magnitude)

    def weight(self, shape, dtype, rng):
        fan_in, fan_out = fans(shape)
        factor = {"avg": (fan_in + fan_out) / 2.0, "in": fan_in, "out": fan_out}[self.factor_type]
        scale = math.sqrt(self.magnitude / factor)
        if self.rnd_type == "uniform":
            return _uniform(rng, -scale, scale, shape, dtype)
        return _normal(rng, scale, shape, dtype)

    def __repr__(self) -> str:
        return f"Xavier(rnd_type={self.rnd_type!r}, factor_type={self.factor_type!r}, magnitude={self.magnitude:g})"


class Constant(Initializer):
    """Every element (weights and biases alike) set to ``value``."""

    alias = "constant"

    def __init__(self, value: float):
        self.value = value

    def __call__(self, name, shape, dtype, rng, fan_in=None):
        return np.full(shape, self.value, dtype)

    def __repr__(self) -> str:
        return f"Constant({self.value})"


class Zero(Constant):
    """All zeros."""

    alias = "zeros"

    def __init__(self):
        super().__init__(0.0)

    def __repr__(self) -> str:
        return "Zero()"


class One(Constant):
    """All ones."""

    alias = "ones"

    def __init__(self):
        super().__init__(1.0)

    def __repr__(self) -> str:
        return "One()"


class TorchDefault(Initializer):
    """PyTorch's ``nn.Linear``/``nn.Conv2d`` reset: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    (kaiming_uniform with a=sqrt(5) reduces to exactly this bound.)
    """

    alias = "torch"

    def __call__(self, name, shape, dtype, rng, fan_in=None):
        if name.endswith("bias"):
            bound = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
            return rng.uniform(-bound, bound, shape).astype(dtype)
        return super().__call__(name, shape, dtype, rng, fan_in)

    def weight(self, shape, dtype, rng):
        bound = 1.0 / math.sqrt(fans(shape)[0])
        return rng.uniform(-bound, bound, shape).astype(dtype)


class KerasDefault(Initializer):
    """Keras's Dense/Conv defaults: glorot_uniform U(+-sqrt(6 / (fan_in + fan_out))), zero bias."""

    alias = "keras"

    def weight(self, shape, dtype, rng):
        fan_in, fan_out = fans(shape)
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape).astype(dtype)


_BY_ALIAS: dict[str, type[Initializer]] = {
    cls.alias: cls for cls in (Uniform, Normal, Xavier, Constant, Zero, One, TorchDefault, KerasDefault)
}
_BY_ALIAS["zero"] = Zero
_BY_ALIAS["one"] = One


def create(init: str | Initializer | None) -> Initializer | None:
    """An initializer from an instance, an alias (``'xavier'``, ``'zeros'``...) or None."""
    if init is None or isinstance(init, Initializer):
        return init
    if isinstance(init, str) and init.lower() in _BY_ALIAS:
        return _BY_ALIAS[init.lower()]()
    raise ModelSurgeonError(f"unknown initializer {init!r}; choose from {', '.join(sorted(_BY_ALIAS))}")


def aliases() -> list[str]:
    """The names :func:`create` accepts."""
    return sorted(_BY_ALIAS)
