"""Gluon's vision model zoo: every model has ``features`` and an ``output`` head.

Weights are randomly initialised on request; there are no downloads here, so
``pretrained=True`` is a clear error. Load real weights with ``load_parameters`` or import a
real MXNet export instead.

>>> net = get_model("alexnet", classes=10)
>>> net.output
Dense(4096 -> 10, linear)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ....errors import ModelSurgeonError
from ...block import HybridBlock
from .alexnet import AlexNet
from .mobilenet import MobileNet, mobilenet0_5, mobilenet0_25, mobilenet0_75, mobilenet1_0
from .resnet import BasicBlockV1, BasicBlockV2, ResNetV1, ResNetV2, resnet18_v1, resnet18_v2, resnet34_v1, resnet34_v2
from .squeezenet import SqueezeNet, squeezenet1_0, squeezenet1_1
from .vgg import VGG, vgg11, vgg11_bn, vgg13, vgg16

#: The input each model is designed for (channels, height, width).
INPUT_SHAPE = (3, 224, 224)

_MODELS: dict[str, Callable[..., HybridBlock]] = {
    "alexnet": AlexNet,
    "resnet18_v1": resnet18_v1, "resnet34_v1": resnet34_v1,
    "resnet18_v2": resnet18_v2, "resnet34_v2": resnet34_v2,
    "vgg11": vgg11, "vgg13": vgg13, "vgg16": vgg16, "vgg11_bn": vgg11_bn,
    "squeezenet1.0": squeezenet1_0, "squeezenet1.1": squeezenet1_1,
    "mobilenet1.0": mobilenet1_0, "mobilenet0.75": mobilenet0_75,
    "mobilenet0.5": mobilenet0_5, "mobilenet0.25": mobilenet0_25,
}


def model_names() -> list[str]:
    """Names accepted by :func:`get_model`."""
    return sorted(_MODELS)


def get_model(name: str, classes: int = 1000, pretrained: bool = False, **kwargs: Any) -> HybridBlock:
    """A zoo model by name (``'resnet18_v1'``, ``'squeezenet1.1'``...), randomly initialisable."""
    if pretrained:
        raise ModelSurgeonError(
            "pretrained weights cannot be downloaded here; build the model, then load a checkpoint "
            "with load_parameters() or import a real MXNet export with SymbolBlock.imports()")
    key = name.lower()
    if key not in _MODELS:
        raise ModelSurgeonError(f"unknown model {name!r}; choose from {', '.join(model_names())}")
    return _MODELS[key](classes=classes, **kwargs)


def alexnet(classes: int = 1000, pretrained: bool = False) -> AlexNet:
    return get_model("alexnet", classes=classes, pretrained=pretrained)  # type: ignore[return-value]


__all__ = [
    "INPUT_SHAPE",
    "VGG",
    "AlexNet",
    "BasicBlockV1",
    "BasicBlockV2",
    "MobileNet",
    "ResNetV1",
    "ResNetV2",
    "SqueezeNet",
    "alexnet",
    "get_model",
    "mobilenet0_5",
    "mobilenet0_25",
    "mobilenet0_75",
    "mobilenet1_0",
    "model_names",
    "resnet18_v1",
    "resnet18_v2",
    "resnet34_v1",
    "resnet34_v2",
    "squeezenet1_0",
    "squeezenet1_1",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg16",
]
