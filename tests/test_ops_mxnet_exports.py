"""Graphs exported by real MXNet 1.9.1 (exactly the attribute spellings its exports write) run
through :class:`Graph` to MXNet's outputs.

Two models are built in one MXNet subprocess: an InsightFace-style symbol-API network (scalar
input normalisation, PReLU, fix_gamma BatchNorm on the embedding, depthwise global convolution)
and a hybridized Gluon block that uses many of issue 15's operators at once (Conv2DTranspose,
UpSampling, BilinearResize2D, AdaptiveAvgPooling2D, Pad, split, Reshape codes, softmax...).
Each is exported (``-symbol.json`` plus its weights as ``.npz``) with its output on a fixed input.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelsurgeon.core.engine.census import census
from modelsurgeon.core.engine.symbol import Graph

MXNET_SCRIPT = r"""
import os, sys
os.environ["MXNET_SUBGRAPH_VERBOSE"] = "0"
import numpy as np
import mxnet as mx
from mxnet.gluon import nn
out_dir = sys.argv[1]
rng = np.random.default_rng(5)

def save(name, sym, arg_params, aux_params, data):
    sym.save(os.path.join(out_dir, name + "-symbol.json"))
    weights = {k: v.asnumpy() for k, v in {**arg_params, **aux_params}.items()}
    np.savez(os.path.join(out_dir, name + "-weights.npz"), **weights)
    args = {k: v for k, v in arg_params.items()}
    args["data"] = mx.nd.array(data)
    exe = sym.bind(mx.cpu(), args=args, aux_states=aux_params, grad_req="null")
    np.save(os.path.join(out_dir, name + "-input.npy"), data)
    np.save(os.path.join(out_dir, name + "-output.npy"), exe.forward(is_train=False)[0].asnumpy())

# -- an InsightFace-style recognition network, symbol API ----------------------------------
data = mx.sym.Variable("data")
x = (data - 127.5) * 0.0078125
x = mx.sym.Convolution(x, num_filter=8, kernel=(3, 3), stride=(1, 1), pad=(1, 1), no_bias=True, name="conv0")
x = mx.sym.BatchNorm(x, fix_gamma=False, eps=2e-5, momentum=0.9, name="bn0")
x = mx.sym.LeakyReLU(x, act_type="prelu", name="relu0")
x = mx.sym.Convolution(x, num_filter=8, num_group=8, kernel=(3, 3), stride=(2, 2), pad=(1, 1), no_bias=True,
                       name="dw0")
x = mx.sym.BatchNorm(x, fix_gamma=False, eps=2e-5, name="bn1")
x = mx.sym.LeakyReLU(x, act_type="prelu", name="relu1")
x = mx.sym.Convolution(x, num_filter=8, num_group=8, kernel=(4, 4), no_bias=True, name="gdc")  # global depthwise
x = mx.sym.BatchNorm(x, fix_gamma=False, eps=2e-5, name="bn2")
x = mx.sym.Dropout(x, p=0.4)
x = mx.sym.FullyConnected(x, num_hidden=6, name="pre_fc1")
x = mx.sym.BatchNorm(x, fix_gamma=True, eps=2e-5, name="fc1")
x = mx.sym.L2Normalization(x, mode="instance", name="norm")
shapes, _, aux_shapes = x.infer_shape(data=(2, 3, 8, 8))
arg_params = {n: mx.nd.array(rng.standard_normal(s).astype(np.float32) * 0.5)
              for n, s in zip(x.list_arguments(), shapes) if n != "data"}
for n in arg_params:
    if n.endswith("_gamma"):
        arg_params[n] = mx.nd.array(rng.uniform(0.5, 1.5, arg_params[n].shape).astype(np.float32))
aux_params = {n: mx.nd.array(rng.uniform(0.5, 1.5, s).astype(np.float32) if n.endswith("var")
                             else rng.standard_normal(s).astype(np.float32) * 0.1)
              for n, s in zip(x.list_auxiliary_states(), aux_shapes)}
save("insightface", x, arg_params, aux_params, rng.uniform(0, 255, (2, 3, 8, 8)).astype(np.float32))

# -- a Gluon block using many operators at once ------------------------------------------------
class Mix(nn.HybridBlock):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2D(8, 3, padding=1)
        self.bn = nn.BatchNorm()
        self.up = nn.Conv2DTranspose(4, 4, strides=2, padding=1, use_bias=False)
        self.act = nn.LeakyReLU(0.1)
        self.elu = nn.ELU(0.5)
        self.dense = nn.Dense(5, flatten=False)
        self.norm = nn.LayerNorm()
        self.inorm = nn.InstanceNorm()
        self.gnorm = nn.GroupNorm(num_groups=2)

    def hybrid_forward(self, F, x):
        y = self.act(self.bn(self.conv(x)))                                   # (N, 8, 6, 6)
        a, b = F.split(y, num_outputs=2, axis=1)
        y = F.concat(F.broadcast_mul(a, F.sigmoid(b)), F.elemwise_sub(a, b), dim=1)
        y = self.gnorm(y)
        y = F.Pad(y, mode="reflect", pad_width=(0, 0, 0, 0, 1, 1, 1, 1))       # (N, 8, 8, 8)
        u = self.elu(self.up(y))                                              # (N, 4, 16, 16)
        u = F.contrib.BilinearResize2D(u, height=10, width=12, align_corners=False)
        v = F.UpSampling(y, scale=2, sample_type="nearest")                   # (N, 8, 16, 16)
        v = F.contrib.BilinearResize2D(v, like=u, mode="like")
        v = F.contrib.AdaptiveAvgPooling2D(v, output_size=(5, 6))
        v = F.UpSampling(v, scale=2, sample_type="nearest")                   # (N, 8, 10, 12)
        z = F.concat(self.inorm(u), v, dim=1)                                 # (N, 12, 10, 12)
        z = F.Pooling(z, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="avg",
                      pooling_convention="full", count_include_pad=False)   # (N, 12, 6, 7)
        z = F.reshape(z, shape=(0, -4, 3, -1, -3))                            # (N, 3, 4, 42)
        z = F.transpose(z, axes=(0, 1, 3, 2))                                 # (N, 3, 42, 4)
        z = self.norm(self.dense(z))                                          # (N, 3, 42, 5)
        z = F.broadcast_add(F.softmax(z, axis=-1, temperature=2.0), F.mean(z, axis=2, keepdims=True))
        z = F.slice_axis(z, axis=2, begin=1, end=-1)
        return F.broadcast_add(F.clip(z * 2 - 1, -0.8, 0.9).sum(axis=(2,)),
                               F.expand_dims(F.max(z, axis=(1, 2)), axis=1))

