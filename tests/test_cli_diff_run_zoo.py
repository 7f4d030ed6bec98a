"""`modelsurgeon diff`, `run` and `zoo`."""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import (  # noqa: F401
    CNN_KEYS,
    MLP_KEYS,
    Workspace,
    digest,
    error_line,
    json_error,
    nonfinite_file,
    option_names,
    read_arrays,
    read_documents,
    suggested_options,
    write_variant,
    ws,
)

from modelsurgeon.cli.errors import ExitCode

# -- diff ---------------------------------------------------------------------------------------


def _diff(ws: Workspace, a, b, *args, code: int) -> dict:
    return ws.json("diff", a, b, *args, code=code, command="diff")


def test_diff_equal_files(ws):
    document = _diff(ws, ws["cnn.h5"], ws["cnn.h5"], code=0)
    assert document["equal"] is True
    assert document["a"] == str(ws["cnn.h5"]) and document["b"] == str(ws["cnn.h5"])
    assert document["only_in_a"] == [] and document["only_in_b"] == [] and document["changed"] == []
    assert document["values"] is None
    assert document["compared_by"] == "structural keys"
    result = ws.invoke("diff", ws["cnn.h5"], ws["cnn.h5"])
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == "same"


def test_diff_equal_values(ws):
    document = _diff(ws, ws["cnn.h5"], ws["cnn.h5"], "--values", code=0)
    assert [v["key"] for v in document["values"]] == CNN_KEYS
    assert all(v == {"key": v["key"], "max_abs_diff": 0.0, "equal": True} for v in document["values"])


def test_diff_different_keys(ws):
    document = _diff(ws, ws["cnn.h5"], ws["mlp.h5"], code=1)
    assert document["equal"] is False
    assert document["only_in_a"] == CNN_KEYS and document["only_in_b"] == MLP_KEYS
    assert document["changed"] == []
    result = ws.invoke("diff", ws["cnn.h5"], ws["mlp.h5"], code=1)
    lines = result.stdout.splitlines()
    assert lines == [f"- {k}" for k in CNN_KEYS] + [f"+ {k}" for k in MLP_KEYS]
    assert result.stderr.splitlines()[-1] == "different"


def test_diff_shape_and_dtype_changes(ws, tmp_path):
    changed = write_variant(ws["cnn.h5"], tmp_path / "changed.h5",
                            transform=lambda k, a: a.astype(np.float64) if k == "output.bias" else a)
    document = _diff(ws, ws["cnn.h5"], changed, code=1)
    assert document["changed"] == [{"key": "output.bias", "a": {"shape": [10], "dtype": "float32"},
                                    "b": {"shape": [10], "dtype": "float64"}}]
    result = ws.invoke("diff", ws["cnn.h5"], changed, code=1)
    assert result.stdout.splitlines() == ["~ output.bias: (10,) float32 -> (10,) float64"]


def test_diff_values_reports_largest_absolute_difference(ws, tmp_path):
    def change(key, array):
        if key == "output.bias":
            return array + np.float32(0.25)
        if key == "features.0.weight":
            out = array.copy()
            out[1, 2, 0, 1] -= np.float32(3.0)
            return out
        return array

    changed = write_variant(ws["cnn.h5"], tmp_path / "changed.h5", transform=change)
    document = _diff(ws, ws["cnn.h5"], changed, "--values", code=1)
    assert document["only_in_a"] == [] and document["only_in_b"] == [] and document["changed"] == []
    values = {v["key"]: v for v in document["values"]}
    a, b = read_arrays(ws["cnn.h5"]), read_arrays(changed)
    for key in ("output.bias", "features.0.weight"):
        expected = float(np.max(np.abs(a[key].astype(np.float64) - b[key].astype(np.float64))))
        assert values[key]["equal"] is False
        assert values[key]["max_abs_diff"] == pytest.approx(expected)
    assert values["features.0.weight"]["max_abs_diff"] == pytest.approx(3.0, rel=1e-6)
    assert sum(not v["equal"] for v in values.values()) == 2
    # without --values the files look the same
    _diff(ws, ws["cnn.h5"], changed, code=0)
    result = ws.invoke("diff", ws["cnn.h5"], changed, "--values", code=1)
    assert result.stdout.splitlines() == ["! features.0.weight: max |a-b| = 3", "! output.bias: max |a-b| = 0.25"]
    assert "14 of 16 equal in value" in result.stderr


