"""Architecture documents: describe/build round trips, and refusing documents we must not trust."""

from __future__ import annotations

import builtins
import copy
import json
import sys

import numpy as np
import pytest

from modelsurgeon.core.engine import architecture as arch
from modelsurgeon.core.engine import nn
from modelsurgeon.core.engine.model_zoo import vision
from modelsurgeon.core.errors import ModelSurgeonError

ZOO = ("alexnet", "resnet18_v1", "resnet34_v1", "resnet18_v2", "vgg11", "squeezenet1.1",
       "mobilenet0.25", "mobilenet1.0")


def _shapes(block):
    return [(k, p.shape, p.dtype) for k, p in block.collect_params().items()]


@pytest.mark.parametrize("name", ZOO)
def test_zoo_round_trip_before_forward(name):
    net = vision.get_model(name, classes=11)
    doc = arch.describe(net)
    assert doc is not None
    json.dumps(doc)  # plain JSON data
    built = arch.build(json.loads(json.dumps(doc)))
    assert type(built) is type(net)
    assert repr(built) == repr(net)
    assert _shapes(built) == _shapes(net)
    assert arch.describe(built) == doc


@pytest.mark.parametrize("name", ZOO)
def test_zoo_round_trip_after_shapes_are_known(name, zoo1000):
    net = zoo1000(name)  # every shape fixed by a (traced) 224x224 pass
    doc = arch.describe(net, inputs=[{"name": "data", "shape": [1, 3, 224, 224], "dtype": "float32"}])
    built = arch.build(doc)
    assert repr(built) == repr(net)
    assert _shapes(built) == _shapes(net)
    assert all(-1 not in shape for _, shape, _ in _shapes(built))
    assert not any(p.is_initialized for p in built.collect_params().values())
    assert arch.input_specs(doc) == [("data", (1, 3, 224, 224), "float32")]


def test_inputs_of_the_last_forward_pass_are_recorded():
    net = nn.HybridSequential()
    net.add(nn.Dense(2))
    assert arch.describe(net)["inputs"] == []
    net.initialize()
    net(np.zeros((4, 3), np.float64))
    assert arch.describe(net)["inputs"] == [{"name": "data", "shape": [4, 3], "dtype": "float64"}]


def test_built_model_runs_with_loaded_weights(small_zoo_model, small_input):
    net = small_zoo_model("resnet18_v2")
    built = arch.build(arch.describe(net))
    built.load_dict({k: p.data() for k, p in net.collect_params().items()})
    x = small_input("resnet18_v2")
    np.testing.assert_array_equal(built(x), net(x))


def test_layer_configs_round_trip():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(6, (3, 2), strides=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2, activation="tanh",
                      use_bias=False, in_channels=4),
            nn.BatchNorm(axis=1, momentum=0.8, epsilon=1e-3, center=False, scale=False, in_channels=6),
            nn.MaxPool2D(3, 2, 1, ceil_mode=True), nn.AvgPool2D(2, 1, 0, count_include_pad=False),
            nn.GlobalMaxPool2D(), nn.GlobalAvgPool2D(), nn.Flatten(), nn.Dropout(0.3, axes=(1,)),
            nn.Dense(5, activation="softrelu", use_bias=False, flatten=False, in_units=6), nn.Identity(),
            nn.Activation("sigmoid"))
    cat = nn.HybridConcatenate(axis=1)
    cat.add(nn.Dense(2, in_units=5), nn.Dense(3, in_units=5))
    net.add(cat)
    doc = arch.describe(net)
    built = arch.build(copy.deepcopy(doc))
    assert repr(built) == repr(net)
    assert _shapes(built) == _shapes(net)
    assert arch.describe(built) == doc
    conv = doc["root"]["children"][0][1]
    assert conv == {"type": "Conv2D", "config": {
        "channels": 6, "kernel_size": [3, 2], "strides": [2, 1], "padding": [1, 0], "dilation": [1, 2],
        "groups": 2, "activation": "tanh", "use_bias": False, "in_channels": 4}}


def test_plain_sequential_round_trip():
    net = nn.Sequential()
    net.add(nn.Dense(3, in_units=2), nn.HybridSequential())
    built = arch.build(arch.describe(net))
    assert type(built) is nn.Sequential and repr(built) == repr(net)


def test_float16_dense_keeps_dtype():
    dense = nn.Dense(3, in_units=2, dtype="float16")
    built = arch.build(arch.describe(dense))
    assert built.weight.dtype == np.float16


def test_unregistered_blocks_have_no_architecture(tutorial_model_cls):
    model = tutorial_model_cls()
    assert arch.describe(model) is None
    assert arch.unregistered(model) == ["(root): TutorialModel"]
    net = nn.HybridSequential()
    net.add(nn.Dense(2), model)
    assert arch.describe(net) is None
    assert arch.unregistered(net) == ["1: TutorialModel"]


def test_subclass_of_a_registered_layer_is_not_mistaken_for_it():
    class MyDense(nn.Dense):
        pass

    assert arch.describe(MyDense(3)) is None


# -- refusing documents ------------------------------------------------------------------------

def _doc(root):
    return {"format": arch.DOCUMENT_FORMAT, "version": arch.DOCUMENT_VERSION, "root": root, "inputs": []}


@pytest.mark.parametrize("evil", ["os.system", "__import__", "builtins.eval", "subprocess.Popen", "eval",
                                  "Block", "HybridBlock", "SymbolBlock", "Parameter", "modelsurgeon.core.engine.nn.Dense",
                                  "dense", "__class__", ""])