# -- a Module-API classification checkpoint (mx.model.save_checkpoint), ending in SoftmaxOutput --------
x = mx.sym.Convolution(mx.sym.var("data"), num_filter=4, kernel=(3, 3), name="conv0")
x = mx.sym.BatchNorm(x, fix_gamma=True, name="bn0")
x = mx.sym.Activation(x, act_type="relu")
x = mx.sym.Pooling(x, global_pool=True, kernel=(1, 1), pool_type="avg")
x = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.flatten(x), num_hidden=3, name="fc"), name="softmax")
module = mx.mod.Module(x, data_names=["data"], label_names=["softmax_label"])
module.bind(data_shapes=[("data", (1, 3, 8, 8))], label_shapes=[("softmax_label", (1,))], for_training=False)
module.init_params(mx.init.Xavier())
arg_params, aux_params = module.get_params()
aux_params = {k: mx.nd.array(rng.uniform(0.5, 1.5, v.shape).astype(np.float32)) for k, v in aux_params.items()}
module.set_params(arg_params, aux_params)
mx.model.save_checkpoint(os.path.join(out_dir, "module"), 0, x, *module.get_params())
data = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
module.forward(mx.io.DataBatch([mx.nd.array(data)]), is_train=False)
np.save(os.path.join(out_dir, "module-input.npy"), data)
np.save(os.path.join(out_dir, "module-output.npy"), module.get_outputs()[0].asnumpy())

net = Mix()
net.initialize(mx.init.Xavier())
data = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
net(mx.nd.array(data))
for name, param in net.collect_params().items():
    if name.endswith(("running_mean", "beta")):
        param.set_data(mx.nd.array(rng.normal(0, 0.1, param.shape).astype(np.float32)))
    elif name.endswith(("running_var", "gamma")):
        param.set_data(mx.nd.array(rng.uniform(0.5, 1.5, param.shape).astype(np.float32)))
net.hybridize()
net(mx.nd.array(data))
net.export(os.path.join(out_dir, "mix"))
sym, arg_params, aux_params = mx.model.load_checkpoint(os.path.join(out_dir, "mix"), 0)
save("mix", sym, arg_params, aux_params, data)
"""


@pytest.fixture(scope="module")
def exports(mxnet_run, tmp_path_factory):
    work = tmp_path_factory.mktemp("mxnet_exports")
    mxnet_run(MXNET_SCRIPT, str(work))
    return work


@pytest.mark.parametrize("name", ["insightface", "mix"])
def test_real_mxnet_export_runs_to_mxnets_output(name, exports):
    graph = Graph.from_json((exports / f"{name}-symbol.json").read_text())
    report = census(graph)
    assert report["supported"], report["unsupported"]
    graph.check_ops()
    with np.load(exports / f"{name}-weights.npz") as weights:
        feeds = {key: weights[key] for key in weights.files}
    feeds["data"] = np.load(exports / f"{name}-input.npy")
    assert set(feeds) == set(graph.variables())
    (ours,) = graph.execute(feeds)
    theirs = np.load(exports / f"{name}-output.npy")
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_the_exports_use_the_operators_they_test(exports):
    ops_used = {entry["op"] for name in ("insightface", "mix")
                for entry in census(json.loads((exports / f"{name}-symbol.json").read_text()))["operators"]}
    assert {"_minus_scalar", "_mul_scalar", "LeakyReLU", "L2Normalization", "Deconvolution", "UpSampling",
            "_contrib_BilinearResize2D", "_contrib_AdaptiveAvgPooling2D", "Pad", "SliceChannel", "Reshape",
            "LayerNorm", "InstanceNorm", "GroupNorm", "softmax", "slice_axis", "clip", "expand_dims"} <= ops_used


def test_module_checkpoint_with_softmax_label_runs(exports, tmp_path):
    """``run`` on a Module checkpoint whose graph ends in SoftmaxOutput: its softmax_label variable
    is in no .params file and inference needs none."""
    click_testing = pytest.importorskip("click.testing")
    from modelsurgeon.cli.main import cli

    out = tmp_path / "out.npy"
    result = click_testing.CliRunner().invoke(cli, ["run", str(exports / "module-0000.params"), "--input",
                                                    str(exports / "module-input.npy"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.load(out), np.load(exports / "module-output.npy"), rtol=1e-4, atol=1e-6)
