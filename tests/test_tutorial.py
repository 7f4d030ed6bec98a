"""The Gluon tutorial "Parameter and Block Naming", ported step by step.

``import mxnet as mx; from mxnet import gluon`` becomes ``from modelsurgeon import core as gluon``
and ``mx.nd`` becomes numpy / ``gluon.nd``. Each test is one section of the tutorial; they run in
any order (every test has its own name scope, see conftest.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from modelsurgeon import core as gluon

UNIQUE = r"param_[0-9a-f]{8}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{12}_"
TUTORIAL_KEYS = ["dense0.weight", "dense0.bias", "dense1.weight", "dense1.bias", "mydense.weight", "mydense.bias"]


class Model(gluon.HybridBlock):
    def __init__(self):
        super().__init__()
        self.dense0 = gluon.nn.Dense(20)
        self.dense1 = gluon.nn.Dense(20)
        self.mydense = gluon.nn.Dense(20)

    def forward(self, x):
        x = gluon.nd.relu(self.dense0(x))
        x = gluon.nd.relu(self.dense1(x))
        return gluon.nd.relu(self.mydense(x))


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """The tutorial writes its files into the current directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _model0():
    model0 = Model()
    model0.initialize()
    model0.hybridize()
    model0(np.zeros((1, 20), np.float32))
    return model0


def _random_batch():
    return np.random.default_rng(0).standard_normal((3, 20)).astype(np.float32)


# "Naming Blocks"
def test_naming_blocks():
    mydense = gluon.nn.Dense(100)
    assert mydense.name == "dense0"
    assert type(mydense).__name__ == "Dense"
    # "When you create more Blocks of the same kind, they will be named with incrementing suffixes"
    dense1 = gluon.nn.Dense(100)
    assert dense1.name == "dense1"


# "Naming Parameters"
def test_naming_parameters():
    param = gluon.Parameter(name="bias")
    assert re.fullmatch(UNIQUE + "bias", param.name)
    # "it can not be changed once the parameter is created"
    with pytest.raises(AttributeError):
        param.name = "bias"
    # "When getting parameters within a Block, you should use the structure based name as the key"
    gluon.nn.Dense(100)
    dense1 = gluon.nn.Dense(100)
    params = dense1.collect_params()
    assert list(params) == ["weight", "bias"]
    assert repr(params["weight"]) == "Parameter (shape=(100, -1), dtype=float32)"
    assert repr(params["bias"]) == "Parameter (shape=(100,), dtype=float32)"
    assert re.fullmatch(UNIQUE + "weight", params["weight"].name)


# "Nested Blocks"
def test_nested_blocks_without_name_scope():
    model0 = Model()
    model0.initialize()
    model0.hybridize()
    out = model0(np.zeros((1, 20)))
    assert out.shape == (1, 20)
    assert (out >= 0).all()
    assert model0.name == "model0"
    assert [model0.dense0.name, model0.dense1.name, model0.mydense.name] == ["dense0", "dense1", "dense2"]
    assert list(model0.collect_params()) == TUTORIAL_KEYS
    # "each instance of model's name scope is independent": a second Model, same keys
    model1 = Model()
    assert model1.name == "model1"
    assert list(model1.collect_params()) == TUTORIAL_KEYS


def test_model_forward_is_the_relu_chain():
    model0 = _model0()
    x = _random_batch()
    h = x
    for layer in (model0.dense0, model0.dense1, model0.mydense):
        h = np.maximum(h @ layer.weight.data().T + layer.bias.data(), 0)
    np.testing.assert_allclose(model0(x), h, rtol=1e-5, atol=1e-6)


