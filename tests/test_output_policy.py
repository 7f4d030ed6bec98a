"""The one output policy (issue 19, data loss 2-5): no command writes over any file it reads (shards,
index, the sibling -symbol.json), over anything but a regular file, or leaves half of a multi-file
output. Every input is checked byte for byte afterwards, and no node is replaced."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

import pytest
from cli_helpers import error_line, invoke

from modelsurgeon.cli.errors import ExitCode

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def shards(tmp_path):
    """A safetensors checkpoint in 4 shards plus its index, and one in HDF5 shards."""
    st = tmp_path / "st"
    invoke("convert", SAMPLES / "cnn.h5", "-o", st / "model.safetensors.index.json", "--max-shard-size", "8KB")
    h5 = tmp_path / "h5"
    invoke("convert", SAMPLES / "cnn.h5", "-o", f"{h5}/", "--max-shard-size", "8KB")
    return st, h5


@pytest.mark.parametrize("args", [
    ["rename", "{index}", "--map", "^features=f", "-o", "{dir}", "--format", "safetensors", "--max-shard-size", "8KB"],
    ["convert", "{index}", "-o", "{dir}/model.safetensors", "--max-shard-size", "8KB"],
    ["convert", "{index}", "-o", "{index}"],
    ["replace-head", "{index}", "--classes", "3", "-o", "{shard}"],
], ids=["rename-over-its-shards", "convert-over-its-shards", "over-its-index", "over-one-shard"])
def test_sharded_output_over_the_sharded_input_is_refused(shards, args):
    st, _ = shards
    index = st / "model.safetensors.index.json"
    shard = sorted(st.glob("model-*.safetensors"))[0]
    before = _digests(st)
    argv = [a.format(index=index, dir=st, shard=shard) for a in args] + ["--force"]
    result = invoke(*argv, code=ExitCode.INVALID)
    assert "is the input" in error_line(result) or "the input needs" in error_line(result)
    assert _digests(st) == before


def test_hdf5_shards_are_inputs_too(shards):
    _, h5 = shards
    index = next(h5.glob("*.index.json"))
    before = _digests(h5)
    invoke("convert", index, "-o", f"{h5}/", "--max-shard-size", "8KB", "--force", code=ExitCode.INVALID)
    assert _digests(h5) == before


def test_reports_and_arrays_never_replace_their_inputs(tmp_path):
    cnn, mlp = tmp_path / "cnn.h5", tmp_path / "mlp.h5"
    shutil.copy(SAMPLES / "cnn.h5", cnn)
    shutil.copy(SAMPLES / "mlp.h5", mlp)
    before = _digests(tmp_path)
    invoke("diff", cnn, mlp, "--html", cnn, "--force", code=ExitCode.INVALID)
    invoke("run", cnn, "-o", cnn, "--force", code=ExitCode.INVALID)
    invoke("graph", cnn, "-o", tmp_path / "cnn.h5", "--force", code=None)
    assert _digests(tmp_path) == before


def test_an_mxnet_output_never_rewrites_the_inputs_graph(tmp_path):
    """x-0000.params -o x-0001.params would write x-symbol.json, which the input reads."""
    invoke("convert", SAMPLES / "cnn.h5", "-o", tmp_path / "cnn-0000.params", "--to", "named")
    before = _digests(tmp_path)
    result = invoke("rename", tmp_path / "cnn-0000.params", "-o", tmp_path / "cnn-0001.params", "--map", "^param_=p_",
                    "--force", code=ExitCode.INVALID)
    assert "cnn-symbol.json" in error_line(result)
    assert _digests(tmp_path) == before


def test_an_mxnet_export_appears_whole_or_not_at_all(tmp_path, monkeypatch):
    """With room for the .params but not the -symbol.json, neither is left behind."""
    from modelsurgeon.core.formats import atomic
    real = atomic._commit
    calls = []

    def failing_second(tmp, target, directory, overwrite, then):
        calls.append(target)
        if target.endswith("-symbol.json"):
            raise OSError(28, "No space left on device")
        return real(tmp, target, directory, overwrite, then)

    monkeypatch.setattr(atomic, "_commit", failing_second)
    out = tmp_path / "out"
    out.mkdir()
    result = invoke("convert", SAMPLES / "cnn-named.h5", "-o", out / "cnn-0000.params", code=None)
    assert result.exit_code == ExitCode.IO_ERROR
    assert sorted(os.listdir(out)) == []
    # over an earlier export, a failed one puts the earlier files back as they were
    monkeypatch.setattr(atomic, "_commit", real)
    invoke("convert", SAMPLES / "cnn-named.h5", "-o", out / "cnn-0000.params")
    before = _digests(out)
    monkeypatch.setattr(atomic, "_commit", failing_second)
    invoke("replace-head", out / "cnn-0000.params", "--classes", "3", "-o", out / "cnn-0000.params", "--force",
           code=ExitCode.INVALID)  # its own input: refused before anything
    invoke("convert", SAMPLES / "cnn-named.h5", "-o", out / "cnn-0000.params", "--force", code=ExitCode.IO_ERROR)
    assert _digests(out) == before and sorted(os.listdir(out)) == sorted(before)


def test_outputs_never_replace_a_fifo(tmp_path):
    target = tmp_path / "node"
    os.mkfifo(target)
    result = invoke("convert", SAMPLES / "cnn.h5", "-o", target, "--format", "h5", "--force", code=ExitCode.IO_ERROR)
    assert stat.S_ISFIFO(os.lstat(target).st_mode)
    assert error_line(result) == f"{target} is not a regular file; outputs only replace regular files"


def test_dev_null_is_never_replaced():
    before = os.stat("/dev/null")
    result = invoke("convert", SAMPLES / "cnn.h5", "-o", "/dev/null", "--format", "h5", "--force", code=None)
    assert result.exit_code == ExitCode.IO_ERROR
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_dev) == (before.st_ino, before.st_dev)


@pytest.mark.parametrize("name, formats", [
    ("model.unknown", "cannot tell the output format"),
    ("model.index.json.txt", "cannot tell the output format"),
    ("model.keras.zip", "cannot tell the output format"),
])
def test_an_output_whose_format_is_unknown_is_refused_before_any_work(tmp_path, name, formats):
    """exit 2, naming the formats that can be written; nothing created, not even a temporary file."""
    for command in (["convert", SAMPLES / "cnn.h5"], ["rename", SAMPLES / "cnn.h5", "--add-prefix", "m."],
                    ["replace-head", SAMPLES / "cnn.h5", "--classes", "3"], ["zoo", "alexnet"]):
        result = invoke(*command, "-o", tmp_path / name, code=ExitCode.USAGE)
        message = result.stderr
        assert formats in message and "safetensors (.safetensors)" in message and "h5 (.h5, .hdf5)" in message
        assert result.stdout == "" and os.listdir(tmp_path) == []
