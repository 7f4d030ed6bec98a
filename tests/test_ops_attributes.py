"""Operator attributes: declared types and ranges checked when a graph or architecture is read
(issue 19, item 9), the operator census (issue 15's triage), and graphs with multi-output and
input-less operators."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

from modelsurgeon import core
from modelsurgeon.core.engine import architecture, nn, ops
from modelsurgeon.core.engine.census import census
from modelsurgeon.core.engine.symbol import Graph
from modelsurgeon.core.errors import (
    CheckpointError,
    InvalidAttributeError,
    ModelSurgeonError,
    ShapeError,
    UnsupportedOpError,
)


def _graph(op: str, attrs: dict[str, str], inputs: list[str], name: str = "bad0") -> dict:
    nodes = [{"op": "null", "name": var, "inputs": []} for var in inputs]
    nodes.append({"op": op, "name": name, "attrs": attrs, "inputs": [[i, 0, 0] for i in range(len(inputs))]})
    return {"nodes": nodes, "arg_nodes": list(range(len(inputs))), "heads": [[len(inputs), 0, 0]]}


CONV = {"kernel": "(3, 3)", "num_filter": "4", "no_bias": "True"}
POOL = {"kernel": "(2, 2)", "pool_type": "max"}
BN = ["data", "gamma", "beta", "mean", "var"]

BAD_ATTRIBUTES = [
    ("Convolution", {**CONV, "stride": "(0, 0)"}, ["data", "weight"], r"stride=.*must be >= 1"),
    ("Convolution", {**CONV, "num_group": "0"}, ["data", "weight"], r"num_group=.*must be >= 1"),
    ("Convolution", {**CONV, "kernel": "(0, 3)"}, ["data", "weight"], r"kernel=.*must be >= 1"),
    ("Convolution", {**CONV, "kernel": "(-1, 3)"}, ["data", "weight"], r"kernel=.*must be >= 1"),
    ("Convolution", {**CONV, "pad": "(-5, -5)"}, ["data", "weight"], r"pad=.*must be >= 0"),
    ("Convolution", {**CONV, "dilate": "(0, 1)"}, ["data", "weight"], r"dilate=.*must be >= 1"),
    ("Convolution", {**CONV, "num_filter": "0"}, ["data", "weight"], r"num_filter=.*must be >= 1"),
    ("Convolution", {**CONV, "stride": "(1, 1, 1)"}, ["data", "weight"], r"stride=\(1, 1, 1\) does not have 2 values"),
    ("Convolution", {**CONV, "kernel": "(" + "3, " * 33_333 + "3)"}, ["data", "weight"],
     r"kernel is 100002 characters long, more than 4096"),
    ("Convolution", {**CONV, "kernel": "(" + "3, " * 40 + "3)"}, ["data", "weight"], r"more than 32"),
    ("Convolution", {**CONV, "stride": "9" * 5000}, ["data", "weight"], r"characters long"),
    ("Convolution", {**CONV, "num_filter": "9" * 5000}, ["data", "weight"], r"characters long"),
    ("Pooling", {**POOL, "kernel": "(0, 0)"}, ["data"], r"kernel=.*must be >= 1"),
    ("Pooling", {**POOL, "kernel": "(-3, -3)"}, ["data"], r"kernel=.*must be >= 1"),
    ("Pooling", {**POOL, "pad": "(-5, -5)"}, ["data"], r"pad=.*must be >= 0"),
    ("Pooling", {**POOL, "stride": "(0, 1)"}, ["data"], r"stride=.*must be >= 1"),
    ("Pooling", {"pool_type": "avg"}, ["data"], r"'kernel' is required unless global_pool"),
    ("Pooling", {**POOL, "pool_type": "median"}, ["data"], r"pool_type='median' must be one of"),
    ("Pooling", {**POOL, "pool_type": "lp", "p_value": "4"}, ["data"], r"p_value 1, 2 or 3"),
    ("BatchNorm", {"axis": "9"}, BN, r"axis='9' must be between -8 and 7"),
    ("BatchNorm", {"eps": "-1"}, BN, r"eps='-1' must be >= 0"),
    ("FullyConnected", {"num_hidden": "0"}, ["data", "weight", "bias"], r"num_hidden='0' must be >= 1"),
    ("FullyConnected", {"num_hidden": "2.5"}, ["data", "weight", "bias"], r"bad value '2.5' for num_hidden"),
    ("Deconvolution", {**CONV, "stride": "(0, 2)"}, ["data", "weight"], r"stride=.*must be >= 1"),
    ("Deconvolution", {**CONV, "adj": "(-1, 0)"}, ["data", "weight"], r"adj=.*must be >= 0"),
    ("UpSampling", {"scale": "0", "sample_type": "nearest", "num_args": "1"}, ["data"], r"scale='0' must be >= 1"),
    ("Pad", {"mode": "wrap", "pad_width": "(0, 0, 0, 0, 1, 1, 1, 1)"}, ["data"], r"mode='wrap' must be one of"),
    ("LeakyReLU", {"act_type": "swish"}, ["data"], r"act_type='swish' must be one of"),
    ("SliceChannel", {"num_outputs": "0"}, ["data"], r"num_outputs='0' must be >= 1"),
    ("_contrib_BilinearResize2D", {"height": "-2", "width": "4"}, ["data"], r"height='-2' must be >= 0"),
    ("_contrib_AdaptiveAvgPooling2D", {"output_size": "(0, 2)"}, ["data"], r"output_size=.*must be >= 1"),
    ("topk", {"ret_typ": "all"}, ["data"], r"ret_typ='all' must be one of"),
    ("Cast", {"dtype": "complex64"}, ["data"], r"dtype='complex64' must be one of"),
    ("GroupNorm", {"num_groups": "0"}, ["data", "gamma", "beta"], r"num_groups='0' must be >= 1"),
    ("Dropout", {"p": "1.5"}, ["data"], r"p='1.5' must be between 0 and 1"),
    ("softmax", {"temperature": "nan"}, ["data"], r"bad value 'nan' for temperature"),
]


@pytest.mark.parametrize("op,attrs,inputs,match", BAD_ATTRIBUTES,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(BAD_ATTRIBUTES)])
def test_out_of_range_attributes_are_refused_when_the_graph_is_read(op, attrs, inputs, match):
    with pytest.raises(InvalidAttributeError, match=rf"operator {op} in node 'bad0': .*{match}") as info:
        Graph.from_json(_graph(op, attrs, inputs))
    assert isinstance(info.value, CheckpointError)  # the command line's exit 4
    assert len(str(info.value)) < 400  # a 100,000-character attribute is not echoed back


def test_unchecked_reading_leaves_attributes_to_execution():
    graph = Graph.from_json(_graph("Convolution", {**CONV, "stride": "(0, 0)"}, ["data", "weight"]),
                            check_attrs=False)
    with pytest.raises(InvalidAttributeError, match=r"node 'bad0'.*stride"):
        graph.check_ops()


def test_unknown_operators_and_attributes_do_not_stop_reading():
    # surgeries (rename...) still work on graphs we cannot run; execution names the problem
    doc = _graph("LRN", {"nsize": "5"}, ["data"])
    Graph.from_json(doc)
    doc2 = _graph("Convolution", {**CONV, "bogus": "1"}, ["data", "weight"])
    with pytest.raises(UnsupportedOpError, match=r"operator Convolution in node 'bad0': unsupported attribute "
                                                 r"bogus='1'"):
        Graph.from_json(doc2).check_ops()


def test_invoke_errors_name_the_node():
    with pytest.raises(InvalidAttributeError, match=r"operator Pooling in node 'pool3': attribute kernel"):
        ops.invoke("Pooling", [np.zeros((1, 1, 4, 4), np.float32)], {"kernel": "(0, 0)"}, hint="pool3")
    with pytest.raises(ShapeError, match=r"node 'bn1'.*BatchNorm: axis 5 is out of range for 4-D input"):
        ops.invoke("BatchNorm", [np.zeros((1, 2, 3, 3), np.float32)] + [np.ones(2, np.float32)] * 4,
                   {"axis": "5"}, hint="bn1")
    with pytest.raises(ShapeError, match=r"operator Reshape \(node 'r0'\)|node 'r0'"):
        ops.invoke("Reshape", [np.zeros((2, 3), np.float32)], {"shape": "(4, -1)"}, hint="r0")


def test_parsed_attributes_are_fresh_dicts():
    # graph execution parses a node's attributes on every pass from a cache; callers may change
    # what they get (the fused convolution pops no_bias) without changing the next result
    spec = ops.get("Convolution")
    first = spec.parse(CONV, "c0")
    first.pop("no_bias")
    first["kernel"] = (9, 9)
    assert spec.parse(CONV, "c0") == {**spec.parse(dict(CONV), "c1")}
    assert spec.parse(CONV, "c0")["kernel"] == (3, 3) and spec.parse(CONV, "c0")["no_bias"] is True


def test_mxnet_numerics_raise_no_numpy_warnings():
    x = np.array([-1.0, 0.0, 1.0], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(ops.invoke("log", [x])[0])
        assert np.isinf(ops.invoke("_rdiv_scalar", [x], {"scalar": "1"})[1])
        assert np.isnan(ops.invoke("sqrt", [x])[0])
        ops.invoke("L2Normalization", [np.zeros((2, 3), np.float32)], {"eps": "0"})
        ops.invoke("_power_scalar", [x], {"scalar": "0.5"})


# -- layers and architecture documents ------------------------------------------------------------

@pytest.mark.parametrize("make,match", [
    (lambda: nn.MaxPool2D(pool_size=0), r"MaxPool2D: attribute kernel=\(0, 0\) must be >= 1"),
    (lambda: nn.AvgPool2D(pool_size=-3), r"AvgPool2D: attribute kernel=\(-3, -3\) must be >= 1"),
    (lambda: nn.MaxPool2D(2, padding=-5), r"MaxPool2D: attribute pad=\(-5, -5\) must be >= 0"),
    (lambda: nn.MaxPool2D(2, strides=0), r"MaxPool2D: attribute stride=\(0, 0\) must be >= 1"),
    (lambda: nn.Conv2D(4, 3, strides=0), r"Conv2D: attribute stride=\(0, 0\) must be >= 1"),
    (lambda: nn.Conv2D(4, 3, dilation=0), r"Conv2D: attribute dilate=\(0, 0\) must be >= 1"),
    (lambda: nn.Conv2D(4, 3, padding=-5), r"Conv2D: attribute pad=\(-5, -5\) must be >= 0"),
    (lambda: nn.Conv2D(4, 0), r"Conv2D: attribute kernel=\(0, 0\) must be >= 1"),
    (lambda: nn.Conv2D(4, 3, groups=0), r"Conv2D: needs positive channels divisible into positive groups"),
    (lambda: nn.BatchNorm(axis=9), r"BatchNorm: attribute axis=9 must be between -8 and 7"),
    (lambda: nn.Dense(0), r"Dense: attribute num_hidden=0 must be >= 1"),
])
def test_layers_refuse_out_of_range_hyperparameters(make, match):
    with pytest.raises(InvalidAttributeError, match=match):
        make()


def _cnn_document():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3, padding=1, in_channels=3), nn.BatchNorm(in_channels=4), nn.MaxPool2D(2),
            nn.Flatten(), nn.Dense(5, in_units=64))
    return architecture.describe(net, inputs=[{"name": "data", "shape": [1, 3, 8, 8], "dtype": "float32"}])


@pytest.mark.parametrize("child,key,value,match", [
    (2, "pool_size", [0, 0], r"architecture node 2 \(MaxPool2D\): attribute kernel=\(0, 0\) must be >= 1"),
    (2, "pool_size", [-3, -3], r"architecture node 2 \(MaxPool2D\): attribute kernel"),
    (2, "padding", [-5, -5], r"architecture node 2 \(MaxPool2D\): attribute pad"),
    (0, "strides", [0, 0], r"architecture node 0 \(Conv2D\): attribute stride=\(0, 0\) must be >= 1"),
    (0, "dilation", [0, 0], r"architecture node 0 \(Conv2D\): attribute dilate"),
    (0, "groups", 0, r"architecture node 0 \(Conv2D\): needs positive channels"),
    (1, "axis", 9, r"architecture node 1 \(BatchNorm\): attribute axis=9"),
])
def test_architecture_documents_refuse_out_of_range_hyperparameters(child, key, value, match):
    document = _cnn_document()
    architecture.build(document)  # the untouched document builds
    document["root"]["children"][child][1]["config"][key] = value
    with pytest.raises(InvalidAttributeError, match=match):
        architecture.build(document)


@pytest.mark.parametrize("shape", [[-1, 3, 32, 32], [0, 3, 8, 8], [], [1] * 9])
def test_architecture_input_shapes_must_be_positive(shape):
    document = _cnn_document()
    document["inputs"][0]["shape"] = shape
    with pytest.raises(InvalidAttributeError, match=r"architecture input 'data': shape .* positive dimensions"):
        architecture.input_specs(document)


# -- census ---------------------------------------------------------------------------------------

def _mixed_graph():
    nodes = [{"op": "null", "name": "data", "inputs": []},
             {"op": "_minus_scalar", "name": "norm_sub", "attrs": {"scalar": "127.5"}, "inputs": [[0, 0, 0]]},
             {"op": "_mul_scalar", "name": "norm_mul", "attrs": {"scalar": "0.0078125"}, "inputs": [[1, 0, 0]]},
             {"op": "LRN", "name": "lrn0", "attrs": {"nsize": "5"}, "inputs": [[2, 0, 0]]},
             {"op": "_npi_add", "name": "add0", "inputs": [[3, 0, 0], [2, 0, 0]]},
             {"op": "LRN", "name": "lrn1", "attrs": {"nsize": "3"}, "inputs": [[4, 0, 0]]},
             {"op": "Pooling", "name": "pool0", "attrs": {"kernel": "(0, 0)"}, "inputs": [[5, 0, 0]]},
             {"op": "_contrib_DeformableConvolution", "name": "dcn0", "inputs": [[6, 0, 0]]}]
    return {"nodes": nodes, "arg_nodes": [0], "heads": [[7, 0, 0]]}


def test_census_lists_operators_counts_support_and_first_nodes():
    report = census(_mixed_graph())
    assert json.loads(json.dumps(report)) == report  # JSON-friendly
    assert report["version"] == 1 and report["nodes"] == 8 and report["variables"] == 1
    assert report["supported"] is False
    assert report["unsupported"] == ["LRN", "Pooling", "_contrib_DeformableConvolution"]
    by_op = {entry["op"]: entry for entry in report["operators"]}
    assert list(by_op) == sorted(by_op)
    assert by_op["LRN"] == {"op": "LRN", "count": 2, "supported": False, "canonical": None, "first_node": "lrn0"}
    assert by_op["_npi_add"] == {"op": "_npi_add", "count": 1, "supported": True, "canonical": "_npi_add",
                                 "first_node": "add0"}
    assert by_op["_minus_scalar"]["supported"] and by_op["_mul_scalar"]["count"] == 1
    assert by_op["Pooling"]["supported"] is False
    assert "node 'pool0'" in by_op["Pooling"]["problem"] and "kernel" in by_op["Pooling"]["problem"]


def test_census_of_a_runnable_graph_and_of_text():
    graph = _graph("Convolution", CONV, ["data", "weight"], name="conv0")
    report = census(json.dumps(graph))
    assert report["supported"] is True and report["unsupported"] == []
    assert report["operators"] == [{"op": "Convolution", "count": 1, "supported": True, "canonical": "Convolution",
                                    "first_node": "conv0"}]
    assert census(Graph.from_json(graph)) == report


def test_aliases_report_their_canonical_operator():
    graph = _graph("_npx_convolution", CONV, ["data", "weight"])
    assert census(graph)["operators"][0]["canonical"] == "Convolution"


# -- graphs with multi-output and input-less operators -------------------------------------------

def test_multi_output_nodes_feed_consumers_and_heads():
    x = np.random.default_rng(0).standard_normal((2, 6, 3)).astype(np.float32)
    doc = {"nodes": [{"op": "null", "name": "data", "inputs": []},
                     {"op": "SliceChannel", "name": "split0", "attrs": {"num_outputs": "3", "axis": "1"},
                      "inputs": [[0, 0, 0]]},
                     {"op": "elemwise_add", "name": "add0", "inputs": [[1, 0, 0], [1, 2, 0]]},
                     {"op": "topk", "name": "top0", "attrs": {"k": "2", "ret_typ": "both"}, "inputs": [[2, 0, 0]]},
                     {"op": "_arange", "name": "range0", "attrs": {"start": "0", "stop": "2"}, "inputs": []},
                     {"op": "broadcast_mul", "name": "mul0", "inputs": [[3, 0, 0], [4, 0, 0]]}],
           "arg_nodes": [0], "heads": [[1, 1, 0], [3, 1, 0], [5, 0, 0]]}
    graph = Graph.from_json(doc)
    graph.check_ops()
    second, indices, product = graph.execute({"data": x})
    parts = np.split(x, 3, axis=1)
    np.testing.assert_array_equal(second, parts[1])
    summed = parts[0] + parts[2]
    order = np.argsort(-summed, axis=-1, kind="stable")[..., :2]
    np.testing.assert_array_equal(indices, order.astype(np.float32))
    np.testing.assert_array_equal(product, np.take_along_axis(summed, order, -1) * np.arange(2))


def test_symbol_block_runs_a_multi_output_graph():
    doc = {"nodes": [{"op": "null", "name": "data", "inputs": []},
                     {"op": "split", "name": "split0", "attrs": {"num_outputs": "2", "axis": "-1",
                                                                 "squeeze_axis": "True"}, "inputs": [[0, 0, 0]]},
                     {"op": "broadcast_sub", "name": "sub0", "inputs": [[1, 1, 0], [1, 0, 0]]}],
           "arg_nodes": [0], "heads": [[2, 0, 0]]}
    block = core.SymbolBlock(doc, ["data"])
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    np.testing.assert_array_equal(block(x), x[:, 1] - x[:, 0])


def test_reading_beyond_an_operators_outputs_is_refused():
    doc = {"nodes": [{"op": "null", "name": "data", "inputs": []},
                     {"op": "SliceChannel", "name": "split0", "attrs": {"num_outputs": "2"}, "inputs": [[0, 0, 0]]},
                     {"op": "relu", "name": "r0", "inputs": [[1, 2, 0]]}],
           "arg_nodes": [0], "heads": [[2, 0, 0]]}
    with pytest.raises(ModelSurgeonError, match=r"node 'r0' reads output 2 of 'split0', which has 2 output"):
        Graph.from_json(doc).check_ops()


def test_tracing_a_multi_output_operator_records_each_output():
    class Halves(core.HybridBlock):
        def forward(self, x):
            first, second = ops.invoke("SliceChannel", [x], {"num_outputs": 2, "axis": 1})
            return ops.invoke("elemwise_mul", [first, second])

    block = Halves()
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    graph, _ = block.trace(x)
    mul = next(node for node in graph.nodes if node.op == "elemwise_mul")
    assert [entry[1] for entry in mul.inputs] == [0, 1]
    np.testing.assert_array_equal(graph.execute({graph.variables()[0]: x})[0], x[:, :2] * x[:, 2:])


# -- the command line: a clear exit 4, never a traceback or exit 70 ---------------------------------

@pytest.mark.parametrize("attrs,match", [
    ({**CONV, "stride": "(0, 0)"}, "stride"),
    ({**CONV, "num_group": "0"}, "num_group"),
    ({**CONV, "kernel": "(" + "3, " * 33_333 + "3)"}, "kernel is 100002 characters long"),
])
def test_graph_command_exits_4_naming_node_and_attribute(attrs, match, tmp_path):
    click_testing = pytest.importorskip("click.testing")
    from modelsurgeon.cli.main import cli

    path = tmp_path / "bad-symbol.json"
    path.write_text(json.dumps(_graph("Convolution", attrs, ["data", "weight"])))
    result = click_testing.CliRunner().invoke(cli, ["graph", str(path), "-o", str(tmp_path / "out.svg")])
    assert result.exit_code == 4, result.output
    assert "bad0" in result.output and match in result.output
    assert "Traceback" not in result.output and len(result.output) < 600
    assert not (tmp_path / "out.svg").exists()


# -- fuzzing every operator's attributes ------------------------------------------------------------

HOSTILE_VALUES = ["", "0", "-1", "-3", "(0, 0)", "(-5, -5)", "(1, 0, -1)", "1.5", "nan", "inf", "-inf", "1e309",
                  "9" * 4000, "9" * 5000, "(" * 500, "[[[1]]]", "((1, 2), 3)", "None", "True", "maybe", "(None, 1)",
                  "{'a': 1}", "__import__('os')", "(" + "1, " * 40 + "1)", "\x00", "é"]


def _unique_specs():
    seen, specs = set(), []
    for name in ops.supported():
        spec = ops.get(name)
        if id(spec) not in seen:
            seen.add(id(spec))
            specs.append(spec)
    return specs


@pytest.mark.parametrize("spec", _unique_specs(), ids=lambda spec: spec.name)
def test_hostile_attribute_values_give_only_our_errors(spec):
    """Every declared attribute of every operator, given hostile strings: parsed, or refused with a
    ModelSurgeonError naming the operator; never another exception."""
    for key in spec.attrs:
        for value in HOSTILE_VALUES:
            try:
                spec.parse({key: value}, "fuzz0")
            except ModelSurgeonError as exc:
                assert f"operator {spec.name} in node 'fuzz0'" in str(exc), (key, value, exc)
                assert len(str(exc)) < 600


@pytest.mark.parametrize("op,attrs,inputs", [
    ("tile", {"reps": "(99999, 99999)"}, [(2, 3)]),
    ("repeat", {"repeats": "9999999999", "axis": "0"}, [(2, 3)]),
    ("broadcast_to", {"shape": "(99999999999, 3)"}, [(1, 3)]),
    ("Pad", {"mode": "constant", "pad_width": "(0, 0, 0, 0, 99999, 99999, 99999, 99999)"}, [(1, 1, 2, 2)]),
    ("UpSampling", {"scale": "999999", "sample_type": "nearest", "num_args": "1"}, [(1, 1, 2, 2)]),
    ("_contrib_BilinearResize2D", {"height": "999999", "width": "999999"}, [(1, 1, 2, 2)]),
    ("_zeros", {"shape": "(100000, 100000)"}, []),
    ("_arange", {"start": "0", "stop": "1e12"}, []),
    ("Deconvolution", {"kernel": "(99, 99)", "num_filter": "1"}, [(1, 4, 500, 500), (4, 1, 99, 99)]),
])
def test_outputs_too_large_for_their_attributes_are_refused_before_allocation(op, attrs, inputs):
    arrays = [np.broadcast_to(np.float32(0), shape) for shape in inputs]  # no memory behind them
    with pytest.raises(ShapeError, match=r"more than 2147483648"):
        ops.invoke(op, arrays, attrs, hint="big0")


def _structural_h5(path, inputs, extra_child=None):
    from modelsurgeon.core.formats.base import TensorInfo
    from modelsurgeon.core.formats.h5 import write_h5
    net = nn.HybridSequential()
    net.add(nn.Dense(4, in_units=3))
    document = architecture.describe(net, inputs=inputs)
    if extra_child is not None:
        document["root"]["children"].append(["1", extra_child])
    arrays = {"0.weight": np.ones((4, 3), np.float32), "0.bias": np.zeros(4, np.float32)}
    write_h5(str(path), "structural", [TensorInfo(k, a.shape, a.dtype) for k, a in arrays.items()],
             lambda info: arrays[info.key], architecture=document)
    return path


@pytest.mark.parametrize("inputs,extra,match", [
    ([{"name": "data", "shape": [-1, 3], "dtype": "float32"}], None,
     r"architecture input 'data': shape \[-1, 3\] needs 1 to 8 positive dimensions"),
    ([{"name": "data", "shape": [2, 3], "dtype": "float32"}],
     {"type": "MaxPool2D", "config": {"pool_size": [0, 0], "strides": [1, 1], "padding": [0, 0], "ceil_mode": False}},
     r"architecture node 1 \(MaxPool2D\): attribute kernel=\(0, 0\) must be >= 1"),
])
def test_run_refuses_bad_architecture_attributes_with_exit_4(inputs, extra, match, tmp_path):
    click_testing = pytest.importorskip("click.testing")
    from modelsurgeon.cli.main import cli

    path = _structural_h5(tmp_path / "m.h5", inputs, extra)
    result = click_testing.CliRunner().invoke(cli, ["run", str(path)])
    assert result.exit_code == 4, result.output
    assert re.search(match, result.output), result.output
    assert "Traceback" not in result.output


# -- executing graphs whose attributes are hostile, in a child with a memory and time budget ---------

def _many_ops_graph() -> dict:
    chain = [("Pooling", {"kernel": "(2, 2)", "stride": "(1, 1)", "pad": "(1, 1)", "pool_type": "avg",
                          "pooling_convention": "full", "count_include_pad": "False"}),
             ("UpSampling", {"scale": "2", "sample_type": "nearest", "num_args": "1"}),
             ("Pad", {"mode": "reflect", "pad_width": "(0, 0, 0, 0, 1, 1, 1, 1)"}),
             ("_contrib_BilinearResize2D", {"height": "7", "width": "9", "align_corners": "False"}),
             ("_contrib_AdaptiveAvgPooling2D", {"output_size": "(3, 4)"}),
             ("LeakyReLU", {"act_type": "leaky", "slope": "0.1"}),
             ("Reshape", {"shape": "(0, -4, 2, -1, -3)", "reverse": "False"}),
             ("transpose", {"axes": "(0, 2, 1, 3)"}),
             ("expand_dims", {"axis": "1"}),
             ("tile", {"reps": "(1, 2, 1, 1)"}),
             ("slice_axis", {"axis": "3", "begin": "0", "end": "2"}),
             ("softmax", {"axis": "-1", "temperature": "2.0"}),
             ("topk", {"axis": "-1", "k": "1", "ret_typ": "value"}),
             ("repeat", {"repeats": "2", "axis": "2"}),
             ("sum", {"axis": "(2,)", "keepdims": "True"}),
             ("_plus_scalar", {"scalar": "1.5"}),
             ("clip", {"a_min": "-1", "a_max": "2"})]
    nodes = [{"op": "null", "name": "data", "inputs": []}]
    for index, (op, attrs) in enumerate(chain):
        nodes.append({"op": op, "name": f"n{index}", "attrs": attrs, "inputs": [[index, 0, 0]]})
    return {"nodes": nodes, "arg_nodes": [0], "heads": [[len(chain), 0, 0]]}


HOSTILE_RUN_VALUES = ["0", "-1", "-7", "(0, 0)", "(-5, -5)", "99999", "(99999, 99999)", "9" * 18, "nan", "x", ""]


def _weighted_ops_graph() -> dict:
    """Operators with weights: Deconvolution, BatchNorm, GroupNorm, LayerNorm, InstanceNorm, PReLU..."""
    nodes = [{"op": "null", "name": "data", "inputs": []}]

    def var(name):
        nodes.append({"op": "null", "name": name, "inputs": []})
        return len(nodes) - 1

    def op(name, attrs, *inputs):
        nodes.append({"op": name, "name": f"w{sum(1 for n in nodes if n['op'] != 'null')}", "attrs": attrs,
                      "inputs": [[i, 0, 0] for i in inputs]})
        return len(nodes) - 1

    x = op("Deconvolution", {"kernel": "(2, 2)", "stride": "(2, 2)", "pad": "(0, 0)", "adj": "(0, 0)",
                             "num_filter": "4", "num_group": "2", "no_bias": "True"}, 0, var("dw"))
    x = op("BatchNorm", {"axis": "1", "eps": "1e-5", "fix_gamma": "False"}, x, var("g"), var("b"), var("m"), var("v"))
    x = op("GroupNorm", {"num_groups": "2", "eps": "1e-5"}, x, var("gg"), var("gb"))
    x = op("LayerNorm", {"axis": "-1", "eps": "1e-5"}, x, var("lg"), var("lb"))
    x = op("InstanceNorm", {"eps": "1e-3"}, x, var("ig"), var("ib"))
    x = op("LeakyReLU", {"act_type": "prelu"}, x, var("pg"))
    x = op("L2Normalization", {"mode": "channel", "eps": "1e-10"}, x)
    x = op("FullyConnected", {"num_hidden": "3", "flatten": "False"}, x, var("fw"), var("fb"))
    x = op("Embedding", {"input_dim": "5", "output_dim": "2"}, op("argmax", {"axis": "-1"}, x), var("emb"))
    return {"nodes": nodes, "arg_nodes": [i for i, n in enumerate(nodes) if n["op"] == "null"],
            "heads": [[x, 0, 0]]}


_WEIGHT_SHAPES = {"data": (1, 4, 4, 5), "dw": (4, 2, 2, 2), "g": (4,), "b": (4,), "m": (4,), "v": (4,),
                  "gg": (2,), "gb": (2,), "lg": (10,), "lb": (10,), "ig": (4,), "ib": (4,), "pg": (4,),
                  "fw": (3, 10), "fb": (3,), "emb": (5, 2)}
_GRAPHS = {"many": (_many_ops_graph, {"data": (1, 4, 4, 5)}), "weighted": (_weighted_ops_graph, _WEIGHT_SHAPES)}


def _feeds(shapes: dict) -> dict:
    gen = np.random.default_rng(0)
    return {name: gen.uniform(0.5, 1.5, shape).astype(np.float32) for name, shape in shapes.items()}


def _run_with_hostile_values(graph: str) -> str:
    """In the child: the graph with each attribute of each node set to each hostile value in turn,
    read and run; any exception but ModelSurgeonError fails the test, naming the mutation."""
    build, shapes = _GRAPHS[graph]
    endings = {"ok": 0, "error": 0}
    for node, attrs in enumerate(n.get("attrs", {}) for n in build()["nodes"]):
        for key in attrs:
            for value in HOSTILE_RUN_VALUES:
                document = build()
                document["nodes"][node]["attrs"][key] = value
                try:
                    parsed = Graph.from_json(document)
                    parsed.check_ops()
                    parsed.execute(_feeds(shapes))
                    endings["ok"] += 1
                except ModelSurgeonError as exc:
                    assert "node '" in str(exc) and len(str(exc)) < 1000, exc  # names the node it happened in
                    endings["error"] += 1
                except BaseException as exc:
                    raise AssertionError(f"node {node} {key}={value!r}: {exc!r}") from None
    return f"{endings}"


def test_the_fuzzed_graphs_run():
    (out,) = Graph.from_json(_many_ops_graph()).execute(_feeds({"data": (1, 4, 4, 5)}))
    assert out.shape == (1, 1, 1, 2, 1) and np.isfinite(out).all()
    (out,) = Graph.from_json(_weighted_ops_graph()).execute(_feeds(_WEIGHT_SHAPES))
    assert out.shape == (1, 4, 8, 2) and np.isfinite(out).all()


@pytest.mark.parametrize("graph", sorted(_GRAPHS))
def test_hostile_attributes_in_a_running_graph_end_in_our_errors(graph):
    """Every attribute of every node, set to each hostile value, in a forked child with a memory
    and time budget: the graph runs or stops with our error naming a node."""
    isolated = pytest.importorskip("fuzz.harness").isolated
    outcome = isolated(_run_with_hostile_values, graph, time_limit=120)
    assert outcome.acceptable, outcome
    assert outcome.kind == "ok" and "'error': 0" not in outcome.detail, outcome


def test_module_checkpoints_run_without_their_softmax_label():
    """mx.model.save_checkpoint graphs end in SoftmaxOutput with a 'softmax_label' variable that no
    .params file holds: inference needs no value for it, and it is no parameter."""
    doc = {"nodes": [{"op": "null", "name": "data", "inputs": []},
                     {"op": "null", "name": "fc_weight", "inputs": []},
                     {"op": "null", "name": "fc_bias", "inputs": []},
                     {"op": "FullyConnected", "name": "fc", "attrs": {"num_hidden": "3"},
                      "inputs": [[0, 0, 0], [1, 0, 0], [2, 0, 0]]},
                     {"op": "null", "name": "softmax_label", "inputs": []},
                     {"op": "SoftmaxOutput", "name": "softmax", "inputs": [[3, 0, 0], [4, 0, 0]]}],
           "arg_nodes": [0, 1, 2, 4], "heads": [[5, 0, 0]]}
    graph = Graph.from_json(doc)
    assert graph.label_variables() == ["softmax_label"]
    gen = np.random.default_rng(1)
    x, w, b = (gen.standard_normal(s).astype(np.float32) for s in ((2, 4), (3, 4), (3,)))
    (out,) = graph.execute({"data": x, "fc_weight": w, "fc_bias": b})
    logits = x @ w.T + b
    np.testing.assert_allclose(out, np.exp(logits) / np.exp(logits).sum(1, keepdims=True), rtol=1e-6)
    block = core.SymbolBlock(doc, ["data"])
    assert sorted(block.collect_params()) == ["fc_bias", "fc_weight"]
    block.collect_params()["fc_weight"].set_data(w)
    block.collect_params()["fc_bias"].set_data(b)
    np.testing.assert_allclose(block(x), out, rtol=1e-6)
    retraced, _ = block.trace(x)  # the label input is not recorded; the graph still reads and runs
    Graph.from_json(retraced.to_dict()).check_ops()
