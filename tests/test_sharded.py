"""Sharded outputs (--max-shard-size) and sharded inputs read transparently by every command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from modelsurgeon.cli.main import cli
from modelsurgeon.cli.target import parse_size
from modelsurgeon.core import binding as checkpoint
from modelsurgeon.core.engine import nn

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"


def run(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout


@pytest.fixture
def cnn(tmp_path: Path) -> Path:
    return Path(shutil.copy(SAMPLES / "cnn.h5", tmp_path / "cnn.h5"))


@pytest.mark.parametrize("fmt, index_name", [("h5", "model.h5.index.json"),
                                             ("safetensors", "model.safetensors.index.json")])
def test_convert_writes_shards_that_every_command_reads(cnn, tmp_path, fmt, index_name):
    out = tmp_path / "shards"
    code, _ = run("convert", cnn, "-o", f"{out}/", "--format", fmt, "--max-shard-size", "20KB")
    assert code == 0
    index = json.loads((out / index_name).read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and all((out / s).is_file() for s in shards)
    assert index["metadata"]["total_size"] == sum(
        i.nbytes for i in checkpoint.open_checkpoint(str(cnn)).tensors.values())
    with checkpoint.open_checkpoint(str(out / index_name)) as reader, \
            checkpoint.open_checkpoint(str(cnn)) as original:
        assert list(reader.tensors) == list(original.tensors)  # model order, not shard order
        assert reader.architecture == original.architecture
        for key in original.tensors:
            np.testing.assert_array_equal(reader.read(key), original.read(key))
    assert run("diff", cnn, out / index_name, "--values")[0] == 0
    assert run("run", out / index_name, "--json")[0] == 0
    code, _stdout = run("replace-head", out / index_name, "-o", tmp_path / "three.h5", "--classes", 3, "--json")
    assert code == 0
    assert run("run", tmp_path / "three.h5", "--json")[0] == 0


def test_a_tensor_larger_than_the_limit_gets_its_own_shard(tmp_path):
    net = nn.HybridSequential()
    net.add(nn.Dense(4, in_units=4), nn.Dense(300, in_units=100), nn.Dense(2, in_units=300))
    net.initialize()
    net.save_parameters(str(tmp_path / "m.h5"))
    assert run("convert", tmp_path / "m.h5", "-o", tmp_path / "s" / "m.h5", "--max-shard-size", "1KB")[0] == 0
    index = json.loads((tmp_path / "s" / "m.h5.index.json").read_text())
    assert index["weight_map"]["1.weight"] not in {index["weight_map"][k] for k in index["weight_map"]
                                                   if k != "1.weight"}


def test_shared_tensors_split_across_shards_are_copied_and_still_read(tmp_path):
    net = nn.HybridSequential()
    first = nn.Dense(64, in_units=64)
    net.add(first, nn.Dense(64, in_units=64))
    net[1].share_parameters(first.collect_params())
    net.initialize()
    net(np.ones((1, 64), np.float32))
    net.save_parameters(str(tmp_path / "shared.h5"))
    assert run("convert", tmp_path / "shared.h5", "-o", f"{tmp_path}/s/", "--max-shard-size", "10KB")[0] == 0
    with checkpoint.open_checkpoint(str(tmp_path / "s" / "model.h5.index.json")) as reader:
        np.testing.assert_array_equal(reader.read("1.weight"), net[0].weight.data())


def test_existing_index_needs_force(cnn, tmp_path):
    target = f"{tmp_path}/s/"
    assert run("convert", cnn, "-o", target, "--max-shard-size", "20KB")[0] == 0
    assert run("convert", cnn, "-o", target, "--max-shard-size", "20KB")[0] == 7
    assert run("convert", cnn, "-o", target, "--max-shard-size", "20KB", "--force")[0] == 0


@pytest.mark.parametrize("text, size", [("2GB", 2 * 10**9), ("500MB", 500 * 10**6), ("1GiB", 2**30),
                                        ("4096", 4096), ("1.5kB", 1500)])
def test_parse_size(text, size):
    assert parse_size(text) == size


def test_bad_shard_size_is_a_usage_error(cnn, tmp_path):
    assert run("convert", cnn, "-o", tmp_path / "x/", "--max-shard-size", "lots")[0] == 2


def test_a_shard_missing_from_disk_is_a_clear_error(cnn, tmp_path):
    assert run("convert", cnn, "-o", f"{tmp_path}/s/", "--max-shard-size", "20KB")[0] == 0
    sorted((tmp_path / "s").glob("model-00001-of-*.h5"))[0].unlink()
    result = CliRunner().invoke(cli, ["inspect", str(tmp_path / "s" / "model.h5.index.json")])
    assert result.exit_code == 4 and "missing" in result.stderr


@pytest.mark.parametrize("fmt, index_name", [("h5", "model.h5.index.json"), ("mxnet", "model.params.index.json")])
def test_many_shards_are_read_with_few_files_open(cnn, tmp_path, fmt, index_name, monkeypatch):
    """At most MAX_OPEN_SHARDS shards stay open; the rest are reopened on demand, data and kernel copies alike."""
    import os

    from modelsurgeon.core.formats import sharded
    monkeypatch.setattr(sharded, "MAX_OPEN_SHARDS", 2)
    out = tmp_path / "shards"
    assert run("convert", cnn, "-o", f"{out}/", "--format", fmt, "--max-shard-size", "4KB")[0] == 0
    assert len(set(json.loads((out / index_name).read_text())["weight_map"].values())) > 4
    fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    with checkpoint.open_checkpoint(str(out / index_name)) as reader, \
            checkpoint.open_checkpoint(str(cnn)) as original:
        for _ in range(2):
            for key in original.tensors:
                np.testing.assert_array_equal(reader.read(key), original.read(key))
        if fds is not None:
            assert len(os.listdir("/proc/self/fd")) <= fds + 2 * 2  # two shards (h5py may hold two descriptors each)
    assert run("convert", out / index_name, "-o", tmp_path / "back.h5")[0] == 0
    assert run("diff", cnn, tmp_path / "back.h5", "--values")[0] == 0


@pytest.mark.parametrize("fmt, index_name", [("h5", "model.h5.index.json"),
                                             ("safetensors", "model.safetensors.index.json"),
                                             ("mxnet", "model.params.index.json")])
def test_a_shard_that_cannot_be_committed_fails_the_run_cleanly(cnn, tmp_path, monkeypatch, fmt, index_name):
    """Shards are committed on a helper thread while the next one is written. When one commit
    fails (the disk fills at its fsync), the run fails with the usual one-line error, removes the
    shards it had put in place and leaves no temporary file; whatever of an earlier run it had not
    yet replaced (later shards, the index) is left as it was."""
    import errno
    import os

    from modelsurgeon.core.formats import atomic
    out = tmp_path / "shards"
    assert run("convert", cnn, "-o", f"{out}/", "--format", fmt, "--max-shard-size", "5KB")[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    shards = sorted(n for n in before if not n.endswith(".json"))
    assert len(shards) >= 3
    real_fsync, calls = os.fsync, []

    def third_fails(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 5:  # each committed shard fsyncs its file and its directory: shard 3's file
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", third_fails)
    result = CliRunner().invoke(cli, ["convert", str(cnn), "-o", f"{out}/", "--format", fmt,
                                      "--max-shard-size", "5KB", "--force", "--json"])
    monkeypatch.setattr(atomic.os, "fsync", real_fsync)
    assert result.exit_code == 9, result.output
    assert "no space left on device" in json.loads(result.stdout)["error"]["message"]
    left = {p.name: p.read_bytes() for p in out.iterdir()}
    assert not any(n.startswith(atomic.TEMP_PREFIX) for n in left)
    # shards 1-2 were replaced and then removed with the failed run (as before the queue); shard 3
    # was not replaced, nor anything after it, nor the index, which comes last
    assert sorted(left) == sorted([*shards[2:], index_name])
    assert all(left[n] == before[n] for n in left)


def test_commit_queue_left_by_an_error_commits_nothing_more(tmp_path):
    from modelsurgeon.core.formats.atomic import CommitQueue, atomic_output
    queue = CommitQueue()
    with pytest.raises(RuntimeError), queue:
        for name in ("a", "b"):
            with atomic_output(tmp_path / name, later=queue) as tmp:
                Path(tmp).write_bytes(name.encode())
        queue.wait()  # a and b are in place
        with atomic_output(tmp_path / "c", later=queue) as tmp:
            Path(tmp).write_bytes(b"c")
        raise RuntimeError("the writer failed while c was queued")
    assert queue.committed[:2] == [str(tmp_path / "a"), str(tmp_path / "b")]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names in (["a", "b"], ["a", "b", "c"])  # c committed before the failure reached the queue, or dropped
    assert (str(tmp_path / "c") in queue.committed) == ("c" in names)


def test_commit_queue_raises_a_failed_commit_when_its_block_ends(tmp_path, monkeypatch):
    """Leaving the block normally reports a commit that failed, even without a wait()."""
    import errno

    from modelsurgeon.core.formats import atomic
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(atomic.WriteError, match="no space left"), atomic.CommitQueue() as queue:
        with atomic.atomic_output(tmp_path / "a", later=queue) as tmp:
            Path(tmp).write_bytes(b"a")
    assert list(tmp_path.iterdir()) == []
