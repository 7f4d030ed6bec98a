"""Parameter: a named, lazily shaped numpy array owned by one or more Blocks.

Each Parameter carries a unique name ``param_{uuid4}_{short}`` that cannot change (the name
of its symbol in an exported graph and its key in a name-keyed checkpoint), and a short name
(``weight``) that a Block registers it under. Unknown dimensions are ``-1`` until a forward
pass or a loaded checkpoint fixes them.

>>> p = Parameter("bias", shape=(3,))
>>> p.short_name, p.name.startswith("param_"), p.name.endswith("_bias")
('bias', True, True)
>>> p.initialize(); p.data()
array([0., 0., 0.], dtype=float32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DeferredInitializationError, ModelSurgeonError, NotInitializedError, ShapeError
from . import initializer as _init
from . import naming, random, symbol

UNKNOWN = -1


def shape_is_known(shape: tuple[int, ...] | None) -> bool:
    """True when ``shape`` is set and has no unknown (-1) dimension."""
    return shape is not None and all(dim >= 0 for dim in shape)


def _normalize_shape(shape: Any) -> tuple[int, ...] | None:
    if shape is None:
        return None
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    return tuple(int(dim) for dim in shape)


def _numeric_dtype(dtype: Any, name: str) -> np.dtype:
    """A plain numeric dtype (no strings, objects or sub-arrays)."""
    try:
        result = np.dtype(dtype)
    except Exception:
        result = None
    if result is None or result.kind not in "fiub" or result.shape != ():
        raise ModelSurgeonError(f"Parameter '{name}' needs a numeric dtype, not {dtype!r}")
    return result


class Parameter:
    """A weight array of a Block.

    Args:
        name: the short name (``weight``, ``bias``...); the unique name is derived from it.
        shape: the shape, with ``-1`` for dimensions fixed later (deferred initialisation).
        dtype: a numpy dtype or its name; float32 by default.
        init: this Parameter's own initializer (wins over the one given to ``initialize``).
        allow_deferred_init: allow ``initialize()`` before the shape is fully known.
        grad_req: ``'write'``, ``'add'`` or ``'null'`` (kept for Gluon compatibility).
    """

    def __init__(self, name: str = "weight", shape: Any = None, dtype: Any = np.float32,
                 init: str | _init.Initializer | None = None, allow_deferred_init: bool = False,
                 grad_req: str = "write", differentiable: bool = True, lr_mult: float = 1.0,
                 wd_mult: float = 1.0):
        if not isinstance(name, str) or not name:
            raise ModelSurgeonError(f"a Parameter needs a non-empty string name, not {name!r}")
        self._short = name
        self._name = naming.unique_param_name(name)
        self._shape = _normalize_shape(shape)
        self._dtype = _numeric_dtype(dtype, name)
        self.init = _init.create(init)
        self.allow_deferred_init = allow_deferred_init
        self.differentiable = differentiable
        self.grad_req = grad_req if differentiable else "null"
        self.lr_mult = lr_mult
        self.wd_mult = wd_mult
        self._data: np.ndarray | None = None
        self._deferred: tuple[_init.Initializer | None, _init.Initializer] | None = None
        # The weight whose fan-in sizes this bias (PyTorch-style initializers need it).
        self._fan_source: Parameter | None = None

    # -- identity ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The unique name ``param_{uuid4}_{short}``; read-only."""
        return self._name

    @property
    def short_name(self) -> str:
        """The name the Parameter was created with (``weight``)."""
        return self._short

    # -- shape and dtype ----------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...] | None:
        return self._shape

    @shape.setter
    def shape(self, new_shape: Any) -> None:
        new_shape = _normalize_shape(new_shape)
        if self._shape is None or new_shape is None:
            self._shape = new_shape
            return
        compatible = len(new_shape) == len(self._shape) and all(
            old in (UNKNOWN, new) for old, new in zip(self._shape, new_shape))
        if not compatible:
            raise ShapeError(f"Expected shape {new_shape} is incompatible with given shape "
                             f"{self._shape} for Parameter '{self._short}'.")
        self._shape = new_shape

    @property
    def dims(self) -> tuple[int, ...]:
        """The shape of a Parameter that has one (every layer's do; ``-1`` marks an unknown size)."""
        if self._shape is None:
            raise ShapeError(f"Parameter '{self._short}' has no shape")
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @dtype.setter
    def dtype(self, dtype: Any) -> None:
        self.cast(dtype)

    def cast(self, dtype: Any) -> None:
        """Change the dtype, converting the data if there is any."""
        self._dtype = np.dtype(dtype)
        if self._data is not None:
            self._data = self._data.astype(self._dtype)

    # -- initialisation ----------------------------------------------------------------------
    @property
    def is_initialized(self) -> bool:
        return self._data is not None

    def initialize(self, init: str | _init.Initializer | None = None,
                   default_init: str | _init.Initializer | None = None,
                   force_reinit: bool = False) -> None:
        """Fill the data now, or at the first forward pass if the shape is not known yet."""
        if self._data is not None and not force_reinit:
            return
        chosen = _init.create(init)
        fallback = _init.create(default_init) or _init.Uniform()
        if not shape_is_known(self._shape):
            if self.allow_deferred_init:
                self._data = None
                self._deferred = (chosen, fallback)
                return
            raise ShapeError(f"Cannot initialize Parameter '{self._short}' because it has "
                             f"invalid shape: {self._shape}.")
        self._fill(chosen, fallback)

    def _fill(self, chosen: _init.Initializer | None, fallback: _init.Initializer) -> None:
        initializer = self.init or chosen or fallback
        fan_in = None
        if self._fan_source is not None and shape_is_known(self._fan_source.shape):
            fan_in = _init.fans(self._fan_source.dims)[0]
        data = initializer(self._short, self.dims, self._dtype, random.generator(), fan_in=fan_in)
        self._data = np.asarray(data, dtype=self._dtype, order="C")
        self._deferred = None

    def _finish_deferred_init(self) -> None:
        """Complete a deferred ``initialize()`` once the shape has been inferred."""
        if self._deferred is None:
            return
        if not shape_is_known(self._shape):
            raise ShapeError(f"Cannot initialize Parameter '{self._short}' because it has invalid "
                             f"shape: {self._shape}. Please specify in_units, in_channels, etc for Blocks.")
        self._fill(*self._deferred)

    # -- data access --------------------------------------------------------------------------
    def data(self) -> Any:
        """The numpy array (a graph variable while a forward pass is being traced)."""
        tracer = symbol.active_trace()
        if tracer is not None:
            return tracer.variable(self)
        return self._require_data()

    def _require_data(self) -> np.ndarray:
        if self._data is not None:
            return self._data
        if self._deferred is not None:
            raise DeferredInitializationError(
                f"Parameter '{self._short}' has not been initialized yet because initialization was "
                "deferred. Actual initialization happens during the first forward pass. Please pass one "
                "batch of data through the network before accessing Parameters. You can also avoid "
                "deferred initialization by specifying in_units, num_features, etc., for network layers.")
        raise NotInitializedError(
            f"Parameter '{self._short}' has not been initialized. Call initialize() on the Block or "
            "Parameter first, or load a checkpoint.")

    def set_data(self, data: Any) -> None:
        """Replace the data (shape must fit; unknown dimensions are filled in)."""
        array = np.asarray(data)
        self.shape = array.shape
        self._data = np.array(array, dtype=self._dtype, copy=True, order="C")
        self._deferred = None

    def _load_init(self, data: np.ndarray, cast_dtype: bool = False,
                   dtype_source: str = "current") -> None:
        """Take a loaded array: check the shape, reconcile the dtype, keep the data."""
        if dtype_source not in ("current", "saved"):
            raise ModelSurgeonError(f"dtype_source must be 'current' or 'saved', not {dtype_source!r}")
        if self._shape is not None:
            fits = len(self._shape) == data.ndim and all(
                dim in (UNKNOWN, saved) for dim, saved in zip(self._shape, data.shape))
            if not fits:
                raise ShapeError(f"Failed loading Parameter '{self._short}' from saved params: shape "
                                 f"incompatible expected {self._shape} vs saved {data.shape}")
        if data.dtype != self._dtype:
            if not cast_dtype:
                raise ModelSurgeonError(
                    f"Failed loading Parameter '{self._short}' from saved params: dtype incompatible "
                    f"expected {self._dtype} vs saved {data.dtype}. Set cast_dtype=True to cast the "
                    "dtype of saved params.")
            if dtype_source == "saved":
                self._dtype = data.dtype
        self._shape = tuple(data.shape)
        self._data = np.array(data, dtype=self._dtype, copy=True, order="C")
        self._deferred = None

    def zero_grad(self) -> None:  # Gluon API; there are no gradients in an inference engine
        return None

    def __repr__(self) -> str:
        shape = None if self._shape is None else tuple(self._shape)
        return f"Parameter (shape={shape}, dtype={self._dtype})"


class Constant(Parameter):
    """A Parameter that is never trained, created from a fixed value."""

    def __init__(self, value: Any, name: str = "const"):
        array = np.asarray(value)
        super().__init__(name, shape=array.shape, dtype=array.dtype, grad_req="null",
                         differentiable=False)
        self._data = np.array(array, copy=True, order="C")

    def __repr__(self) -> str:
        return f"Constant (shape={self._shape}, dtype={self._dtype})"