def test_diff_values_nan_equal_to_nan(ws, tmp_path):
    a = nonfinite_file(tmp_path / "a.h5")
    b = write_variant(a, tmp_path / "b.h5")
    document = _diff(ws, a, b, "--values", code=0)
    assert all(v["equal"] for v in document["values"])


def test_diff_values_json_stays_valid_with_non_finite_differences(ws, tmp_path):
    """max |a-b| is NaN or Inf when one side has NaN/Inf: the JSON must still parse (jq refuses NaN)."""
    a = nonfinite_file(tmp_path / "a.h5")
    b = write_variant(a, tmp_path / "b.h5", transform=lambda k, x: np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0))
    document = _diff(ws, a, b, "--values", code=1)
    values = {v["key"]: v for v in document["values"]}
    assert values["weight"]["equal"] is False and values["bias"]["equal"] is True


@pytest.mark.parametrize("structural, named", [("cnn.h5", "cnn-named.h5"), ("tutorial.h5", "tutorial-named.h5")])
def test_diff_across_key_schemes(ws, structural, named):
    for a, b in ((ws[structural], ws[named]), (ws[named], ws[structural])):
        document = _diff(ws, a, b, "--values", code=0)
        assert "structural names" in document["compared_by"]
        assert all(v["equal"] for v in document["values"]) and len(document["values"]) > 0


def test_diff_across_schemes_finds_a_changed_tensor(ws, tmp_path):
    changed = write_variant(ws["cnn-named.h5"], tmp_path / "changed.h5",
                            transform=lambda k, a: a + 1 if a.shape == (10,) else a)
    document = _diff(ws, ws["cnn.h5"], changed, "--values", code=1)
    assert [v["key"] for v in document["values"] if not v["equal"]] == ["output.bias"]


def test_diff_two_named_exports_by_unique_names(ws):
    document = _diff(ws, ws["cnn-named.h5"], ws["cnn-named.h5"], "--values", code=0)
    assert document["compared_by"] == "named keys"


def test_diff_missing_file(ws):
    result = ws.invoke("diff", ws["cnn.h5"], ws.out("nope.h5"), code=ExitCode.NOT_FOUND)
    assert "nope.h5" in error_line(result)


# -- run ----------------------------------------------------------------------------------------


