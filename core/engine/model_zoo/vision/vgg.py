"""VGG (Simonyan & Zisserman 2014) with Gluon's layout: the classifier's hidden layers sit in features."""

from __future__ import annotations

from typing import Any

from ... import initializer, nn
from ...block import HybridBlock

VGG_SPEC = {11: ([1, 1, 2, 2, 2], [64, 128, 256, 512, 512]),
            13: ([2, 2, 2, 2, 2], [64, 128, 256, 512, 512]),
            16: ([2, 2, 3, 3, 3], [64, 128, 256, 512, 512]),
            19: ([2, 2, 4, 4, 4], [64, 128, 256, 512, 512])}


class VGG(HybridBlock):
    """VGG with optional BatchNorm after each convolution."""

    _arch_chain = True

    def __init__(self, layers: list[int], filters: list[int], classes: int = 1000,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self._config = {"layers": list(layers), "filters": list(filters), "classes": classes,
                        "batch_norm": batch_norm}
        conv_init = initializer.Xavier(rnd_type="gaussian", factor_type="out", magnitude=2)
        self.features = nn.HybridSequential()
        for count, width in zip(layers, filters):
            for _ in range(count):
                self.features.add(nn.Conv2D(width, kernel_size=3, padding=1, weight_initializer=conv_init))
                if batch_norm:
                    self.features.add(nn.BatchNorm())
                self.features.add(nn.Activation("relu"))
            self.features.add(nn.MaxPool2D(strides=2))
        self.features.add(nn.Dense(4096, activation="relu", weight_initializer="normal"), nn.Dropout(0.5),
                          nn.Dense(4096, activation="relu", weight_initializer="normal"), nn.Dropout(0.5))
        self.output = nn.Dense(classes, weight_initializer="normal")

    def forward(self, x: Any) -> Any:
        return self.output(self.features(x))

    def _arch_config(self) -> dict[str, Any]:
        return dict(self._config)


def vgg11(classes: int = 1000) -> VGG:
    return VGG(*VGG_SPEC[11], classes=classes)


def vgg13(classes: int = 1000) -> VGG:
    return VGG(*VGG_SPEC[13], classes=classes)


def vgg16(classes: int = 1000) -> VGG:
    return VGG(*VGG_SPEC[16], classes=classes)


def vgg11_bn(classes: int = 1000) -> VGG:
    return VGG(*VGG_SPEC[11], classes=classes, batch_norm=True)
