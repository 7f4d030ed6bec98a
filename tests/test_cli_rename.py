"""`modelsurgeon rename`: rules, prefixes, refusals, architecture and graph follow, --in-place."""

from __future__ import annotations

import json
import os
import shutil

import h5py
import numpy as np
import pytest
from cli_helpers import (  # noqa: F401
    CNN_KEYS,
    MLP_KEYS,
    TUTORIAL_KEYS,
    Workspace,
    assert_same_arrays,
    digest,
    error_line,
    format_available,
    json_error,
    read_arrays,
    read_documents,
    table,
    ws,
)

from modelsurgeon.cli.errors import ExitCode

HEAD_RULE = r"^output\.=classifier."


def _values_equal(ws: Workspace, a, b) -> None:
    """diff --values: exit 0 (same tensors under the comparable keys)."""
    ws.invoke("diff", a, b, "--values", code=0)


def _renamed_arrays_equal(before: dict, after: dict, mapping: dict[str, str]) -> None:
    assert list(after) == [mapping.get(k, k) for k in before], "order preserved"
    assert_same_arrays({mapping.get(k, k): v for k, v in before.items()}, after)


# -- rules --------------------------------------------------------------------------------------


def test_map_renames_and_shows_old_to_new(ws):
    out = ws.out("r.h5")
    result = ws.invoke("rename", ws["cnn.h5"], "-o", out, "--map", HEAD_RULE)
    header, rows = table(result)
    assert header == ["old", "new"]
    assert rows == [["output.weight", "classifier.weight"], ["output.bias", "classifier.bias"]]
    assert f"wrote {out}" in result.stderr
    mapping = {"output.weight": "classifier.weight", "output.bias": "classifier.bias"}
    _renamed_arrays_equal(read_arrays(ws["cnn.h5"]), read_arrays(out), mapping)


def test_rename_json_document(ws):
    out = ws.out("r.h5")
    document = ws.json("rename", ws["cnn.h5"], "-o", out, "--map", HEAD_RULE, command="rename")
    assert document["changes"] == [{"old": "output.weight", "new": "classifier.weight"},
                                   {"old": "output.bias", "new": "classifier.bias"}]
    assert document["input"] == str(ws["cnn.h5"]) and document["output"] == str(out)
    assert document["kind"] == "structural" and document["in_place"] is False and document["dry_run"] is False
    assert document["architecture_kept"] is True
    assert document["notes"] == []


def test_rules_apply_in_order(ws):
    out = ws.out("r.h5")
    document = ws.json("rename", ws["cnn.h5"], "-o", out, "--map", r"^output\.=head.", "--map", r"^head\.=fc.",
                       command="rename")
    assert {c["new"] for c in document["changes"]} == {"fc.weight", "fc.bias"}
    reversed_order = ws.json("rename", ws["cnn.h5"], "--dry-run", "--map", r"^head\.=fc.", "--map",
                             r"^output\.=head.", command="rename")
    assert {c["new"] for c in reversed_order["changes"]} == {"head.weight", "head.bias"}


def test_rule_groups_and_architecture_follow(ws):
    out = ws.out("r.h5")
    ws.invoke("rename", ws["cnn.h5"], "-o", out, "--map", r"^features\.(\d+)\.=features.layer\1.")
    keys = list(read_arrays(out))
    assert keys == [k.replace("features.", "features.layer") for k in CNN_KEYS]
    _, architecture, _, _ = read_documents(out)
    features = dict(architecture["root"]["children"])["features"]
    # children with parameters follow; parameterless ones (pools, flatten) have no key to rename
    assert [name for name, _ in features["children"]] == ["layer0", "layer1", "2", "layer3", "layer4", "5",
                                                           "layer6", "7", "8"]
    # the renamed file loads and computes exactly what the original does
    np.testing.assert_array_equal(ws.forward(out), ws.forward(ws["cnn.h5"]))


def test_mlp_numbered_children_renamed_still_run(ws):
    out = ws.out("m.h5")
    ws.invoke("rename", ws["mlp.h5"], "-o", out, "--map", r"^(\d+)\.=dense\1.")
    assert list(read_arrays(out)) == ["dense" + k for k in MLP_KEYS]
    np.testing.assert_array_equal(ws.forward(out), ws.forward(ws["mlp.h5"]))


def test_rule_file_text_with_comments(ws, tmp_path):
    rules = tmp_path / "rules.txt"
    rules.write_text("# rename the head\n\n^output\\.=head.\n   # indented comment\n^head\\.=fc.\n")
    ws.guard(rules)
    document = ws.json("rename", ws["cnn.h5"], "-o", ws.out("r.h5"), "--map-file", rules, command="rename")
    assert [c["new"] for c in document["changes"]] == ["fc.weight", "fc.bias"]