def _mlp_reference(arrays: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    h = x.astype(np.float64)
    for i, relu in ((0, True), (1, True), (2, False)):
        h = h @ arrays[f"{i}.weight"].astype(np.float64).T + arrays[f"{i}.bias"]
        if relu:
            h = np.maximum(h, 0)
    return h


def test_run_input_file_matches_a_numpy_reference(ws, tmp_path):
    x = np.random.default_rng(5).standard_normal((3, 100)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = ws.out("y.npy")
    document = ws.json("run", ws["mlp.h5"], "--input", tmp_path / "x.npy", "-o", out, command="run")
    y = np.load(out)
    assert y.shape == (3, 10) and y.dtype == np.float32
    np.testing.assert_allclose(y, _mlp_reference(read_arrays(ws["mlp.h5"]), x), rtol=1e-5, atol=1e-5)
    assert document["input_shape"] == [3, 100]
    assert document["outputs"] == [{"shape": [3, 10], "dtype": "float32"}]
    assert document["output_file"] == str(out) and document["finite"] is True
    assert len(document["top_k"]) == 3
    for row, classes in enumerate(document["top_k"]):
        assert [c["class"] for c in classes] == list(np.argsort(-y[row], kind="stable")[:5])
        assert [c["score"] for c in classes] == pytest.approx(list(np.sort(y[row])[::-1][:5]))


def test_run_random_input_is_seeded(ws):
    a = ws.json("run", ws["cnn.h5"], "--random-input", "2,3,32,32", "--seed", "1", command="run")
    b = ws.json("run", ws["cnn.h5"], "--random-input", "2x3x32x32", "--seed", "1", command="run")
    c = ws.json("run", ws["cnn.h5"], "--random-input", "(2, 3, 32, 32)", "--seed", "2", command="run")
    assert a["input_shape"] == b["input_shape"] == c["input_shape"] == [2, 3, 32, 32]
    assert a["outputs"] == [{"shape": [2, 10], "dtype": "float32"}]
    assert a["top_k"] == b["top_k"] and a["top_k"] != c["top_k"]
    assert [len(row) for row in a["top_k"]] == [5, 5]
    assert a["output_file"] is None


def test_run_uses_the_recorded_input_shape(ws):
    document = ws.json("run", ws["cnn.h5"], command="run")
    assert document["input_shape"] == [1, 3, 32, 32]
    assert ws.json("run", ws["mlp.h5"], command="run")["input_shape"] == [1, 100]


def test_run_named_file(ws):
    document = ws.json("run", ws["cnn-named.h5"], "--random-input", "2,3,32,32", "--seed", "1", command="run")
    structural = ws.json("run", ws["cnn.h5"], "--random-input", "2,3,32,32", "--seed", "1", command="run")
    assert document["outputs"] == structural["outputs"]
    assert [[c["class"] for c in row] for row in document["top_k"]] == \
        [[c["class"] for c in row] for row in structural["top_k"]]


def test_run_named_file_uses_the_recorded_input_shape(ws):
    """cnn-named.h5 records its input (1, 3, 32, 32) in its architecture, as cnn.h5 does."""
    assert ws.json("inspect", ws["cnn-named.h5"], command="inspect")["architecture"]["inputs"][0]["shape"] == \
        [1, 3, 32, 32]
    document = ws.json("run", ws["cnn-named.h5"], command="run")
    assert document["input_shape"] == [1, 3, 32, 32]


def test_run_with_symbol_option(ws, tmp_path):
    bare = write_variant(ws["tutorial-named.h5"], tmp_path / "bare.h5", graph=None)
    ws.guard(bare)
    ws.invoke("run", bare, "--random-input", "1,20", code=ExitCode.INVALID)
    document = ws.json("run", bare, "--symbol", ws["tutorial-symbol.json"], "--random-input", "1,20", command="run")
    assert document["outputs"] == [{"shape": [1, 20], "dtype": "float32"}]


def test_run_plain_text(ws):
    result = ws.invoke("run", ws["cnn.h5"], "--random-input", "2,3,32,32", "--top-k", "3")
    lines = result.stdout.splitlines()
    assert lines[0] == "input (2, 3, 32, 32) -> output (2, 10)"
    assert lines[1].startswith("  [0] ") and lines[2].startswith("  [1] ")
    assert len(lines[1].split("  [0] ")[1].split("  ")) == 3
    assert result.stderr == ""


@pytest.mark.parametrize("k, expected", [("0", 0), ("3", 3), ("50", 10)])
def test_run_top_k(ws, k, expected):
    document = ws.json("run", ws["cnn.h5"], "--top-k", k, command="run")
    if expected == 0:
        assert document["top_k"] == []
    else:
        assert [len(row) for row in document["top_k"]] == [expected]


def test_run_output_exists_needs_force(ws):
    out = ws.out("y.npy")
    out.write_bytes(b"keep me")
    result = ws.invoke("run", ws["cnn.h5"], "-o", out, code=ExitCode.OUTPUT_EXISTS)
    assert "--force" in error_line(result)
    assert out.read_bytes() == b"keep me"
    ws.invoke("run", ws["cnn.h5"], "-o", out, "--force")
    assert np.load(out).shape == (1, 10)


def test_run_without_architecture_or_graph(ws):
    result = ws.invoke("run", ws["tutorial.h5"], code=ExitCode.INVALID)
    message = error_line(result)
    assert "no architecture or graph" in message
    unknown = suggested_options(message) - option_names("run")
    assert not unknown, f"the message suggests options run does not have: {sorted(unknown)}"


@pytest.mark.parametrize("shape", ["abc", "1,3,a2", "0,3", "-1,3", "", "1.5,3"])
def test_run_bad_shape_text(ws, shape):
    result = ws.invoke("run", ws["cnn.h5"], "--random-input", shape, code=ExitCode.USAGE)
    assert "shape" in error_line(result) and "1,3,224,224" in error_line(result)


def test_run_input_of_the_wrong_size(ws):
    result = ws.invoke("run", ws["mlp.h5"], "--random-input", "1,99", code=None)
    assert result.exit_code in (ExitCode.MISMATCH, ExitCode.INVALID)
    assert "99" in error_line(result)


def test_run_input_not_found(ws):
    result = ws.invoke("run", ws["cnn.h5"], "--input", ws.out("nope.npy"), code=ExitCode.NOT_FOUND)
    assert "nope.npy" in error_line(result)


def test_run_input_not_an_array(ws, tmp_path):
    (tmp_path / "x.npy").write_text("not numpy")
    result = ws.invoke("run", ws["cnn.h5"], "--input", tmp_path / "x.npy", code=ExitCode.USAGE)
    assert "x.npy" in result.stderr
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    ws.invoke("run", ws["cnn.h5"], "--input", tmp_path / "x.npz", code=ExitCode.USAGE)


def test_run_input_and_random_input_exclude_each_other(ws, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 100), np.float32))
    result = ws.invoke("run", ws["mlp.h5"], "--input", tmp_path / "x.npy", "--random-input", "1,100",
                       code=ExitCode.USAGE)
    assert "--random-input" in result.stderr


