"""`modelsurgeon fit`: a real MXNet Gluon export fitted onto torchvision's resnet18 layout, prefixes,
Gluon names, added buffers, --cast, and refusals that name the fixing command."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import Workspace, error_line, invoke, parse_json, read_arrays, ws  # noqa: F401

from modelsurgeon.cli.errors import ExitCode
from modelsurgeon.core.surgery.fit import split_key, strip_wrappers

ROOT = Path(__file__).resolve().parent.parent
ORACLE = ROOT / "tools" / "mxnet_oracle" / "oracle.py"


def test_key_helpers():
    assert split_key("layer1.0.bn1.running_var") == ("layer1.0.bn1", "running_var")
    assert split_key("resnetv10_batchnorm0_running_mean") == ("resnetv10_batchnorm0", "running_mean")
    assert split_key("resnetv10_conv0_weight") == ("resnetv10_conv0", "weight")
    assert split_key("dense/kernel:0") == ("dense", "kernel")
    assert strip_wrappers("module._orig_mod.layer1.weight") == ("layer1.weight", "module._orig_mod.")


def _torchvision_resnet18(torch, classes: int):
    """torchvision's resnet18 layout (names and structure), written here: its wheels do not match this torch."""
    nn = torch.nn

    class BasicBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + identity)

    class ResNet18(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            cin = 64
            for i, cout in enumerate([64, 128, 256, 512]):
                stride = 1 if i == 0 else 2
                setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
                cin = cout
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(512, classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet18()


@pytest.fixture(scope="module")
def gluon_resnet18(mxnet_python_path, tmp_path_factory) -> Path:
    """A real MXNet Gluon resnet18_v1 export (10 classes, input 2x3x64x64) with its input and output."""
    out = tmp_path_factory.mktemp("gluon_r18")
    subprocess.run([mxnet_python_path, str(ORACLE), "export", "resnet18_v1", str(out), "--classes", "10",
                    "--batch", "2"], check=True, capture_output=True, timeout=600)
    return out


def test_gluon_export_fits_torchvision_resnet18(gluon_resnet18, tmp_path):
    torch = pytest.importorskip("torch")
    model = _torchvision_resnet18(torch, 10)
    target = tmp_path / "torchvision-r18.pt"
    torch.save(model.state_dict(), target)
    out = tmp_path / "fitted.pt"
    document = parse_json(invoke("fit", gluon_resnet18 / "resnet18_v1-0000.params", "--to", target, "-o", out,
                                 "--json"), "fit")
    assert document["rules"] == {"order, role and shape": 102, "added buffer": 20}
    assert document["unused"] == []
    rows = {row["new"]: row for row in document["mapping"]}
    assert rows["layer2.0.downsample.0.weight"]["old"] == "resnetv10_stage2_conv2_weight"
    assert rows["layer2.0.conv1.weight"]["old"] == "resnetv10_stage2_conv0_weight"
    assert rows["layer2.0.bn1.weight"]["old"] == "resnetv10_stage2_batchnorm0_gamma"
    assert rows["fc.weight"]["old"] == "resnetv10_dense0_weight"
    state = torch.load(out, weights_only=True)
    assert list(state) == list(model.state_dict())
    assert state["bn1.num_batches_tracked"].dtype == torch.int64 and int(state["bn1.num_batches_tracked"]) == 0
    fresh = _torchvision_resnet18(torch, 10).eval()
    fresh.load_state_dict(state, strict=True)
    with torch.no_grad():
        ours = fresh(torch.from_numpy(np.load(gluon_resnet18 / "input.npy"))).numpy()
    theirs = np.load(gluon_resnet18 / "output.npy")
    scale = float(np.abs(theirs).max())
    assert float(np.abs(ours - theirs).max()) / scale <= 1e-4


def test_gluon_export_with_other_classes_names_replace_head(gluon_resnet18, tmp_path):
    torch = pytest.importorskip("torch")
    target = tmp_path / "r18-5.pt"
    torch.save(_torchvision_resnet18(torch, 5).state_dict(), target)
    out = tmp_path / "o.pt"
    result = invoke("fit", gluon_resnet18 / "resnet18_v1-0000.params", "--to", target, "-o", out,
                    code=ExitCode.MISMATCH)
    message = error_line(result)
    assert "'fc.weight', 'fc.bias'" in message and "modelsurgeon replace-head --classes 5" in message
    assert "resnetv10_dense0_weight\t-\tleft out" in result.stdout, "the whole mapping is printed"
    assert not out.exists()


def test_gluon_export_fits_a_zoo_model_that_runs(gluon_resnet18, tmp_path):
    from modelsurgeon.core import binding
    out = tmp_path / "r18.h5"
    document = parse_json(invoke("fit", gluon_resnet18 / "resnet18_v1-0000.params", "--to", "resnet18_v1", "-o", out,
                                 "--json"), "fit")
    assert document["target"] == "zoo model resnet18_v1 (10 classes)"
    rows = {row["new"]: row["old"] for row in document["mapping"]}
    assert rows["features.1.gamma"] == "resnetv10_batchnorm0_gamma"
    with binding.open_checkpoint(out) as reader:
        ours = np.asarray(binding.model_from_reader(reader)(np.load(gluon_resnet18 / "input.npy")))
    theirs = np.load(gluon_resnet18 / "output.npy")
    assert float(np.abs(ours - theirs).max()) / float(np.abs(theirs).max()) <= 1e-4


def _small(torch, inputs: int = 3):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(inputs, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 2))


def test_wrapped_prefixed_checkpoint_fits_another_prefix(tmp_path):
    torch = pytest.importorskip("torch")
    model = _small(torch)
    source = tmp_path / "ckpt.pt"
    torch.save({"epoch": 3, "state_dict": {"module._orig_mod." + k: v for k, v in model.state_dict().items()}},
               source)
    wrapper = torch.nn.Module()
    wrapper.backbone = _small(torch)
    target = tmp_path / "target.pt"
    torch.save(wrapper.state_dict(), target)
    out = tmp_path / "fitted.pt"
    document = parse_json(invoke("fit", source, "--to", target, "-o", out, "--json"), "fit")
    assert {row["rule"] for row in document["mapping"]} == {"prefix (module._orig_mod. -> backbone.)"}
    wrapper.load_state_dict(torch.load(out, weights_only=True), strict=True)
    x = torch.randn(1, 3, 6, 6)
    model.eval(), wrapper.eval()
    assert torch.equal(wrapper.backbone(x), model(x))


def test_gluon_names_to_pytorch_names_with_buffers_and_cast(ws, tmp_path):
    torch = pytest.importorskip("torch")
    arrays = read_arrays(ws["cnn.h5"])
    target = []
    for key, array in arrays.items():
        stem, leaf = key.rsplit(".", 1)
        leaf = {"gamma": "weight", "beta": "bias"}.get(leaf, leaf)
        target.append([f"{stem}.{leaf}", list(array.shape), "float16"])
        if leaf == "running_var":
            target.append([f"{stem}.num_batches_tracked", [], "int64"])
    spec = tmp_path / "target.json"
    spec.write_text(json.dumps(target))
    out = ws.out("fitted.safetensors")
    document = ws.json("fit", ws["cnn.h5"], "--to", spec, "-o", out, "--cast", command="fit")
    assert document["rules"] == {"same name": 12, "gluon name": 4, "added buffer": 2}
    from safetensors.torch import load_file
    loaded = load_file(str(out))
    assert list(loaded) != [] and set(loaded) == {t[0] for t in target}
    assert loaded["features.1.weight"].dtype == torch.float16
    assert torch.equal(loaded["features.1.weight"], torch.from_numpy(arrays["features.1.gamma"]).half())
    assert loaded["features.4.num_batches_tracked"].dtype == torch.int64
    out2 = ws.out("uncast.safetensors")
    document = ws.json("fit", ws["cnn.h5"], "--to", spec, "-o", out2, command="fit")
    assert any("--cast" in note for note in document["notes"])
    assert load_file(str(out2))["features.1.weight"].dtype == torch.float32


def test_input_channels_refusal_and_bad_targets(ws, tmp_path):
    target = [["features.0.weight", [8, 1, 3, 3]]] + [[k, list(v.shape)] for k, v in read_arrays(ws["cnn.h5"]).items()
                                                     if k != "features.0.weight"]
    out = ws.out("o.h5")
    result = invoke("fit", ws["cnn.h5"], "--to", json.dumps(target), "-o", out, code=ExitCode.MISMATCH)
    assert "modelsurgeon adapt-input --channels 1" in error_line(result)
    assert ws.output_files() == []
    result = ws.invoke("fit", ws["cnn.h5"], "--to", "not-a-model", "-o", out, code=2)
    assert "--to" in error_line(result)
    result = ws.invoke("fit", ws["cnn.h5"], "--to", "[[1, 2]]", "-o", out, code=ExitCode.INVALID)
    assert "[key, [dims...]]" in error_line(result)
    document = ws.json("fit", ws["cnn.h5"], "--to", ws["cnn.h5"], "-o", out, "--dry-run", command="fit")
    assert document["rules"] == {"same name": 16} and ws.output_files() == []
