"""PyTorch written back: state dicts that torch.load(weights_only=True) loads, member choice, and
hostile pickles that crash torch's unpickler refused as bad checkpoints (exit 4), not crashes."""

from __future__ import annotations

import io
import json
import os
import sys
import zipfile

import numpy as np
import pytest

from modelsurgeon.core.errors import CheckpointError, MissingDependencyError, ModelSurgeonError, ParameterError
from modelsurgeon.core.formats import isolate, torch_io
from modelsurgeon.core.formats.base import TensorInfo
from modelsurgeon.core.formats.torch_io import TorchReader, write_torch

torch = pytest.importorskip("torch")


def _state() -> dict[str, object]:
    gen = torch.Generator().manual_seed(0)
    embed = torch.randn(6, 4, generator=gen)
    return {
        "features.0.weight": torch.randn(4, 3, 3, 3, generator=gen),
        "features.1.num_batches_tracked": torch.tensor(7, dtype=torch.int64),  # 0-d
        "features.1.running_var": torch.rand(4, generator=gen).to(torch.float16),
        "embed.weight": embed,
        "head.weight": embed,  # tied: one storage under two keys
        "proj.weight": torch.randn(3, 5, generator=gen).to(torch.bfloat16),
        "mask": torch.tensor([True, False, True]),
        "index": torch.arange(-3, 5, dtype=torch.int64).reshape(2, 4),
        "scale": torch.tensor(0.25, dtype=torch.float64),
        "empty": torch.zeros(0, 3),
    }


def _copy(reader: TorchReader, path: str) -> None:
    write_torch(path, list(reader.tensors.values()), lambda info: reader.read(info.key))


def test_round_trip_loads_with_weights_only(tmp_path):
    state = _state()
    torch.save(state, tmp_path / "in.pt")
    with TorchReader(tmp_path / "in.pt") as reader:
        assert reader.tensors["proj.weight"].extra["source_dtype"] == "BF16"
        assert reader.tensors["head.weight"].alias_of == "embed.weight"
        _copy(reader, str(tmp_path / "out.pt"))
    loaded = torch.load(tmp_path / "out.pt", weights_only=True)
    assert list(loaded) == list(state)
    for key, value in state.items():
        assert loaded[key].dtype == value.dtype, key
        assert loaded[key].shape == value.shape, key
        assert torch.equal(loaded[key], value), key
    assert loaded["features.1.num_batches_tracked"].dim() == 0
    # tied weights stay one storage
    assert loaded["head.weight"].untyped_storage().data_ptr() == loaded["embed.weight"].untyped_storage().data_ptr()
    # and the output reads back the same through our reader
    with TorchReader(tmp_path / "out.pt") as again:
        assert again.keys() == list(state)
        np.testing.assert_array_equal(again.read("index"), state["index"].numpy())


def test_same_tensors_give_the_same_bytes(tmp_path):
    torch.save(_state(), tmp_path / "in.pt")
    with TorchReader(tmp_path / "in.pt") as reader:
        _copy(reader, str(tmp_path / "a.pt"))
        _copy(reader, str(tmp_path / "b.pt"))
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_new_arrays_and_checks(tmp_path):
    infos = [TensorInfo("w", (2, 3), np.dtype(np.float32)), TensorInfo("b", (), np.dtype(np.int32))]
    values = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array(5, np.int32)}
    write_torch(tmp_path / "new.pt", infos, lambda i: values[i.key])
    loaded = torch.load(tmp_path / "new.pt", weights_only=True)
    assert loaded["w"].tolist() == [[0, 1, 2], [3, 4, 5]] and loaded["b"].item() == 5
    assert loaded["b"].dtype == torch.int32
    with pytest.raises(ModelSurgeonError, match=r"tensor 'w' is \(3, 2\), expected \(2, 3\)"):
        write_torch(tmp_path / "bad.pt", infos, lambda i: values[i.key].T if i.key == "w" else values[i.key])
    with pytest.raises(ModelSurgeonError, match="duplicate tensor key 'w'"):
        write_torch(tmp_path / "dup.pt", [infos[0], infos[0]], lambda i: values[i.key])
    assert sorted(os.listdir(tmp_path)) == ["new.pt"]  # nothing half-written, no temporaries


