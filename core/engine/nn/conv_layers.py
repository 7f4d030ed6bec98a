"""Convolution and pooling layers (NCHW)."""

from __future__ import annotations

from typing import Any

from ...errors import InvalidAttributeError, ModelSurgeonError
from .. import nd
from ..block import HybridBlock
from ..parameter import UNKNOWN, Parameter
from .basic_layers import Activation, add_bias_and_activation, check_attrs


def _pair(value: Any, name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    pair = tuple(int(v) for v in value)
    if len(pair) != 2:
        raise ModelSurgeonError(f"{name} must be an int or a pair of ints, not {value!r}")
    return pair


def _check_layout(layout: str) -> None:
    if layout != "NCHW":
        raise ModelSurgeonError(f"only the NCHW layout is supported, not {layout!r}")


class Conv2D(HybridBlock):
    """2-D convolution with Gluon's arguments; ``in_channels=0`` defers the input size.

    >>> Conv2D(64, kernel_size=11, strides=4, padding=2, in_channels=3, activation="relu")
    Conv2D(3 -> 64, kernel_size=(11, 11), stride=(4, 4), padding=(2, 2), Activation(relu))
    """

    _arch_leaf = True
    weight: Parameter
    bias: Parameter | None
    act: Activation | None

    def __init__(self, channels: int, kernel_size: Any, strides: Any = (1, 1), padding: Any = (0, 0),
                 dilation: Any = (1, 1), groups: int = 1, layout: str = "NCHW",
                 activation: str | None = None, use_bias: bool = True, weight_initializer: Any = None,
                 bias_initializer: Any = "zeros", in_channels: int = 0) -> None:
        super().__init__()
        _check_layout(layout)
        self._channels, self._groups = int(channels), int(groups)
        if self._channels <= 0 or self._groups <= 0 or self._channels % self._groups:
            raise InvalidAttributeError("Conv2D", f"needs positive channels divisible into positive groups, not "
                                    f"channels={channels}, groups={groups}")
        self._kernel = _pair(kernel_size, "kernel_size")
        self._strides, self._padding = _pair(strides, "strides"), _pair(padding, "padding")
        self._dilation = _pair(dilation, "dilation")
        check_attrs("Conv2D", "Convolution", {"kernel": self._kernel, "stride": self._strides, "pad": self._padding,
                                              "dilate": self._dilation, "num_filter": self._channels,
                                              "num_group": self._groups})
        if in_channels and in_channels % self._groups:
            raise ModelSurgeonError(f"in_channels {in_channels} is not divisible by groups {groups}")
        per_group = in_channels // self._groups if in_channels else UNKNOWN
        self.weight = Parameter("weight", shape=(self._channels, per_group, *self._kernel),
                                init=weight_initializer, allow_deferred_init=True)
        add_bias_and_activation(self, self._channels, "float32", use_bias, bias_initializer, activation)

    @classmethod
    def _alias(cls) -> str:
        return "conv"

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def in_channels(self) -> int | None:
        dim = self.weight.dims[1]
        return dim * self._groups if dim >= 0 else None

    def infer_shape(self, x: Any) -> None:
        self.weight.shape = (self._channels, x.shape[1] // self._groups, *self._kernel)

    def forward(self, x: Any) -> Any:
        out = nd.Convolution(x, self.weight.data(), self.bias.data() if self.bias is not None else None,
                             kernel=self._kernel, stride=self._strides, dilate=self._dilation,
                             pad=self._padding, num_filter=self._channels, num_group=self._groups,
                             no_bias=self.bias is None)
        return self.act(out) if self.act is not None else out

    def _arch_config(self) -> dict[str, Any]:
        return {"channels": self._channels, "kernel_size": list(self._kernel),
                "strides": list(self._strides), "padding": list(self._padding),
                "dilation": list(self._dilation), "groups": self._groups,
                "activation": self.act._act_type if self.act is not None else None,
                "use_bias": self.bias is not None, "in_channels": self.in_channels or 0}

    def __repr__(self) -> str:
        text = f"Conv2D({self.in_channels} -> {self._channels}, kernel_size={self._kernel}, stride={self._strides}"
        if self._padding != (0, 0):
            text += f", padding={self._padding}"
        if self._dilation != (1, 1):
            text += f", dilation={self._dilation}"
        if self._groups != 1:
            text += f", groups={self._groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.act is not None:
            text += f", {self.act!r}"
        return text + ")"


class _Pool2D(HybridBlock):
    _arch_leaf = True
    _pool_type = "max"
    _global = False

    def __init__(self, pool_size: Any = (2, 2), strides: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, layout: str = "NCHW", count_include_pad: bool = True) -> None:
        super().__init__()
        _check_layout(layout)
        self._size = _pair(pool_size, "pool_size")
        self._strides = _pair(strides, "strides") if strides is not None else self._size
        self._padding = _pair(padding, "padding")
        self._ceil_mode, self._count_include_pad = bool(ceil_mode), bool(count_include_pad)
        check_attrs(type(self).__name__, "Pooling", {"kernel": self._size, "stride": self._strides,
                                                     "pad": self._padding})

    @classmethod
    def _alias(cls) -> str:
        return "pool"

    def forward(self, x: Any) -> Any:
        return nd.Pooling(x, kernel=self._size, pool_type=self._pool_type, stride=self._strides,
                          pad=self._padding, global_pool=self._global,
                          pooling_convention="full" if self._ceil_mode else "valid",
                          count_include_pad=self._count_include_pad if self._pool_type == "avg" else None)

    def _arch_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"pool_size": list(self._size), "strides": list(self._strides),
                                  "padding": list(self._padding), "ceil_mode": self._ceil_mode}
        if self._pool_type == "avg":
            config["count_include_pad"] = self._count_include_pad
        return config

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(size={self._size}, stride={self._strides}, padding={self._padding}, "
                f"ceil_mode={self._ceil_mode}, global_pool={self._global}, pool_type={self._pool_type}, "
                "layout=NCHW)")


class MaxPool2D(_Pool2D):
    """Max pooling; ``ceil_mode=True`` is MXNet's 'full' pooling convention."""


class AvgPool2D(_Pool2D):
    """Average pooling; ``count_include_pad`` counts padded cells in the divisor."""

    _pool_type = "avg"


class _GlobalPool2D(_Pool2D):
    _global = True

    def __init__(self, layout: str = "NCHW") -> None:
        super().__init__(pool_size=(1, 1), strides=(1, 1), padding=0, ceil_mode=True, layout=layout)

    def _arch_config(self) -> dict[str, Any]:
        return {}


class GlobalAvgPool2D(_GlobalPool2D):
    """Averages each channel over all pixels: (N, C, H, W) -> (N, C, 1, 1)."""

    _pool_type = "avg"


class GlobalMaxPool2D(_GlobalPool2D):
    """Maximum of each channel over all pixels: (N, C, H, W) -> (N, C, 1, 1)."""


__all__ = ["AvgPool2D", "Conv2D", "GlobalAvgPool2D", "GlobalMaxPool2D", "MaxPool2D"]
