"""Tracing, MXNet's -symbol.json schema, Graph validation and SymbolBlock execution."""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path

import numpy as np
import pytest

from modelsurgeon import core
from modelsurgeon.core.engine import nn, ops
from modelsurgeon.core.engine.model_zoo import vision
from modelsurgeon.core.engine.symbol import Graph
from modelsurgeon.core.errors import ModelSurgeonError, NotInitializedError, UnsupportedOpError

ZOO = ("alexnet", "resnet18_v1", "resnet34_v1", "resnet18_v2", "vgg11", "squeezenet1.1",
       "mobilenet0.25", "mobilenet1.0")
MXNET = Path(__file__).resolve().parent / "fixtures" / "mxnet"


class AllOps(core.HybridBlock):
    """One of every operator our layers emit."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2D(4, 3, padding=1, in_channels=3)
        self.bn = nn.BatchNorm(in_channels=4)
        self.pool = nn.MaxPool2D(2, 2)
        self.branches = nn.HybridConcatenate(axis=1)
        self.branches.add(nn.Conv2D(2, 1, in_channels=4), nn.Conv2D(2, 3, padding=1, in_channels=4))
        self.flat = nn.Flatten()
        self.drop = nn.Dropout(0.5)
        self.dense = nn.Dense(3, activation="tanh", in_units=64)

    def forward(self, x):
        x = core.nd.relu(self.bn(self.conv(x)))
        x = self.pool(x)
        x = self.branches(x) + x
        return self.dense(self.drop(self.flat(x)))


def _all_ops():
    net = AllOps()
    net.initialize(core.init.Xavier())
    gen = np.random.default_rng(0)
    net.bn.running_mean.set_data(gen.normal(0, 0.1, 4).astype(np.float32))
    net.bn.running_var.set_data(gen.uniform(0.5, 1.5, 4).astype(np.float32))
    return net


X = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)


# -- the exported JSON -----------------------------------------------------------------------

def test_export_json_has_mxnets_schema(tmp_path):
    net = _all_ops()
    net(X)
    symbol_file, _ = net.export(str(tmp_path / "net"))
    data = json.loads(Path(symbol_file).read_text())
    assert list(data) == ["nodes", "arg_nodes", "node_row_ptr", "heads", "attrs"]
    assert data["attrs"] == {"mxnet_version": ["int", 10901]}
    nodes = data["nodes"]
    assert data["arg_nodes"] == [i for i, n in enumerate(nodes) if n["op"] == "null"]
    assert data["node_row_ptr"][0] == 0 and len(data["node_row_ptr"]) == len(nodes) + 1
    assert data["node_row_ptr"] == sorted(data["node_row_ptr"])
    assert data["heads"] == [[len(nodes) - 1, 0, 0]]
    for index, node in enumerate(nodes):
        assert set(node) <= {"op", "name", "attrs", "inputs"}
        assert isinstance(node["op"], str) and isinstance(node["name"], str)
        assert all(isinstance(v, str) for v in node.get("attrs", {}).values())
        for source, out, version in node["inputs"]:
            assert 0 <= source < index and out == 0 and version in (0, 1)
    assert len({n["name"] for n in nodes}) == len(nodes)  # node names are unique


def test_export_op_names_and_attribute_spelling():
    net = _all_ops()
    graph, _ = net.trace(X)
    ops_used = [n.op for n in graph.op_nodes()]
    assert set(ops_used) == {"Convolution", "BatchNorm", "relu", "Pooling", "Concat", "elemwise_add",
                             "Flatten", "Dropout", "FullyConnected", "Activation"}
    conv = graph.op_nodes()[0]
    assert conv.op == "Convolution"
    assert conv.attrs["kernel"] == "(3, 3)" and conv.attrs["pad"] == "(1, 1)"
    assert conv.attrs["stride"] == "(1, 1)" and conv.attrs["dilate"] == "(1, 1)"
    assert conv.attrs["num_filter"] == "4" and conv.attrs["no_bias"] == "False"
    by_op = {n.op: n for n in graph.op_nodes()}
    assert by_op["BatchNorm"].attrs["fix_gamma"] == "False"
    assert by_op["BatchNorm"].attrs["eps"] == "1e-05"
    assert by_op["Pooling"].attrs["pool_type"] == "max"
    assert by_op["Pooling"].attrs["pooling_convention"] == "valid"
    assert by_op["FullyConnected"].attrs == {"flatten": "True", "no_bias": "False", "num_hidden": "3"}
    assert by_op["Activation"].attrs == {"act_type": "tanh"}
    assert by_op["Concat"].attrs["dim"] == "1" and by_op["Concat"].attrs["num_args"] == "2"


def test_variables_are_unique_parameter_names_and_aux_is_marked():
    net = _all_ops()
    graph, params = net.trace(X)
    variables = graph.variables()
    assert variables[0] == "data"
    assert variables[1:] == [p.name for p in net.collect_params().values()]
    unique = re.compile(r"^param_[0-9a-f]{8}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{12}_"
                        r"(weight|bias|gamma|beta|running_mean|running_var)$")
    assert all(unique.match(name) for name in variables[1:])
    for name in variables[1:]:
        assert params[name].name == name
    assert graph.aux_variables() == [net.bn.running_mean.name, net.bn.running_var.name]
    assert net.bn.gamma.name in graph.arguments() and net.bn.running_mean.name not in graph.arguments()
    bn_node = next(n for n in graph.nodes if n.op == "BatchNorm")
    assert [version for _, _, version in bn_node.inputs] == [0, 0, 0, 1, 1]
    weight = next(n for n in graph.nodes if n.name == net.conv.weight.name)
    assert weight.attrs == {"__shape__": "(4, 3, 3, 3)", "__dtype__": "0"}


def test_shared_parameters_are_one_variable():
    net = nn.HybridSequential()
    net.add(nn.Dense(4, in_units=4), nn.Dense(4, in_units=4))
    net[1].share_parameters(net[0].collect_params())
    net.initialize()
    graph, params = net.trace(np.ones((1, 4), np.float32))
    assert graph.variables() == ["data", net[0].weight.name, net[0].bias.name]
    fc = [n for n in graph.op_nodes() if n.op == "FullyConnected"]
    assert fc[0].inputs[1] == fc[1].inputs[1]
    assert len(params) == 2


def test_multiple_inputs_are_data0_data1():
    class Two(core.HybridBlock):
        def forward(self, a, b):
            return core.nd.add(a, b)

    graph, params = Two().trace(np.ones((1, 2), np.float32), np.ones((1, 2), np.float32))
    assert graph.variables() == ["data0", "data1"]
    assert params == {}
    assert [n.op for n in graph.op_nodes()] == ["elemwise_add"]


def test_graph_executes_like_the_block():
    net = _all_ops()
    graph, params = net.trace(X)
    feeds = {name: p.data() for name, p in params.items()}
    # the graph folds BatchNorm into its convolution (AllOps' own forward does not): rounding differs
    np.testing.assert_allclose(graph.execute({"data": X, **feeds})[0], net(X), rtol=1e-5, atol=1e-6)
    with pytest.raises(ModelSurgeonError, match="no value for graph variable 'data'"):
        graph.execute(feeds)


def test_trace_uses_last_input_and_needs_one():
    net = _all_ops()
    with pytest.raises(ModelSurgeonError, match="Please first run forward with this block at least once"):
        net.trace()
    net(X)
    graph, _ = net.trace()
    assert graph.variables()[0] == "data"


def test_trace_refuses_plain_arrays_inside_forward():
    class Leaky(core.HybridBlock):
        def forward(self, x):
            return core.nd.add(x, np.ones(x.shape, np.float32))

    with pytest.raises(ModelSurgeonError, match="received a plain array while tracing.*Constant"):
        Leaky().trace(np.zeros((1, 2), np.float32))


def test_constant_traces_as_a_variable():
    class WithConst(core.HybridBlock):
        def __init__(self):
            super().__init__()
            self.offset = core.Constant(np.full((1, 2), 3.0, np.float32))

        def forward(self, x):
            return core.nd.add(x, self.offset.data())

    block = WithConst()
    graph, _params = block.trace(np.zeros((1, 2), np.float32))
    assert graph.variables() == ["data", block.offset.name]
    np.testing.assert_array_equal(block(np.zeros((1, 2), np.float32)), [[3.0, 3.0]])


def test_multiple_outputs_become_multiple_heads(tmp_path):
    class Two(core.HybridBlock):
        def __init__(self):
            super().__init__()
            self.a = nn.Dense(2, in_units=3)
            self.b = nn.Dense(3, in_units=3)

        def forward(self, x):
            return self.a(x), self.b(x)

    net = Two()
    net.initialize()
    x = np.ones((1, 3), np.float32)
    expected = net(x)
    symbol_file, params_file = net.export(str(tmp_path / "two"))
    assert len(json.loads(Path(symbol_file).read_text())["heads"]) == 2
    out = core.SymbolBlock.imports(symbol_file, "data", params_file)(x)
    assert isinstance(out, tuple) and len(out) == 2
    for a, b in zip(out, expected):
        np.testing.assert_array_equal(a, b)


def test_export_file_names_epoch_and_parameterless_blocks(tmp_path):
    net = _all_ops()
    net(X)
    assert net.export(str(tmp_path / "net"), epoch=12) == (str(tmp_path / "net-symbol.json"),
                                                           str(tmp_path / "net-0012.h5"))
    with pytest.raises(ModelSurgeonError, match="export format must be 'h5' or 'mxnet', not 'onnx'"):
        net.export(str(tmp_path / "net"), format="onnx")

    class Relu(core.HybridBlock):
        def forward(self, x):
            return core.nd.relu(x)

    relu = Relu()
    relu(np.ones((1, 2), np.float32))
    symbol_file, params_file = relu.export(str(tmp_path / "relu"))
    assert params_file is None and not (tmp_path / "relu-0000.h5").exists()
    block = core.SymbolBlock.imports(symbol_file, ["data"])
    np.testing.assert_array_equal(block(np.array([[-1.0, 2.0]])), [[0.0, 2.0]])


@pytest.mark.parametrize("fmt", ["h5", "mxnet"])
def test_float16_model_exports_and_imports_as_float16(fmt, tmp_path):
    net = nn.HybridSequential()
    net.add(nn.Conv2D(3, 3, in_channels=2), nn.BatchNorm(in_channels=3), nn.Dense(4))
    net.cast("float16")
    net.initialize()
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float16)
    expected = net(x)
    symbol_file, params_file = net.export(str(tmp_path / "half"), format=fmt)
    graph = json.loads(Path(symbol_file).read_text())
    assert {n["attrs"]["__dtype__"] for n in graph["nodes"] if n["op"] == "null" and n["name"] != "data"} == {"2"}
    block = core.SymbolBlock.imports(symbol_file, ["data"], params_file)
    assert {p.dtype for p in block.collect_params().values()} == {np.dtype(np.float16)}
    out = block(x)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, expected)


# -- placeholders -----------------------------------------------------------------------------

def test_trace_with_placeholders_needs_no_weights():
    net = vision.mobilenet0_25(classes=10)  # never initialised
    graph, params = net.trace(np.zeros((1, 3, 32, 32), np.float32), placeholders=True)
    assert all(not p.is_initialized for p in net.collect_params().values())
    assert len(params) == len(net.collect_params())
    shapes = {n.name: n.attrs["__shape__"] for n in graph.nodes if n.is_variable and n.name != "data"}
    assert shapes[net.features[0].weight.name] == "(8, 3, 3, 3)"  # deferred shapes were inferred
    assert shapes[net.output.weight.name] == "(10, 256)"
    # the same graph runs once real weights exist
    net.initialize(core.init.Xavier())
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    feeds = {name: p.data() for name, p in params.items()}
    np.testing.assert_allclose(graph.execute({"data": x, **feeds})[0], net(x), rtol=1e-6)


def test_trace_without_placeholders_needs_weights():
    net = vision.mobilenet0_25(classes=10)
    with pytest.raises(NotInitializedError, match="has not been initialized"):
        net.trace(np.zeros((1, 3, 32, 32), np.float32))


def test_placeholders_do_not_allocate():
    net = vision.vgg11(classes=1000)
    _graph, params = net.trace(np.zeros((1, 3, 32, 32), np.float32), placeholders=True)
    assert net.output.weight.shape == (1000, 4096)
    assert not any(p.is_initialized for p in params.values())


# -- SymbolBlock ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ZOO)
def test_symbolblock_equals_original_for_every_zoo_model(name, small_zoo_model, small_input):
    net = small_zoo_model(name)
    x = small_input(name, batch=2)
    expected = net(x)
    graph, params = net.trace(x)
    block = core.SymbolBlock(graph.to_json(), ["data"])
    block.load_dict({key: p.data() for key, p in params.items()})
    assert list(block.collect_params()) == graph.variables()[1:]
    # the graph folds every Convolution -> BatchNorm pair; eager passes only those in Sequential
    # containers, so the two agree to float32 rounding rather than bit for bit
    np.testing.assert_allclose(block(x), expected, rtol=1e-5, atol=1e-6)
    # sharing the Parameter objects directly works too
    shared = core.SymbolBlock(graph, "data", params)
    assert shared.collect_params()[graph.variables()[1]] is params[graph.variables()[1]]
    np.testing.assert_allclose(shared(x), expected, rtol=1e-5, atol=1e-6)


def test_symbolblock_parameters_take_shapes_and_roles_from_the_graph():
    net = _all_ops()
    graph, _ = net.trace(X)
    block = core.SymbolBlock(graph, ["data"])
    params = block.collect_params()
    assert params[net.conv.weight.name].shape == (4, 3, 3, 3)
    assert params[net.bn.running_var.name].grad_req == "null"
    assert params[net.conv.weight.name].short_name == "weight"
    assert not any(p.is_initialized for p in params.values())
    with pytest.raises(ModelSurgeonError, match="unknown shapes|not been initialized"):
        block(X)


def test_symbolblock_argument_checks():
    net = _all_ops()
    graph, params = net.trace(X)
    with pytest.raises(ModelSurgeonError, match=r"input\(s\) \['input'\] are not variables of the graph"):
        core.SymbolBlock(graph, ["input"])
    with pytest.raises(ModelSurgeonError, match=r"\['nope'\] params are unused by the model"):
        core.SymbolBlock(graph, ["data"], {"nope": core.Parameter("w")})
    block = core.SymbolBlock(graph, ["data"], params)
    with pytest.raises(ModelSurgeonError, match=r"this graph takes 1 input\(s\) \(data\), got 2"):
        block(X, X)
    assert repr(block) == f"SymbolBlock({len(graph.op_nodes())} operators, inputs=['data'])"


def test_unsupported_operator_is_named():
    graph = {"nodes": [{"op": "null", "name": "data", "inputs": []},
                       {"op": "LRN", "name": "lrn0", "attrs": {"nsize": "5"}, "inputs": [[0, 0, 0]]}],
             "arg_nodes": [0], "node_row_ptr": [0, 1, 2], "heads": [[1, 0, 0]], "attrs": {}}
    with pytest.raises(UnsupportedOpError, match=r"unsupported operator 'LRN' \(node 'lrn0'\)"):
        core.SymbolBlock(json.dumps(graph), ["data"])


@pytest.mark.parametrize("op,attrs,inputs", [
    ("Convolution", {"kernel": "(3, 3)", "num_filter": "2"}, [[0, 0, 0]]),           # weight and bias missing
    ("Convolution", {"kernel": "(3, 3)", "num_filter": "2", "no_bias": "True"}, [[0, 0, 0]] * 3),
    ("relu", {}, [[0, 0, 0], [0, 0, 0]]),                                              # one input too many
    ("FullyConnected", {"num_hidden": "2"}, []),
])
def test_wrong_number_of_operator_inputs_is_a_clear_error(op, attrs, inputs):
    # graph files are untrusted: a node with the wrong number of inputs must give a
    # ModelSurgeonError naming the node (when the block is built or at the latest when it runs),
    # never a TypeError from inside a kernel
    graph = {"nodes": [{"op": "null", "name": "data", "inputs": []},
                       {"op": op, "name": "bad_node", "attrs": attrs, "inputs": inputs}],
             "heads": [[1, 0, 0]]}
    with pytest.raises(ModelSurgeonError, match="bad_node"):
        block = core.SymbolBlock(graph, ["data"])
        block(np.ones((1, 1, 5, 5), np.float32))


def test_reading_an_output_an_operator_does_not_have():
    graph = {"nodes": [{"op": "null", "name": "data", "inputs": []},
                       {"op": "relu", "name": "r", "inputs": [[0, 0, 0]]},
                       {"op": "relu", "name": "s", "inputs": [[1, 1, 0]]}],
             "heads": [[2, 0, 0]]}
    with pytest.raises(ModelSurgeonError, match=r"node 's' reads output 1 of 'r', which has 1 output\(s\)"):
        core.SymbolBlock(graph, ["data"])


# -- against MXNet's own graphs ------------------------------------------------------------------

def _canonical(op, attrs):
    """An operator with its attributes parsed, so omitted defaults compare equal."""
    spec = ops.get(op)
    parsed = spec.parse(attrs)
    if op == "Pooling":
        parsed["layout"] = parsed["layout"] or "NCHW"
        if parsed["global_pool"]:
            for key in ("kernel", "stride", "pad", "pooling_convention", "count_include_pad"):
                parsed.pop(key)
    if op == "Convolution":
        parsed["layout"] = parsed["layout"] or "NCHW"
    return spec.name, json.dumps(parsed, sort_keys=True)


@pytest.mark.parametrize("name", ZOO)
def test_traced_graph_matches_mxnets_export(name, zoo1000):
    theirs = json.loads((MXNET / "symbols" / f"{name}-symbol.json").read_text())
    graph, _ = zoo1000(name).trace(np.zeros((1, 3, 224, 224), np.float32), placeholders=True)
    ours = graph.to_dict()
    their_ops = collections.Counter(_canonical(n["op"], n.get("attrs", {}))
                                    for n in theirs["nodes"] if n["op"] != "null")
    our_ops = collections.Counter(_canonical(n["op"], n.get("attrs", {})) for n in ours["nodes"] if n["op"] != "null")
    assert our_ops == their_ops
    assert len(ours["arg_nodes"]) == len(theirs["arg_nodes"])
    assert len(ours["nodes"]) == len(theirs["nodes"])


@pytest.mark.parametrize("name", ZOO)
def test_roles_match_mxnets_arg_and_aux(name, zoo1000):
    rows = json.loads((MXNET / "keys" / f"{name}.names.json").read_text())
    their_roles = {key: export_key.split(":")[0] for key, _, _, export_key in rows}
    net = zoo1000(name)
    graph, _ = net.trace(np.zeros((1, 3, 224, 224), np.float32), placeholders=True)
    aux = set(graph.aux_variables())
    our_roles = {key: "aux" if p.name in aux else "arg" for key, p in net.collect_params().items()}
    assert our_roles == their_roles


@pytest.mark.parametrize("name", ["resnet18_v1", "squeezenet1.1", "mlp", "convbn", "tutorial"])
def test_mxnet_graphs_read_and_rewrite_unchanged(name):
    folder = MXNET / "symbols" if name in ZOO else MXNET / name
    path = folder / f"{name}-symbol.json"
    if name == "tutorial":
        path = folder / "model0-symbol.json"
    data = json.loads(path.read_text())
    graph = Graph.from_json(path.read_text())
    out = graph.to_dict()
    assert out["nodes"] == data["nodes"]
    assert out["heads"] == data["heads"]
    assert out["attrs"] == data["attrs"]
    graph.check_ops()


def test_mxnet_convbn_graph_runs_like_mxnet():
    folder = MXNET / "convbn"
    block = core.SymbolBlock.imports(str(folder / "convbn-symbol.json"), ["data"], str(folder / "convbn-0000.params"))
    np.testing.assert_allclose(block(np.load(folder / "input.npy")), np.load(folder / "output.npy"),
                               rtol=1e-5, atol=1e-5)


IMPORT_SCRIPT = r"""
import sys, numpy as np, mxnet as mx
from mxnet import gluon
folder = sys.argv[1]
for name in sys.argv[2:]:
    net = gluon.SymbolBlock.imports(f"{folder}/{name}-symbol.json", ["data"], f"{folder}/{name}-0000.params")
    np.save(f"{folder}/{name}.mxnet.npy", net(mx.nd.array(np.load(f"{folder}/{name}.input.npy"))).asnumpy())
