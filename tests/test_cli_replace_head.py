"""`modelsurgeon replace-head`: finding the head, replacing it in kind, initialisation, --keep-classes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from cli_helpers import (  # noqa: F401
    CNN_KEYS,
    Workspace,
    assert_same_arrays,
    digest,
    error_line,
    read_arrays,
    read_documents,
    shared_file,
    squeezenet,
    structural_arrays,
    ws,
)

from modelsurgeon.cli.errors import ExitCode
from modelsurgeon.core.surgery import HEAD_INITS


def _head_json(ws: Workspace, source, out, *args) -> dict:
    return ws.json("replace-head", source, "-o", out, *args, command="replace-head")


def _others_identical(before: dict, after: dict, head_keys: set[str]) -> None:
    assert list(before) == list(after), "same keys in the same order"
    assert_same_arrays(before, after, [k for k in before if k not in head_keys])


def _graph_head_attr(path, op: str, attr: str) -> list[str]:
    _, _, graph, _ = read_documents(path)
    return [node["attrs"][attr] for node in graph["nodes"] if node["op"] == op]


# -- dense heads --------------------------------------------------------------------------------


def test_cnn_dense_head_by_zoo_convention(ws):
    out = ws.out("h.h5")
    document = _head_json(ws, ws["cnn.h5"], out, "--classes", "3", "--seed", "0")
    assert document["head"] == {"path": "output", "kind": "dense", "weight": "output.weight", "bias": "output.bias",
                                "reason": document["head"]["reason"]}
    assert "output" in document["head"]["reason"] and "convention" in document["head"]["reason"]
    assert document["old_classes"] == 10 and document["classes"] == 3
    assert document["init"] == "xavier" and document["seed"] == 0 and document["kept_classes"] == []
    assert document["output"] == str(out) and document["dry_run"] is False
    before, after = read_arrays(ws["cnn.h5"]), read_arrays(out)
    assert after["output.weight"].shape == (3, 32) and after["output.bias"].shape == (3,)
    assert after["output.weight"].dtype == np.float32 and after["output.bias"].dtype == np.float32
    _others_identical(before, after, {"output.weight", "output.bias"})
    _, architecture, _, metadata = read_documents(out)
    output = dict(architecture["root"]["children"])["output"]
    assert output["type"] == "Dense" and output["config"]["units"] == 3
    assert metadata["modelsurgeon.head"] == "output"
    assert ws.forward(out).shape == (1, 3)


def test_diff_after_replace_head_shows_only_the_head(ws):
    out = ws.out("h.h5")
    ws.invoke("replace-head", ws["cnn.h5"], "-o", out, "--classes", "3")
    result = ws.invoke("diff", ws["cnn.h5"], out, "--values", "--json", code=ExitCode.DIFFERENT)
    document = json.loads(result.stdout)
    assert document["equal"] is False
    assert document["only_in_a"] == [] and document["only_in_b"] == []
    assert [c["key"] for c in document["changed"]] == ["output.weight", "output.bias"]
    assert document["changed"][0]["a"] == {"shape": [10, 32], "dtype": "float32"}
    assert document["changed"][0]["b"] == {"shape": [3, 32], "dtype": "float32"}
    assert len(document["values"]) == 14 and all(v["equal"] and v["max_abs_diff"] == 0 for v in document["values"])


def test_plain_text_says_which_head_and_why(ws):
    result = ws.invoke("replace-head", ws["mlp.h5"], "-o", ws.out("m.h5"), "--classes", "4")
    lines = result.stdout.splitlines()
    assert lines[0] == "head: 2 (dense), 10 -> 4 classes; chosen as the last Dense layer in the architecture"
    assert lines[1].split() == ["2.weight:", "(10,", "32)", "->", "(4,", "32)", "(xavier)"]
    assert lines[2].split() == ["2.bias:", "(10,)", "->", "(4,)", "(xavier)"]
    assert f"wrote {ws.out('m.h5')}" in result.stderr
    assert "\x1b[" not in result.stdout


def test_mlp_has_no_output_so_the_last_dense_is_chosen(ws):
    out = ws.out("m.h5")
    document = _head_json(ws, ws["mlp.h5"], out, "--classes", "4")
    assert document["head"]["path"] == "2"
    assert document["head"]["weight"] == "2.weight" and document["head"]["bias"] == "2.bias"
    assert document["head"]["reason"] == "the last Dense layer in the architecture"
    before, after = read_arrays(ws["mlp.h5"]), read_arrays(out)
    _others_identical(before, after, {"2.weight", "2.bias"})
    assert after["2.weight"].shape == (4, 32)
    assert ws.forward(out).shape == (1, 4)


def test_file_without_architecture_uses_last_weight_with_bias(ws):
    document = _head_json(ws, ws["tutorial.h5"], ws.out("t.h5"), "--classes", "4")
    assert document["head"]["path"] == "mydense"
    assert "no architecture or graph" in document["head"]["reason"]
    assert read_arrays(ws.out("t.h5"))["mydense.weight"].shape == (4, 20)


def test_named_graph_file_uses_last_dense_in_graph_order(ws):
    out = ws.out("t.h5")
    document = _head_json(ws, ws["tutorial-named.h5"], out, "--classes", "4")
    assert "graph order" in document["head"]["reason"]
    before, after = read_arrays(ws["tutorial-named.h5"]), read_arrays(out)
    head = {document["head"]["weight"], document["head"]["bias"]}
    assert structural_arrays(out)["mydense.weight"].shape == (4, 20)
    _others_identical(before, after, head)
    assert _graph_head_attr(out, "FullyConnected", "num_hidden")[-1] == "4"
    assert ws.forward(out, "2,20").shape == (2, 4)


def test_named_cnn_head(ws):
    out = ws.out("n.h5")
    document = _head_json(ws, ws["cnn-named.h5"], out, "--classes", "5", "--seed", "1")
    head = document["head"]
    assert head["path"] == "output" and head["kind"] == "dense"
    before, after = read_arrays(ws["cnn-named.h5"]), read_arrays(out)
    assert head["weight"] in before and head["weight"].startswith("param_")
    _others_identical(before, after, {head["weight"], head["bias"]})
    assert after[head["weight"]].shape == (5, 32)
    inspected = ws.json("inspect", out, command="inspect")
    assert [t["structural"][0] for t in inspected["tensors"]] == CNN_KEYS, "structural names kept"
    assert _graph_head_attr(out, "FullyConnected", "num_hidden") == ["5"]
    assert ws.forward(out, "2,3,32,32").shape == (2, 5)
    # the embedded architecture follows too: as a structural file it runs with 5 classes
    structural = ws.out("s.h5")
    ws.invoke("convert", out, "-o", structural, "--to", "structural")
    assert ws.forward(structural, "1,3,32,32").shape == (1, 5)


def test_named_and_structural_heads_agree(ws):
    """The same seed gives the same new head whichever key scheme the file uses."""
    a, b = ws.out("a.h5"), ws.out("b.h5")
    ws.invoke("replace-head", ws["cnn.h5"], "-o", a, "--classes", "5", "--seed", "4")
    ws.invoke("replace-head", ws["cnn-named.h5"], "-o", b, "--classes", "5", "--seed", "4")
    ws.invoke("diff", a, b, "--values", code=0)


# -- --head -------------------------------------------------------------------------------------


def test_head_option_names_the_layer(ws):
    document = _head_json(ws, ws["mlp.h5"], ws.out("m.h5"), "--classes", "4", "--head", "2", "--seed", "0")
    assert document["head"]["path"] == "2" and document["head"]["reason"] == "named with --head"
    ws.invoke("replace-head", ws["mlp.h5"], "-o", ws.out("default.h5"), "--classes", "4", "--seed", "0")
    ws.invoke("diff", ws.out("m.h5"), ws.out("default.h5"), "--values", code=0)
    assert digest(ws.out("m.h5")) == digest(ws.out("default.h5")), "same head, same seed: same bytes"


def test_head_option_on_a_named_file_uses_structural_path(ws):
    document = _head_json(ws, ws["cnn-named.h5"], ws.out("n.h5"), "--classes", "4", "--head", "output")
    assert document["head"]["reason"] == "named with --head"
    assert document["head"]["weight"].startswith("param_")


def test_head_that_does_not_exist_lists_the_choices(ws):
    result = ws.invoke("replace-head", ws["cnn.h5"], "-o", ws.out("h.h5"), "--classes", "3", "--head", "nothere",
                       code=ExitCode.USAGE)  # a value that names nothing is a bad value
    message = error_line(result)
    assert "'nothere'" in message and "'features'" in message and "'output'" in message
    assert ws.output_files() == []


def test_head_that_holds_several_layers_is_ambiguous(ws):
    result = ws.invoke("replace-head", ws["cnn.h5"], "-o", ws.out("h.h5"), "--classes", "3", "--head", "features",
                       code=ExitCode.INVALID)
    message = error_line(result)
    assert "features.0.weight" in message and "--head" in message
    assert ws.output_files() == []


def test_head_that_is_not_the_last_layer_is_refused(ws):
    """Replacing an inner layer would give a model that no longer runs: refuse, write nothing."""
    out = ws.out("m.h5")
    result = ws.invoke("replace-head", ws["mlp.h5"], "-o", out, "--classes", "7", "--head", "1", code=None)
    if result.exit_code == 0:
        run = ws.invoke("run", out, code=None)
        pytest.fail(f"replace-head --head 1 wrote a model that does not run: exit {run.exit_code}, {run.stderr}")
    assert result.exit_code == ExitCode.INVALID
    assert ws.output_files() == []


def test_head_whose_parameters_are_shared(ws, tmp_path):
    """Layer '1' (the head) shares its Parameters with layer '0' (tied weights). Either refuse, or
    give the new head its own tensors; never write a file whose head is still a link to the old data."""
    path = shared_file(tmp_path / "shared.h5")
    ws.guard(path)
    out = ws.out("h.h5")
    result = ws.invoke("replace-head", path, "-o", out, "--classes", "2", code=None)
    if result.exit_code != 0:
        assert result.exit_code == ExitCode.INVALID and ws.output_files() == []
        assert "shared" in error_line(result)
        return
    before, after = read_arrays(path), read_arrays(out)
    assert after["1.weight"].shape == (2, 4) and after["1.bias"].shape == (2,)
    assert_same_arrays(before, after, ["0.weight", "0.bias"])
    assert ws.json("run", out, command="run")["outputs"][0]["shape"] == [1, 2]


# -- --keep-classes -----------------------------------------------------------------------------


def test_keep_classes_copies_rows_in_order(ws):
    out = ws.out("k.h5")
    document = _head_json(ws, ws["cnn.h5"], out, "--classes", "5", "--keep-classes", "3,7,9", "--seed", "0")
    assert document["kept_classes"] == [3, 7, 9] and document["classes"] == 5
    before, after = read_arrays(ws["cnn.h5"]), read_arrays(out)
    np.testing.assert_array_equal(after["output.weight"][:3], before["output.weight"][[3, 7, 9]])
    np.testing.assert_array_equal(after["output.bias"][:3], before["output.bias"][[3, 7, 9]])
    assert after["output.weight"].shape == (5, 32)
    _others_identical(before, after, {"output.weight", "output.bias"})
    # the kept classes score exactly as before
    old, new = ws.forward(ws["cnn.h5"], "4,3,32,32"), ws.forward(out, "4,3,32,32")
    np.testing.assert_allclose(new[:, :3], old[:, [3, 7, 9]], rtol=1e-5, atol=1e-6)


def test_keep_classes_without_classes(ws):
    out = ws.out("k.h5")
    document = _head_json(ws, ws["cnn.h5"], out, "--keep-classes", "9,0")
    assert document["classes"] == 2 and document["kept_classes"] == [9, 0]
    before, after = read_arrays(ws["cnn.h5"]), read_arrays(out)
    np.testing.assert_array_equal(after["output.weight"], before["output.weight"][[9, 0]])
    np.testing.assert_array_equal(after["output.bias"], before["output.bias"][[9, 0]])
    old, new = ws.forward(ws["cnn.h5"]), ws.forward(out)
    np.testing.assert_allclose(new, old[:, [9, 0]], rtol=1e-5, atol=1e-6)


def test_keep_classes_on_a_named_file(ws):
    out = ws.out("k.h5")
    _head_json(ws, ws["cnn-named.h5"], out, "--keep-classes", "1,2,3")
    old, new = ws.forward(ws["cnn-named.h5"], "2,3,32,32"), ws.forward(out, "2,3,32,32")
    np.testing.assert_allclose(new, old[:, [1, 2, 3]], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("keep, extra, words", [
    ("3,10", [], "out of range"),
    ("-1", [], "out of range"),
    ("3,3", [], "twice"),
    ("1,2,3", ["--classes", "2"], "--classes"),
])
def test_bad_keep_classes(ws, keep, extra, words):
    result = ws.invoke("replace-head", ws["cnn.h5"], "-o", ws.out("k.h5"), "--keep-classes", keep, *extra,
                       code=ExitCode.USAGE)
    assert words in error_line(result)
    assert ws.output_files() == []


def test_keep_classes_must_be_integers(ws):
    result = ws.invoke("replace-head", ws["cnn.h5"], "-o", ws.out("k.h5"), "--keep-classes", "3,x",
                       code=ExitCode.USAGE)
    assert "--keep-classes" in result.stderr and "Traceback" not in result.stderr
    assert ws.output_files() == []


def test_classes_is_required(ws):
    result = ws.invoke("replace-head", ws["cnn.h5"], "-o", ws.out("h.h5"), code=None)
    assert result.exit_code in (ExitCode.USAGE, ExitCode.INVALID)
    assert "--classes" in result.stderr
    assert ws.output_files() == []


@pytest.mark.parametrize("classes", ["0", "-3"])
def test_classes_must_be_positive(ws, classes):
    result = ws.invoke("replace-head", ws["cnn.h5"], "-o", ws.out("h.h5"), "--classes", classes, code=None)
    assert result.exit_code in (ExitCode.USAGE, ExitCode.INVALID)
    assert "--classes" in result.stderr
    assert ws.output_files() == []


# -- --init and --seed --------------------------------------------------------------------------


@pytest.mark.parametrize("init", sorted(HEAD_INITS))
def test_every_init_is_reproducible_with_a_seed(ws, init):
    a, b, c = ws.out("a.h5"), ws.out("b.h5"), ws.out("c.h5")
    for path, seed in ((a, "7"), (b, "7"), (c, "8")):
        ws.invoke("replace-head", ws["cnn.h5"], "-o", path, "--classes", "5", "--init", init, "--seed", seed, "-q")
    assert digest(a) == digest(b), "same seed, same bytes"
    weights = [read_arrays(p)["output.weight"] for p in (a, c)]
    if init != "zeros":
        assert not np.array_equal(*weights), "another seed, other values"
    _, _, _, metadata = read_documents(a)
    assert metadata["modelsurgeon.head_init"] == f"{init} seed=7"
    assert ws.forward(a).shape == (1, 5)


@pytest.mark.parametrize("init", sorted(HEAD_INITS))
def test_init_distributions(ws, init):
    out = ws.out("h.h5")
    ws.invoke("replace-head", ws["cnn.h5"], "-o", out, "--classes", "50", "--init", init, "--seed", "0", "-q")
    arrays = read_arrays(out)
    w, b = arrays["output.weight"].astype(np.float64), arrays["output.bias"].astype(np.float64)
    fan_in, fan_out = 32, 50
    glorot = math.sqrt(6.0 / (fan_in + fan_out))  # Gluon Xavier(avg, 3) == Keras glorot_uniform
    if init == "zeros":
        assert not w.any() and not b.any()
        return
    if init == "torch":
        bound = 1 / math.sqrt(fan_in)
        assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
        assert np.abs(w).max() > 0.8 * bound and b.any(), "PyTorch initialises the bias too"
        return
    assert not b.any(), f"{init}: zero bias"
    if init in ("xavier", "keras"):
        assert np.abs(w).max() <= glorot and np.abs(w).max() > 0.8 * glorot
    elif init == "uniform":
        assert np.abs(w).max() <= 0.07 and np.abs(w).max() > 0.06
    elif init == "normal":
        assert 0.008 < w.std() < 0.012 and abs(w.mean()) < 0.002


def test_unknown_init_is_a_usage_error(ws):
    result = ws.invoke("replace-head", ws["cnn.h5"], "-o", ws.out("h.h5"), "--classes", "3", "--init", "he",
                       code=ExitCode.USAGE)
    assert "xavier" in result.stderr
    assert ws.output_files() == []


# -- outputs ------------------------------------------------------------------------------------


def test_dry_run_writes_nothing(ws):
    result = ws.invoke("replace-head", ws["cnn.h5"], "-o", ws.out("h.h5"), "--classes", "3", "--dry-run")
    assert result.stdout.startswith("head: output (dense), 10 -> 3 classes")
    assert "dry run" in result.stderr
    document = ws.json("replace-head", ws["cnn.h5"], "--classes", "3", "--dry-run", command="replace-head")
    assert document["dry_run"] is True and document["output"] is None
    assert ws.output_files() == []


def test_existing_output_needs_force(ws):
    out = ws.out("h.h5")
    out.write_bytes(b"keep me")
    ws.invoke("replace-head", ws["cnn.h5"], "-o", out, "--classes", "3", code=ExitCode.OUTPUT_EXISTS)
    assert out.read_bytes() == b"keep me"
    ws.invoke("replace-head", ws["cnn.h5"], "-o", out, "--classes", "3", "--force")
    assert read_arrays(out)["output.bias"].shape == (3,)


def test_output_equal_to_input_is_refused(ws):
    result = ws.invoke("replace-head", ws["cnn.h5"], "-o", ws["cnn.h5"], "--classes", "3", "--force",
                       code=ExitCode.INVALID)
    assert "is the input" in error_line(result)


# -- a 1x1 convolution head (SqueezeNet) --------------------------------------------------------


def test_squeezenet_conv_head(ws, squeezenet):
    ws.guard(squeezenet)
    out = ws.out("sq.h5")
    document = _head_json(ws, squeezenet, out, "--classes", "4", "--seed", "0")
    head = document["head"]
    assert head["path"] == "output.0" and head["kind"] == "conv"
    assert head["weight"] == "output.0.weight" and head["bias"] == "output.0.bias"
    assert "output" in head["reason"]
    assert document["old_classes"] == 10 and document["classes"] == 4
    before, after = read_arrays(squeezenet), read_arrays(out)
    assert after["output.0.weight"].shape == (4, 512, 1, 1) and after["output.0.bias"].shape == (4,)
    _others_identical(before, after, {"output.0.weight", "output.0.bias"})
    _, architecture, _, _ = read_documents(out)
    conv = dict(dict(architecture["root"]["children"])["output"]["children"])["0"]
    assert conv["type"] == "Conv2D" and conv["config"]["channels"] == 4
    run = ws.json("run", out, command="run")  # the recorded input shape, 1x3x224x224
    assert run["input_shape"] == [1, 3, 224, 224]
    assert run["outputs"][0]["shape"] == [1, 4]
    assert len(run["top_k"][0]) == 4


def test_squeezenet_keep_classes(ws, squeezenet):
    out = ws.out("sq.h5")
    ws.invoke("replace-head", squeezenet, "-o", out, "--keep-classes", "5,2")
    before, after = read_arrays(squeezenet), read_arrays(out)
    np.testing.assert_array_equal(after["output.0.weight"], before["output.0.weight"][[5, 2]])
    old, new = ws.forward(squeezenet), ws.forward(out)
    np.testing.assert_allclose(new, old[:, [5, 2]], rtol=1e-5, atol=1e-6)
