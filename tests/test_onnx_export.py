"""ONNX export: ONNX Runtime runs our export of every MXNet oracle model to MXNet's output, of the zoo
graphs MXNet exported, and of our zoo models to our engine's output; one small graph per operator."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from modelsurgeon import core
from modelsurgeon.core.binding import open_checkpoint, save_parameters
from modelsurgeon.core.engine import ops
from modelsurgeon.core.engine.symbol import Graph
from modelsurgeon.core.errors import UnsupportedOpError
from modelsurgeon.core.onnx import MissingExtraError, require_onnx, runtime
from modelsurgeon.core.onnx.export import DEFAULT_OPSET, export_block, export_checkpoint, export_graph, save

MXNET = Path(__file__).resolve().parent / "fixtures" / "mxnet"
FIXTURES = {"tutorial": "model0", "mlp": "mlp", "convbn": "convbn", "zoo/mobilenet0.25": "mobilenet0.25"}


def _close(actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-4) -> None:
    """Within ``rtol`` of the output's scale (oneDNN and ORT round differently near zero)."""
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * float(np.abs(expected).max()))


def _ort(model, x):
    return runtime.run(model.SerializeToString(), [x], threads=1)[0]


@pytest.mark.parametrize("folder", list(FIXTURES))
def test_ort_runs_our_export_of_the_mxnet_oracle_models_to_mxnets_output(folder, tmp_path):
    stem = FIXTURES[folder]
    x, expected = np.load(MXNET / folder / "input.npy"), np.load(MXNET / folder / "output.npy")
    with open_checkpoint(str(MXNET / folder / f"{stem}-0000.params")) as reader:
        model = export_checkpoint(reader, input_shape=x.shape)
        keys = list(reader.tensors)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == DEFAULT_OPSET >= 17
    assert [t.name for t in model.graph.initializer] == keys
    path = str(tmp_path / "model.onnx")
    save(model, path)
    _close(runtime.run(path, [x], threads=1)[0], expected)
    # the batch dimension is dynamic
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    doubled = runtime.run(path, [np.concatenate([x, x[::-1]])], threads=1)[0]
    _close(doubled[: len(x)], expected)
    _close(doubled[len(x):], expected[::-1])


def _random_params(name: str) -> dict[str, np.ndarray]:
    rows = json.loads((MXNET / "keys" / f"{name}.names.json").read_text())
    gen = np.random.default_rng(5)
    params = {}
    for key, shape, dtype, export_key in rows:
        var = export_key.split(":", 1)[1]
        if key.endswith(("running_var", "gamma")):
            value = gen.uniform(0.5, 1.5, shape)
        elif key.endswith(("running_mean", "beta", "bias")):
            value = gen.normal(0, 0.1, shape)
        else:
            fan_in = int(np.prod(shape[1:])) or 1
            value = gen.normal(0, np.sqrt(2.0 / fan_in), shape)
        params[var] = value.astype(dtype)
    return params


@pytest.mark.parametrize("name", ["resnet18_v1", "resnet18_v2", "squeezenet1.1", "mobilenet0.25"])
def test_ort_runs_mxnets_zoo_graphs_like_our_engine(name):
    graph = Graph.from_json((MXNET / "symbols" / f"{name}-symbol.json").read_text())
    params = _random_params(name)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    model = export_graph(graph, params, {"data": x.shape})
    expected = graph.execute({**params, "data": x})[0]
    _close(_ort(model, x), expected)
    if name == "resnet18_v2":  # its first BatchNorm has fix_gamma=True: the model holds gamma = 1
        fixed = [n for n in graph.op_nodes() if n.op == "BatchNorm" and n.attrs.get("fix_gamma") == "True"]
        gamma = graph.nodes[fixed[0].inputs[1][0]].name
        stored = {t.name: t for t in model.graph.initializer}[gamma]
        np.testing.assert_array_equal(onnx.numpy_helper.to_array(stored), 1.0)
        assert not np.all(params[gamma] == 1.0)


ZOO = {"alexnet", "resnet18_v1", "resnet18_v2", "vgg11", "squeezenet1.1", "mobilenet0.25"}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_ort_runs_our_zoo_exports_like_our_engine(name, small_zoo_model, small_input):
    net = small_zoo_model(name)
    x = small_input(name, batch=2)
    expected = net(x)
    model = export_block(net, x.shape)
    structural = [k for k, _ in net.named_parameters()]
    assert sorted(t.name for t in model.graph.initializer) == sorted(structural)  # structural names
    _close(_ort(model, x), expected)


