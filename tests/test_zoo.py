"""The vision model zoo against real MXNet 1.9.1: keys and shapes, reprs and outputs.

``tests/fixtures/mxnet/keys/<model>.json`` was recorded from MXNet 1.9.1's
``save_parameters`` order at classes=1000 on a 224x224 input (tools/mxnet_oracle). Output
comparisons build the same model in MXNet (a subprocess), save its weights with
``save_parameters`` and run it; we load that file by structure and must produce the same output.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modelsurgeon import core
from modelsurgeon.core.engine.model_zoo import vision

ZOO = ("alexnet", "resnet18_v1", "resnet34_v1", "resnet18_v2", "vgg11", "squeezenet1.1",
       "mobilenet0.25", "mobilenet1.0")
MXNET = Path(__file__).resolve().parent / "fixtures" / "mxnet"


def _recorded_keys(name):
    path = MXNET / "keys" / f"{name}.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: regenerate with tests/fixtures/mxnet/make_fixtures.sh")
    return [(key, tuple(shape)) for key, shape in json.loads(path.read_text())]


@pytest.mark.parametrize("name", ZOO)
def test_keys_and_shapes_match_mxnet(name, zoo1000):
    net = zoo1000(name)  # shapes fixed by a (weightless) forward pass on 1x3x224x224
    ours = [(k, p.shape) for k, p in net.collect_params().items()]
    assert ours == _recorded_keys(name)
    assert all(p.dtype == np.float32 for p in net.collect_params().values())


# VGG-11 and AlexNet are left out: drawing their 130M and 61M initial weights takes seconds,
# and the weightless pass above already checks their shapes.
@pytest.mark.parametrize("name", [n for n in ZOO if n not in ("vgg11", "alexnet")])
def test_keys_and_shapes_after_initialize_and_forward(name):
    net = vision.get_model(name, classes=1000)
    net.initialize(core.init.Xavier())
    out = net(np.zeros((1, 3, 224, 224), np.float32))
    assert out.shape == (1, 1000)
    ours = [(k, p.shape) for k, p in net.collect_params().items()]
    assert ours == _recorded_keys(name)
    assert [(k, p.data().shape) for k, p in net.collect_params().items()] == ours


@pytest.mark.parametrize("name", ZOO)
def test_keys_are_known_before_any_forward_pass(name):
    # building the model alone fixes the keys (shapes may still be deferred)
    net = vision.get_model(name, classes=1000)
    assert list(net.collect_params()) == [k for k, _ in _recorded_keys(name)]


@pytest.mark.parametrize("name", ZOO)
def test_every_model_has_features_and_output(name, small_zoo_model, small_input):
    net = small_zoo_model(name)  # classes=7
    assert list(net._children) == ["features", "output"]
    assert net(small_input(name, batch=2)).shape == (2, 7)


def test_squeezenet_head_is_a_convolution():
    net = vision.get_model("squeezenet1.1", classes=10)
    assert [k for k in net.collect_params() if k.startswith("output")] == ["output.0.weight", "output.0.bias"]
    assert net.output[0].weight.shape == (10, -1, 1, 1)


@pytest.mark.parametrize("factory,name", [(vision.resnet18_v1, "ResNetV1"), (vision.resnet18_v2, "ResNetV2"),
                                          (vision.vgg11, "VGG"), (vision.squeezenet1_1, "SqueezeNet"),
                                          (vision.mobilenet0_25, "MobileNet"), (vision.alexnet, "AlexNet")])
def test_model_functions(factory, name):
    net = factory(classes=12)
    assert type(net).__name__ == name
    head = net.output[0] if name == "SqueezeNet" else net.output
    assert head.weight.shape[0] == 12


def test_model_names_and_case():
    names = vision.model_names()
    assert set(ZOO) <= set(names)
    assert names == sorted(names)
    assert type(vision.get_model("AlexNet", classes=3)).__name__ == "AlexNet"


def test_pretrained_is_a_clear_error():
    with pytest.raises(core.ModelSurgeonError, match="pretrained weights cannot be downloaded here.*"
                                                     "load_parameters"):
        vision.get_model("resnet18_v1", pretrained=True)
    with pytest.raises(core.ModelSurgeonError, match="pretrained weights cannot be downloaded"):
        vision.alexnet(pretrained=True)


def test_unknown_model_lists_choices():
    with pytest.raises(core.ModelSurgeonError, match=r"unknown model 'resnet999'; choose from alexnet, .*"
                                                     r"mobilenet0\.25.*resnet18_v1.*squeezenet1\.1.*vgg11"):
        vision.get_model("resnet999")


def test_squeezenet_version_is_checked():
    with pytest.raises(ValueError, match="SqueezeNet version must be '1.0' or '1.1'"):
        vision.SqueezeNet("2.0")


def test_vgg_keeps_its_own_initializers():
    # as in Gluon: conv weights Xavier(gaussian, out, 2), dense weights Normal(0.01); a Parameter's
    # own initializer wins over the one given to initialize() (test_parameter.py checks that rule)
    net = vision.vgg11(classes=10)
    conv_init = net.features[0].weight.init
    assert isinstance(conv_init, core.init.Xavier)
    assert (conv_init.rnd_type, conv_init.factor_type, conv_init.magnitude) == ("gaussian", "out", 2)
    for dense in (net.features[-4], net.features[-2], net.output):
        assert isinstance(dense.weight.init, core.init.Normal) and dense.weight.init.sigma == 0.01
    assert isinstance(net.output.bias.init, core.init.Zero)


# -- the committed MXNet fixture (no MXNet needed) --------------------------------------------

def test_mxnet_mobilenet_fixture_runs_identically():
    folder = MXNET / "zoo" / "mobilenet0.25"
    info = json.loads((folder / "info.json").read_text())
    x, expected = np.load(folder / "input.npy"), np.load(folder / "output.npy")
    net = vision.get_model("mobilenet0.25", classes=info["classes"])
    net.load_parameters(str(folder / "mobilenet0.25.params"))
    np.testing.assert_allclose(net(x), expected, rtol=1e-4, atol=1e-4)
    imported = core.SymbolBlock.imports(str(folder / "mobilenet0.25-symbol.json"), ["data"],
                                        str(folder / "mobilenet0.25-0000.params"))
    np.testing.assert_allclose(imported(x), expected, rtol=1e-4, atol=1e-4)


# -- against a live MXNet ----------------------------------------------------------------------

ORACLE_SCRIPT = r"""
import json, sys
import numpy as np
import mxnet as mx
from mxnet.gluon.model_zoo import vision
out_dir = sys.argv[1]
reprs = {name: repr(vision.get_model(name, classes=1000)) for name in json.loads(sys.argv[2])}
with open(f"{out_dir}/reprs.json", "w") as handle:
    json.dump(reprs, handle)