def test_rule_file_json_dict(ws, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({r"^output\.": "head.", r"^head\.": "fc."}))
    document = ws.json("rename", ws["cnn.h5"], "-o", ws.out("r.h5"), "--map-file", rules, command="rename")
    assert [c["new"] for c in document["changes"]] == ["fc.weight", "fc.bias"]


def test_rule_file_json_list(ws, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([[r"^features\.(\d)\.", r"f.\1."], [r"^output\.", "head."]]))
    document = ws.json("rename", ws["cnn.h5"], "-o", ws.out("r.h5"), "--map-file", rules, command="rename")
    assert len(document["changes"]) == 16
    assert {"old": "features.6.bias", "new": "f.6.bias"} in document["changes"]
    np.testing.assert_array_equal(ws.forward(ws.out("r.h5")), ws.forward(ws["cnn.h5"]))


def test_map_and_map_file_combine_in_order(ws, tmp_path):
    rules = tmp_path / "rules.txt"
    rules.write_text("^head\\.=fc.\n")
    document = ws.json("rename", ws["cnn.h5"], "--dry-run", "--map", r"^output\.=head.", "--map-file", rules,
                       command="rename")
    assert [c["new"] for c in document["changes"]] == ["fc.weight", "fc.bias"]


@pytest.mark.parametrize("content", ["{not json", '[["only one"]]', '{"a": 1}', "no equals sign here"])
def test_bad_rule_file(ws, tmp_path, content):
    rules = tmp_path / "rules.txt"
    rules.write_text(content)
    result = ws.invoke("rename", ws["cnn.h5"], "-o", ws.out("r.h5"), "--map-file", rules, code=ExitCode.USAGE)
    assert str(rules) in error_line(result) or "rule" in error_line(result)
    assert ws.output_files() == []


def test_missing_rule_file(ws, tmp_path):
    result = ws.invoke("rename", ws["cnn.h5"], "-o", ws.out("r.h5"), "--map-file", tmp_path / "nope.txt",
                       code=ExitCode.NOT_FOUND)
    assert "nope.txt" in error_line(result)
    assert ws.output_files() == []


@pytest.mark.parametrize("rule", ["no-equals-sign", "=empty-pattern", "(unclosed=x"])
def test_bad_map_rule(ws, rule):
    result = ws.invoke("rename", ws["cnn.h5"], "-o", ws.out("r.h5"), "--map", rule, code=ExitCode.USAGE)
    assert rule in error_line(result) or "(unclosed" in error_line(result)
    assert ws.output_files() == []


def test_bad_group_reference_in_replacement(ws):
    result = ws.invoke("rename", ws["cnn.h5"], "-o", ws.out("r.h5"), "--map", r"^output=\3", code=ExitCode.INVALID)
    assert "replacement" in error_line(result)
    assert ws.output_files() == []


def test_no_rules_is_an_error(ws):
    result = ws.invoke("rename", ws["cnn.h5"], "-o", ws.out("r.h5"), code=None)
    assert result.exit_code in (ExitCode.USAGE, ExitCode.INVALID)
    assert "--map" in result.stderr
    assert ws.output_files() == []


# -- prefixes -----------------------------------------------------------------------------------


def test_add_then_strip_prefix_round_trip(ws):
    wrapped, unwrapped = ws.out("wrapped.h5"), ws.out("unwrapped.h5")
    ws.invoke("rename", ws["cnn.h5"], "-o", wrapped, "--add-prefix", "module.")
    assert list(read_arrays(wrapped)) == ["module." + k for k in CNN_KEYS]
    _, architecture, _, _ = read_documents(wrapped)
    assert [name for name, _ in architecture["root"]["children"]] == ["module"]
    np.testing.assert_array_equal(ws.forward(wrapped), ws.forward(ws["cnn.h5"]))
    ws.invoke("rename", wrapped, "-o", unwrapped, "--strip-prefix", "module.")
    assert list(read_arrays(unwrapped)) == CNN_KEYS
    _values_equal(ws, ws["cnn.h5"], unwrapped)
    assert read_documents(unwrapped)[1] == read_documents(ws["cnn.h5"])[1]


def test_strip_prefix_only_where_keys_start_with_it(ws):
    document = ws.json("rename", ws["cnn.h5"], "--dry-run", "--strip-prefix", "output.", "--drop-architecture",
                       command="rename")
    assert [c["old"] for c in document["changes"]] == ["output.weight", "output.bias"]
    assert [c["new"] for c in document["changes"]] == ["weight", "bias"]