def test_unknown_types_are_refused_without_importing(evil):
    imported = []
    real_import = builtins.__import__

    def spy(name, *args, **kwargs):
        imported.append(name)
        return real_import(name, *args, **kwargs)

    doc = _doc({"type": "HybridSequential", "config": {},
                "children": [["0", {"type": evil, "config": {"command": "echo pwned"}}]]})
    modules_before = set(sys.modules)
    builtins.__import__ = spy  # not monkeypatch.setattr: it imports inspect itself
    try:
        arch.build(doc)
    except ModelSurgeonError as exc:
        error = exc
    else:
        error = None
    finally:
        builtins.__import__ = real_import
    assert imported == []
    assert set(sys.modules) == modules_before
    assert error is not None
    assert "architecture node 0 has unknown layer type" in str(error)
    assert "known types: " in str(error) and "Dense" in str(error)


@pytest.mark.parametrize("document,match", [
    (None, "not a modelsurgeon architecture document"),
    ([], "not a modelsurgeon architecture document"),
    ({"format": "something-else", "version": 1, "root": {}}, "not a modelsurgeon architecture document"),
    ({"format": arch.DOCUMENT_FORMAT, "version": 2, "root": {}}, "version 2 is newer than this modelsurgeon"),
    ({"format": arch.DOCUMENT_FORMAT, "version": "1", "root": {}}, "version '1' is newer"),
    ({"format": arch.DOCUMENT_FORMAT, "root": {}}, "version None"),
    (_doc(None), r"architecture node \(root\) has no type"),
    (_doc({"config": {}}), r"architecture node \(root\) has no type"),
    (_doc({"type": 3}), r"architecture node \(root\) has no type"),
    (_doc({"type": "Dense", "config": [1]}), r"architecture node \(root\) has a malformed config"),
    (_doc({"type": "Dense", "config": {"units": 3, "bogus": 1}}),
     r"cannot build Dense at \(root\) from .*bogus"),
    (_doc({"type": "Dense", "config": {}}), r"cannot build Dense at \(root\)"),
    (_doc({"type": "Activation", "config": {"activation": "os.system"}}), r"cannot build Activation.*unknown activation"),
    (_doc({"type": "Conv2D", "config": {"channels": 2, "kernel_size": [1, 2, 3]}}), "cannot build Conv2D"),
    (_doc({"type": "HybridSequential", "config": {}, "children": {"0": {}}}),
     r"architecture node \(root\) has malformed children"),
    (_doc({"type": "HybridSequential", "config": {}, "children": [["0"]]}), "malformed children"),
    (_doc({"type": "HybridSequential", "config": {}, "children": [[0, {"type": "Flatten"}]]}), "malformed children"),
    (_doc({"type": "HybridSequential", "config": {}, "children": [["a", {"type": "Flatten"}],
                                                                  ["a", {"type": "Flatten"}]]}),
     r"architecture node \(root\) names a child twice"),
    (_doc({"type": "HybridSequential", "config": {}, "children": [["a.b", {"type": "Flatten"}]]}),
     "cannot contain '.'"),
    (_doc({"type": "HybridSequential", "config": {}, "children": [["x", {"type": "Sequential", "config": {}}]]}),
     "Children of HybridBlock must also be HybridBlock"),
    (_doc({"type": "HybridSequential", "config": {},
           "children": [["0", {"type": "HybridSequential", "config": {}, "children": [["1", {"type": "Nope"}]]}]]}),
     r"architecture node 0\.1 has unknown layer type 'Nope'"),
])
def test_malformed_documents_are_refused(document, match):
    with pytest.raises(ModelSurgeonError, match=match):
        arch.build(document)


def test_depth_limit():
    def nested(depth):
        node = {"type": "Flatten", "config": {}}
        for _ in range(depth):
            node = {"type": "HybridSequential", "config": {}, "children": [["0", node]]}
        return _doc(node)

    built = arch.build(nested(arch.MAX_DEPTH - 1))
    assert len(list(built.named_blocks())) == arch.MAX_DEPTH
    with pytest.raises(ModelSurgeonError, match=f"architecture nests deeper than {arch.MAX_DEPTH} levels at 0(\\.0)+"):
        arch.build(nested(arch.MAX_DEPTH + 1))
    with pytest.raises(ModelSurgeonError, match="nests deeper"):
        arch.build(nested(5000))  # no RecursionError


def test_malformed_inputs_entry():
    doc = arch.describe(nn.Dense(2, in_units=3))
    doc["inputs"] = [{"name": "data", "shape": "big"}]
    with pytest.raises(ModelSurgeonError, match="malformed input entry"):
        arch.input_specs(doc)


def test_zoo_config_is_validated():
    with pytest.raises(ModelSurgeonError, match="cannot build SqueezeNet .*version must be"):
        arch.build(_doc({"type": "SqueezeNet", "config": {"version": "9", "classes": 3}, "children": []}))


def test_document_children_replace_the_constructor_defaults():
    net = vision.get_model("squeezenet1.1", classes=5)
    doc = arch.describe(net)
    features = doc["root"]["children"][0][1]
    features["children"] = features["children"][:3]  # a truncated feature stack (e.g. after surgery)
    built = arch.build(doc)
    assert len(built.features) == 3
    assert list(built._children) == ["features", "output"]
    assert [k for k in built.collect_params() if k.startswith("features")] == ["features.0.weight", "features.0.bias"]
