"""Unchanged tensors are copied by the kernel (core/formats/extents.py), with the same result as reading them.

* every reader's ``extent(key)`` names exactly the bytes ``read(key)`` returns;
* the writers (HDF5, safetensors, MXNet ``.params``, sharded) copy located tensors without
  fetching them (large ones by the kernel, small ones with one read), and the file is byte for
  byte what fetching would have written;
* without ``copy_file_range`` (another file system, another platform) the fallback writes the same;
* a source that shrank or was replaced after it was opened is an error, and nothing is written.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import invoke

from modelsurgeon.core.binding import open_checkpoint
from modelsurgeon.core.errors import CheckpointError
from modelsurgeon.core.formats import extents, registry, sharded
from modelsurgeon.core.formats.base import TensorInfo
from modelsurgeon.core.formats.h5 import write_h5
from modelsurgeon.core.formats.spec import Documents


def reader_source(reader):
    """fetch and locate of every tensor of ``reader``, as a surgery plan's Copy sources give them."""
    return (lambda info: reader.read(info.key)), (lambda info: reader.extent(info.key))


def write_checkpoint(path, fmt, kind, infos, fetch, locate=None, progress=None):
    return registry.get(fmt).write(path, infos, fetch, Documents(kind), locate=locate, progress=progress)


def write_sharded_checkpoint(path, fmt, kind, infos, fetch, *, max_shard_size, locate=None):
    return sharded.write_sharded(path, registry.get(fmt), infos, fetch, Documents(kind),
                                 max_shard_size=max_shard_size, locate=locate)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BIG = extents.KERNEL_COPY_BYTES  # bytes: tensors at least this large are copied by the kernel


