"""PyTorch checkpoints: sniffing (no torch needed), safe loading and unwrapping (torch optional)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import zipfile

import numpy as np
import pytest

from modelsurgeon.core.errors import CheckpointError, ModelSurgeonError
from modelsurgeon.core.formats import safetensors_io as sio
from modelsurgeon.core.formats import torch_io
from modelsurgeon.core.formats.torch_io import TorchReader, is_legacy_pickle, sniff_torch_zip

PEERS = os.path.join(os.path.dirname(__file__), "fixtures", "peers")
MANIFEST = json.load(open(os.path.join(PEERS, "torch_fixtures.json")))
HAVE_TORCH = importlib.util.find_spec("torch") is not None
NEEDS_TORCH = (r"this is a PyTorch checkpoint; reading it needs PyTorch: pip install torch "
               r"\(it is loaded with weights_only=True, never unpickled by modelsurgeon\)")


def peer(name: str) -> str:
    return os.path.join(PEERS, name)


# ---------------------------------------------------------------------------------------------
# Without PyTorch

@pytest.mark.parametrize("name, zip_, legacy", [
    ("torch_state_dict.pt", True, False),
    ("torch_wrapped.pt", True, False),
    ("torch_legacy.pt", False, True),
    ("torch_bf16.safetensors", False, False),
    ("keras3_cnn.weights.h5", False, False),
])
def test_sniffing(name, zip_, legacy):
    assert sniff_torch_zip(peer(name)) is zip_
    assert is_legacy_pickle(open(peer(name), "rb").read(8)) is legacy


def test_sniffing_edge_cases(tmp_path):
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as archive:
        archive.writestr("model/data.pk", b"x")
    with zipfile.ZipFile(tmp_path / "flat.zip", "w") as archive:
        archive.writestr("data.pkl", b"x")
    assert not sniff_torch_zip(tmp_path / "plain.zip")
    assert sniff_torch_zip(tmp_path / "flat.zip")
    assert not sniff_torch_zip(tmp_path / "missing.pt")
    assert not sniff_torch_zip(tmp_path)
    (tmp_path / "cut.pt").write_bytes(open(peer("torch_state_dict.pt"), "rb").read()[:300])
    assert not sniff_torch_zip(tmp_path / "cut.pt")
    heads = (b"\x80\x02", b"\x80\x05x", b"\x80\x01", b"\x80\x06", b"\x80", b"", b"PK")
    assert [is_legacy_pickle(h) for h in heads] == [True, True, False, False, False, False, False]


def test_missing_torch_is_explained(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    for name in ("torch_state_dict.pt", "torch_legacy.pt"):
        with pytest.raises(CheckpointError, match=NEEDS_TORCH):
            TorchReader(peer(name))


@pytest.mark.skipif(HAVE_TORCH, reason="PyTorch is installed: the real absence cannot be observed")
def test_missing_torch_is_explained_for_real():
    with pytest.raises(CheckpointError, match=NEEDS_TORCH):
        TorchReader(peer("torch_state_dict.pt"))


def test_not_a_torch_file_is_refused_before_importing_torch(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    for name in ("torch_bf16.safetensors", "keras3_cnn.weights.h5"):
        with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
            TorchReader(peer(name))
    with pytest.raises(CheckpointError, match="no such file"):
        TorchReader(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="not a regular file"):
        TorchReader(tmp_path)


def test_bf16_safetensors_fixture_without_torch(tmp_path):
    """safetensors.torch's own bf16 file: read as float32, written back byte for byte."""
    with sio.SafetensorsReader(peer("torch_bf16.safetensors")) as reader:
        assert reader.metadata == {"format": "pt"}
        expected = MANIFEST["bf16"]
        assert set(reader.keys()) == set(expected)
        for key, info in reader.tensors.items():
            assert list(info.shape) == expected[key]["shape"]
            assert info.extra.get("source_dtype") == ("BF16" if expected[key]["dtype"] == "bfloat16" else None)
            assert float(reader.read(key).astype(np.float64).sum()) == pytest.approx(expected[key]["sum"], abs=1e-6)
        out = tmp_path / "again.safetensors"
        sio.write_safetensors(out, reader.tensors.values(), lambda i: reader.read(i.key), metadata=reader.metadata)
    assert out.read_bytes() == open(peer("torch_bf16.safetensors"), "rb").read()


# ---------------------------------------------------------------------------------------------
# With PyTorch

@pytest.fixture
def torch():
    return pytest.importorskip("torch")


STATE_KEYS = ["features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
              "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked",
              "embed.weight", "head.weight", "head.bias"]


@pytest.mark.parametrize("name", ["torch_state_dict.pt", "torch_legacy.pt"])
def test_plain_state_dict(torch, name):
    with TorchReader(peer(name)) as reader:
        assert (reader.format, reader.kind) == ("torch", "structural")
        assert reader.keys() == STATE_KEYS
        assert reader.metadata == {}
        for key in STATE_KEYS:
            row = MANIFEST["state_dict"][key]
            info = reader.tensors[key]
            value = reader.read(key)
            assert list(info.shape) == row["shape"] == list(value.shape)
            assert value.dtype == info.dtype == np.dtype(row["dtype"])
            assert float(value.astype(np.float64).sum()) == pytest.approx(row["sum"], abs=1e-6)
        assert reader.tensors["features.1.num_batches_tracked"].dtype == np.int64
        assert reader.tensors["head.weight"].alias_of == "embed.weight"  # tied weights
        assert reader.tensors["embed.weight"].alias_of is None
        assert reader.total_bytes() == sum(reader.tensors[k].nbytes for k in STATE_KEYS if k != "head.weight")
        value = reader.read("features.0.weight")
        assert not value.flags.writeable
        with pytest.raises(ModelSurgeonError, match="no tensor 'nope'"):
            reader.read("nope")
    with pytest.raises(ModelSurgeonError, match="closed"):
        reader.read("embed.weight")


