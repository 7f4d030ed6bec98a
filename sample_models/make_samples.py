"""Regenerate the sample checkpoints: ``python sample_models/make_samples.py``.

Small models in both key schemes, made with modelsurgeon itself and a fixed seed, so the
files are the same bytes every time:

* ``tutorial.h5`` - the naming tutorial's ``Model`` (three Dense(20) with relu), structural keys
  (``dense0.weight`` ... ``mydense.bias``); a user-defined class, so it records no architecture.
* ``tutorial-named.h5`` + ``tutorial-symbol.json`` - the same model exported: keys are the
  Parameters' unique names (``param_..._weight``), the graph is embedded.
* ``mlp.h5`` - a 100 -> 64 -> 32 -> 10 perceptron (HybridSequential), with its architecture.
* ``cnn.h5`` - a small CNN following the zoo's ``features`` / ``output`` convention, with its
  architecture; ``cnn-named.h5`` + ``cnn-symbol.json`` - the same weights exported name-keyed.
"""

from __future__ import annotations

import os
import uuid

import numpy as np

from modelsurgeon import core as gluon
from modelsurgeon.core.engine import nn

HERE = os.path.dirname(os.path.abspath(__file__))


class Model(gluon.HybridBlock):
    """The tutorial's model."""

    def __init__(self) -> None:
        super().__init__()
        self.dense0 = nn.Dense(20)
        self.dense1 = nn.Dense(20)
        self.mydense = nn.Dense(20)

    def forward(self, x):
        x = gluon.nd.relu(self.dense0(x))
        x = gluon.nd.relu(self.dense1(x))
        return gluon.nd.relu(self.mydense(x))


def small_cnn(classes: int = 10) -> nn.HybridSequential:
    features = nn.HybridSequential()
    features.add(nn.Conv2D(8, 3, padding=1, activation="relu"), nn.BatchNorm(), nn.MaxPool2D(),
                 nn.Conv2D(16, 3, padding=1, activation="relu"), nn.BatchNorm(), nn.MaxPool2D(),
                 nn.Conv2D(32, 3, padding=1, activation="relu"), nn.GlobalAvgPool2D(), nn.Flatten())
    net = nn.HybridSequential()
    net.register_child(features, "features")
    net.register_child(nn.Dense(classes), "output")
    return net


def mlp() -> nn.HybridSequential:
    net = nn.HybridSequential()
    net.add(nn.Dense(64, activation="relu"), nn.Dense(32, activation="relu"), nn.Dense(10))
    return net


def _deterministic_uuids(seed: int) -> None:
    """Unique names come from uuid4; seed them so the sample files are reproducible."""
    rng = np.random.default_rng(seed)
    uuid.uuid4 = lambda: uuid.UUID(bytes=rng.bytes(16), version=4)  # type: ignore[assignment]


def _randomize_batchnorm(net: gluon.Block, rng: np.random.Generator) -> None:
    for key, param in net.collect_params().items():
        if key.endswith("running_mean"):
            param.set_data(rng.normal(0, 0.1, param.shape).astype(np.float32))
        elif key.endswith("running_var"):
            param.set_data(rng.uniform(0.5, 2.0, param.shape).astype(np.float32))


def main() -> None:
    _deterministic_uuids(0)
    gluon.random.seed(0)
    rng = np.random.default_rng(0)
    with gluon.name_scope():
        model = Model()
        model.initialize(gluon.init.Xavier())
        model(np.zeros((1, 20), np.float32))
        model.save_parameters(os.path.join(HERE, "tutorial.h5"))
        model.export(os.path.join(HERE, "tutorial"))
        os.replace(os.path.join(HERE, "tutorial-0000.h5"), os.path.join(HERE, "tutorial-named.h5"))

        net = mlp()
        net.initialize(gluon.init.Xavier())
        net(np.zeros((1, 100), np.float32))
        net.save_parameters(os.path.join(HERE, "mlp.h5"))

        cnn = small_cnn()
        cnn.initialize(gluon.init.Xavier())
        cnn(np.zeros((1, 3, 32, 32), np.float32))
        _randomize_batchnorm(cnn, rng)
        cnn.save_parameters(os.path.join(HERE, "cnn.h5"))
        cnn.export(os.path.join(HERE, "cnn"))
        os.replace(os.path.join(HERE, "cnn-0000.h5"), os.path.join(HERE, "cnn-named.h5"))


if __name__ == "__main__":
    main()
