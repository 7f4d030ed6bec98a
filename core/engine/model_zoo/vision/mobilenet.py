"""MobileNet V1 (Howard et al. 2017): depthwise separable convolutions, width ``multiplier``."""

from __future__ import annotations

from typing import Any

from ... import nn
from ...block import HybridBlock


def _add_conv(out: nn.HybridSequential, channels: int, kernel: int = 1, stride: int = 1, pad: int = 0,
              num_group: int = 1) -> None:
    out.add(nn.Conv2D(channels, kernel, stride, pad, groups=num_group, use_bias=False),
            nn.BatchNorm(scale=True), nn.Activation("relu"))


class MobileNet(HybridBlock):
    """MobileNet V1 with Gluon's key layout (a flat ``features`` sequence)."""

    _arch_chain = True

    def __init__(self, multiplier: float = 1.0, classes: int = 1000) -> None:
        super().__init__()
        self._config = {"multiplier": multiplier, "classes": classes}
        self.features = nn.HybridSequential()
        _add_conv(self.features, int(32 * multiplier), kernel=3, stride=2, pad=1)
        dw_channels = [int(x * multiplier) for x in [32, 64] + [128] * 2 + [256] * 2 + [512] * 6 + [1024]]
        channels = [int(x * multiplier) for x in [64] + [128] * 2 + [256] * 2 + [512] * 6 + [1024] * 2]
        strides = [1, 2] * 3 + [1] * 5 + [2, 1]
        for dwc, c, s in zip(dw_channels, channels, strides):
            _add_conv(self.features, dwc, kernel=3, stride=s, pad=1, num_group=dwc)
            _add_conv(self.features, c)
        self.features.add(nn.GlobalAvgPool2D(), nn.Flatten())
        self.output = nn.Dense(classes)

    def forward(self, x: Any) -> Any:
        return self.output(self.features(x))

    def _arch_config(self) -> dict[str, Any]:
        return dict(self._config)


def mobilenet1_0(classes: int = 1000) -> MobileNet:
    return MobileNet(1.0, classes=classes)


def mobilenet0_75(classes: int = 1000) -> MobileNet:
    return MobileNet(0.75, classes=classes)


def mobilenet0_5(classes: int = 1000) -> MobileNet:
    return MobileNet(0.5, classes=classes)


def mobilenet0_25(classes: int = 1000) -> MobileNet:
    return MobileNet(0.25, classes=classes)