def test_bf16_values_that_changed_are_rounded(tmp_path):
    info = TensorInfo("w", (3,), np.dtype(np.float32), extra={"source_dtype": "BF16"})
    write_torch(tmp_path / "w.pt", [info], lambda i: np.array([1.0, 1 + 2 ** -12, -3.5], np.float32))
    loaded = torch.load(tmp_path / "w.pt", weights_only=True)["w"]
    assert loaded.dtype == torch.bfloat16 and loaded.float().tolist() == [1.0, 1.0, -3.5]
    write_torch(tmp_path / "f.pt", [info], lambda i: np.array([1.0, 1 + 2 ** -12, -3.5], np.float32),
                keep_source_dtype=False)
    assert torch.load(tmp_path / "f.pt", weights_only=True)["w"].dtype == torch.float32


def test_without_torch_the_writer_names_the_alternative(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError, match=r"needs PyTorch \(pip install torch\); or write safetensors"):
        write_torch(tmp_path / "x.pt", [TensorInfo("w", (1,), np.dtype(np.float32))], lambda i: np.zeros(1, np.float32))
    assert not (tmp_path / "x.pt").exists()


# ---------------------------------------------------------------------------------------------
# Checkpoint dictionaries and --member

def test_wrapped_members_default_and_choice(tmp_path):
    model = {"fc.weight": torch.ones(2, 2), "fc.bias": torch.zeros(2)}
    ema = {"fc.weight": torch.full((2, 2), 3.0), "fc.bias": torch.ones(2)}
    torch.save({"epoch": 4, "model": model, "model_ema": ema, "optimizer": {"state": {}}}, tmp_path / "ckpt.pt")
    with TorchReader(tmp_path / "ckpt.pt") as reader:
        assert reader.metadata["wrapper"] == "model"
        assert json.loads(reader.metadata["members"]) == ["model", "model_ema"]
        assert reader.read("fc.weight").tolist() == [[1, 1], [1, 1]]
    with TorchReader(tmp_path / "ckpt.pt", member="model_ema") as reader:
        assert reader.metadata["wrapper"] == "model_ema"
        assert reader.keys() == ["fc.weight", "fc.bias"]
        assert reader.read("fc.weight").tolist() == [[3, 3], [3, 3]]
        assert json.loads(reader.metadata["dropped"]) == ["epoch", "model", "optimizer"]
        write_torch(tmp_path / "ema.pt", list(reader.tensors.values()), lambda i: reader.read(i.key))
    assert list(torch.load(tmp_path / "ema.pt", weights_only=True)) == ["fc.weight", "fc.bias"]
    with pytest.raises(ParameterError, match=r"no member 'ema' holding tensors; the file has members: "
                                              r"'model', 'model_ema' \(choose one with `member`\)"):
        TorchReader(tmp_path / "ckpt.pt", member="ema")
    with pytest.raises(ParameterError, match="no member 'optimizer' holding tensors"):
        TorchReader(tmp_path / "ckpt.pt", member="optimizer")


def test_nested_member_path(tmp_path):
    torch.save({"trainer": {"module": {"w": torch.ones(1)}}, "step": 3}, tmp_path / "n.pt")
    with TorchReader(tmp_path / "n.pt", member="trainer.module") as reader:
        assert reader.keys() == ["w"] and reader.metadata["wrapper"] == "trainer.module"
    with pytest.raises(CheckpointError, match=r"no state dict found: .*keys: 'trainer', 'step'\); members holding "
                                              r"tensors: 'trainer.module' \(choose one with `member`\)"):
        TorchReader(tmp_path / "n.pt")  # 'trainer' is not a usual wrapper name


# ---------------------------------------------------------------------------------------------
# Issue 19 item 6: pickles that crash torch's unpickler

