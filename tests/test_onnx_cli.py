"""The commands on ONNX files, through the format registry: inspect, convert, diff, rename and
replace-head take a model written by torch.onnx.export, and every ONNX output runs in ONNX Runtime."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from cli_helpers import invoke

from modelsurgeon.core.binding import open_checkpoint
from modelsurgeon.core.onnx import runtime


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A small CNN with a Linear head, exported by PyTorch with a dynamic batch; its input and output."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(6, 4)).eval()
    x = torch.randn(2, 3, 8, 8)
    path = tmp_path_factory.mktemp("cli") / "net.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), str(path), dynamo=False, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    with torch.no_grad():
        return path, x.numpy(), net(x).numpy()


def test_inspect_lists_the_initializers(exported):
    path, _, _ = exported
    listing = json.loads(invoke("inspect", path, "--json").stdout)
    assert listing["format"] == "onnx"
    tensors = {t["key"]: t for t in listing["tensors"]}
    assert tensors["4.weight"]["shape"] == [4, 6] and tensors["4.weight"]["structural"] == ["4.weight"]
    assert tensors["4.bias"]["dtype"] == "float32"


def test_convert_to_safetensors_and_diff(exported, tmp_path):
    path, _, _ = exported
    out = tmp_path / "net.safetensors"
    invoke("convert", path, "-o", out)
    with open_checkpoint(str(path)) as a, open_checkpoint(str(out)) as b:
        assert set(a.tensors) == set(b.tensors)
        for key in a.tensors:
            np.testing.assert_array_equal(a.read(key), b.read(key))
    invoke("diff", path, out)


def test_rename_writes_an_onnx_model_that_runs(exported, tmp_path):
    path, x, y = exported
    out = tmp_path / "renamed.onnx"
    invoke("rename", path, "-o", out, "--strip-prefix", "4.", "--add-prefix", "head.")
    with open_checkpoint(str(out)) as reader:
        assert {"head.weight", "head.bias"} <= set(reader.tensors)
    np.testing.assert_allclose(runtime.run(str(out), [x], threads=1)[0], y, rtol=1e-4, atol=1e-5)


def test_replace_head_writes_an_onnx_model_with_the_new_class_count(exported, tmp_path):
    path, x, _ = exported
    out = tmp_path / "head.onnx"
    invoke("replace-head", path, "-o", out, "--classes", "3")
    assert runtime.run(str(out), [np.concatenate([x, x])], threads=1)[0].shape == (4, 3)
    onnx.checker.check_model(str(out), full_check=True)
    with open_checkpoint(str(path)) as before, open_checkpoint(str(out)) as after:
        for key in before.tensors:
            if not key.startswith("4."):
                np.testing.assert_array_equal(before.read(key), after.read(key))
        assert after.tensors["4.weight"].shape == (3, 6)


def test_convert_a_structural_file_with_its_architecture_to_onnx(tmp_path):
    from cli_helpers import CNN_INPUT, SAMPLES

    from modelsurgeon.core.binding import model_from_reader
    out = tmp_path / "cnn.onnx"
    invoke("convert", SAMPLES / "cnn.h5", "-o", out)
    x = np.random.default_rng(0).standard_normal(CNN_INPUT).astype(np.float32)
    with open_checkpoint(str(SAMPLES / "cnn.h5")) as reader:
        expected = model_from_reader(reader)(x)
    np.testing.assert_allclose(runtime.run(str(out), [x], threads=1)[0], expected, rtol=1e-4, atol=1e-5)


def test_run_through_onnx_runtime_gives_the_numpy_engines_output(tmp_path):
    from pathlib import Path
    sample = Path(__file__).resolve().parent.parent / "sample_models" / "cnn.h5"
    ours = json.loads(invoke("run", sample, "--seed", "3", "--json").stdout)
    theirs = json.loads(invoke("run", sample, "--seed", "3", "--json", "--engine", "onnxruntime").stdout)
    assert ours["outputs"] == theirs["outputs"]
    for row_a, row_b in zip(ours["top_k"], theirs["top_k"]):
        assert [c["class"] for c in row_a] == [c["class"] for c in row_b]
        np.testing.assert_allclose([c["score"] for c in row_a], [c["score"] for c in row_b], rtol=1e-4, atol=1e-5)
    exported = tmp_path / "cnn.onnx"
    invoke("convert", sample, "-o", exported)
    direct = json.loads(invoke("run", exported, "--seed", "3", "--json", "--engine", "onnxruntime").stdout)
    assert direct["top_k"] == theirs["top_k"]
    refused = invoke("run", exported, code=6)
    assert "--engine onnxruntime" in refused.stderr