def _tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "features.0.weight": rng.standard_normal((64, BIG // 64 // 4 + 3)).astype(np.float32),
        "features.0.bias": rng.standard_normal(64).astype(np.float32),  # small: one pread, no kernel copy
        "features.1.weight": rng.standard_normal((BIG // 8,)).astype(np.float64),
        "features.1.mask": rng.integers(0, 2, BIG * 2).astype(bool),  # bool: always fetched
        "features.2.table": rng.integers(-9, 9, (4, BIG // 4)).astype(np.int8),
        "output.weight": rng.standard_normal((10, BIG // 4 // 10 + 1)).astype(np.float16),
        "output.bias": np.zeros(10, np.float32),
    }


@pytest.fixture
def source(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    arrays = _tensors()
    path = tmp_path / "source.h5"
    infos = [TensorInfo(k, a.shape, a.dtype) for k, a in arrays.items()]
    write_h5(str(path), "structural", infos, lambda info: arrays[info.key])
    return path, arrays


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _extent_bytes(extent: extents.Extent) -> bytes:
    with open(extent.path, "rb") as handle:
        handle.seek(extent.offset)
        return handle.read(extent.nbytes)


READER_FILES = [
    "mxnet_formats/dtype_float32.params", "mxnet_formats/dtype_float16.params", "mxnet_formats/dtype_int64.params",
    "mxnet_formats/dtype_bool.params", "mxnet_formats/export-0000.params", "mxnet_formats/legacy_v1.params",
    "peers/torch_bf16.safetensors", "peers/keras3_cnn.weights.h5", "peers/keras3_cnn_legacy.h5",
    "peers/tf_keras_cnn_weights.h5", "peers/keras3_bf16.weights.h5",
]


@pytest.mark.parametrize("name", READER_FILES)
def test_fixture_extents_hold_exactly_what_read_returns(name):
    with open_checkpoint(str(FIXTURES / name)) as reader:
        located = 0
        for key, info in reader.tensors.items():
            extent = reader.extent(key)
            if extent is None:
                continue
            located += 1
            assert extent.nbytes == info.nbytes
            stored = np.frombuffer(_extent_bytes(extent), extent.dtype).reshape(info.shape)
            assert stored.dtype == reader.read(key).dtype.newbyteorder("<")
            assert stored.tobytes() == np.ascontiguousarray(reader.read(key)).tobytes(), key
        convertible = [i for i in reader.tensors.values() if i.dtype.kind != "b" and i.nbytes
                       and "source_dtype" not in i.extra]
        assert (located > 0) == bool(convertible), f"{located} of {len(reader.tensors)} tensors located"


@pytest.mark.parametrize("fmt", ["h5", "safetensors", "mxnet"])
def test_written_files_locate_every_plain_tensor(fmt, source, tmp_path):
    path, arrays = source
    out = tmp_path / f"out.{fmt}"
    with open_checkpoint(str(path)) as reader:
        fetch, _ = reader_source(reader)
        write_checkpoint(str(out), fmt, reader.kind, list(reader.tensors.values()), fetch)
    with open_checkpoint(str(out)) as reader:
        for key, array in arrays.items():
            extent = reader.extent(key)
            assert (extent is None) == (array.dtype == bool), key
            if extent is not None:
                assert _extent_bytes(extent) == array.tobytes()


@pytest.mark.parametrize("fmt", ["h5", "safetensors", "mxnet"])
def test_writers_copy_located_tensors_and_write_the_same_bytes(fmt, source, tmp_path):
    path, arrays = source
    fetched_out, copied_out = tmp_path / f"fetched.{fmt}", tmp_path / f"copied.{fmt}"
    with open_checkpoint(str(path)) as reader:
        infos = list(reader.tensors.values())
        fetch, locate = reader_source(reader)
        write_checkpoint(str(fetched_out), fmt, reader.kind, infos, fetch)
        fetched: list[str] = []

        def counting_fetch(info):
            fetched.append(info.key)
            return fetch(info)

        write_checkpoint(str(copied_out), fmt, reader.kind, infos, counting_fetch, locate=locate)
    assert _digest(copied_out) == _digest(fetched_out)
    assert set(fetched) == {k for k, a in arrays.items() if a.dtype == bool}, "located tensors were fetched"


@pytest.mark.parametrize("fmt", ["h5", "safetensors", "mxnet"])
def test_only_large_tensors_are_copied_by_the_kernel(fmt, source, tmp_path, monkeypatch):
    path, arrays = source
    calls: list[int] = []
    kernel_copy = os.copy_file_range

    def counting(src, dst, count, *args):
        calls.append(count)
        return kernel_copy(src, dst, count, *args)

    monkeypatch.setattr(os, "copy_file_range", counting)
    with open_checkpoint(str(path)) as reader:
        fetch, locate = reader_source(reader)
        write_checkpoint(str(tmp_path / f"out.{fmt}"), fmt, reader.kind, list(reader.tensors.values()), fetch,
                         locate=locate)
    large = sorted(a.nbytes for a in arrays.values() if a.nbytes >= BIG and a.dtype != bool)
    assert sorted(calls) == large


@pytest.mark.parametrize("fmt", ["h5", "safetensors"])
def test_sharded_output_copies_too(fmt, source, tmp_path):
    path, arrays = source
    with open_checkpoint(str(path)) as reader:
        fetch, locate = reader_source(reader)
        index, _ = write_sharded_checkpoint(str(tmp_path / "shards") + os.sep, fmt, reader.kind,
                                            list(reader.tensors.values()), fetch, locate=locate,
                                            max_shard_size=BIG * 2)
    with open_checkpoint(index) as sharded:
        assert len({i.extra["shard"] for i in sharded.tensors.values()}) > 2
        for key, array in arrays.items():
            np.testing.assert_array_equal(sharded.read(key), array)
            extent = sharded.extent(key)
            if extent is not None:  # a sharded input is located shard by shard
                assert os.path.basename(extent.path) == sharded.tensors[key].extra["shard"]
                assert _extent_bytes(extent) == array.tobytes()


@pytest.mark.parametrize("how", ["unsupported", "missing"])
def test_without_kernel_copies_the_fallback_writes_the_same(how, source, tmp_path, monkeypatch):
    path, _ = source
    with open_checkpoint(str(path)) as reader:
        fetch, locate = reader_source(reader)
        infos = list(reader.tensors.values())
        write_checkpoint(str(tmp_path / "kernel.h5"), "h5", reader.kind, infos, fetch, locate=locate)
        if how == "missing":
            monkeypatch.delattr(os, "copy_file_range")
        else:
            def refuse(*args):
                raise OSError(errno.EXDEV, "Invalid cross-device link")
            monkeypatch.setattr(os, "copy_file_range", refuse)
        monkeypatch.setattr(extents, "FALLBACK_CHUNK", 4096)  # many rounds through the buffer
        write_checkpoint(str(tmp_path / "fallback.h5"), "h5", reader.kind, infos, fetch, locate=locate)
    assert _digest(tmp_path / "fallback.h5") == _digest(tmp_path / "kernel.h5")


def test_a_real_write_error_is_not_swallowed_by_the_fallback(source, tmp_path, monkeypatch):
    path, _ = source

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "copy_file_range", full)
    with open_checkpoint(str(path)) as reader:
        fetch, locate = reader_source(reader)
        with pytest.raises(Exception, match="no space left"):
            write_checkpoint(str(tmp_path / "out.h5"), "h5", reader.kind, list(reader.tensors.values()), fetch,
                             locate=locate)
    assert os.listdir(tmp_path) == ["source.h5"]


def test_a_source_that_shrank_after_opening_is_an_error(source, tmp_path):
    path, _ = source
    with open_checkpoint(str(path)) as reader:
        fetch, locate = reader_source(reader)
        copied = [reader.extent(k) for k, i in reader.tensors.items() if i.nbytes >= BIG and reader.extent(k)]
        os.truncate(path, max(e.offset for e in copied) + 8)
        with pytest.raises(CheckpointError, match="changed after it was opened"):
            write_checkpoint(str(tmp_path / "x.h5"), "h5", reader.kind, list(reader.tensors.values()), fetch,
                             locate=locate)
    assert not (tmp_path / "x.h5").exists()


def test_a_source_replaced_after_opening_is_an_error(source, tmp_path):
    path, arrays = source
    with open_checkpoint(str(path)) as reader:
        fetch, locate = reader_source(reader)
        other = tmp_path / "other.h5"
        write_h5(str(other), "structural", list(reader.tensors.values()), lambda i: np.zeros_like(arrays[i.key]))
        os.replace(other, path)
        with pytest.raises(CheckpointError, match="replaced by another file"):
            write_checkpoint(str(tmp_path / "x.h5"), "h5", reader.kind, list(reader.tensors.values()), fetch,
                             locate=locate)
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize("args", [["convert"], ["rename", "--add-prefix", "module."],
                                  ["replace-head", "--classes", "3", "--seed", "0"]])
def test_commands_on_large_tensors_keep_every_unchanged_tensor(args, source, tmp_path):
    path, arrays = source
    out = tmp_path / "out.safetensors"
    invoke(args[0], path, *args[1:], "-o", out, "-q")
    prefix = "module." if "--add-prefix" in args else ""
    with open_checkpoint(str(out)) as reader:
        for key, array in arrays.items():
            if args[0] == "replace-head" and key.startswith("output."):
                assert reader.tensors[key].shape[0] == 3
                continue
            np.testing.assert_array_equal(reader.read(prefix + key), array)


@pytest.mark.parametrize("fmt", ["h5", "safetensors", "mxnet"])
def test_writeback_starts_while_the_output_is_written(fmt, source, tmp_path, monkeypatch):
    """Copied and fetched bytes both count; the head start never changes the file."""
    path, _ = source
    calls: list[tuple[int, int, int, int]] = []
    requests = []
    monkeypatch.setattr(extents, "WRITEBACK_EVERY", BIG)
    monkeypatch.setattr(extents.Writeback, "_call", lambda *args: calls.append(args) or 0)
    start = extents.Writeback.start
    monkeypatch.setattr(extents.Writeback, "start", lambda self: requests.append(1) or start(self))
    with open_checkpoint(str(path)) as reader:
        fetch, locate = reader_source(reader)
        infos = list(reader.tensors.values())
        write_checkpoint(str(tmp_path / f"paced.{fmt}"), fmt, reader.kind, infos, fetch, locate=locate)
        total = sum(i.nbytes for i in infos)
        # requests made while the helper thread is in a call fold into its next call
        assert len(requests) >= total // BIG - 1
        assert 1 <= len(calls) <= len(requests) and all(c[1:] == (0, 0, 2) for c in calls)
        monkeypatch.setattr(extents.Writeback, "_call", False)  # no sync_file_range: nothing happens
        write_checkpoint(str(tmp_path / f"plain.{fmt}"), fmt, reader.kind, infos, fetch, locate=locate)
    assert _digest(tmp_path / f"paced.{fmt}") == _digest(tmp_path / f"plain.{fmt}")


def test_the_real_writeback_call_is_harmless(tmp_path):
    with open(tmp_path / "f", "wb") as handle:
        handle.write(b"x" * 4096)
        handle.flush()
        writeback = extents.Writeback(handle.fileno())
        writeback.start()
        writeback.close()
    assert (tmp_path / "f").read_bytes() == b"x" * 4096


def test_writeback_close_stops_its_thread_before_the_file_closes(tmp_path, monkeypatch):
    """A request made while a call runs is served by one more call before close() returns, none
    starts after it: the descriptor may then be closed (and its number reused) safely. Events order
    the threads; nothing depends on how they are scheduled."""
    import threading
    calls, inside, release = [], threading.Event(), threading.Event()

    def held(fd: int, *args: int) -> int:
        inside.set()
        assert release.wait(5)
        calls.append(fd)
        return 0

    monkeypatch.setattr(extents.Writeback, "_call", held)
    writeback = extents.Writeback(123)
    writeback.start()
    assert inside.wait(5)
    writeback.start()  # arrives during the call
    release.set()
    writeback.close()
    assert calls == [123, 123] and not any(t.name == "modelsurgeon-writeback" for t in threading.enumerate())
    writeback.start()  # after close: nothing, and no thread
    assert calls == [123, 123] and not any(t.name == "modelsurgeon-writeback" for t in threading.enumerate())


def test_reading_a_tensor_cut_off_after_opening_is_an_error_not_zeros(source):
    """HDF5 itself reads past the end of a file as zeros; the reader refuses instead."""
    path, arrays = source
    with open_checkpoint(str(path)) as reader:
        key = "features.2.table"
        extent = reader.extent(key)
        os.truncate(path, extent.offset + 8)
        with pytest.raises(CheckpointError, match="past the end of the file"):
            reader.read(key)
        np.testing.assert_array_equal(reader.read("features.0.weight"), arrays["features.0.weight"])