for name, classes, shape in json.loads(sys.argv[3]):
    mx.random.seed(0)
    net = vision.get_model(name, classes=classes)
    net.initialize(mx.init.Xavier())
    x = mx.nd.array(np.random.RandomState(7).standard_normal(shape).astype(np.float32))
    net(x)
    rs = np.random.RandomState(3)
    for key, p in net._collect_params_with_prefix().items():
        if key.endswith(("running_mean", "beta")):
            p.set_data(mx.nd.array(rs.normal(0, 0.1, p.shape).astype(np.float32)))
        elif key.endswith(("running_var", "gamma")):
            p.set_data(mx.nd.array(rs.uniform(0.5, 1.5, p.shape).astype(np.float32)))
    net.save_parameters(f"{out_dir}/{name}.params")
    np.save(f"{out_dir}/{name}.input.npy", x.asnumpy())
    np.save(f"{out_dir}/{name}.output.npy", net(x).asnumpy())
"""
# AlexNet and VGG carry two 4096-wide Dense layers (100+ MB of weights at any input size),
# ResNet-34 is ResNet-18's blocks again (87 MB) and MobileNet 0.25 is checked against the
# committed fixture above; their operators are covered one by one in test_ops_reference.py.
OUTPUT_MODELS = ("resnet18_v1", "resnet18_v2", "squeezenet1.1", "mobilenet1.0")


@pytest.fixture(scope="module")
def mxnet_zoo(mxnet_run, tmp_path_factory, small_input):
    """One MXNet run: the zoo's reprs, and OUTPUT_MODELS' weights, inputs and outputs."""
    folder = tmp_path_factory.mktemp("mxnet_zoo")
    cases = [[name, 7, list(small_input(name, batch=2).shape)] for name in OUTPUT_MODELS]
    mxnet_run(ORACLE_SCRIPT, str(folder), json.dumps(ZOO), json.dumps(cases))
    return folder


def test_reprs_match_mxnet(mxnet_zoo):
    theirs = json.loads((mxnet_zoo / "reprs.json").read_text())
    for name in ZOO:
        # MXNet 1.9.1 calls the fire module's concatenation HybridConcurrent (MXNet 2: HybridConcatenate)
        expected = theirs[name].replace("HybridConcurrent(", "HybridConcatenate(")
        assert repr(vision.get_model(name, classes=1000)) == expected, name


@pytest.mark.parametrize("name", OUTPUT_MODELS)
def test_outputs_match_mxnet(name, mxnet_zoo):
    folder = mxnet_zoo
    net = vision.get_model(name, classes=7)
    net.load_parameters(str(folder / f"{name}.params"))
    out = net(np.load(folder / f"{name}.input.npy"))
    expected = np.load(folder / f"{name}.output.npy")
    assert out.shape == expected.shape == (2, 7)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(expected).max())))