def test_run_reports_non_finite_output(ws, tmp_path):
    path = nonfinite_file(tmp_path / "nonfinite.h5")
    result = ws.invoke("run", path, "--random-input", "1,3")
    assert "NaN or Inf" in result.stderr
    document = ws.json("run", path, "--random-input", "1,3", command="run")  # strict JSON: no NaN/Infinity
    assert document["finite"] is False


# -- zoo ----------------------------------------------------------------------------------------


def test_zoo_list(ws):
    result = ws.invoke("zoo", "--list")
    names = result.stdout.splitlines()
    assert {"alexnet", "resnet18_v1", "squeezenet1.1", "mobilenet0.25", "vgg11"} <= set(names)
    assert names == sorted(names)
    document = ws.json("zoo", "--list", command="zoo")
    assert document["models"] == names


def test_zoo_writes_a_model_that_runs(ws):
    out = ws.out("m.h5")
    document = ws.json("zoo", "mobilenet0.25", "-o", out, "--classes", "7", "--seed", "3", command="zoo")
    assert document["model"] == "mobilenet0.25" and document["classes"] == 7 and document["seed"] == 3
    assert document["output"] == str(out) and document["dry_run"] is False
    arrays = read_arrays(out)
    assert document["tensors"] == len(arrays)
    assert document["parameters"] == sum(a.size for a in arrays.values())
    assert arrays["output.weight"].shape[0] == 7
    _, architecture, _, metadata = read_documents(out)
    assert architecture["root"]["type"] == "MobileNet"
    assert metadata["modelsurgeon.zoo"] == "mobilenet0.25 classes=7 seed=3"
    run = ws.json("run", out, "--random-input", "1,3,32,32", command="run")
    assert run["outputs"][0]["shape"] == [1, 7]


def test_zoo_is_reproducible(ws):
    a, b, c = ws.out("a.h5"), ws.out("b.h5"), ws.out("c.h5")
    for path, seed in ((a, "1"), (b, "1"), (c, "2")):
        ws.invoke("zoo", "mobilenet0.25", "-o", path, "--classes", "5", "--seed", seed, "-q")
    assert digest(a) == digest(b)
    ws.invoke("diff", a, c, "--values", code=1)


def test_zoo_plain_text(ws):
    out = ws.out("m.h5")
    result = ws.invoke("zoo", "mobilenet0.25", "-o", out, "--classes", "5")
    assert result.stdout == ""
    assert f"wrote {out}" in result.stderr


def test_zoo_dry_run_and_existing_output(ws):
    document = ws.json("zoo", "mobilenet0.25", "--classes", "5", "--dry-run", command="zoo")
    assert document["dry_run"] is True and document["output"] is None
    assert ws.output_files() == []
    out = ws.out("m.h5")
    out.write_bytes(b"keep me")
    ws.invoke("zoo", "mobilenet0.25", "-o", out, code=ExitCode.OUTPUT_EXISTS)
    assert out.read_bytes() == b"keep me"


def test_zoo_errors(ws):
    result = ws.invoke("zoo", "nosuch", "-o", ws.out("x.h5"), code=ExitCode.USAGE)
    assert "nosuch" in error_line(result) and "resnet18_v1" in error_line(result)
    ws.invoke("zoo", code=ExitCode.USAGE)
    ws.invoke("zoo", "mobilenet0.25", code=ExitCode.USAGE)  # no -o
    ws.invoke("zoo", "mobilenet0.25", "-o", ws.out("x.h5"), "--classes", "0", code=ExitCode.USAGE)
    error = json_error(ws.invoke("zoo", "nosuch", "-o", ws.out("x.h5"), "--json", code=None), ExitCode.USAGE)
    assert "nosuch" in error["message"]
    assert ws.output_files() == []
