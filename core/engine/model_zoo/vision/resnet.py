"""ResNet V1 and V2 (He et al. 2015, 2016) with Gluon's structure and key names."""

from __future__ import annotations

from typing import Any

from ... import nd, nn
from ...block import HybridBlock

RESNET_SPEC = {18: ("basic", [2, 2, 2, 2], [64, 64, 128, 256, 512]),
               34: ("basic", [3, 4, 6, 3], [64, 64, 128, 256, 512])}


def _conv3x3(channels: int, stride: int, in_channels: int) -> nn.Conv2D:
    return nn.Conv2D(channels, kernel_size=3, strides=stride, padding=1, use_bias=False,
                     in_channels=in_channels)


class BasicBlockV1(HybridBlock):
    """Two 3x3 convolutions with BatchNorm, plus the (optionally downsampled) input."""

    def __init__(self, channels: int, stride: int, downsample: bool = False, in_channels: int = 0) -> None:
        super().__init__()
        self._config = {"channels": channels, "stride": stride, "downsample": downsample,
                        "in_channels": in_channels}
        self.body = nn.HybridSequential()
        self.body.add(_conv3x3(channels, stride, in_channels), nn.BatchNorm(), nn.Activation("relu"),
                      _conv3x3(channels, 1, channels), nn.BatchNorm())
        self.downsample: nn.HybridSequential | None
        if downsample:
            self.downsample = nn.HybridSequential()
            self.downsample.add(nn.Conv2D(channels, kernel_size=1, strides=stride, use_bias=False,
                                          in_channels=in_channels), nn.BatchNorm())
        else:
            self.downsample = None

    def forward(self, x: Any) -> Any:
        residual = self.downsample(x) if self.downsample is not None else x
        return nd.Activation(self.body(x) + residual, act_type="relu")

    def _arch_config(self) -> dict[str, Any]:
        return dict(self._config)


class BasicBlockV2(HybridBlock):
    """Pre-activation basic block: BatchNorm and relu before each 3x3 convolution."""

    def __init__(self, channels: int, stride: int, downsample: bool = False, in_channels: int = 0) -> None:
        super().__init__()
        self._config = {"channels": channels, "stride": stride, "downsample": downsample,
                        "in_channels": in_channels}
        self.bn1 = nn.BatchNorm()
        self.conv1 = _conv3x3(channels, stride, in_channels)
        self.bn2 = nn.BatchNorm()
        self.conv2 = _conv3x3(channels, 1, channels)
        self.downsample: nn.Conv2D | None
        if downsample:
            self.downsample = nn.Conv2D(channels, 1, stride, use_bias=False, in_channels=in_channels)
        else:
            self.downsample = None

    def forward(self, x: Any) -> Any:
        residual = x
        x = nd.Activation(self.bn1(x), act_type="relu")
        if self.downsample is not None:
            residual = self.downsample(x)
        x = self.conv1(x)
        x = nd.Activation(self.bn2(x), act_type="relu")
        return self.conv2(x) + residual

    def _arch_config(self) -> dict[str, Any]:
        return dict(self._config)


def _make_stage(block: type[BasicBlockV1] | type[BasicBlockV2], layers: int, channels: int, stride: int,
                in_channels: int) -> nn.HybridSequential:
    stage = nn.HybridSequential()
    stage.add(block(channels, stride, channels != in_channels, in_channels=in_channels))
    for _ in range(layers - 1):
        stage.add(block(channels, 1, False, in_channels=channels))
    return stage


class ResNetV1(HybridBlock):
    """ResNet V1: 7x7 stem, four stages of residual blocks, global pooling, Dense output."""

    _arch_chain = True

    def __init__(self, layers: list[int], channels: list[int], classes: int = 1000) -> None:
        super().__init__()
        self._config = {"layers": list(layers), "channels": list(channels), "classes": classes}
        self.features = nn.HybridSequential()
        self.features.add(nn.Conv2D(channels[0], 7, 2, 3, use_bias=False), nn.BatchNorm(),
                          nn.Activation("relu"), nn.MaxPool2D(3, 2, 1))
        for i, count in enumerate(layers):
            self.features.add(_make_stage(BasicBlockV1, count, channels[i + 1], 1 if i == 0 else 2,
                                          channels[i]))
        self.features.add(nn.GlobalAvgPool2D())
        self.output = nn.Dense(classes, in_units=channels[-1])

    def forward(self, x: Any) -> Any:
        return self.output(self.features(x))

    def _arch_config(self) -> dict[str, Any]:
        return dict(self._config)


class ResNetV2(HybridBlock):
    """ResNet V2: pre-activation blocks, a data BatchNorm first, BatchNorm+relu before pooling."""

    _arch_chain = True

    def __init__(self, layers: list[int], channels: list[int], classes: int = 1000) -> None:
        super().__init__()
        self._config = {"layers": list(layers), "channels": list(channels), "classes": classes}
        self.features = nn.HybridSequential()
        self.features.add(nn.BatchNorm(scale=False, center=False),
                          nn.Conv2D(channels[0], 7, 2, 3, use_bias=False), nn.BatchNorm(),
                          nn.Activation("relu"), nn.MaxPool2D(3, 2, 1))
        in_channels = channels[0]
        for i, count in enumerate(layers):
            self.features.add(_make_stage(BasicBlockV2, count, channels[i + 1], 1 if i == 0 else 2,
                                          in_channels))
            in_channels = channels[i + 1]
        self.features.add(nn.BatchNorm(), nn.Activation("relu"), nn.GlobalAvgPool2D(), nn.Flatten())
        self.output = nn.Dense(classes, in_units=in_channels)

    def forward(self, x: Any) -> Any:
        return self.output(self.features(x))

    def _arch_config(self) -> dict[str, Any]:
        return dict(self._config)


def _resnet(version: int, depth: int, classes: int) -> HybridBlock:
    _, layers, channels = RESNET_SPEC[depth]
    return (ResNetV1 if version == 1 else ResNetV2)(layers, channels, classes=classes)


def resnet18_v1(classes: int = 1000) -> ResNetV1:
    return _resnet(1, 18, classes)  # type: ignore[return-value]


def resnet34_v1(classes: int = 1000) -> ResNetV1:
    return _resnet(1, 34, classes)  # type: ignore[return-value]


def resnet18_v2(classes: int = 1000) -> ResNetV2:
    return _resnet(2, 18, classes)  # type: ignore[return-value]


def resnet34_v2(classes: int = 1000) -> ResNetV2:
    return _resnet(2, 34, classes)  # type: ignore[return-value]
