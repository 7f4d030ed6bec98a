"""`modelsurgeon inspect`, plus what every command shares: --help, --version, --json, plain text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import (  # noqa: F401
    CNN_KEYS,
    COMMANDS,
    ENVELOPE,
    TUTORIAL_KEYS,
    Workspace,
    describe,
    error_line,
    invoke,
    nonfinite_file,
    parse_json,
    read_arrays,
    repeated_blocks_file,
    shared_file,
    table,
    ws,
)

from modelsurgeon.cli.main import cli
from modelsurgeon.core import __version__

ALL_COMMANDS = cli.list_commands(None)  # commands load lazily; this names them all

# -- every command ------------------------------------------------------------------------------


def test_the_documented_commands_exist():
    assert set(COMMANDS) <= set(ALL_COMMANDS)


@pytest.mark.parametrize("command", sorted(ALL_COMMANDS))  # commands added later are held to this too
def test_every_command_help_has_an_example(command):
    result = invoke(command, "--help")
    assert result.stdout.startswith(f"Usage: modelsurgeon {command}")
    assert "Example" in result.stdout
    assert f"modelsurgeon {command}" in result.stdout.split("Example", 1)[1], "the example runs this command"
    assert "--json" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("command", sorted(ALL_COMMANDS))
def test_short_help_option(command):
    assert invoke(command, "-h").stdout == invoke(command, "--help").stdout


def test_group_help_lists_every_command_and_an_example():
    result = invoke("--help")
    for command in ALL_COMMANDS:
        assert re.search(rf"^\s+{re.escape(command)}\s", result.stdout, re.M), command
    assert "Example" in result.stdout and "Exit codes" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag):
    result = invoke(flag)
    assert result.stdout == f"modelsurgeon, version {__version__}\n"
    assert result.stderr == ""


def _json_commands(ws: Workspace) -> list[tuple[str, list[object]]]:
    return [
        ("inspect", ["inspect", ws["cnn.h5"]]),
        ("inspect", ["inspect", ws["cnn.h5"], "--tree", "--stats"]),
        ("diff", ["diff", ws["cnn.h5"], ws["cnn-named.h5"], "--values"]),
        ("run", ["run", ws["mlp.h5"], "--random-input", "2,100"]),
        ("rename", ["rename", ws["cnn.h5"], "--map", r"^output\.=head.", "--dry-run"]),
        ("rename", ["rename", ws["cnn.h5"], "-o", ws.out("r.h5"), "--map", r"^output\.=head."]),
        ("replace-head", ["replace-head", ws["cnn.h5"], "--classes", "3", "--dry-run"]),
        ("replace-head", ["replace-head", ws["cnn.h5"], "-o", ws.out("h.h5"), "--classes", "3"]),
        ("convert", ["convert", ws["cnn.h5"], "--to", "named", "--dry-run"]),
        ("convert", ["convert", ws["cnn.h5"], "-o", ws.out("n.h5"), "--to", "named"]),
        ("zoo", ["zoo", "--list"]),
    ]


def test_json_is_one_versioned_document_and_nothing_else(ws):
    for command, args in _json_commands(ws):
        result = ws.invoke(*args, "--json")
        document = parse_json(result, command)  # strict: one document, no trailing text, no NaN
        assert set(document) >= ENVELOPE, args
        assert result.stderr == "", f"--json prints nothing on stderr either: {describe(result, args)}"
        keys = list(document)
        assert keys == sorted(keys), "JSON keys are sorted (stable output)"


def test_human_output_in_a_pipe_is_plain_text(ws):
    for _, args in _json_commands(ws):
        for p in ws.outputs.iterdir():
            p.unlink()
        result = ws.invoke(*args)
        assert "\x1b[" not in result.stdout and "\x1b[" not in result.stderr, args
        assert not result.stdout.lstrip().startswith("{"), f"JSON only with --json: {args}"
        for box in "│─┃━┏┡╭":
            assert box not in result.stdout, f"no rich box drawing in a pipe: {args}"


def test_quiet_drops_notes_and_change_reports_but_not_data(ws):
    out = ws.out("r.h5")
    result = ws.invoke("rename", ws["cnn.h5"], "-o", out, "--map", r"^output\.=head.", "-q")
    assert result.stderr == "" and result.stdout == ""  # a writing command's report is not its data
    result = ws.invoke("rename", ws["cnn.h5"], "-o", ws.out("r2.h5"), "--map", r"^output\.=head.")
    assert table(result)[1] == [["output.weight", "head.weight"], ["output.bias", "head.bias"]]
    result = ws.invoke("diff", ws["cnn.h5"], ws["mlp.h5"], "--quiet", code=1)
    assert result.stderr == "" and result.stdout


# -- inspect: the table and JSON ----------------------------------------------------------------


def test_inspect_json_lists_every_tensor_with_totals(ws):
    document = ws.json("inspect", ws["cnn.h5"], command="inspect")
    arrays = read_arrays(ws["cnn.h5"])
    assert document["file"] == str(ws["cnn.h5"])
    assert document["format"] == "modelsurgeon-h5"
    assert document["kind"] == "structural"
    assert [t["key"] for t in document["tensors"]] == CNN_KEYS
    for record in document["tensors"]:
        array = arrays[record["key"]]
        assert record["shape"] == list(array.shape)
        assert record["dtype"] == "float32"
        assert record["size"] == array.size
        assert record["bytes"] == array.nbytes
        assert "stats" not in record
        assert "structural" not in record and "alias_of" not in record
    assert document["summary"] == {"tensors": 16, "parameters": sum(a.size for a in arrays.values()),
                                   "bytes": sum(a.nbytes for a in arrays.values()), "shared": 0}
    assert "tree" not in document


def test_inspect_architecture_summary(ws):
    document = ws.json("inspect", ws["cnn.h5"], command="inspect")
    arch = document["architecture"]
    assert arch["root"] == "HybridSequential"
    assert arch["inputs"] == [{"name": "data", "shape": [1, 3, 32, 32], "dtype": "float32"}]
    assert arch["types"]["Conv2D"] == 3 and arch["types"]["Dense"] == 1 and arch["types"]["BatchNorm"] == 2
    assert arch["blocks"] == sum(arch["types"].values())
    assert document["graph"] is None


def test_inspect_file_without_architecture(ws):
    document = ws.json("inspect", ws["tutorial.h5"], command="inspect")
    assert [t["key"] for t in document["tensors"]] == TUTORIAL_KEYS
    assert document["architecture"] is None and document["graph"] is None


def test_inspect_plain_table(ws):
    result = ws.invoke("inspect", ws["cnn.h5"])
    header, rows = table(result)
    assert header == ["key", "shape", "dtype", "size", "bytes"]
    assert [row[0] for row in rows] == CNN_KEYS
    assert rows[0] == ["features.0.weight", "(8, 3, 3, 3)", "float32", "216", "864 B"]
    assert rows[1] == ["features.0.bias", "(8,)", "float32", "8", "32 B"]
    assert rows[12] == ["features.6.weight", "(32, 16, 3, 3)", "float32", "4,608", "18.0 KiB"]
    assert result.stderr == ""


@pytest.mark.parametrize("name, structural", [("tutorial-named.h5", TUTORIAL_KEYS), ("cnn-named.h5", CNN_KEYS)])
def test_inspect_named_file_shows_structural_names(ws, name, structural):
    header, rows = table(ws.invoke("inspect", ws[name]))
    assert header == ["key", "structural", "shape", "dtype", "size", "bytes"]
    assert [row[1] for row in rows] == structural
    assert all(row[0].startswith("param_") for row in rows)
    document = ws.json("inspect", ws[name], command="inspect")
    assert document["kind"] == "named"
    assert [t["structural"] for t in document["tensors"]] == [[s] for s in structural]
    expected_roles = {"arg", "aux"} if name.startswith("cnn") else {"arg"}
    assert {t["role"] for t in document["tensors"]} == expected_roles
    roles = {t["structural"][0]: t["role"] for t in document["tensors"]}
    assert roles.get("features.1.running_mean", "aux") == "aux"


def test_inspect_named_file_graph_summary(ws):
    tutorial = ws.json("inspect", ws["tutorial-named.h5"], command="inspect")
    assert tutorial["graph"]["inputs"] == ["data"]
    assert tutorial["graph"]["operators"]["FullyConnected"] == 3
    assert tutorial["graph"]["outputs"] == 1
    assert tutorial["graph"]["nodes"] >= 3 + 6 + 1
    cnn = ws.json("inspect", ws["cnn-named.h5"], command="inspect")
    assert cnn["graph"]["operators"]["Convolution"] == 3
    assert cnn["graph"]["operators"]["BatchNorm"] == 2
    assert cnn["graph"]["operators"]["FullyConnected"] == 1
    assert cnn["architecture"]["inputs"][0]["shape"] == [1, 3, 32, 32]


# -- --tree -------------------------------------------------------------------------------------


def _leaf(name, shape, itemsize=4):
    size = int(np.prod(shape))
    return {"name": name, "tensors": 1, "params": size, "bytes": size * itemsize, "shape": list(shape),
            "dtype": "float32"}


def test_tree_folds_identical_numbered_siblings(ws, tmp_path):
    path = repeated_blocks_file(tmp_path / "repeated.h5")
    ws.guard(path)
    document = ws.json("inspect", path, "--tree", command="inspect")
    block = [_leaf("weight", (8, 8)), _leaf("bias", (8,))]
    assert document["tree"] == [
        {"name": "body", "tensors": 8, "params": 4 * 72, "bytes": 4 * 288,
         "children": [{"name": "#", "repeat": 4, "indices": ["0", "1", "2", "3"], "tensors": 2, "params": 72,
                       "bytes": 288, "children": block}]},
        {"name": "output", "tensors": 2, "params": 27, "bytes": 108,
         "children": [_leaf("weight", (3, 8)), _leaf("bias", (3,))]},
    ]
    # the flat list is still complete, and the tree's totals add up to the summary
    assert len(document["tensors"]) == 10
    assert sum(n["params"] * n.get("repeat", 1) for n in document["tree"]) == document["summary"]["parameters"]
    assert document["summary"]["parameters"] == 4 * 72 + 27


def test_tree_does_not_fold_different_siblings(ws):
    document = ws.json("inspect", ws["cnn.h5"], "--tree", command="inspect")
    features, output = document["tree"]
    assert features["name"] == "features" and output["name"] == "output"
    assert [c["name"] for c in features["children"]] == ["0", "1", "3", "4", "6"]
    assert all("repeat" not in c for c in features["children"])
    assert features["tensors"] == 14
    assert features["params"] + output["params"] == document["summary"]["parameters"]
    assert output["children"][0] == _leaf("weight", (10, 32))


def test_tree_plain_text(ws, tmp_path):
    path = repeated_blocks_file(tmp_path / "repeated.h5")
    result = ws.invoke("inspect", path, "--tree")
    lines = result.stdout.splitlines()
    assert lines[0] == "body  (8 tensors, 288 params)"
    assert lines[1] == "  # x4 [0..3]  (2 tensors, 72 params)"
    assert lines[2] == "    weight  (8, 8) float32"
    assert lines[3] == "    bias  (8,) float32"
    assert lines[4] == "output  (2 tensors, 27 params)"
    assert "\x1b[" not in result.stdout


def test_tree_with_filter(ws, tmp_path):
    path = repeated_blocks_file(tmp_path / "repeated.h5")
    document = ws.json("inspect", path, "--tree", "--filter", r"\.weight$", command="inspect")
    body = document["tree"][0]
    assert body["tensors"] == 4
    assert body["children"][0]["repeat"] == 4
    assert body["children"][0]["children"] == [_leaf("weight", (8, 8))]


# -- --filter -----------------------------------------------------------------------------------


def test_filter_selects_keys_and_totals(ws):
    document = ws.json("inspect", ws["cnn.h5"], "--filter", r"^features\.1\.", command="inspect")
    assert [t["key"] for t in document["tensors"]] == ["features.1.gamma", "features.1.beta",
                                                       "features.1.running_mean", "features.1.running_var"]
    assert document["summary"] == {"tensors": 4, "parameters": 32, "bytes": 128, "shared": 0}


def test_filter_searches_anywhere_in_the_key(ws):
    document = ws.json("inspect", ws["cnn.h5"], "--filter", "running", command="inspect")
    assert len(document["tensors"]) == 4
    _header, rows = table(ws.invoke("inspect", ws["cnn.h5"], "--filter", "bias$"))
    assert [r[0] for r in rows] == [k for k in CNN_KEYS if k.endswith("bias")]


def test_filter_matching_nothing_is_not_an_error(ws):
    document = ws.json("inspect", ws["cnn.h5"], "--filter", "nothing-like-this", command="inspect")
    assert document["tensors"] == [] and document["summary"]["tensors"] == 0


def test_bad_filter_regex_is_an_error(ws):
    result = ws.invoke("inspect", ws["cnn.h5"], "--filter", "(unclosed", code=2)
    assert "--filter" in result.stderr and "Traceback" not in result.stderr


# -- --stats ------------------------------------------------------------------------------------


def test_stats_count_nan_and_inf_and_use_finite_values(ws, tmp_path):
    path = nonfinite_file(tmp_path / "nonfinite.h5")
    ws.guard(path)
    document = ws.json("inspect", path, "--stats", command="inspect")
    by_key = {t["key"]: t["stats"] for t in document["tensors"]}
    finite = np.array([1, 2, 3, 5, 6, 7, 10, 11], np.float64)
    weight = by_key["weight"]
    assert weight["nan"] == 2 and weight["inf"] == 2
    assert weight["min"] == 1.0 and weight["max"] == 11.0
    assert weight["mean"] == pytest.approx(finite.mean())
    assert weight["std"] == pytest.approx(finite.std())
    bias = by_key["bias"]
    assert bias == {"min": 1.0, "max": 4.0, "mean": 2.5, "std": pytest.approx(np.std([1, 2, 3, 4])), "nan": 0,
                    "inf": 0}


def test_stats_match_numpy_on_every_tensor(ws):
    document = ws.json("inspect", ws["cnn.h5"], "--stats", command="inspect")
    arrays = read_arrays(ws["cnn.h5"])
    for record in document["tensors"]:
        values = arrays[record["key"]].astype(np.float64)
        stats = record["stats"]
        assert stats["min"] == pytest.approx(values.min())
        assert stats["max"] == pytest.approx(values.max())
        assert stats["mean"] == pytest.approx(values.mean(), abs=1e-9)
        assert stats["std"] == pytest.approx(values.std(), abs=1e-9)
        assert stats["nan"] == 0 and stats["inf"] == 0


def test_stats_plain_table_columns(ws, tmp_path):
    path = nonfinite_file(tmp_path / "nonfinite.h5")
    header, rows = table(ws.invoke("inspect", path, "--stats"))
    assert header == ["key", "shape", "dtype", "size", "bytes", "min", "max", "mean", "std", "nan", "inf"]
    weight = dict(zip(header, rows[0]))
    assert weight["key"] == "weight" and weight["nan"] == "2" and weight["inf"] == "2"
    assert weight["min"] == "1" and weight["max"] == "11"


def test_stats_on_a_named_file_are_streamed_per_tensor(ws):
    document = ws.json("inspect", ws["cnn-named.h5"], "--stats", "--filter", "running_var", command="inspect")
    assert len(document["tensors"]) == 2
    for record in document["tensors"]:
        assert 0.5 <= record["stats"]["min"] <= record["stats"]["max"] <= 2.0  # make_samples: U(0.5, 2)


def _forbid_reading(monkeypatch):
    from modelsurgeon.core.formats import h5

    def refuse(self, key):
        raise RuntimeError(f"tensor data of {key!r} was read")

    monkeypatch.setattr(h5.H5Reader, "read", refuse)


@pytest.mark.parametrize("extra", [[], ["--tree"], ["--json"], ["--filter", "output"], ["--tree", "--json"]])
def test_inspect_reads_metadata_only_without_stats(ws, monkeypatch, extra):
    _forbid_reading(monkeypatch)
    for name in ("cnn.h5", "cnn-named.h5", "tutorial.h5"):
        result = ws.invoke("inspect", ws[name], *extra)
        assert result.stdout


def test_stats_do_read_the_data(ws, monkeypatch):
    """The monkeypatch above is effective: --stats goes through read()."""
    _forbid_reading(monkeypatch)
    result = ws.invoke("inspect", ws["cnn.h5"], "--stats", code=70)
    assert "was read" in result.stderr


# -- shared tensors -----------------------------------------------------------------------------


def test_inspect_shared_tensors(ws, tmp_path):
    path = shared_file(tmp_path / "shared.h5")
    document = ws.json("inspect", path, command="inspect")
    records = {t["key"]: t for t in document["tensors"]}
    assert records["1.weight"]["alias_of"] == "0.weight"
    assert records["1.bias"]["alias_of"] == "0.bias"
    assert document["summary"] == {"tensors": 4, "parameters": 20, "bytes": 80, "shared": 2}
    _, rows = table(ws.invoke("inspect", path))
    assert rows[2][0] == "1.weight -> 0.weight"

def test_tree_totals_add_up_with_shared_tensors(ws, tmp_path):
    """Per-subtree counts stay true: shared (linked) tensors add no parameters, so layer '1' (all links)
    must not be folded into '#' x2 with layer '0''s 20 parameters each."""
    path = shared_file(tmp_path / "shared.h5")
    document = ws.json("inspect", path, "--tree", command="inspect")
    tree = document["tree"]
    assert sum(n["params"] * n.get("repeat", 1) for n in tree) == document["summary"]["parameters"] == 20
    assert sum(n["bytes"] * n.get("repeat", 1) for n in tree) == document["summary"]["bytes"] == 80


