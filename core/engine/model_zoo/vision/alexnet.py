"""AlexNet, laid out exactly as Gluon's model zoo (``features`` then ``output``)."""

from __future__ import annotations

from typing import Any

from ... import nn
from ...block import HybridBlock


class AlexNet(HybridBlock):
    """AlexNet ("One weird trick...", Krizhevsky 2014) for 224x224 inputs."""

    _arch_chain = True

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.features = nn.HybridSequential()
        self.features.add(
            nn.Conv2D(64, kernel_size=11, strides=4, padding=2, activation="relu"),
            nn.MaxPool2D(pool_size=3, strides=2),
            nn.Conv2D(192, kernel_size=5, padding=2, activation="relu"),
            nn.MaxPool2D(pool_size=3, strides=2),
            nn.Conv2D(384, kernel_size=3, padding=1, activation="relu"),
            nn.Conv2D(256, kernel_size=3, padding=1, activation="relu"),
            nn.Conv2D(256, kernel_size=3, padding=1, activation="relu"),
            nn.MaxPool2D(pool_size=3, strides=2),
            nn.Flatten(),
            nn.Dense(4096, activation="relu"),
            nn.Dropout(0.5),
            nn.Dense(4096, activation="relu"),
            nn.Dropout(0.5),
        )
        self.output = nn.Dense(classes)
        self._classes = classes

    def forward(self, x: Any) -> Any:
        return self.output(self.features(x))

    def _arch_config(self) -> dict[str, Any]:
        return {"classes": self._classes}