def test_wrapped_checkpoint(torch):
    with TorchReader(peer("torch_wrapped.pt")) as reader:
        assert reader.keys() == STATE_KEYS
        assert reader.metadata["wrapper"] == "state_dict"
        assert json.loads(reader.metadata["dropped"]) == ["epoch", "optimizer", "meta"]


def test_nested_wrapper(torch):
    with TorchReader(peer("torch_nested_wrapper.pt")) as reader:
        assert reader.keys() == STATE_KEYS
        assert reader.metadata["wrapper"] == "model.module"
        assert json.loads(reader.metadata["dropped"]) == ["step"]


def test_python_objects_are_refused(torch):
    with pytest.raises(CheckpointError, match=r"non-tensor Python objects \(Unsupported global: "
                                              r"GLOBAL argparse.Namespace\); they are refused for safety"):
        TorchReader(peer("torch_with_object.pt"))


def test_bf16_checkpoint_to_safetensors_matches_the_package(torch, tmp_path):
    with TorchReader(peer("torch_bf16.pt")) as reader:
        info = reader.tensors["embed.weight"]
        assert info.dtype == np.float32 and info.extra["source_dtype"] == "BF16"
        assert reader.tensors["features.1.num_batches_tracked"].extra == {}
        value = reader.read("embed.weight")
        assert value.dtype == np.float32
        assert float(value.astype(np.float64).sum()) == pytest.approx(MANIFEST["bf16"]["embed.weight"]["sum"], abs=1e-6)
        out = tmp_path / "converted.safetensors"
        sio.write_safetensors(out, reader.tensors.values(), lambda i: reader.read(i.key), metadata={"format": "pt"})
    # the tied head.weight is written as its own copy, exactly as safetensors.torch did for the fixture
    assert out.read_bytes() == open(peer("torch_bf16.safetensors"), "rb").read()


def test_entries_that_are_not_dense_tensors_are_dropped(torch, tmp_path):
    path = tmp_path / "mixed.pt"
    state = {"w": torch.ones(2, 3), "flag": True, "name": "x", 5: torch.zeros(1),
             "sparse": torch.eye(3).to_sparse(), "view": torch.arange(10.0)[::2], "b": torch.tensor([True, False])}
    if hasattr(torch, "float8_e4m3fn"):
        state["f8"] = torch.tensor([1.0, -0.5, 448.0]).to(torch.float8_e4m3fn)
    torch.save(state, path)
    with TorchReader(path) as reader:
        assert json.loads(reader.metadata["dropped"]) == ["flag", "name", "5", "sparse"]
        assert "wrapper" not in reader.metadata
        np.testing.assert_array_equal(reader.read("view"), [0, 2, 4, 6, 8])
        assert reader.read("b").dtype == np.bool_
        if "f8" in state:
            assert reader.tensors["f8"].extra["source_dtype"] == "F8_E4M3"
            np.testing.assert_array_equal(reader.read("f8"), [1.0, -0.5, 448.0])


@pytest.mark.parametrize("content, message", [
    ([1, 2], "holds a list, not a dict of tensors"),
    ({"epoch": 3, "optimizer": {"lr": 0.1}}, "no state dict found: .*keys: 'epoch', 'optimizer'"),
    ({}, "no state dict found"),
])
def test_files_without_a_state_dict(torch, tmp_path, content, message):
    path = tmp_path / "x.pt"
    torch.save(content, path)
    with pytest.raises(CheckpointError, match=message):
        TorchReader(path)


@pytest.mark.parametrize("name", ["torch_state_dict.pt", "torch_legacy.pt"])
def test_truncated_and_corrupt_files(torch, tmp_path, name):
    data = open(peer(name), "rb").read()
    path = tmp_path / "cut.pt"
    for size in [2, 64, 300, len(data) // 2, len(data) - 100, len(data) - 1]:
        path.write_bytes(data[:size])
        try:
            with TorchReader(path) as reader:
                for key in reader.keys():  # noqa: SIM118 - a reader, not a dict
                    reader.read(key)
        except CheckpointError:
            continue
        pytest.fail(f"{name} cut at {size} of {len(data)} bytes was read without error")


def test_truncation_after_open_is_an_error_not_a_crash(torch, tmp_path):
    path = tmp_path / "sd.pt"
    path.write_bytes(open(peer("torch_state_dict.pt"), "rb").read())
    with TorchReader(path) as reader:
        os.truncate(path, 100)
        with pytest.raises(CheckpointError, match="changed size after it was opened"):
            reader.read("embed.weight")


def test_garbage_pickle_is_a_checkpoint_error(torch, tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"\x80\x02" + os.urandom(200))
    with pytest.raises(CheckpointError):
        TorchReader(path)


def test_torch_stays_optional():
    """Importing the module must not import torch."""
    assert "torch" not in torch_io.__dict__