# "The same principle also applies to container blocks like Sequential"
def test_sequential():
    net = gluon.nn.Sequential()
    net.add(gluon.nn.Dense(20))
    net.add(gluon.nn.Dense(20))
    assert net.name == "sequential0"
    assert list(net.collect_params()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    net.initialize()
    assert net(np.ones((2, 5), np.float32)).shape == (2, 20)


# "Saving and loading": save_parameters/load_parameters match by structure
def test_save_and_load_parameters(workdir):
    model0 = _model0()
    model1 = Model()
    model0.save_parameters("model.params")
    model1.load_parameters("model.params")
    with h5py.File("model.params", "r") as f:
        assert list(f["tensors"]) == TUTORIAL_KEYS
    for key in TUTORIAL_KEYS:
        a, b = model0.collect_params()[key], model1.collect_params()[key]
        assert a is not b
        assert a.name != b.name  # unique names differ; structure is what matched them
        np.testing.assert_array_equal(a.data(), b.data())
    x = _random_batch()
    np.testing.assert_array_equal(model1(x), model0(x))


# "For SymbolBlock.imports, we use export, which uses parameter name, to save parameters"
def test_export_and_symbolblock_imports(workdir):
    model0 = _model0()
    symbol_file, params_file = model0.export("model0")
    assert (symbol_file, params_file) == ("model0-symbol.json", "model0-0000.h5")
    model2 = gluon.SymbolBlock.imports("model0-symbol.json", ["data"], "model0-0000.h5")
    x = _random_batch()
    np.testing.assert_array_equal(model2(x), model0(x))
    keys = list(model2.collect_params())
    assert len(keys) == 6
    expected = [p.name for p in model0.collect_params().values()]
    assert keys == expected
    for key in keys:
        assert re.fullmatch(UNIQUE + "(weight|bias)", key)
    graph = json.loads((workdir / "model0-symbol.json").read_text())
    variables = [n["name"] for n in graph["nodes"] if n["op"] == "null"]
    assert variables == ["data", *expected]


def test_export_with_mxnet_params_and_imports(workdir):
    model0 = _model0()
    symbol_file, params_file = model0.export("model0", format="mxnet")
    assert params_file == "model0-0000.params"
    model2 = gluon.SymbolBlock.imports(symbol_file, ["data"], params_file)
    x = _random_batch()
    np.testing.assert_array_equal(model2(x), model0(x))


# "Replacing Blocks from networks and fine-tuning"
def test_replacing_the_alexnet_head():
    alexnet = gluon.model_zoo.vision.alexnet()
    # "all image classification models ... feature extraction layers are named features while
    # the output layer is named output"
    assert list(alexnet._children) == ["features", "output"]
    # "Note that the output layer is a dense block with 1000 dimension outputs."
    assert repr(alexnet.output) == "Dense(None -> 1000, linear)"
    alexnet.initialize()
    # 63x63 is the smallest image AlexNet takes; the head sees 4096 features at any size
    x = np.random.default_rng(1).standard_normal((1, 3, 63, 63)).astype(np.float32)
    assert alexnet(x).shape == (1, 1000)
    assert repr(alexnet.output) == "Dense(4096 -> 1000, linear)"
    features = {k: p.data().copy() for k, p in alexnet.collect_params().items() if k.startswith("features")}
    # "To change the output to 100 dimension, we replace it with a new block."
    alexnet.output = gluon.nn.Dense(100)
    alexnet.output.initialize()
    assert alexnet(x).shape == (1, 100)
    assert alexnet.output.weight.shape == (100, 4096)
    assert list(alexnet.collect_params())[-2:] == ["output.weight", "output.bias"]
    for key, value in features.items():
        np.testing.assert_array_equal(alexnet.collect_params()[key].data(), value)


def test_the_real_mxnet_tutorial_checkpoint_loads():
    """model0.params written by real MXNet 1.9.1's save_parameters loads by structure."""
    folder = Path(__file__).resolve().parent / "fixtures" / "mxnet" / "tutorial"
    model = Model()
    model.load_parameters(str(folder / "model0.params"))
    x = np.load(folder / "input.npy")
    np.testing.assert_allclose(model(x), np.load(folder / "output.npy"), rtol=1e-5, atol=1e-6)
    imported = gluon.SymbolBlock.imports(str(folder / "model0-symbol.json"), ["data"],
                                         str(folder / "model0-0000.params"))
    np.testing.assert_allclose(imported(x), np.load(folder / "output.npy"), rtol=1e-5, atol=1e-6)
    assert list(imported.collect_params()) == [
        "model0_dense0_weight", "model0_dense0_bias", "model0_dense1_weight", "model0_dense1_bias",
        "model0_mydense_weight", "model0_mydense_bias"]
