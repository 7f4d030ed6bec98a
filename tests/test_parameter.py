"""Parameters: deferred shapes, initialisation, replacing and sharing, reprs, initializers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelsurgeon import core
from modelsurgeon.core import init
from modelsurgeon.core.engine import nn
from modelsurgeon.core.errors import DeferredInitializationError, NotInitializedError, ShapeError

ALEX_INPUT = (2, 3, 63, 63)  # the smallest input AlexNet's feature stack accepts (features.9 in_units 256)


# -- deferred shapes -------------------------------------------------------------------------

def test_dense_shape_is_deferred_until_forward():
    dense = nn.Dense(20)
    assert dense.weight.shape == (20, -1)
    assert dense.bias.shape == (20,)
    dense.initialize()
    assert dense.weight.shape == (20, -1)
    assert not dense.weight.is_initialized
    out = dense(np.ones((3, 7), np.float32))
    assert out.shape == (3, 20)
    assert dense.weight.shape == (20, 7)
    assert dense.weight.data().shape == (20, 7)
    assert dense.in_units == 7


def test_reading_deferred_data_says_to_pass_a_batch():
    dense = nn.Dense(20)
    dense.initialize()
    with pytest.raises(DeferredInitializationError,
                       match=r"Parameter 'weight' has not been initialized yet because initialization "
                             r"was deferred.*Please pass one batch of data through the network"):
        dense.weight.data()
    assert dense.bias.shape == (20,)


def test_reading_before_initialize_says_to_initialize():
    dense = nn.Dense(20, in_units=3)
    with pytest.raises(NotInitializedError, match="Call initialize"):
        dense.weight.data()


def test_deferred_flatten_false_uses_last_axis():
    dense = nn.Dense(5, flatten=False)
    dense.initialize()
    assert dense(np.ones((2, 3, 4), np.float32)).shape == (2, 3, 5)
    assert dense.weight.shape == (5, 4)


def test_forward_without_initialize_fails_clearly():
    dense = nn.Dense(5)
    with pytest.raises(NotInitializedError, match="has not been initialized"):
        dense(np.ones((2, 3), np.float32))


def test_known_shape_parameter_initializes_immediately():
    dense = nn.Dense(4, in_units=3)
    dense.initialize()
    assert dense.weight.is_initialized
    assert dense.weight.data().shape == (4, 3)


def test_parameter_without_deferral_refuses_unknown_shape():
    param = core.Parameter("w", shape=(2, -1))
    with pytest.raises(ShapeError, match=r"Cannot initialize Parameter 'w' because it has invalid shape: \(2, -1\)"):
        param.initialize()


def test_shape_setter_fills_unknowns_only():
    param = core.Parameter("w", shape=(2, -1))
    param.shape = (2, 5)
    assert param.shape == (2, 5)
    with pytest.raises(ShapeError, match=r"Expected shape \(3, 5\) is incompatible with given shape \(2, 5\)"):
        param.shape = (3, 5)
    with pytest.raises(ShapeError):
        param.shape = (2, 5, 1)


def test_forward_with_incompatible_input_fails():
    dense = nn.Dense(4, in_units=3)
    dense.initialize()
    with pytest.raises(core.ModelSurgeonError, match="3"):
        dense(np.ones((2, 5), np.float32))


# -- initialize semantics ---------------------------------------------------------------------

def test_initialize_does_not_reinitialize_without_force():
    dense = nn.Dense(3, in_units=4)
    dense.initialize(init.One())
    np.testing.assert_array_equal(dense.weight.data(), np.ones((3, 4)))
    dense.initialize(init.Zero())
    np.testing.assert_array_equal(dense.weight.data(), np.ones((3, 4)))
    dense.initialize(init.Constant(2.0), force_reinit=True)
    np.testing.assert_array_equal(dense.weight.data(), np.full((3, 4), 2.0))


def test_force_reinit_on_deferred_parameter_uses_the_new_initializer():
    dense = nn.Dense(3)
    dense.initialize(init.One())
    dense.initialize(init.Constant(3.0), force_reinit=True)
    dense(np.ones((1, 2), np.float32))
    np.testing.assert_array_equal(dense.weight.data(), np.full((3, 2), 3.0))


def test_own_initializer_wins_over_global():
    dense = nn.Dense(3, in_units=2, weight_initializer=init.Constant(5.0), bias_initializer="ones")
    dense.initialize(init.Zero())
    np.testing.assert_array_equal(dense.weight.data(), np.full((3, 2), 5.0))
    np.testing.assert_array_equal(dense.bias.data(), np.ones(3))


def test_global_init_leaves_biases_zero_and_gammas_one():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3, in_channels=2), nn.BatchNorm(in_channels=4), nn.Dense(3, in_units=4))
    net.initialize(init.Xavier())
    params = net.collect_params()
    for key in ("0.bias", "1.beta", "1.running_mean", "2.bias"):
        np.testing.assert_array_equal(params[key].data(), 0, err_msg=key)
    for key in ("1.gamma", "1.running_var"):
        np.testing.assert_array_equal(params[key].data(), 1, err_msg=key)
    assert np.abs(params["0.weight"].data()).max() > 0


def test_name_based_defaults_in_initializers():
    gen = np.random.default_rng(0)
    for initializer in (init.Uniform(), init.Normal(), init.Xavier(), init.KerasDefault()):
        assert not initializer("bias", (5,), np.float32, gen).any()
        assert not initializer("running_mean", (5,), np.float32, gen).any()
        assert (initializer("gamma", (5,), np.float32, gen) == 1).all()
        assert (initializer("running_var", (5,), np.float32, gen) == 1).all()


def test_initializer_aliases():
    assert isinstance(init.create("xavier"), init.Xavier)
    assert isinstance(init.create("Zeros"), init.Zero)
    assert isinstance(init.create("ones"), init.One)
    assert init.create(None) is None
    with pytest.raises(core.ModelSurgeonError, match="unknown initializer 'bogus'; choose from .*xavier"):
        init.create("bogus")


def test_initializer_dtype_follows_parameter():
    param = core.Parameter("weight", shape=(3, 3), dtype="float16")
    param.initialize(init.Xavier())
    assert param.data().dtype == np.float16


# -- initializers: distributions ----------------------------------------------------------------

def _draw(initializer, shape, name="weight"):
    return initializer(name, shape, np.float64, np.random.default_rng(42))


def test_uniform_default_scale_is_0_07():
    w = _draw(init.Uniform(), (200, 200))
    assert np.abs(w).max() <= 0.07
    assert np.abs(w).max() > 0.0699
    assert abs(w.mean()) < 0.001
    assert w.std() == pytest.approx(0.07 / math.sqrt(3), rel=0.02)


def test_uniform_is_gluons_default():
    param = core.Parameter("weight", shape=(100, 100))
    param.initialize()
    w = param.data()
    assert np.abs(w).max() <= 0.07
    assert np.abs(w).max() > 0.069


def test_normal_sigma():
    assert _draw(init.Normal(), (300, 300)).std() == pytest.approx(0.01, rel=0.02)
    w = _draw(init.Normal(0.5), (300, 300))
    assert w.std() == pytest.approx(0.5, rel=0.02)
    assert abs(w.mean()) < 0.01


@pytest.mark.parametrize("shape", [(64, 32), (16, 8, 3, 3), (10, 1, 5, 5)])
@pytest.mark.parametrize("factor_type", ["avg", "in", "out"])
def test_xavier_uniform_bounds_follow_gluons_formula(shape, factor_type):
    receptive = math.prod(shape[2:])
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    factor = {"avg": (fan_in + fan_out) / 2, "in": fan_in, "out": fan_out}[factor_type]
    bound = math.sqrt(3 / factor)
    w = _draw(init.Xavier(factor_type=factor_type), shape)
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.9 * bound


def test_xavier_gaussian_std():
    shape = (128, 64, 3, 3)
    fan_out = 128 * 9
    w = _draw(init.Xavier(rnd_type="gaussian", factor_type="out", magnitude=2), shape)
    assert w.std() == pytest.approx(math.sqrt(2 / fan_out), rel=0.02)


def test_xavier_rejects_bad_options():
    with pytest.raises(core.ModelSurgeonError, match="rnd_type"):
        init.Xavier(rnd_type="weird")
    with pytest.raises(core.ModelSurgeonError, match="factor_type"):
        init.Xavier(factor_type="weird")


def test_zero_one_constant():
    assert not _draw(init.Zero(), (3, 4)).any()
    assert (_draw(init.One(), (3, 4)) == 1).all()
    assert (_draw(init.Constant(0.25), (3, 4)) == 0.25).all()
    # a Constant sets biases too (it is explicit about every element)
    assert (_draw(init.Constant(0.25), (3,), "bias") == 0.25).all()


def test_torch_default_bounds():
    torch_init = init.TorchDefault()
    w = _draw(torch_init, (300, 400))
    assert np.abs(w).max() <= 1 / math.sqrt(400)
    assert np.abs(w).max() > 0.99 / math.sqrt(400)
    conv = _draw(torch_init, (32, 16, 3, 3))
    assert np.abs(conv).max() <= 1 / math.sqrt(16 * 9)
    b = torch_init("bias", (5000,), np.float64, np.random.default_rng(0), fan_in=400)
    assert np.abs(b).max() <= 1 / math.sqrt(400)
    assert np.abs(b).max() > 0.99 / math.sqrt(400)


def test_torch_default_bias_through_a_layer_uses_the_weights_fan_in():
    dense = nn.Dense(3000, in_units=400, bias_initializer=None)
    dense.initialize(init.TorchDefault())
    bias = dense.bias.data()
    assert np.abs(bias).max() <= 1 / math.sqrt(400)
    assert np.abs(bias).max() > 0.9 / math.sqrt(400)


def test_keras_default_bounds():
    w = _draw(init.KerasDefault(), (300, 400))
    limit = math.sqrt(6 / 700)
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.99 * limit
    assert not init.KerasDefault()("bias", (4,), np.float32, np.random.default_rng(0), fan_in=3).any()


def test_seed_reproduces_initialisation_exactly():
    def build():
        net = nn.HybridSequential()
        net.add(nn.Conv2D(4, 3), nn.Dense(5))
        net.initialize(init.Xavier())
        net(np.ones((1, 2, 6, 6), np.float32))
        return [p.data() for p in net.collect_params().values()]

    core.random.seed(7)
    first = build()
    core.random.seed(7)
    second = build()
    core.random.seed(8)
    third = build()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], third[0])


# -- replacing, type checks, sharing ----------------------------------------------------------

def test_replacing_alexnet_head_keeps_features():
    alexnet = core.model_zoo.vision.alexnet()
    alexnet.initialize()
    x = np.random.default_rng(0).standard_normal(ALEX_INPUT).astype(np.float32)
    assert alexnet(x).shape == (2, 1000)
    before = {k: (p, p.data().copy()) for k, p in alexnet.collect_params().items() if k.startswith("features.")}
    old_output = alexnet.output

    alexnet.output = nn.Dense(100)
    assert repr(alexnet.output) == "Dense(None -> 100, linear)"
    keys = list(alexnet.collect_params())
    assert keys[-2:] == ["output.weight", "output.bias"]
    assert list(alexnet._children) == ["features", "output"]
    assert alexnet.output is not old_output

    alexnet.initialize()
    out = alexnet(x)
    assert out.shape == (2, 100)
    assert alexnet.output.weight.shape == (100, 4096)
    assert alexnet.features[9].weight.shape == (4096, 256)
    for key, (param, value) in before.items():
        assert alexnet.collect_params()[key] is param, key
        np.testing.assert_array_equal(param.data(), value, err_msg=key)


def test_replaced_head_repr_after_forward():
    alexnet = core.model_zoo.vision.alexnet()
    alexnet.output = nn.Dense(100)
    alexnet.initialize()
    alexnet(np.zeros((1, 3, 63, 63), np.float32))
    assert repr(alexnet.output) == "Dense(4096 -> 100, linear)"


def test_assigning_a_different_type_over_a_child_raises():
    alexnet = core.model_zoo.vision.alexnet(classes=10)
    old = alexnet.output
    with pytest.raises(TypeError, match="Changing attribute type for output from .*Dense.* to "
                                        ".*HybridSequential.* is not allowed"):
        alexnet.output = nn.HybridSequential()
    with pytest.raises(TypeError, match="Changing attribute type for output"):
        alexnet.output = None
    assert alexnet.output is old
    assert alexnet._children["output"] is old


def test_assigning_a_subclass_over_a_child_is_allowed():
    class MyDense(nn.Dense):
        pass

    alexnet = core.model_zoo.vision.alexnet(classes=10)
    alexnet.output = MyDense(3)
    assert list(alexnet._children) == ["features", "output"]
    assert list(alexnet.collect_params())[-2:] == ["output.weight", "output.bias"]


def test_parameter_attribute_type_is_checked_too():
    dense = nn.Dense(2, in_units=2)
    with pytest.raises(TypeError, match="Changing attribute type for weight"):
        dense.weight = nn.Dense(1)
    replacement = core.Parameter("weight", shape=(2, 2))
    dense.weight = replacement
    assert dense.collect_params()["weight"] is replacement


def test_hybrid_block_refuses_non_hybrid_child():
    net = nn.HybridSequential()
    with pytest.raises(core.ModelSurgeonError,
                       match=r"Children of HybridBlock must also be HybridBlock, but .* has type .*Sequential"
                             r".*If you are using Sequential, please try HybridSequential instead\."):
        net.add(nn.Sequential())

    class Hybrid(core.HybridBlock):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential()

    with pytest.raises(core.ModelSurgeonError, match="Children of HybridBlock must also be HybridBlock"):
        Hybrid()


def test_plain_block_accepts_any_child():
    net = nn.Sequential()
    net.add(nn.HybridSequential(), nn.Sequential(), nn.Dense(2))
    assert len(net) == 3


def test_share_parameters_ties_objects():
    a = nn.HybridSequential()
    a.add(nn.Dense(3, in_units=4), nn.Dense(2, in_units=3))
    b = nn.HybridSequential()
    b.add(nn.Dense(3, in_units=4), nn.Dense(2, in_units=3))
    b.share_parameters(a.collect_params(".*weight"))
    pa, pb = a.collect_params(), b.collect_params()
    assert pb["0.weight"] is pa["0.weight"] and pb["1.weight"] is pa["1.weight"]
    assert pb["0.bias"] is not pa["0.bias"]
    a.initialize(init.One())
    b.initialize(init.Zero())
    np.testing.assert_array_equal(b[0].weight.data(), 1)  # initialised through a, not reinitialised
    np.testing.assert_array_equal(b[0].bias.data(), 0)
    assert len(b.unique_parameters()) == 4
    assert len(a.unique_parameters()) == 4


def test_share_parameters_within_a_model_dedupes_unique_parameters():
    net = nn.HybridSequential()
    net.add(nn.Dense(4, in_units=4), nn.Dense(4, in_units=4))
    net[1].share_parameters(net[0].collect_params())
    assert list(net.collect_params()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert len(net.unique_parameters()) == 2
    net.initialize()
    x = np.eye(4, dtype=np.float32)
    w, bias = net[0].weight.data(), net[0].bias.data()
    np.testing.assert_allclose(net(x), (x @ w.T + bias) @ w.T + bias, rtol=1e-6)


def test_share_parameters_needs_a_dict():
    with pytest.raises(core.ModelSurgeonError, match="share_parameters takes a dict of Parameters, not list"):
        nn.Dense(2).share_parameters([])


# -- data, dtype, constants ---------------------------------------------------------------------

def test_set_data_fills_deferred_shape_and_copies():
    dense = nn.Dense(3)
    value = np.arange(6, dtype=np.float32).reshape(3, 2)
    dense.weight.set_data(value)
    assert dense.weight.shape == (3, 2)
    value[0, 0] = 99
    assert dense.weight.data()[0, 0] == 0
    with pytest.raises(ShapeError):
        dense.weight.set_data(np.zeros((4, 2)))


def test_set_data_casts_to_parameter_dtype():
    param = core.Parameter("w", shape=(2,))
    param.set_data(np.array([1, 2], dtype=np.int64))
    assert param.data().dtype == np.float32


def test_cast_converts_data():
    dense = nn.Dense(3, in_units=2)
    dense.initialize()
    dense.cast("float16")
    assert dense.weight.dtype == np.float16 and dense.weight.data().dtype == np.float16
    assert dense.bias.data().dtype == np.float16


def test_constant_parameter():
    const = core.Constant([[1.0, 2.0]])
    assert const.shape == (1, 2)
    assert const.grad_req == "null"
    np.testing.assert_array_equal(const.data(), [[1.0, 2.0]])
    assert repr(const) == "Constant (shape=(1, 2), dtype=float64)"


def test_grad_req_follows_differentiable():
    bn = nn.BatchNorm()
    assert bn.running_mean.grad_req == "null"
    assert bn.gamma.grad_req == "write"
    assert nn.BatchNorm(scale=False).gamma.grad_req == "null"


# -- reprs ----------------------------------------------------------------------------------------

def test_parameter_repr():
    assert repr(nn.Dense(100).weight) == "Parameter (shape=(100, -1), dtype=float32)"
    assert repr(core.Parameter("b", shape=3, dtype="float16")) == "Parameter (shape=(3,), dtype=float16)"


def test_layer_reprs_gluon_style():
    assert repr(nn.Dense(100)) == "Dense(None -> 100, linear)"
    assert repr(nn.Dense(1000, in_units=4096)) == "Dense(4096 -> 1000, linear)"
    assert repr(nn.Dense(5, activation="relu")) == "Dense(None -> 5, Activation(relu))"
    assert repr(nn.Conv2D(64, kernel_size=11, strides=4, padding=2, in_channels=3, activation="relu")) == \
        "Conv2D(3 -> 64, kernel_size=(11, 11), stride=(4, 4), padding=(2, 2), Activation(relu))"
    assert repr(nn.Conv2D(8, 3)) == "Conv2D(None -> 8, kernel_size=(3, 3), stride=(1, 1))"
    assert repr(nn.Conv2D(8, 1, use_bias=False, dilation=2, in_channels=3)) == \
        "Conv2D(3 -> 8, kernel_size=(1, 1), stride=(1, 1), dilation=(2, 2), bias=False)"
    assert repr(nn.MaxPool2D(3, 2, 1)) == ("MaxPool2D(size=(3, 3), stride=(2, 2), padding=(1, 1), "
                                           "ceil_mode=False, global_pool=False, pool_type=max, layout=NCHW)")
    assert repr(nn.GlobalAvgPool2D()) == ("GlobalAvgPool2D(size=(1, 1), stride=(1, 1), padding=(0, 0), "
                                          "ceil_mode=True, global_pool=True, pool_type=avg, layout=NCHW)")
    assert repr(nn.BatchNorm()) == ("BatchNorm(axis=1, eps=1e-05, momentum=0.9, fix_gamma=False, "
                                    "use_global_stats=False, in_channels=None)")
    assert repr(nn.Dropout(0.5)) == "Dropout(p = 0.5, axes=())"
    assert repr(nn.Flatten()) == "Flatten"
    assert repr(nn.Activation("tanh")) == "Activation(tanh)"


def test_dense_repr_after_forward():
    dense = nn.Dense(1000)
    dense.initialize()
    dense(np.zeros((1, 4096), np.float32))
    assert repr(dense) == "Dense(4096 -> 1000, linear)"


def test_container_repr_is_indented():
    net = nn.HybridSequential()
    inner = nn.HybridSequential()
    inner.add(nn.Dense(3))
    net.add(nn.Dense(4, in_units=2), inner)
    assert repr(net) == (
        "HybridSequential(\n"
        "  (0): Dense(2 -> 4, linear)\n"
        "  (1): HybridSequential(\n"
        "    (0): Dense(None -> 3, linear)\n"
        "  )\n"
        ")")
    assert repr(nn.HybridSequential()) == "HybridSequential()"


def test_alexnet_repr_head():
    alexnet = core.model_zoo.vision.alexnet()
    text = repr(alexnet)
    assert text.startswith("AlexNet(\n  (features): HybridSequential(\n    (0): Conv2D(None -> 64, kernel_size=(11, 11)")
    assert text.endswith("  (output): Dense(None -> 1000, linear)\n)")
