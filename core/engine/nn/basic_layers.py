"""Basic layers: Concatenate, Identity, Dense, Dropout, Flatten, Activation, BatchNorm."""

from __future__ import annotations

import math
from typing import Any

from ...errors import InvalidAttributeError, ModelSurgeonError
from .. import nd, ops
from ..block import Block, HybridBlock
from ..parameter import UNKNOWN, Parameter


def check_attrs(layer: str, op: str, attrs: dict[str, Any]) -> None:
    """Check a layer's hyperparameters against the ranges its operator declares (stride 0, pool
    size 0, negative padding, BatchNorm axis 9...), refused when the layer is made, naming it."""
    try:
        ops.get(op).parse(attrs)
    except InvalidAttributeError as exc:
        raise InvalidAttributeError(layer, exc.problem) from None


class _ConcatenateMixin:
    """Runs every child on the same input and concatenates the outputs along ``axis``."""

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def add(self, *blocks: Block) -> None:
        for block in blocks:
            self.register_child(block)  # type: ignore[attr-defined]

    def forward(self, x: Any) -> Any:
        outputs = [block(x) for block in self._children.values()]  # type: ignore[attr-defined]
        return nd.concat(*outputs, dim=self.axis)

    def _arch_config(self) -> dict[str, Any]:
        return {"axis": self.axis}

    def __repr__(self) -> str:
        return HybridBlock.__repr__(self)  # type: ignore[arg-type]


class Concatenate(_ConcatenateMixin, Block):
    """Concatenates the outputs of its children (a Block version of HybridConcatenate)."""


class HybridConcatenate(_ConcatenateMixin, HybridBlock):
    """Concatenates the outputs of its children (SqueezeNet's fire module uses it)."""


HybridConcurrent = HybridConcatenate  # MXNet 1.x spelling