def _nested_key_file(path, depth: int) -> None:
    """A torch.save archive whose one key is a tuple nested ``depth`` deep: made by torch.save with a
    placeholder key, whose pickled string is then swapped for EMPTY_TUPLE + depth x TUPLE1 (1 byte a level)."""
    buffer = io.BytesIO()
    torch.save({"KEYMARK": torch.zeros(2)}, buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.endswith("data.pkl"):
                mark = b"X\x07\x00\x00\x00KEYMARK"  # BINUNICODE, length 7
                assert data.count(mark) == 1
                data = data.replace(mark, b")" + b"\x85" * depth)
            out.writestr(item, data)


@pytest.mark.skipif(not isolate.AVAILABLE, reason="needs fork")
def test_deeply_nested_key_that_crashes_torch_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "deep.pt"
    _nested_key_file(path, 1_000_000)  # hashing this key overflows the C stack: SIGSEGV in torch.load
    with pytest.raises(CheckpointError, match=r"PyTorch crashed \(SIGSEGV\) reading this file: it is corrupt or "
                                              r"hostile"):
        TorchReader(path)


def test_nested_key_that_made_a_recursion_error_is_listed_as_dropped(tmp_path):
    path = tmp_path / "deep4.pt"
    _nested_key_file(path, 10_000)  # repr() of the key used to raise RecursionError (exit 70)
    with TorchReader(path) as reader:
        assert reader.keys() == []
        assert json.loads(reader.metadata["dropped"]) == ["((((...),),),)"]


@pytest.mark.skipif(not isolate.AVAILABLE, reason="needs fork")
def test_cli_exit_4_for_the_crashing_file(tmp_path):
    from cli_helpers import invoke
    path = tmp_path / "deep.pt"
    _nested_key_file(path, 1_000_000)
    result = invoke("inspect", path, code=4)
    assert "PyTorch crashed (SIGSEGV)" in result.stderr


def test_child_errors_come_back_as_checkpoint_errors(tmp_path):
    if not isolate.AVAILABLE:
        pytest.skip("needs fork")

    def boom() -> None:
        raise RecursionError("maximum recursion depth exceeded")

    with pytest.raises(CheckpointError, match="x: cannot read it: RecursionError: maximum recursion depth"):
        isolate.run_in_child("x", boom, library="test")
    assert isolate.run_in_child("x", lambda: "listed", library="test") == "listed"
    with pytest.raises(CheckpointError, match=r"x: test crashed \(SIGABRT\)"):
        isolate.run_in_child("x", lambda: os.abort(), library="test")


def test_normal_files_are_validated_once(tmp_path, monkeypatch):
    torch.save({"w": torch.ones(2)}, tmp_path / "w.pt")
    calls = []
    real = isolate.run_in_child
    monkeypatch.setattr(isolate, "run_in_child", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    for _ in range(2):
        with TorchReader(tmp_path / "w.pt") as reader:
            assert reader.keys() == ["w"]
    assert len(calls) == (1 if torch_io.VALIDATE else 0)


def test_float8_written_back_only_when_exact(tmp_path):
    if not hasattr(torch, "float8_e4m3fn"):
        pytest.skip("this PyTorch has no float8")
    info = TensorInfo("w", (3,), np.dtype(np.float32), extra={"source_dtype": "F8_E4M3"})
    write_torch(tmp_path / "ok.pt", [info], lambda i: np.array([1.0, -0.5, 448.0], np.float32))
    loaded = torch.load(tmp_path / "ok.pt", weights_only=True)["w"]
    assert loaded.dtype == torch.float8_e4m3fn and loaded.float().tolist() == [1.0, -0.5, 448.0]
    with pytest.raises(ModelSurgeonError, match="was F8_E4M3 in its source but now holds values F8_E4M3 cannot "
                                                r"represent exactly; write it as float32 instead"):
        write_torch(tmp_path / "bad.pt", [info], lambda i: np.array([1.0, 0.1, 2.0], np.float32))
    assert not (tmp_path / "bad.pt").exists()


def test_registry_writer_notes_what_a_state_dict_cannot_keep(tmp_path):
    import types
    documents = types.SimpleNamespace(kind="structural", architecture={"type": "Dense"}, graph=None,
                                      metadata={"wrapper": "model", "note": "x"})
    notes = torch_io.write_file(str(tmp_path / "w.pt"), [TensorInfo("w", (1,), np.dtype(np.float32))],
                                lambda i: np.ones(1, np.float32), documents)
    assert notes == ["the architecture is not stored: a PyTorch state dict holds tensors only",
                     "metadata (note) is not stored: a PyTorch state dict holds tensors only"]
    assert torch.load(tmp_path / "w.pt", weights_only=True)["w"].tolist() == [1.0]


def test_missing_dependency_is_a_usage_error():
    from modelsurgeon.cli.errors import ExitCode, exit_code_for
    assert exit_code_for(MissingDependencyError("x.pt: writing a PyTorch checkpoint needs PyTorch")) == ExitCode.USAGE == 2