"""


def test_real_mxnet_runs_our_exports(mxnet_run, tmp_path, small_zoo_model, small_input):
    names = ["resnet18_v2", "squeezenet1.1", "mobilenet0.25", "allops"]
    expected = {}
    for name in names:
        if name == "allops":
            net, x = _all_ops(), X
        else:
            net, x = small_zoo_model(name), small_input(name, batch=2)
        expected[name] = net(x)
        np.save(tmp_path / f"{name}.input.npy", x)
        net.export(str(tmp_path / name), format="mxnet")
    mxnet_run(IMPORT_SCRIPT, str(tmp_path), *names)
    for name in names:
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.mxnet.npy"), expected[name], rtol=1e-4,
                                   atol=1e-5, err_msg=name)


def test_relus_and_sums_overwrite_only_fresh_values_no_one_else_reads():
    """A ReLU or a sum writes into a fresh value that it alone reads (a sum's output, or the first
    such input of a sum, when it has the sum's shape); never a value another node or the caller (as
    a head) reads, never a feed, never an input that a broadcast would grow."""
    def node(op, name, *inputs, **attrs):
        return {"op": op, "name": name, "attrs": attrs, "inputs": [[i, 0, 0] for i in inputs]}
    graph = Graph.from_json({"nodes": [
        node("null", "a"), node("null", "b"), node("null", "row"),
        node("elemwise_add", "sum0", 0, 1), node("Activation", "relu0", 3, act_type="relu"),  # alone
        node("elemwise_add", "sum1", 4, 1), node("Activation", "relu1", 5, act_type="relu"),  # sum1 is a head
        node("elemwise_add", "sum2", 6, 1), node("relu", "relu2", 7), node("elemwise_mul", "twice", 7, 7),
        node("broadcast_add", "grow", 2, 8),    # row (a feed) broadcast against relu2: neither written
        node("broadcast_add", "shift", 2, 10),  # writes grow, not the row it broadcasts
    ], "heads": [[5, 0, 0], [8, 0, 0], [9, 0, 0], [11, 0, 0]]})
    gen = np.random.default_rng(3)
    a, b = (gen.standard_normal((2, 5)).astype(np.float32) for _ in range(2))
    row = gen.standard_normal(5).astype(np.float32)
    fed = a.copy(), b.copy(), row.copy()
    sum1, relu2, twice, shift = graph.execute({"a": a, "b": b, "row": row})
    plan = next(iter(graph._schedules.values()))
    assert {graph.nodes[i].name: position for i, position in plan.in_place.items()} == \
        {"relu0": 0, "shift": 1}
    expected_sum1 = np.maximum(a + b, 0) + b
    np.testing.assert_array_equal(sum1, expected_sum1)
    assert (sum1 < 0).any()  # kept as the caller reads it
    sum2 = np.maximum(expected_sum1, 0) + b
    np.testing.assert_array_equal(relu2, np.maximum(sum2, 0))
    np.testing.assert_array_equal(twice, sum2 * sum2)
    np.testing.assert_array_equal(shift, row + (row + np.maximum(sum2, 0)))
    for array, copy in zip((a, b, row), fed):
        assert np.array_equal(array, copy)


# -- Graph.from_json validation ------------------------------------------------------------------

def _valid():
    return {"nodes": [{"op": "null", "name": "data", "inputs": []},
                      {"op": "relu", "name": "r", "inputs": [[0, 0, 0]]}],
            "arg_nodes": [0], "node_row_ptr": [0, 1, 2], "heads": [[1, 0, 0]], "attrs": {}}


def _broken(change):
    data = _valid()
    change(data)
    return data


@pytest.mark.parametrize("source,match", [
    ("{not json", "graph is not valid JSON"),
    ("[]", "graph JSON has no 'nodes' list"),
    (_broken(lambda d: d.pop("nodes")), "graph JSON has no 'nodes' list"),
    (_broken(lambda d: d.update(nodes={"a": 1})), "graph JSON has no 'nodes' list"),
    (_broken(lambda d: d["nodes"].append("relu")), r"graph node 2 needs string 'op' and 'name'"),
    (_broken(lambda d: d["nodes"][1].update(op=3)), r"graph node 1 needs string 'op' and 'name'"),
    (_broken(lambda d: d["nodes"][1].pop("name")), r"graph node 1 needs string 'op' and 'name'"),
    (_broken(lambda d: d["nodes"][1].update(attrs={"act_type": 1})), r"graph node 1 \('r'\) has non-string attributes"),
    (_broken(lambda d: d["nodes"][1].update(attrs=["x"])), r"graph node 1 \('r'\) has non-string attributes"),
    (_broken(lambda d: d["nodes"][1].update(inputs=[[1, 0, 0]])), "refers to node 1, which does not come before it"),
    (_broken(lambda d: d["nodes"][1].update(inputs=[[5, 0, 0]])), "refers to node 5, which does not come before it"),
    (_broken(lambda d: d["nodes"][1].update(inputs=[[-1, 0, 0]])), "refers to node -1"),
    (_broken(lambda d: d["nodes"][1].update(inputs=[[0, -1, 0]])), "refers to node 0"),
    (_broken(lambda d: d["nodes"][1].update(inputs=[[0]])), r"expected \[node, output, version\], got \[0\]"),
    (_broken(lambda d: d["nodes"][1].update(inputs=[[0, 0, 0, 0]])), r"expected \[node, output, version\]"),
    (_broken(lambda d: d["nodes"][1].update(inputs=[["0", 0, 0]])), r"expected \[node, output, version\]"),
    (_broken(lambda d: d["nodes"][1].update(inputs=[[True, 0, 0]])), r"expected \[node, output, version\]"),
    (_broken(lambda d: d["nodes"][1].update(inputs=[[0.0, 0, 0]])), r"expected \[node, output, version\]"),
    (_broken(lambda d: d["nodes"][1].update(inputs=0)), "expected a list"),
    (_broken(lambda d: d.update(heads=[])), r"graph has no heads \(outputs\)"),
    (_broken(lambda d: d.pop("heads")), r"graph has no heads \(outputs\)"),
    (_broken(lambda d: d.update(heads=[[2, 0, 0]])), "graph head refers to node 2"),
    (_broken(lambda d: d.update(heads=[[1, 0, 0, 0]])), r"graph head: expected \[node, output, version\]"),
    (_broken(lambda d: d.update(heads=7)), "expected a list"),
])
def test_from_json_rejects_malformed_graphs(source, match):
    text = source if isinstance(source, str) else json.dumps(source)
    with pytest.raises(ModelSurgeonError, match=match):
        Graph.from_json(text)


def test_from_json_accepts_valid_graphs_and_old_spellings():
    assert Graph.from_json(json.dumps(_valid())).variables() == ["data"]
    old = _valid()
    # nnvm 0.x spelling: 'param' for attributes, two-element input entries
    old["nodes"][1] = {"op": "Activation", "name": "r", "param": {"act_type": "relu"}, "inputs": [[0, 0]]}
    graph = Graph.from_json(old)
    assert graph.nodes[1].inputs == [(0, 0, 0)]
    np.testing.assert_array_equal(graph.execute({"data": np.array([-1.0, 2.0])})[0], [0.0, 2.0])


def test_from_json_rejects_deep_json_cleanly():
    text = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ModelSurgeonError):
        Graph.from_json(text)


def test_read_graph_file_names_the_file(tmp_path):
    from modelsurgeon.core.binding import read_graph_file
    path = tmp_path / "bad-symbol.json"
    path.write_text('{"nodes": [], "heads": []}')
    with pytest.raises(core.CheckpointError, match=r"bad-symbol\.json: graph has no heads"):
        read_graph_file(str(path))
    with pytest.raises(core.ModelSurgeonError, match="no such file"):
        read_graph_file(str(tmp_path / "missing-symbol.json"))