# -- --ops: the operator census of a graph ----------------------------------------------------------

MOBILENET_GRAPH = Path(__file__).resolve().parent / "fixtures" / "mxnet" / "zoo" / "mobilenet0.25"


def test_ops_lists_every_operator_of_an_export(ws):
    document = ws.json("inspect", MOBILENET_GRAPH / "mobilenet0.25-0000.params", "--ops", command="inspect")
    ops = {op["op"]: op for op in document["ops"]["operators"]}
    assert document["ops"]["supported"] is True and document["ops"]["unsupported"] == []
    assert ops["Convolution"]["count"] == 27 and ops["Convolution"]["first_node"] == "mobilenet0_conv0_fwd"
    result = ws.invoke("inspect", MOBILENET_GRAPH / "mobilenet0.25-symbol.json", "--ops")
    assert "Convolution\t27\tyes\tmobilenet0_conv0_fwd" in result.stdout
    assert result.stderr.splitlines()[-1] == "all 6 operators run (222 nodes)"


def test_ops_names_what_cannot_run(ws, tmp_path):
    graph = {"nodes": [{"op": "null", "name": "data", "inputs": []},
                       {"op": "LRN", "name": "lrn0", "attrs": {"nsize": "5"}, "inputs": [[0, 0, 0]]},
                       {"op": "relu", "name": "relu0", "inputs": [[1, 0, 0]]}],
             "arg_nodes": [0], "heads": [[2, 0, 0]]}
    path = tmp_path / "net-symbol.json"
    path.write_text(json.dumps(graph))
    document = ws.json("inspect", path, "--ops", command="inspect")
    assert document["ops"]["unsupported"] == ["LRN"]
    lrn = next(op for op in document["ops"]["operators"] if op["op"] == "LRN")
    assert lrn == {**lrn, "supported": False, "first_node": "lrn0", "count": 1}
    result = ws.invoke("inspect", path, "--ops")
    assert result.stderr.splitlines()[-1] == "1 of 2 operators cannot run: LRN"


def test_ops_of_a_file_without_graph_is_refused(ws):
    result = ws.invoke("inspect", ws["mlp.h5"], "--ops", code=6)
    assert "has no graph" in error_line(result)