def test_strip_prefix_is_literal_not_a_regex(ws):
    document = ws.json("rename", ws["tutorial.h5"], "--dry-run", "--strip-prefix", "d.", command="rename")
    assert document["changes"] == []  # 'd.' would match 'de' as a regex


def test_add_prefix_on_a_file_without_architecture(ws):
    out = ws.out("t.h5")
    ws.invoke("rename", ws["tutorial.h5"], "-o", out, "--add-prefix", "net.")
    assert list(read_arrays(out)) == ["net." + k for k in TUTORIAL_KEYS]


# -- refusals: nothing is written ---------------------------------------------------------------


def test_collision_is_refused_listing_offenders(ws):
    out = ws.out("r.h5")
    result = ws.invoke("rename", ws["cnn.h5"], "-o", out, "--map", r"features\.\d+=x", code=ExitCode.INVALID)
    message = error_line(result)
    assert "collision" in message
    assert "features.0.weight + features.3.weight + features.6.weight -> x.weight" in message
    assert "nothing was written" in message
    assert ws.output_files() == []
    assert result.stdout == "", "no old -> new table for a refused rename"


def test_collision_json_error(ws):
    result = ws.invoke("rename", ws["cnn.h5"], "-o", ws.out("r.h5"), "--map", r"features\.\d+=x", "--json",
                       code=None)
    error = json_error(result, ExitCode.INVALID)
    assert "collision" in error["message"]
    assert ws.output_files() == []


def test_empty_segment_is_refused(ws):
    result = ws.invoke("rename", ws["cnn.h5"], "-o", ws.out("r.h5"), "--map", "^features=", code=ExitCode.INVALID)
    message = error_line(result)
    assert "empty path segment" in message and "features.0.weight -> '.0.weight'" in message
    assert ws.output_files() == []


@pytest.mark.parametrize("rule", [r"^output\.weight$=", r"\.=..", r"^output=features."])
def test_other_empty_segments_are_refused(ws, rule):
    result = ws.invoke("rename", ws["cnn.h5"], "-o", ws.out("r.h5"), "--map", rule, "--drop-architecture",
                       code=ExitCode.INVALID)
    assert "empty path segment" in error_line(result)
    assert ws.output_files() == []


def test_strict_unused_rule_is_refused(ws):
    result = ws.invoke("rename", ws["cnn.h5"], "-o", ws.out("r.h5"), "--map", HEAD_RULE, "--map", "nomatch=x",
                       "--strict", code=ExitCode.INVALID)
    message = error_line(result)
    assert "matched no key" in message and "nomatch=x" in message and HEAD_RULE not in message
    assert ws.output_files() == []


def test_unused_rule_without_strict_is_a_note(ws):
    out = ws.out("r.h5")
    result = ws.invoke("rename", ws["cnn.h5"], "-o", out, "--map", HEAD_RULE, "--map", "nomatch=x")
    assert "matched nothing" in result.stderr and "nomatch=x" in result.stderr
    assert out.exists()
    document = ws.json("rename", ws["cnn.h5"], "--dry-run", "--map", "nomatch=x", command="rename")
    assert any("nomatch=x" in note for note in document["notes"])
    assert document["changes"] == []


def test_parameter_local_name_needs_drop_architecture(ws):
    out = ws.out("k.h5")
    result = ws.invoke("rename", ws["cnn.h5"], "-o", out, "--map", "weight$=kernel", code=ExitCode.INVALID)
    message = error_line(result)
    assert "weight -> kernel" in message and "--drop-architecture" in message
    assert ws.output_files() == []

    document = ws.json("rename", ws["cnn.h5"], "-o", out, "--map", "weight$=kernel", "--drop-architecture",
                       command="rename")
    assert document["architecture_kept"] is False
    assert any("architecture dropped" in note for note in document["notes"])
    mapping = {k: k[: -len("weight")] + "kernel" for k in CNN_KEYS if k.endswith("weight")}
    _renamed_arrays_equal(read_arrays(ws["cnn.h5"]), read_arrays(out), mapping)
    inspected = ws.json("inspect", out, command="inspect")
    assert inspected["architecture"] is None


def test_parameter_local_name_in_a_file_without_architecture(ws):
    out = ws.out("k.h5")
    ws.invoke("rename", ws["tutorial.h5"], "-o", out, "--map", "weight$=kernel")
    assert list(read_arrays(out)) == [k.replace("weight", "kernel") for k in TUTORIAL_KEYS]