def test_structural_file_with_architecture_exports(tmp_path, small_zoo_model, small_input):
    net = small_zoo_model("mobilenet0.25")
    x = small_input("mobilenet0.25", batch=1)
    path = str(tmp_path / "m.h5")
    save_parameters(net, path)
    with open_checkpoint(path) as reader:
        model = export_checkpoint(reader, input_shape=x.shape)
    _close(_ort(model, x), net(x))
    from modelsurgeon.core.formats.onnx import OnnxReader
    out = str(tmp_path / "m.onnx")
    save(model, out)
    with OnnxReader(out) as reader:
        assert [i.structural for i in reader.tensors.values()] == [(k,) for k, _ in net.named_parameters()]
        np.testing.assert_array_equal(reader.read("output.weight"), net.output.weight.data())


def test_zoo_model_loaded_from_a_structural_file_without_architecture(tmp_path, small_zoo_model, small_input):
    net = small_zoo_model("resnet18_v1")
    path = str(tmp_path / "weights.h5")
    save_parameters(net, path)
    x = small_input("resnet18_v1")
    fresh = core.model_zoo.vision.get_model("resnet18_v1", classes=7)
    with open_checkpoint(path) as reader:
        model = export_checkpoint(reader, input_shape=x.shape, model=fresh)
    _close(_ort(model, x), net(x))


# -- one graph per operator ----------------------------------------------------------------------

def _graph(op: str, attrs: dict[str, str], inputs: list[str]) -> Graph:
    nodes = [{"op": "null", "name": name, "inputs": []} for name in inputs]
    nodes.append({"op": op, "name": "node0", "attrs": attrs, "inputs": [[i, 0, 0] for i in range(len(inputs))]})
    return Graph.from_json({"nodes": nodes, "heads": [[len(inputs), 0, 0]]})


