"""SqueezeNet 1.0 and 1.1 (Iandola et al. 2016); the head is a 1x1 convolution, ``output.0``."""

from __future__ import annotations

from typing import Any

from ... import nn
from ...block import HybridBlock


def _fire_conv(channels: int, kernel_size: int, padding: int = 0) -> nn.HybridSequential:
    out = nn.HybridSequential()
    out.add(nn.Conv2D(channels, kernel_size, padding=padding), nn.Activation("relu"))
    return out


def _fire(squeeze: int, expand1x1: int, expand3x3: int) -> nn.HybridSequential:
    paths = nn.HybridConcatenate(axis=1)
    paths.add(_fire_conv(expand1x1, 1), _fire_conv(expand3x3, 3, 1))
    out = nn.HybridSequential()
    out.add(_fire_conv(squeeze, 1), paths)
    return out


class SqueezeNet(HybridBlock):
    """SqueezeNet; ``version`` is '1.0' or '1.1'."""

    _arch_chain = True

    def __init__(self, version: str = "1.1", classes: int = 1000) -> None:
        super().__init__()
        if version not in ("1.0", "1.1"):
            raise ValueError(f"SqueezeNet version must be '1.0' or '1.1', not {version!r}")
        self._config = {"version": version, "classes": classes}
        f = self.features = nn.HybridSequential()
        pool = lambda: nn.MaxPool2D(pool_size=3, strides=2, ceil_mode=True)
        if version == "1.0":
            f.add(nn.Conv2D(96, kernel_size=7, strides=2), nn.Activation("relu"), pool(),
                  _fire(16, 64, 64), _fire(16, 64, 64), _fire(32, 128, 128), pool(),
                  _fire(32, 128, 128), _fire(48, 192, 192), _fire(48, 192, 192), _fire(64, 256, 256),
                  pool(), _fire(64, 256, 256))
        else:
            f.add(nn.Conv2D(64, kernel_size=3, strides=2), nn.Activation("relu"), pool(),
                  _fire(16, 64, 64), _fire(16, 64, 64), pool(),
                  _fire(32, 128, 128), _fire(32, 128, 128), pool(),
                  _fire(48, 192, 192), _fire(48, 192, 192), _fire(64, 256, 256), _fire(64, 256, 256))
        f.add(nn.Dropout(0.5))
        self.output = nn.HybridSequential()
        self.output.add(nn.Conv2D(classes, kernel_size=1), nn.Activation("relu"), nn.AvgPool2D(13),
                        nn.Flatten())

    def forward(self, x: Any) -> Any:
        return self.output(self.features(x))

    def _arch_config(self) -> dict[str, Any]:
        return dict(self._config)


def squeezenet1_0(classes: int = 1000) -> SqueezeNet:
    return SqueezeNet("1.0", classes=classes)


def squeezenet1_1(classes: int = 1000) -> SqueezeNet:
    return SqueezeNet("1.1", classes=classes)