def test_depth_change_for_some_keys_needs_drop_architecture(ws):
    result = ws.invoke("rename", ws["cnn.h5"], "-o", ws.out("r.h5"), "--map", r"^features\.=",
                       code=ExitCode.INVALID)
    assert "--drop-architecture" in error_line(result)
    assert ws.output_files() == []


# -- outputs ------------------------------------------------------------------------------------


def test_dry_run_writes_nothing(ws):
    out = ws.out("r.h5")
    result = ws.invoke("rename", ws["cnn.h5"], "-o", out, "--map", HEAD_RULE, "--dry-run")
    assert table(result)[1] == [["output.weight", "classifier.weight"], ["output.bias", "classifier.bias"]]
    assert "dry run" in result.stderr
    document = ws.json("rename", ws["cnn.h5"], "--map", HEAD_RULE, "--dry-run", command="rename")
    assert document["dry_run"] is True and document["output"] is None and len(document["changes"]) == 2
    assert ws.output_files() == []


def test_output_is_required_without_dry_run(ws):
    result = ws.invoke("rename", ws["cnn.h5"], "--map", HEAD_RULE, code=ExitCode.USAGE)
    assert "-o/--output" in result.stderr


def test_existing_output_needs_force(ws):
    out = ws.out("r.h5")
    out.write_bytes(b"keep me")
    result = ws.invoke("rename", ws["cnn.h5"], "-o", out, "--map", HEAD_RULE, code=ExitCode.OUTPUT_EXISTS)
    assert "--force" in error_line(result)
    assert out.read_bytes() == b"keep me"
    ws.invoke("rename", ws["cnn.h5"], "-o", out, "--map", HEAD_RULE, "--force")
    assert list(read_arrays(out))[-1] == "classifier.bias"


@pytest.mark.parametrize("spelling", ["same", "dotted", "symlink"])
def test_output_equal_to_input_is_refused(ws, spelling):
    target = {"same": str(ws["cnn.h5"]), "dotted": f"{ws.outputs}/../in/./cnn.h5", "symlink": str(ws.out("link.h5"))}
    if spelling == "symlink":
        os.symlink(ws["cnn.h5"], target[spelling])
    result = ws.invoke("rename", ws["cnn.h5"], "-o", target[spelling], "--map", HEAD_RULE, "--force", code=None)
    assert result.exit_code == ExitCode.INVALID, result.stderr
    assert "is the input" in error_line(result) and "--in-place" in error_line(result)


def test_in_place_and_output_exclude_each_other(ws, tmp_path):
    copy = tmp_path / "copy.h5"
    shutil.copyfile(ws["cnn.h5"], copy)
    before = digest(copy)
    ws.invoke("rename", copy, "--in-place", "-o", ws.out("r.h5"), "--map", HEAD_RULE, code=ExitCode.USAGE)
    assert digest(copy) == before and ws.output_files() == []


# -- --in-place ---------------------------------------------------------------------------------


def _data_offsets(path) -> dict[str, int]:
    with h5py.File(path, "r") as f:
        return {name: f["tensors"][name].id.get_offset() for name in f["tensors"]}


def test_in_place_renames_without_rewriting_data(ws, tmp_path):
    copy = tmp_path / "copy.h5"
    shutil.copyfile(ws["cnn.h5"], copy)
    offsets = _data_offsets(copy)
    document = ws.json("rename", copy, "--in-place", "--map", HEAD_RULE, command="rename")
    assert document["in_place"] is True and document["output"] == str(copy)
    mapping = {"output.weight": "classifier.weight", "output.bias": "classifier.bias"}
    _renamed_arrays_equal(read_arrays(ws["cnn.h5"]), read_arrays(copy), mapping)
    after = _data_offsets(copy)
    assert after == {mapping.get(k, k): v for k, v in offsets.items()}, "datasets moved, data not rewritten"
    np.testing.assert_array_equal(ws.forward(copy), ws.forward(ws["cnn.h5"]))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".modelsurgeon-tmp")]


def test_in_place_swap(ws, tmp_path):
    copy = tmp_path / "copy.h5"
    shutil.copyfile(ws["tutorial.h5"], copy)
    ws.invoke("rename", copy, "--in-place", "--map", "^dense0=tmp", "--map", "^dense1=dense0", "--map", "^tmp=dense1")
    after, before = read_arrays(copy), read_arrays(ws["tutorial.h5"])
    assert list(after) == ["dense1.weight", "dense1.bias", "dense0.weight", "dense0.bias", "mydense.weight",
                           "mydense.bias"]
    assert_same_arrays({"dense1.weight": before["dense0.weight"], "dense0.weight": before["dense1.weight"]}, after,
                       ["dense1.weight", "dense0.weight"])