G = np.random.default_rng(11)
X4 = G.standard_normal((2, 3, 6, 6)).astype(np.float32)
X2 = G.standard_normal((2, 5)).astype(np.float32)
POS = (np.abs(X4) + 0.1).astype(np.float32)
X6 = G.standard_normal((2, 6, 4, 4)).astype(np.float32)
# (op, attrs, {name: array}; "data" is the batch input)
CASES = [
    ("Convolution", {"kernel": "(3, 3)", "num_filter": "4", "stride": "(2, 2)", "pad": "(1, 1)"},
     {"data": X4, "w": G.standard_normal((4, 3, 3, 3)).astype(np.float32),
      "b": G.standard_normal(4).astype(np.float32)}),
    ("Convolution", {"kernel": "(3, 3)", "num_filter": "3", "num_group": "3", "no_bias": "True", "dilate": "(2, 2)"},
     {"data": X4, "w": G.standard_normal((3, 1, 3, 3)).astype(np.float32)}),
    ("FullyConnected", {"num_hidden": "4"},
     {"data": X4, "w": G.standard_normal((4, 108)).astype(np.float32), "b": G.standard_normal(4).astype(np.float32)}),
    ("FullyConnected", {"num_hidden": "4", "flatten": "False", "no_bias": "True"},
     {"data": X4, "w": G.standard_normal((4, 6)).astype(np.float32)}),
    ("Pooling", {"kernel": "(3, 3)", "stride": "(2, 2)", "pool_type": "max", "pooling_convention": "full"},
     {"data": X4}),
    ("Pooling", {"kernel": "(3, 3)", "stride": "(2, 2)", "pad": "(1, 1)", "pool_type": "avg"}, {"data": X4}),
    ("Pooling", {"kernel": "(3, 3)", "stride": "(1, 1)", "pad": "(1, 1)", "pool_type": "avg",
                 "count_include_pad": "False"}, {"data": X4}),
    ("Pooling", {"kernel": "(2, 2)", "stride": "(2, 2)", "pool_type": "sum"}, {"data": X4}),
    ("Pooling", {"global_pool": "True", "pool_type": "max", "kernel": "(1, 1)"}, {"data": X4}),
    ("Pooling", {"global_pool": "True", "pool_type": "avg", "kernel": "(1, 1)"}, {"data": X4}),
    ("BatchNorm", {"fix_gamma": "False", "eps": "1e-5"},
     {"data": X4, "g": POS[0, :, 0, 0].copy(), "be": X4[0, :, 1, 1].copy(), "m": X4[1, :, 2, 2].copy(),
      "v": POS[1, :, 0, 0].copy()}),
    ("BatchNorm", {"fix_gamma": "True"},
     {"data": X4, "g": POS[0, :, 0, 0].copy(), "be": X4[0, :, 1, 1].copy(), "m": X4[1, :, 2, 2].copy(),
      "v": POS[1, :, 0, 0].copy()}),
    ("Activation", {"act_type": "relu"}, {"data": X4}),
    ("Activation", {"act_type": "sigmoid"}, {"data": X4}),
    ("Activation", {"act_type": "tanh"}, {"data": X4}),
    ("Activation", {"act_type": "softrelu"}, {"data": X4}),
    ("Activation", {"act_type": "softsign"}, {"data": X4}),
    ("relu", {}, {"data": X4}), ("sigmoid", {}, {"data": X4}), ("tanh", {}, {"data": X4}),
    ("Dropout", {"p": "0.5"}, {"data": X4}), ("Flatten", {}, {"data": X4}), ("_copy", {}, {"data": X4}),
    ("Concat", {"dim": "1", "num_args": "2"}, {"data": X4, "other": X4[::-1].copy()}),
    ("elemwise_add", {}, {"data": X4, "other": X4[::-1].copy()}),
    ("elemwise_mul", {}, {"data": X4, "other": X4[::-1].copy()}),
    ("softmax", {"axis": "1"}, {"data": X4}), ("softmax", {"temperature": "2.0"}, {"data": X2}),
    ("softmax", {"axis": "1", "dtype": "float64"}, {"data": X4}),
    ("log_softmax", {"axis": "1", "dtype": "float64", "temperature": "0.5"}, {"data": X4}),
    ("clip", {"a_min": "-0.5", "a_max": "0.7"}, {"data": X4}),
    # operators of the GluonCV zoo (checked once the engine registers them)
    ("LeakyReLU", {"act_type": "leaky", "slope": "0.1"}, {"data": X4}),
    ("LeakyReLU", {"act_type": "elu", "slope": "0.3"}, {"data": X4}),
    ("LeakyReLU", {"act_type": "selu"}, {"data": X4}),
    ("LeakyReLU", {"act_type": "gelu"}, {"data": X4}),
    ("LeakyReLU", {"act_type": "prelu"}, {"data": X4, "gamma": np.asarray([0.1, 0.2, 0.3], np.float32)}),
    ("_plus_scalar", {"scalar": "1.5"}, {"data": X4}), ("_minus_scalar", {"scalar": "1.5"}, {"data": X4}),
    ("_rminus_scalar", {"scalar": "1.5"}, {"data": X4}), ("_mul_scalar", {"scalar": "3"}, {"data": X4}),
    ("_div_scalar", {"scalar": "4"}, {"data": X4}), ("_rdiv_scalar", {"scalar": "2"}, {"data": POS}),
    ("_power_scalar", {"scalar": "2"}, {"data": X4}), ("_greater_scalar", {"scalar": "0"}, {"data": X4}),
    ("broadcast_sub", {}, {"data": X4, "other": X4[:1, :, :1].copy()}),
    ("broadcast_div", {}, {"data": X4, "other": POS[:1, :1].copy()}),
    ("broadcast_maximum", {}, {"data": X4, "other": X4[:1].copy()}),
    ("broadcast_greater", {}, {"data": X4, "other": X4[:1].copy()}),
    ("exp", {}, {"data": X4}), ("log", {}, {"data": POS}), ("sqrt", {}, {"data": POS}),
    ("square", {}, {"data": X4}), ("abs", {}, {"data": X4}), ("sign", {}, {"data": X4}),
    ("rsqrt", {}, {"data": POS}), ("round", {}, {"data": X4 * 3}), ("hard_sigmoid", {}, {"data": X4}),
    ("Reshape", {"shape": "(0, -1)"}, {"data": X4}), ("Reshape", {"shape": "(-3, -2)"}, {"data": X4}),
    ("Reshape", {"shape": "(0, 0, -4, 2, 3, 0)"}, {"data": X4}),
    ("Reshape", {"shape": "(-1, 6)", "reverse": "True"}, {"data": X4}),
    ("transpose", {"axes": "(0, 2, 3, 1)"}, {"data": X4}), ("expand_dims", {"axis": "1"}, {"data": X4}),
    ("squeeze", {"axis": "(2,)"}, {"data": X4[:, :, :1].copy()}),
    ("slice", {"begin": "(None, 1, 0)", "end": "(None, 3, 5)", "step": "(None, 1, 2)"}, {"data": X4}),
    ("slice_axis", {"axis": "2", "begin": "1", "end": "None"}, {"data": X4}),
    ("tile", {"reps": "(1, 2, 1, 3)"}, {"data": X4}), ("repeat", {"repeats": "2", "axis": "1"}, {"data": X4}),
    ("Pad", {"mode": "constant", "pad_width": "(0, 0, 0, 0, 1, 2, 2, 1)", "constant_value": "0.5"}, {"data": X4}),
    ("Pad", {"mode": "edge", "pad_width": "(0, 0, 0, 0, 1, 2, 2, 1)"}, {"data": X4}),
    ("Pad", {"mode": "reflect", "pad_width": "(0, 0, 0, 0, 1, 2, 2, 1)"}, {"data": X4}),
    ("UpSampling", {"scale": "2", "sample_type": "nearest", "num_args": "1"}, {"data": X4}),
    ("_contrib_BilinearResize2D", {"height": "9", "width": "12"}, {"data": X4}),
    ("_contrib_AdaptiveAvgPooling2D", {"output_size": "(1, 1)"}, {"data": X4}),
    ("_contrib_AdaptiveAvgPooling2D", {"output_size": "(4, 3)"}, {"data": X4}),
    ("Deconvolution", {"kernel": "(4, 4)", "stride": "(2, 2)", "pad": "(1, 1)", "num_filter": "2", "no_bias": "True"},
     {"data": X4, "w": G.standard_normal((3, 2, 4, 4)).astype(np.float32)}),
    ("Deconvolution", {"kernel": "(3, 3)", "stride": "(2, 2)", "adj": "(1, 1)", "pad": "(1, 1)", "num_filter": "3",
                       "num_group": "3", "no_bias": "False"},
     {"data": X4, "w": G.standard_normal((3, 1, 3, 3)).astype(np.float32), "b": np.ones(3, np.float32)}),
    ("InstanceNorm", {"eps": "1e-5"}, {"data": X4, "g": POS[0, :, 0, 0].copy(), "be": X4[0, :, 1, 1].copy()}),
    ("LayerNorm", {"axis": "-1"}, {"data": X4, "g": POS[0, 0, 0].copy(), "be": X4[0, 0, 1].copy()}),
    ("LayerNorm", {"axis": "1"}, {"data": X4, "g": POS[0, :, 0, 0].copy(), "be": X4[0, :, 1, 1].copy()}),
    ("L2Normalization", {"mode": "instance"}, {"data": X4}), ("L2Normalization", {"mode": "channel"}, {"data": X4}),
    ("log_softmax", {"axis": "1"}, {"data": X4}), ("SoftmaxActivation", {}, {"data": X4}),
    ("sum", {"axis": "(2, 3)"}, {"data": X4}), ("mean", {"axis": "1", "keepdims": "True"}, {"data": X4}),
    ("max", {"axis": "3"}, {"data": X4}), ("min", {"axis": "(1,)", "exclude": "True"}, {"data": X4}),
    ("norm", {"axis": "1"}, {"data": X4}), ("argmax", {"axis": "1"}, {"data": X4}),
    ("topk", {"axis": "1", "k": "2"}, {"data": X4}), ("topk", {"k": "2", "ret_typ": "value"}, {"data": X4}),
    ("dot", {}, {"data": X2, "w": G.standard_normal((5, 3)).astype(np.float32)}),
    ("batch_dot", {"transpose_b": "True"}, {"data": X4[:, 0], "other": X4[:, 1].copy()}),
    ("where", {}, {"data": (X4 > 0).astype(np.float32), "x": X4, "y": -X4}),
    ("Cast", {"dtype": "float16"}, {"data": X4}), ("zeros_like", {}, {"data": X4}), ("ones_like", {}, {"data": X4}),
    ("Embedding", {"input_dim": "6", "output_dim": "4"},
     {"data": np.asarray([[0, 5], [3, 1]], np.float32), "w": G.standard_normal((6, 4)).astype(np.float32)}),
    ("take", {"axis": "1"}, {"data": X4, "idx": np.asarray([2, 0], np.float32)}),
    ("stack", {"axis": "1", "num_args": "2"}, {"data": X4, "other": X4[::-1].copy()}),
    ("broadcast_to", {"shape": "(0, 3, 6, 6)"}, {"data": X4[:, :1].copy()}),
    ("GroupNorm", {"num_groups": "2"}, {"data": X6, "g": np.asarray([0.5, 2.0], np.float32),
                                        "be": np.asarray([0.1, -0.3], np.float32)}),
    ("GroupNorm", {"num_groups": "3", "eps": "1e-3"}, {"data": X6, "g": np.linspace(0.5, 1.5, 6, dtype=np.float32),
                                                       "be": np.linspace(-1, 1, 6, dtype=np.float32)}),
    ("_npi_add", {}, {"data": X4, "other": X4[::-1].copy()}), ("_npi_less_scalar", {"scalar": "0.1"}, {"data": X4}),
    ("_npi_sum", {"axis": "(1,)"}, {"data": X4}), ("_npi_concatenate", {"axis": "1", "num_args": "2"},
                                                    {"data": X4, "other": X4[::-1].copy()}),
    ("log_sigmoid", {}, {"data": X4}), ("logical_not", {}, {"data": X4}), ("degrees", {}, {"data": X4}),
    ("SoftmaxOutput", {"multi_output": "True"}, {"data": X4, "label": np.zeros((2, 6, 6), np.float32)}),
    ("LeakyReLU", {"act_type": "rrelu"}, {"data": X4}),
    ("UpSampling", {"scale": "2", "sample_type": "bilinear", "num_filter": "3", "num_args": "2"},
     {"data": X4, "w": G.standard_normal((3, 1, 4, 4)).astype(np.float32)}),
    ("Pooling", {"kernel": "(2, 2)", "stride": "(2, 2)", "pool_type": "lp", "p_value": "2"}, {"data": X4}),
    ("SliceChannel", {"num_outputs": "1", "axis": "1"}, {"data": X4}),
    ("_contrib_BilinearResize2D", {"height": "9", "width": "12", "align_corners": "False"}, {"data": X4}),
]