class Identity(HybridBlock):
    """Returns its input unchanged (handy to disable a layer without changing the keys)."""

    _arch_leaf = True

    def forward(self, x: Any) -> Any:
        return x

    def _arch_config(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return "Identity"


class Activation(HybridBlock):
    """An activation function: relu, sigmoid, tanh, softrelu or softsign."""

    _arch_leaf = True
    _act_type: str

    def __init__(self, activation: str) -> None:
        if activation not in nd.ACTIVATIONS:
            raise ModelSurgeonError(f"unknown activation {activation!r}; choose from "
                                    f"{', '.join(nd.ACTIVATIONS)}")
        object.__setattr__(self, "_act_type", activation)
        super().__init__()

    def _alias(self) -> str:  # type: ignore[override]
        return self._act_type  # Activation('relu') is named relu0, as in MXNet

    def forward(self, x: Any) -> Any:
        return nd.Activation(x, act_type=self._act_type)

    def _arch_config(self) -> dict[str, Any]:
        return {"activation": self._act_type}

    def __repr__(self) -> str:
        return f"Activation({self._act_type})"


class Dense(HybridBlock):
    """A fully connected layer: ``y = activation(x @ weight.T + bias)``.

    ``in_units=0`` leaves the input size to the first forward pass (deferred initialisation).

    >>> Dense(100)
    Dense(None -> 100, linear)
    """

    _arch_leaf = True
    weight: Parameter
    bias: Parameter | None
    act: Activation | None

    def __init__(self, units: int, activation: str | None = None, use_bias: bool = True,
                 flatten: bool = True, dtype: Any = "float32", weight_initializer: Any = None,
                 bias_initializer: Any = "zeros", in_units: int = 0) -> None:
        super().__init__()
        self._units, self._flatten, self._use_bias = int(units), flatten, use_bias
        check_attrs("Dense", "FullyConnected", {"num_hidden": self._units})
        self.weight = Parameter("weight", shape=(self._units, in_units or UNKNOWN), dtype=dtype,
                                init=weight_initializer, allow_deferred_init=True)
        add_bias_and_activation(self, self._units, dtype, use_bias, bias_initializer, activation)

    @classmethod
    def _alias(cls) -> str:
        return "dense"

    @property
    def units(self) -> int:
        return self._units

    @property
    def in_units(self) -> int | None:
        dim = self.weight.dims[1]
        return dim if dim >= 0 else None

    def infer_shape(self, x: Any) -> None:
        in_units = math.prod(x.shape[1:]) if self._flatten else x.shape[-1]
        self.weight.shape = (self._units, in_units)

    def forward(self, x: Any) -> Any:
        out = nd.FullyConnected(x, self.weight.data(), self.bias.data() if self.bias is not None else None,
                                num_hidden=self._units, no_bias=self.bias is None, flatten=self._flatten)
        return self.act(out) if self.act is not None else out

    def _arch_config(self) -> dict[str, Any]:
        return {"units": self._units, "activation": self.act._act_type if self.act else None,
                "use_bias": self._use_bias, "flatten": self._flatten, "dtype": self.weight.dtype.name,
                "in_units": self.in_units or 0}

    def __repr__(self) -> str:
        act = repr(self.act) if self.act is not None else "linear"
        return f"Dense({self.in_units} -> {self._units}, {act})"


def add_bias_and_activation(layer: Dense | Any, outputs: int, dtype: Any, use_bias: bool, bias_initializer: Any,
                            activation: str | None) -> None:
    """The ``bias`` (sized by the weight's fan-in for PyTorch-style inits) and ``act`` of a layer."""
    if use_bias:
        layer.bias = Parameter("bias", shape=(outputs,), dtype=dtype, init=bias_initializer,
                               allow_deferred_init=True)
        layer.bias._fan_source = layer.weight
    else:
        layer.bias = None
    layer.act = Activation(activation) if activation is not None else None


class Dropout(HybridBlock):
    """Dropout; an identity at inference, which is all this engine runs."""

    _arch_leaf = True

    def __init__(self, rate: float, axes: tuple[int, ...] = ()) -> None:
        super().__init__()
        self._rate, self._axes = float(rate), tuple(axes)

    def forward(self, x: Any) -> Any:
        return nd.Dropout(x, p=self._rate, axes=self._axes) if self._rate > 0 else x

    def _arch_config(self) -> dict[str, Any]:
        return {"rate": self._rate, "axes": list(self._axes)}

    def __repr__(self) -> str:
        return f"Dropout(p = {self._rate}, axes={self._axes})"


class Flatten(HybridBlock):
    """Flattens every dimension after the first: (N, ...) -> (N, prod(...))."""

    _arch_leaf = True

    def forward(self, x: Any) -> Any:
        return nd.Flatten(x)

    def _arch_config(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return "Flatten"


class BatchNorm(HybridBlock):
    """Batch normalisation at inference, with running statistics as auxiliary states."""

    _arch_leaf = True

    def __init__(self, axis: int = 1, momentum: float = 0.9, epsilon: float = 1e-5,
                 center: bool = True, scale: bool = True, use_global_stats: bool = False,
                 beta_initializer: Any = "zeros", gamma_initializer: Any = "ones",
                 running_mean_initializer: Any = "zeros", running_variance_initializer: Any = "ones",
                 in_channels: int = 0) -> None:
        super().__init__()
        check_attrs("BatchNorm", "BatchNorm", {"axis": axis, "eps": epsilon, "momentum": momentum})
        self._axis, self._momentum, self._epsilon = axis, momentum, epsilon
        self._center, self._scale, self._use_global_stats = center, scale, use_global_stats
        shape = (in_channels or UNKNOWN,)
        self.gamma = Parameter("gamma", shape=shape, init=gamma_initializer, allow_deferred_init=True,
                               grad_req="write" if scale else "null", differentiable=scale)
        self.beta = Parameter("beta", shape=shape, init=beta_initializer, allow_deferred_init=True,
                              grad_req="write" if center else "null", differentiable=center)
        self.running_mean = Parameter("running_mean", shape=shape, init=running_mean_initializer,
                                      allow_deferred_init=True, grad_req="null", differentiable=False)
        self.running_var = Parameter("running_var", shape=shape, init=running_variance_initializer,
                                     allow_deferred_init=True, grad_req="null", differentiable=False)

    @classmethod
    def _alias(cls) -> str:
        return "batchnorm"

    def infer_shape(self, x: Any) -> None:
        channels = x.shape[self._axis]
        for param in (self.gamma, self.beta, self.running_mean, self.running_var):
            param.shape = (channels,)

    def forward(self, x: Any) -> Any:
        return nd.BatchNorm(x, self.gamma.data(), self.beta.data(), self.running_mean.data(),
                            self.running_var.data(), eps=self._epsilon, momentum=self._momentum,
                            fix_gamma=not self._scale, use_global_stats=self._use_global_stats,
                            axis=self._axis)

    def _arch_config(self) -> dict[str, Any]:
        channels = self.gamma.dims[0]
        return {"axis": self._axis, "momentum": self._momentum, "epsilon": self._epsilon,
                "center": self._center, "scale": self._scale,
                "use_global_stats": self._use_global_stats, "in_channels": max(channels, 0)}

    def __repr__(self) -> str:
        channels = self.gamma.dims[0]
        return (f"BatchNorm(axis={self._axis}, eps={self._epsilon}, momentum={self._momentum}, "
                f"fix_gamma={not self._scale}, use_global_stats={self._use_global_stats}, "
                f"in_channels={channels if channels >= 0 else None})")


__all__ = [
    "Activation",
    "BatchNorm",
    "Concatenate",
    "Dense",
    "Dropout",
    "Flatten",
    "HybridConcatenate",
    "HybridConcurrent",
    "Identity",
]
