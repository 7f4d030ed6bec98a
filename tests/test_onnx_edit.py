"""ONNX files as checkpoints, edited: torch.onnx.export models get a new head and renamed initializers,
external data is read and written safely, and ONNX Runtime runs every result."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from modelsurgeon.core.errors import OutputFormatError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from modelsurgeon.core.errors import CheckpointError, SurgeryError
from modelsurgeon.core.formats import onnx_edit as edit
from modelsurgeon.core.formats.base import TensorInfo
from modelsurgeon.core.formats.onnx import OnnxReader, is_onnx, sniff
from modelsurgeon.core.onnx import runtime


def _torch_cnn(tmp_path_factory: pytest.TempPathFactory, dynamo: bool) -> tuple[str, np.ndarray, dict[str, np.ndarray]]:
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(8)
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.fc = torch.nn.Linear(8, 10)

        def forward(self, x):
            return self.fc(torch.flatten(self.pool(torch.relu(self.bn(self.conv(x)))), 1))

    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 16, 16)
    path = str(tmp_path_factory.mktemp("torch") / ("dynamo.onnx" if dynamo else "script.onnx"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(net, (x,), path, dynamo=True, input_names=["x"], verbose=False)
        else:
            torch.onnx.export(net, (x,), path, dynamo=False, input_names=["x"], output_names=["logits"],
                              dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    with torch.no_grad():
        state["__output__"] = net(x).numpy()
    return path, x.numpy(), state


@pytest.fixture(scope="module", params=[True, False], ids=["dynamo", "torchscript"])
def torch_model(request, tmp_path_factory):
    return _torch_cnn(tmp_path_factory, request.param)


def test_reader_lists_initializers_of_a_torch_export(torch_model):
    path, _, state = torch_model
    with open(path, "rb") as handle:
        assert sniff(handle.read(64))
    assert is_onnx(path)
    with OnnxReader(path) as reader:
        assert reader.format == "onnx"
        assert {"fc.weight", "fc.bias"} <= set(reader.tensors)
        info = reader.tensors["fc.weight"]
        assert info.shape == (10, 8) and info.dtype == np.float32 and info.structural == ("fc.weight",)
        np.testing.assert_array_equal(reader.read("fc.weight"), state["fc.weight"])
        np.testing.assert_array_equal(reader.read("fc.bias"), state["fc.bias"])


def test_runtime_runs_the_torch_export(torch_model):
    path, x, state = torch_model
    np.testing.assert_allclose(runtime.run(path, [x], threads=1)[0], state["__output__"], rtol=1e-4, atol=1e-5)


def test_replace_head_of_a_torch_export_runs_with_the_new_class_count(torch_model, tmp_path):
    path, x, state = torch_model
    model, external = edit.load(path)
    rng = np.random.default_rng(0)
    weight, bias = rng.standard_normal((5, 8)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    new, head = edit.replace_head(model, 5, weight, bias)
    assert (head.kind, head.weight, head.bias, head.features, head.old_classes, head.classes) == \
        ("Gemm", "fc.weight", "fc.bias", 8, 10, 5)
    out_path = str(tmp_path / "new.onnx")
    written = edit.save_model(new, out_path, external_data=external)
    assert written[-1] == out_path and len(written) == (2 if external else 1)
    dims = [d.dim_value for d in onnx.load(out_path).graph.output[0].type.tensor_type.shape.dim]
    assert dims[-1] == 5
    y = runtime.run(out_path, [x], threads=1)[0]
    assert y.shape == (2, 5)
    # the new head on the old features: features = (output - old bias) solved through the old head
    features = np.linalg.lstsq(state["fc.weight"], (state["__output__"] - state["fc.bias"]).T, rcond=None)[0].T
    np.testing.assert_allclose(y, features @ weight.T + bias, rtol=1e-3, atol=1e-3)
    with OnnxReader(out_path) as reader, OnnxReader(path) as before:  # every other weight is unchanged
        assert list(reader.tensors) == list(before.tensors)
        for key in before.tensors:
            if key not in ("fc.weight", "fc.bias"):
                np.testing.assert_array_equal(reader.read(key), before.read(key))
        np.testing.assert_array_equal(reader.read("fc.weight"), weight)
        np.testing.assert_array_equal(reader.read("fc.bias"), bias)


def test_rename_keeps_the_model_runnable(torch_model, tmp_path):
    path, x, state = torch_model
    model, external = edit.load(path)
    new, changes = edit.rename_initializers(model, {"fc.weight": "head.weight", "fc.bias": "head.bias"})
    assert changes == [("fc.weight", "head.weight"), ("fc.bias", "head.bias")]
    out_path = str(tmp_path / "renamed.onnx")
    edit.save_model(new, out_path, external_data=external)
    with OnnxReader(out_path) as reader:
        assert "head.weight" in reader.tensors and "fc.weight" not in reader.tensors
    np.testing.assert_allclose(runtime.run(out_path, [x], threads=1)[0], state["__output__"], rtol=1e-4, atol=1e-5)


def test_rename_refuses_unknown_and_taken_names(torch_model):
    model, _ = edit.load(torch_model[0])
    with pytest.raises(SurgeryError, match="no initializer named 'nope'"):
        edit.rename_initializers(model, {"nope": "x"})
    with pytest.raises(SurgeryError, match="already name a value"):
        edit.rename_initializers(model, {"fc.weight": "fc.bias"})


def test_replace_head_checks_shapes(torch_model):
    model, _ = edit.load(torch_model[0])
    with pytest.raises(SurgeryError, match=r"must have shape \(3, 8\)"):
        edit.replace_head(model, 3, np.zeros((3, 9), np.float32))
    with pytest.raises(SurgeryError, match="positive integer"):
        edit.replace_head(model, 0)


def test_external_data_is_read_and_written(tmp_path, rng):
    from modelsurgeon.core.engine import nn
    from modelsurgeon.core.onnx.export import export_block
    net = nn.Dense(300, in_units=40)
    net.initialize()
    x = rng.standard_normal((3, 40)).astype(np.float32)
    path = str(tmp_path / "dense.onnx")
    written = edit.save_model(export_block(net, x.shape), path, external_data=True)
    assert written == [str(tmp_path / "dense.onnx.data"), path]
    with OnnxReader(path) as reader:
        assert reader.tensors["weight"].extra["external"] == "dense.onnx.data"
        np.testing.assert_array_equal(reader.read("weight"), net.weight.data())
        np.testing.assert_array_equal(reader.read("bias"), net.bias.data())  # small: stays inline
    np.testing.assert_allclose(runtime.run(path, [x], threads=1)[0], net(x), rtol=1e-5, atol=1e-6)
    # the round trip through load() brings the data inline again
    model, external = edit.load(path)
    assert external and not any(onnx.external_data_helper.uses_external_data(t) for t in model.graph.initializer)


def _with_location(path: str, location: str) -> str:
    model = onnx.load(path, load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    out = path.replace(".onnx", "-evil.onnx")
    with open(out, "wb") as handle:
        handle.write(model.SerializeToString())
    return out


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../x.data", "missing.data"])
def test_external_data_must_stay_inside_the_model_directory(tmp_path, location):
    from modelsurgeon.core.engine import nn
    from modelsurgeon.core.onnx.export import export_block
    net = nn.Dense(300, in_units=40)
    net.initialize()
    sub = tmp_path / "model"
    sub.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 100_000)
    path = str(sub / "dense.onnx")
    edit.save_model(export_block(net, (1, 40)), path, external_data=True)
    with pytest.raises(CheckpointError, match="external data"):
        OnnxReader(_with_location(path, location))


def test_external_data_symlink_out_of_the_directory_is_refused(tmp_path):
    from modelsurgeon.core.engine import nn
    from modelsurgeon.core.onnx.export import export_block
    net = nn.Dense(300, in_units=40)
    net.initialize()
    sub = tmp_path / "model"
    sub.mkdir()
    path = str(sub / "dense.onnx")
    edit.save_model(export_block(net, (1, 40)), path, external_data=True)
    os.replace(sub / "dense.onnx.data", tmp_path / "outside.data")
    os.symlink(tmp_path / "outside.data", sub / "dense.onnx.data")
    with pytest.raises(CheckpointError, match="leads out of"):
        OnnxReader(path)


def test_truncated_external_data_and_shape_bombs_are_refused(tmp_path):
    from modelsurgeon.core.engine import nn
    from modelsurgeon.core.onnx.export import export_block
    net = nn.Dense(300, in_units=40)
    net.initialize()
    path = str(tmp_path / "dense.onnx")
    edit.save_model(export_block(net, (1, 40)), path, external_data=True)
    for external in (True, False):
        model = onnx.load(path, load_external_data=not external)
        bias = next(t for t in model.graph.initializer if t.name == "bias")  # claims 10**12 values
        bias.dims[0] = 10**12
        bomb = str(tmp_path / "bomb.onnx")
        with open(bomb, "wb") as handle:
            handle.write(model.SerializeToString())
        with pytest.raises(CheckpointError, match="does not fit its shape" if external else "needs 4000000000000"):
            OnnxReader(bomb)
    with open(tmp_path / "dense.onnx.data", "r+b") as handle:
        handle.truncate(1000)
    with pytest.raises(CheckpointError, match="does not fit"):
        OnnxReader(path)


def test_sniff_rejects_other_formats():
    assert not sniff(b"\x89HDF\r\n\x1a\n" + b"\0" * 56)
    assert not sniff(b"PK\x03\x04" + b"\0" * 60)
    assert not sniff((264).to_bytes(8, "little") + b'{"__metadata__":{}}')  # safetensors header
    assert not sniff(b"\x12\x01\0\0\0\0\0\0" + b"\0" * 56)  # MXNet .params magic
    assert not sniff(b"\x08\x07\xff\xff" + b"\0" * 60)


def test_not_an_onnx_file_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "x.onnx"
    path.write_bytes(b"\x08\x07\x12\x05hello\x3a\xff\xff\xff\x0f")
    with pytest.raises(CheckpointError, match="not a valid ONNX model"):
        OnnxReader(str(path))


@pytest.mark.parametrize("name, kind", [("resnet18_v1", "Gemm"), ("squeezenet1.1", "Conv")])
def test_replace_head_of_our_zoo_export_matches_the_engine_with_that_head(name, kind, small_zoo_model, small_input,
                                                                          tmp_path):
    from modelsurgeon.core.onnx.export import export_block
    net = small_zoo_model(name)
    x = small_input(name, batch=2)
    model = export_block(net, x.shape)
    head = edit.find_head(model)
    weight_name = "output.weight" if kind == "Gemm" else "output.0.weight"
    assert (head.kind, head.weight, head.old_classes) == (kind, weight_name, 7)
    rng = np.random.default_rng(1)
    shape = (3, head.features) + ((1, 1) if kind == "Conv" else ())
    weight, bias = rng.standard_normal(shape).astype(np.float32) * 0.1, rng.standard_normal(3).astype(np.float32)
    new, _ = edit.replace_head(model, 3, weight, bias)
    path = str(tmp_path / "new.onnx")
    edit.save_model(new, path)
    # the new head by hand on the engine's features
    features = np.asarray(net.features(x), np.float64)
    if kind == "Gemm":
        expected = features.reshape(len(x), -1) @ weight.T + bias
    else:  # SqueezeNet: 1x1 Conv, ReLU, global average
        conv = np.einsum("nchw,kc->nkhw", features, weight[:, :, 0, 0]) + bias[None, :, None, None]
        expected = np.maximum(conv, 0).mean(axis=(2, 3))
    actual = runtime.run(path, [x], threads=1)[0]
    assert actual.shape == (2, 3)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))


def test_reader_marks_running_statistics_as_aux(tmp_path, small_zoo_model, small_input):
    from modelsurgeon.core.onnx.export import export_block, save
    net = small_zoo_model("mobilenet0.25")
    path = str(tmp_path / "m.onnx")
    save(export_block(net, small_input("mobilenet0.25").shape), path)
    with OnnxReader(path) as reader:
        roles = {k: i.role for k, i in reader.tensors.items()}
    assert roles["features.1.running_mean"] == roles["features.1.running_var"] == "aux"
    assert roles["features.1.gamma"] == roles["features.0.weight"] == "arg"


def test_format_entry_detects_reads_and_writes(tmp_path, small_zoo_model, small_input):
    from modelsurgeon.core.binding import named_infos
    from modelsurgeon.core.engine import architecture as arch
    from modelsurgeon.core.formats.onnx_edit import FORMAT
    from modelsurgeon.core.formats.spec import Documents, Probe
    net = small_zoo_model("mobilenet0.25")
    x = small_input("mobilenet0.25")
    graph, params = net.trace(x)
    infos = named_infos(net, graph, params)
    documents = Documents("named", arch.describe(net, [{"name": "data", "shape": list(x.shape), "dtype": "float32"}]),
                          graph.to_dict())
    path = str(tmp_path / "m.onnx")
    from modelsurgeon.core.onnx.export.exporter import write_documents  # a graph is exported a level up
    assert write_documents(path, infos, lambda info: params[info.key].data(), documents) == []
    with pytest.raises(OutputFormatError, match="exported from a graph"):
        FORMAT.write(str(tmp_path / "x.onnx"), infos, lambda info: params[info.key].data(), documents)
    with open(path, "rb") as handle:
        head = handle.read(64)
    assert FORMAT.sniff(Probe(path, head, os.path.getsize(path)))
    np.testing.assert_allclose(runtime.run(path, [x], threads=1)[0], net(x), rtol=1e-4, atol=1e-5)
    # an ONNX input written back with new values under the same names
    with FORMAT.open(path) as reader:
        assert {i.key for i in reader.tensors.values()} == {i.structural[0] for i in infos}
        doubled = str(tmp_path / "doubled.onnx")
        FORMAT.write(doubled, list(reader.tensors.values()), lambda info: reader.read(info.key) * 2,
                     Documents("named", origin=path))
        with FORMAT.open(doubled) as out:
            np.testing.assert_array_equal(out.read("output.weight"), reader.read("output.weight") * 2)
        renamed = [TensorInfo("x" + i.key, i.shape, i.dtype) for i in reader.tensors.values()]
        FORMAT.write(str(tmp_path / "renamed.onnx"), renamed, lambda info: reader.read(info.key[1:]),
                     Documents("named", origin=path))
        with FORMAT.open(str(tmp_path / "renamed.onnx")) as out:
            assert list(out.tensors) == [i.key for i in renamed]
        np.testing.assert_allclose(runtime.run(str(tmp_path / "renamed.onnx"), [x], threads=1)[0], net(x),
                                   rtol=1e-4, atol=1e-5)
        new_head = [TensorInfo(i.key, (3, *i.shape[1:]) if i.key.startswith("output.") else i.shape, i.dtype)
                    for i in reader.tensors.values()]
        arrays = {"output.weight": np.ones((3, 256), np.float32), "output.bias": np.arange(3, dtype=np.float32)}
        FORMAT.write(str(tmp_path / "head.onnx"), new_head, lambda info: arrays.get(info.key, reader.read(info.key)),
                     Documents("named", origin=path))
        assert runtime.run(str(tmp_path / "head.onnx"), [x], threads=1)[0].shape == (1, 3)
        with pytest.raises(SurgeryError, match="would be missing"):
            FORMAT.write(str(tmp_path / "bad.onnx"), renamed[:-1], lambda info: None, Documents("named", origin=path))
    runtime.run(doubled, [x], threads=1)
