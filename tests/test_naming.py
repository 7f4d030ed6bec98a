"""Block names, unique Parameter names and structural keys (the naming tutorial's promises)."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest

from modelsurgeon import core
from modelsurgeon.core.engine import nn
from modelsurgeon.core.engine.naming import UNIQUE_NAME_RE, next_block_name, reset_names, short_name

UNIQUE = re.compile(r"^param_[0-9a-f]{8}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{12}_bias$")


class Model(core.HybridBlock):
    def __init__(self):
        super().__init__()
        self.dense0 = nn.Dense(20)
        self.dense1 = nn.Dense(20)
        self.mydense = nn.Dense(20)

    def forward(self, x):
        x = core.nd.relu(self.dense0(x))
        x = core.nd.relu(self.dense1(x))
        return core.nd.relu(self.mydense(x))


# -- block names ------------------------------------------------------------------------------

def test_dense_names_count_up():
    assert nn.Dense(100).name == "dense0"
    assert nn.Dense(100).name == "dense1"
    assert nn.Dense(3, in_units=2).name == "dense2"


def test_each_class_has_its_own_counter():
    assert nn.Dense(1).name == "dense0"
    assert nn.Conv2D(1, 3).name == "conv0"
    assert nn.Conv2D(1, 3).name == "conv1"
    assert nn.HybridSequential().name == "hybridsequential0"
    assert nn.Sequential().name == "sequential0"
    assert nn.BatchNorm().name == "batchnorm0"
    assert nn.Dense(1).name == "dense1"
    assert Model().name == "model0"
    assert Model().name == "model1"


def test_pooling_layers_share_mxnets_pool_counter():
    # MXNet 1.9.1 (ran): MaxPool2D, AvgPool2D, GlobalAvgPool2D -> pool0, pool1, pool2
    assert [nn.MaxPool2D().name, nn.AvgPool2D().name, nn.GlobalAvgPool2D().name] == [
        "pool0", "pool1", "pool2"]


def test_activation_named_after_its_function_like_mxnet():
    # MXNet 1.9.1 (ran): Activation('relu').name == 'relu0', Activation('sigmoid') -> 'sigmoid0'
    assert nn.Activation("relu").name == "relu0"
    assert nn.Activation("sigmoid").name == "sigmoid0"
    assert nn.Activation("relu").name == "relu1"


def test_children_are_named_before_their_parent_finishes():
    model = Model()
    assert (model.name, model.dense0.name, model.dense1.name, model.mydense.name) == (
        "model0", "dense0", "dense1", "dense2")


def test_name_scope_restarts_and_restores_counters():
    assert nn.Dense(1).name == "dense0"
    with core.name_scope():
        assert nn.Dense(1).name == "dense0"
        assert nn.Dense(1).name == "dense1"
    assert nn.Dense(1).name == "dense1"  # the outer count resumes


def test_reset_names():
    nn.Dense(1), nn.Dense(1)
    reset_names()
    assert nn.Dense(1).name == "dense0"


def test_counters_are_per_thread_context():
    # A new thread starts with an empty context: its counters do not see ours.
    nn.Dense(1), nn.Dense(1)
    names = []
    thread = threading.Thread(target=lambda: names.append(nn.Dense(1).name))
    thread.start()
    thread.join()
    assert names == ["dense0"]
    assert nn.Dense(1).name == "dense2"


def test_next_block_name_is_per_hint():
    assert [next_block_name("x"), next_block_name("y"), next_block_name("x")] == ["x0", "y0", "x1"]


def test_block_name_is_read_only():
    dense = nn.Dense(1)
    with pytest.raises(AttributeError):
        dense.name = "other"
    assert dense.name == "dense0"


# -- parameter names ----------------------------------------------------------------------------

def test_parameter_unique_name_format():
    param = core.Parameter(name="bias")
    assert UNIQUE.match(param.name), param.name
    assert param.short_name == "bias"
    assert UNIQUE_NAME_RE.match(param.name).group("short") == "bias"
    assert short_name(param.name) == "bias"
    assert short_name("features.0.weight") == "features.0.weight"


def test_parameter_names_are_unique():
    names = {core.Parameter(name="bias").name for _ in range(200)}
    assert len(names) == 200


def test_parameter_name_cannot_change():
    param = core.Parameter(name="bias")
    before = param.name
    with pytest.raises(AttributeError):
        param.name = "param_x_bias"
    assert param.name == before


def test_layer_parameters_get_unique_names_with_their_short_names():
    dense = nn.Dense(3)
    assert dense.weight.short_name == "weight"
    assert dense.weight.name.endswith("_weight") and dense.weight.name.startswith("param_")
    assert dense.bias.name.endswith("_bias")
    assert dense.weight.name != nn.Dense(3).weight.name


@pytest.mark.parametrize("bad", ["", None, 3])
def test_parameter_needs_a_name(bad):
    with pytest.raises(core.ModelSurgeonError, match="non-empty string name"):
        core.Parameter(name=bad)


# -- structural keys --------------------------------------------------------------------------

def test_dense_collect_params_keys():
    dense1 = nn.Dense(100)
    params = dense1.collect_params()
    assert list(params) == ["weight", "bias"]
    assert params["weight"].shape == (100, -1)
    assert params["bias"].shape == (100,)


def test_tutorial_model_keys_and_names():
    model = Model()
    assert list(model.collect_params()) == [
        "dense0.weight", "dense0.bias", "dense1.weight", "dense1.bias", "mydense.weight", "mydense.bias"]
    # the third Dense is registered as 'mydense' but NAMED by its counter
    assert model.mydense.name == "dense2"


def test_own_parameters_come_before_children():
    class Block(core.HybridBlock):
        def __init__(self):
            super().__init__()
            self.child = nn.Dense(2, in_units=2)
            self.scale = core.Parameter("scale", shape=(2,))
            self.other = nn.Dense(2, in_units=2)

        def forward(self, x):
            return self.other(self.child(x))

    assert list(Block().collect_params()) == [
        "scale", "child.weight", "child.bias", "other.weight", "other.bias"]


def test_collect_params_select_matches_whole_keys():
    model = Model()
    assert list(model.collect_params(".*weight")) == ["dense0.weight", "dense1.weight", "mydense.weight"]
    assert list(model.collect_params(".*weight|.*bias")) == list(model.collect_params())
    # matched against the whole key, not searched inside it
    assert model.collect_params("weight") == {}
    assert model.collect_params("dense") == {}
    assert list(model.collect_params("dense.*")) == [
        "dense0.weight", "dense0.bias", "dense1.weight", "dense1.bias"]


def test_collect_params_returns_the_parameter_objects():
    model = Model()
    assert model.collect_params()["dense1.bias"] is model.dense1.bias
    assert model.params == {}
    assert model.dense0.params == {"weight": model.dense0.weight, "bias": model.dense0.bias}


@pytest.mark.parametrize("container", [nn.Sequential, nn.HybridSequential])
def test_sequential_keys_indexing_len_slicing(container):
    net = container()
    layers = [nn.Dense(20), nn.Dense(10), nn.Dense(5)]
    net.add(layers[0])
    net.add(layers[1], layers[2])
    assert list(net.collect_params()) == ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"]
    assert len(net) == 3
    assert net[0] is layers[0] and net[2] is layers[2] and net[-1] is layers[2]
    assert list(net) == layers
    head = net[:2]
    assert type(head) is container
    assert len(head) == 2 and head[0] is layers[0] and head[1] is layers[1]
    assert list(head.collect_params()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert list(net[1:].collect_params()) == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_nested_keys():
    net = nn.HybridSequential()
    features = nn.HybridSequential()
    for _ in range(3):
        features.add(nn.Activation("relu"))
    inner = nn.HybridSequential()
    inner.add(nn.Conv2D(4, 3), nn.BatchNorm())
    features.add(inner)
    net.add(features)
    keys = list(net.collect_params())
    assert keys == ["0.3.0.weight", "0.3.0.bias", "0.3.1.gamma", "0.3.1.beta",
                    "0.3.1.running_mean", "0.3.1.running_var"]

    class Net(core.HybridBlock):
        def __init__(self):
            super().__init__()
            self.features = features

        def forward(self, x):
            return self.features(x)

    assert "features.3.0.weight" in Net().collect_params()


def test_zoo_keys_use_structure():
    net = core.model_zoo.vision.resnet18_v1(classes=10)
    keys = list(net.collect_params())
    assert keys[:6] == ["features.0.weight", "features.1.gamma", "features.1.beta",
                        "features.1.running_mean", "features.1.running_var", "features.4.0.body.0.weight"]
    assert keys[-2:] == ["output.weight", "output.bias"]


def test_structural_keys_do_not_depend_on_counters():
    first, second = Model(), Model()
    assert list(first.collect_params()) == list(second.collect_params())
    assert first.name != second.name
    assert first.dense0.name != second.dense0.name
    names_first = {p.name for p in first.collect_params().values()}
    names_second = {p.name for p in second.collect_params().values()}
    assert not names_first & names_second
    a = core.model_zoo.vision.squeezenet1_1(classes=5)
    b = core.model_zoo.vision.squeezenet1_1(classes=5)
    assert list(a.collect_params()) == list(b.collect_params())


def test_named_blocks_paths():
    model = Model()
    assert [path for path, _ in model.named_blocks()] == ["", "dense0", "dense1", "mydense"]
    assert model.get_block("mydense") is model.mydense
    with pytest.raises(core.ModelSurgeonError, match=r"no block 'nope' in the model \(children: dense0, dense1, mydense\)"):
        model.get_block("nope")
    with pytest.raises(core.ModelSurgeonError, match=r"no block 'x' in dense0 \(children: none\)"):
        model.get_block("dense0.x")


def test_child_names_cannot_contain_dots():
    net = nn.HybridSequential()
    with pytest.raises(core.ModelSurgeonError, match="cannot contain '.'"):
        net.register_child(nn.Dense(1), "a.b")


def test_forward_does_not_change_keys_or_names():
    model = Model()
    model.initialize()
    before = [(k, p.name) for k, p in model.collect_params().items()]
    model(np.zeros((2, 20), np.float32))
    assert [(k, p.name) for k, p in model.collect_params().items()] == before