def _case_id(case) -> str:
    op, attrs, _ = case
    return op + ("[" + ",".join(f"{k}={v}" for k, v in sorted(attrs.items())) + "]" if attrs else "")


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_each_operator_exports_like_our_engine(case):
    op, attrs, arrays = case
    if ops.supported_spec(op) is None:
        pytest.skip(f"the engine does not run {op} yet")
    graph = _graph(op, attrs, list(arrays))
    try:
        graph.check_ops()
        expected = graph.execute(dict(arrays))[0]
    except UnsupportedOpError as exc:
        pytest.skip(f"the engine does not run this case: {exc}")
    data = arrays["data"]
    params = {k: v for k, v in arrays.items() if k != "data"}
    model = export_graph(graph, params, {"data": data.shape}, input_dtypes={"data": data.dtype})
    actual = runtime.run(model.SerializeToString(), [data], threads=1)[0]
    assert actual.dtype == np.asarray(expected).dtype
    rtol = 1e-3 if expected.dtype == np.float16 else 1e-5
    _close(actual.astype(np.float64), np.asarray(expected, np.float64), rtol=rtol)


def test_an_operator_onnx_cannot_express_is_exit_8_naming_op_and_node():
    name = "_modelsurgeon_test_unexportable"
    if ops.supported_spec(name) is None:
        ops.register(ops.OpSpec(name, lambda data: data))
    graph = _graph(name, {}, ["data"])
    with pytest.raises(UnsupportedOpError, match=f"{name} \\(node 'node0'\\)"):
        export_graph(graph, {}, {"data": (1, 2)})


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_unsupported_attribute_is_unsupported_op_error(op):
    graph = _graph(op, {"axis": "1", "use_length": "True"}, ["data", "length"])
    graph.check_ops()  # our engine runs it; ONNX has no masked softmax
    with pytest.raises(UnsupportedOpError, match=f"{op} \\(node 'node0'\\).*use_length"):
        export_graph(graph, {"length": np.asarray([2, 3], np.float32)}, {"data": X2.shape})