def test_in_place_named_file_graph_follows(ws, tmp_path):
    copy = tmp_path / "copy.h5"
    shutil.copyfile(ws["cnn-named.h5"], copy)
    ws.invoke("rename", copy, "--in-place", "--map", "^param_=w_")
    keys = list(read_arrays(copy))
    assert all(k.startswith("w_") for k in keys)
    _, _, graph, _ = read_documents(copy)
    names = {node["name"] for node in graph["nodes"] if node["op"] == "null"}
    assert set(keys) <= names and not any(n.startswith("param_") for n in names)
    np.testing.assert_array_equal(ws.forward(copy, "1,3,32,32"), ws.forward(ws["cnn-named.h5"], "1,3,32,32"))


def test_in_place_refusal_leaves_the_file_alone(ws, tmp_path):
    copy = tmp_path / "copy.h5"
    shutil.copyfile(ws["cnn.h5"], copy)
    before = digest(copy)
    ws.invoke("rename", copy, "--in-place", "--map", r"features\.\d+=x", code=ExitCode.INVALID)
    ws.invoke("rename", copy, "--in-place", "--map", "weight$=kernel", code=ExitCode.INVALID)
    ws.invoke("rename", copy, "--in-place", "--map", HEAD_RULE, "--dry-run")
    assert digest(copy) == before


def test_in_place_refused_for_other_formats(ws, tmp_path):
    if not format_available("safetensors_io"):
        pytest.skip("safetensors writer not available")
    st = tmp_path / "cnn.safetensors"
    ws.invoke("convert", ws["cnn.h5"], "-o", st)
    before = digest(st)
    result = ws.invoke("rename", st, "--in-place", "--map", HEAD_RULE, code=ExitCode.INVALID)
    assert "--in-place" in error_line(result) and "-o" in error_line(result)
    assert digest(st) == before
    # with -o it works, in the same format
    out = tmp_path / "renamed.safetensors"
    ws.invoke("rename", st, "-o", out, "--map", HEAD_RULE)
    assert ws.json("inspect", out, command="inspect")["format"] == "safetensors"
    assert {"classifier.weight", "classifier.bias"} <= set(read_arrays(out))


# -- named files --------------------------------------------------------------------------------


def test_named_file_graph_follows_and_runs(ws):
    out = ws.out("n.h5")
    document = ws.json("rename", ws["cnn-named.h5"], "-o", out, "--map", "^param_=p_", command="rename")
    assert document["kind"] == "named" and len(document["changes"]) == 16
    before, after = read_arrays(ws["cnn-named.h5"]), read_arrays(out)
    mapping = {c["old"]: c["new"] for c in document["changes"]}
    _renamed_arrays_equal(before, after, mapping)
    kind, _, graph, _ = read_documents(out)
    assert kind == "named"
    variables = [node["name"] for node in graph["nodes"] if node["op"] == "null"]
    assert variables[0] == "data"
    assert set(variables[1:]) == set(after)
    # structural names are still recorded
    inspected = ws.json("inspect", out, command="inspect")
    assert [t["structural"][0] for t in inspected["tensors"]] == CNN_KEYS
    assert inspected["graph"]["inputs"] == ["data"]
    np.testing.assert_array_equal(ws.forward(out, "2,3,32,32"), ws.forward(ws["cnn-named.h5"], "2,3,32,32"))
    _values_equal(ws, ws["cnn.h5"], out)


def test_named_tutorial_rename_runs(ws):
    out = ws.out("t.h5")
    ws.invoke("rename", ws["tutorial-named.h5"], "-o", out, "--add-prefix", "net_")
    np.testing.assert_array_equal(ws.forward(out, "1,20"), ws.forward(ws["tutorial-named.h5"], "1,20"))


def test_named_file_key_may_not_take_the_graph_input_name(ws):
    """'data' is the graph's input variable: a tensor renamed to it would collide in the graph."""
    out = ws.out("n.h5")
    first = next(iter(read_arrays(ws["tutorial-named.h5"])))
    result = ws.invoke("rename", ws["tutorial-named.h5"], "-o", out, "--map", f"^{first}$=data", code=None)
    if result.exit_code == 0:
        run = ws.invoke("run", out, "--random-input", "1,20", code=None)
        pytest.fail(f"the renamed file does not run: exit {run.exit_code}: {run.stderr.strip()}")
    assert result.exit_code == ExitCode.INVALID
    assert "data" in error_line(result)
    assert ws.output_files() == []
