"""Real MXNet 1.9.1 as the oracle: its exports run in numpy, ours run in MXNet.

For each zoo model, ``tools/mxnet_oracle/oracle.py export`` (run under the MXNet interpreter)
writes a real ``-symbol.json`` + ``-0000.params`` export, a ``save_parameters`` file, an input
and MXNet's output on it. These tests skip when MXNet is absent locally and fail under CI.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from modelsurgeon import core
from modelsurgeon.cli.main import cli
from modelsurgeon.core import binding as checkpoint

ROOT = Path(__file__).resolve().parent.parent
ORACLE = ROOT / "tools" / "mxnet_oracle" / "oracle.py"
MODELS = ("alexnet", "resnet18_v1", "resnet18_v2", "vgg11", "squeezenet1.1", "mobilenet0.25")
CLASSES = 10


def assert_close(ours: np.ndarray, theirs: np.ndarray) -> None:
    """Max relative error 1e-4, relative to the largest output magnitude."""
    assert ours.shape == theirs.shape
    scale = float(np.abs(theirs).max()) or 1.0
    error = float(np.abs(ours - theirs).max()) / scale
    assert error <= 1e-4, f"max relative error {error:.3g}"


@pytest.fixture(scope="module")
def exports(mxnet_python_path, tmp_path_factory):
    """model name -> directory of a real MXNet export (made once per test session)."""
    import subprocess
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            out = tmp_path_factory.mktemp(name.replace(".", "_"))
            subprocess.run([mxnet_python_path, str(ORACLE), "export", name, str(out), "--classes", str(CLASSES),
                            "--batch", "2"], check=True, capture_output=True, timeout=600)
            made[name] = out
        return made[name]

    return get


@pytest.mark.parametrize("name", MODELS)
def test_imports_of_a_real_export_matches_mxnet(exports, name):
    folder = exports(name)
    net = core.SymbolBlock.imports(str(folder / f"{name}-symbol.json"), ["data"],
                                   str(folder / f"{name}-0000.params"))
    assert all(key.startswith(("alexnet", "resnet", "vgg", "squeezenet", "mobilenet")) for key in net.collect_params())
    assert_close(net(np.load(folder / "input.npy")), np.load(folder / "output.npy"))


@pytest.mark.parametrize("name", MODELS)
def test_load_parameters_of_a_real_save_parameters_file(exports, name):
    folder = exports(name)
    net = core.model_zoo.vision.get_model(name, classes=CLASSES)
    net.load_parameters(str(folder / f"{name}.params"))
    assert_close(net(np.load(folder / "input.npy")), np.load(folder / "output.npy"))


@pytest.mark.parametrize("name", ["resnet18_v1", "squeezenet1.1", "mobilenet0.25"])
def test_our_mxnet_export_runs_in_real_mxnet(exports, mxnet_python_path, tmp_path, name):
    import subprocess
    folder = exports(name)
    net = core.model_zoo.vision.get_model(name, classes=CLASSES)
    net.load_parameters(str(folder / f"{name}.params"))
    x = np.load(folder / "input.npy")
    ours = net(x)
    symbol_file, params_file = net.export(str(tmp_path / "ours"), format="mxnet")
    subprocess.run([mxnet_python_path, str(ORACLE), "run", symbol_file, params_file, str(folder / "input.npy"),
                    str(tmp_path / "mx.npy")], check=True, capture_output=True, timeout=300)
    assert_close(ours, np.load(tmp_path / "mx.npy"))


@pytest.mark.parametrize("name", ["resnet18_v1", "alexnet"])
def test_convert_a_v1_export_to_structural_for_the_zoo_model(exports, tmp_path, name):
    """The classic 'Parameter ... is missing in file' problem, solved in one command."""
    folder = exports(name)
    params = folder / f"{name}-0000.params"
    with pytest.raises(core.MismatchError, match="missing"):
        core.model_zoo.vision.get_model(name, classes=CLASSES).load_parameters(str(params))
    out = tmp_path / "structural.h5"
    result = CliRunner().invoke(cli, ["convert", str(params), "-o", str(out), "--to", "structural",
                                      "--model", name, "--json"])
    assert result.exit_code == 0, result.output
    assert "aligned" in " ".join(json.loads(result.stdout)["notes"])
    net = core.model_zoo.vision.get_model(name, classes=CLASSES)
    net.load_parameters(str(out))
    assert_close(net(np.load(folder / "input.npy")), np.load(folder / "output.npy"))


def test_committed_small_exports_match_mxnet():
    """Fixtures made by real MXNet (tests/fixtures/mxnet): no MXNet needed to check these."""
    base = ROOT / "tests" / "fixtures" / "mxnet"
    for folder, stem in [("tutorial", "model0"), ("mlp", "mlp"), ("convbn", "convbn"),
                         ("zoo/mobilenet0.25", "mobilenet0.25")]:
        d = base / folder
        net = core.SymbolBlock.imports(str(d / f"{stem}-symbol.json"), ["data"], str(d / f"{stem}-0000.params"))
        assert_close(net(np.load(d / "input.npy")), np.load(d / "output.npy"))


def test_cli_convert_to_mxnet_format_runs_in_real_mxnet(mxnet_python_path, tmp_path):
    """`convert --to named --format mxnet` writes -symbol.json + .params that MXNet imports."""
    import subprocess
    sample = ROOT / "sample_models" / "cnn.h5"
    out = tmp_path / "cnn-0000.params"
    result = CliRunner().invoke(cli, ["convert", str(sample), "-o", str(out), "--to", "named", "--format", "mxnet"])
    assert result.exit_code == 0, result.output
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    subprocess.run([mxnet_python_path, str(ORACLE), "run", str(tmp_path / "cnn-symbol.json"), str(out),
                    str(tmp_path / "x.npy"), str(tmp_path / "y.npy")], check=True, capture_output=True, timeout=300)
    with checkpoint.open_checkpoint(str(sample)) as reader:
        ours = checkpoint.model_from_reader(reader)(x)
    assert_close(ours, np.load(tmp_path / "y.npy"))