def test_without_onnx_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'modelsurgeon\[onnx\]'"):
        require_onnx()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError, match=r"modelsurgeon\[onnx\]"):
        runtime.run(b"", [])


@pytest.mark.parametrize("module", ["onnx.export", "onnx.export.exporter", "formats.onnx", "formats.onnx_edit",
                                    "onnx.runtime"])
def test_docstring_examples_run(module):
    import doctest
    import importlib
    assert doctest.testmod(importlib.import_module(f"modelsurgeon.core.{module}")).failed == 0


def test_export_file_writes_a_checked_model_with_external_data(tmp_path):
    from modelsurgeon.core.onnx.export import export_file
    folder = MXNET / "zoo" / "mobilenet0.25"
    x, expected = np.load(folder / "input.npy"), np.load(folder / "output.npy")
    out = tmp_path / "mobilenet.onnx"
    written = export_file(str(folder / "mobilenet0.25-0000.params"), str(out), input_shape=x.shape, external_data=True)
    assert written == [str(tmp_path / "mobilenet.onnx.data"), str(out)]
    assert out.stat().st_size < 100_000 < (tmp_path / "mobilenet.onnx.data").stat().st_size
    onnx.checker.check_model(str(out), full_check=True)
    _close(runtime.run(str(out), [x], threads=1)[0], expected)
    from modelsurgeon.core.errors import OutputExistsError
    with pytest.raises(OutputExistsError):
        export_file(str(folder / "mobilenet0.25-0000.params"), str(out), input_shape=x.shape, overwrite=False)


def test_export_needs_the_input_shape_of_a_bare_graph():
    from modelsurgeon.core.errors import SurgeryError
    with open_checkpoint(str(MXNET / "convbn" / "convbn-0000.params")) as reader:
        with pytest.raises(SurgeryError, match="input shape is unknown"):
            export_checkpoint(reader)


def test_a_converter_that_misses_mxnets_dtype_is_corrected_by_a_cast(monkeypatch):
    from modelsurgeon.core.onnx.export import builder
    monkeypatch.setitem(builder._CONVERTERS, "Cast", lambda c: c.add("Identity", c.inputs))  # forgets the dtype
    graph = _graph("Cast", {"dtype": "float16"}, ["data"])
    model = export_graph(graph, {}, {"data": X4.shape})
    assert any(n.op_type == "Cast" and n.name.endswith("/dtype") for n in model.graph.node)
    out = _ort(model, X4)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, X4.astype(np.float16))


def test_run_file_runs_onnx_files_and_mxnet_exports_alike(tmp_path):
    folder = MXNET / "convbn"
    x, expected = np.load(folder / "input.npy"), np.load(folder / "output.npy")
    _close(runtime.run_file(str(folder / "convbn-0000.params"), [x], threads=1)[0], expected)
    with open_checkpoint(str(folder / "convbn-0000.params")) as reader:
        save(export_checkpoint(reader, input_shape=x.shape), str(tmp_path / "convbn.onnx"))
    _close(runtime.run_file(str(tmp_path / "convbn.onnx"), {"data": x}, threads=1)[0], expected)
    from modelsurgeon.core.errors import ModelSurgeonError, ShapeError
    with pytest.raises(ShapeError, match="expects"):
        runtime.run(str(tmp_path / "convbn.onnx"), [x[:, :2]])
    with pytest.raises(ModelSurgeonError, match="no input 'nope'"):
        runtime.run(str(tmp_path / "convbn.onnx"), {"nope": x})


def test_a_module_checkpoint_ending_in_softmax_output_needs_no_label(tmp_path):
    nodes = [{"op": "null", "name": "data", "inputs": []}, {"op": "null", "name": "fc_weight", "inputs": []},
             {"op": "null", "name": "fc_bias", "inputs": []},
             {"op": "FullyConnected", "name": "fc", "attrs": {"num_hidden": "3"}, "inputs": [[0, 0, 0], [1, 0, 0],
                                                                                           [2, 0, 0]]},
             {"op": "null", "name": "softmax_label", "inputs": []},
             {"op": "SoftmaxOutput", "name": "softmax", "inputs": [[3, 0, 0], [4, 0, 0]]}]
    graph = Graph.from_json({"nodes": nodes, "heads": [[5, 0, 0]]})
    if "softmax_label" not in getattr(graph, "label_variables", list)():
        pytest.skip("the engine does not tell training labels yet")
    params = {"fc_weight": np.linspace(-1, 1, 15, dtype=np.float32).reshape(3, 5),
              "fc_bias": np.asarray([0.1, 0.2, 0.3], np.float32)}
    model = export_graph(graph, params, {"data": X2.shape})
    assert [i.name for i in model.graph.input] == ["data"]
    logits = X2 @ params["fc_weight"].T + params["fc_bias"]
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    _close(_ort(model, X2), expected.astype(np.float32))
