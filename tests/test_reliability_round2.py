"""Issue 19 (reliability, second round): the file-layer, engine and lazy-loading items.

Each test names the item it proves. Data-loss tests check that every input is byte-identical
afterwards (or, for ``rename --in-place``, that the file is either the old one or the completely
renamed one).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelsurgeon.core.errors import CheckpointError

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- item 7: lazy loading from several threads --------------------------------------------------------

def _slow_module(tmp_path: Path, name: str) -> None:
    """A module whose code announces it started, then waits until the test lets it finish."""
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""
        import lazyhooks
        lazyhooks.started.set()
        lazyhooks.proceed.wait(10)
        def build():
            return "built"
    """))


@pytest.fixture
def hooks(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    module = type(sys)("lazyhooks")
    monkeypatch.setitem(sys.modules, "lazyhooks", module)
    return tmp_path, module


def test_a_second_thread_waits_for_a_lazy_module_being_loaded(hooks, monkeypatch):
    """Thread A starts loading; thread B touches the module meanwhile: B must see it complete."""
    from modelsurgeon.core.lazy import lazy_module
    tmp_path, module = hooks
    _slow_module(tmp_path, "lazy_slow_a")
    module.started, module.proceed = threading.Event(), threading.Event()
    lazy = lazy_module("lazy_slow_a")
    monkeypatch.setitem(sys.modules, "lazy_slow_a", lazy)
    results: dict[str, object] = {}

    def use(tag: str) -> None:
        try:
            results[tag] = lazy.build()
        except BaseException as exc:
            results[tag] = exc

    first = threading.Thread(target=use, args=("a",))
    first.start()
    assert module.started.wait(10)
    second = threading.Thread(target=use, args=("b",))
    second.start()
    second.join(0.5)  # with the old loader B failed at once; now it waits for A
    module.proceed.set()
    first.join(10)
    second.join(10)
    assert results == {"a": "built", "b": "built"}


def test_many_threads_hitting_fresh_lazy_modules_all_see_them_whole(tmp_path, monkeypatch):
    """Item 7: 16 threads released together on a fresh lazy module, 25 times."""
    from modelsurgeon.core.lazy import lazy_module
    monkeypatch.syspath_prepend(str(tmp_path))
    for round_ in range(25):
        name = f"lazy_fresh_{round_}"
        # a module long enough that its code takes a while to run
        body = "\n".join(f"value_{i} = {i}" for i in range(2000)) + "\ndef build():\n    return value_1999\n"
        (tmp_path / f"{name}.py").write_text(body)
        importlib.invalidate_caches()
        lazy = lazy_module(name)
        monkeypatch.setitem(sys.modules, name, lazy)
        barrier = threading.Barrier(16)
        failures: list[BaseException] = []
        seen: list[int] = []

        def use(barrier: threading.Barrier = barrier, lazy: Any = lazy, seen: list[int] = seen,
                failures: list[BaseException] = failures) -> None:
            barrier.wait()
            try:
                seen.append(lazy.build())
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=use) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert failures == [] and seen == [1999] * 16


def test_a_fresh_process_reads_a_sharded_checkpoint_with_an_architecture(tmp_path):
    """Item 7 end to end: shards made by our own convert, inspected by fresh processes."""
    from cli_helpers import invoke
    out = tmp_path / "shards"
    invoke("convert", SAMPLES / "cnn.h5", "-o", f"{out}/", "--format", "safetensors", "--max-shard-size", "4KB")
    index = out / "model.safetensors.index.json"
    assert len(set(json.loads(index.read_text())["weight_map"].values())) > 2
    script = ("import sys\nfrom modelsurgeon.core.binding import open_checkpoint\n"
              "r = open_checkpoint(sys.argv[1]); assert r.architecture is not None; print(len(r.tensors))")
    for _ in range(4):
        done = subprocess.run([sys.executable, "-c", script, str(index)], capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "16"


# -- item 5 (inputs): anything but a regular file is refused at once ------------------------------------

def _cli(*args: object, timeout: float = 60) -> subprocess.CompletedProcess:
    """The CLI in a child process, so that a command blocking on a FIFO fails the test instead of hanging it."""
    code = "import sys\nfrom modelsurgeon.cli.main import main\nsys.argv[0] = 'modelsurgeon'\nmain()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, check=False)


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "model.safetensors"
    os.mkfifo(path)
    return path


def test_a_fifo_as_a_checkpoint_is_refused_without_blocking(fifo):
    from modelsurgeon.core.binding import open_checkpoint
    with pytest.raises(CheckpointError, match=r"is a named pipe \(FIFO\), not a checkpoint file"):
        open_checkpoint(str(fifo))
    done = _cli("inspect", fifo)
    assert done.returncode == 4 and "named pipe (FIFO)" in done.stderr


def test_a_fifo_as_a_graph_file_is_refused_without_blocking(tmp_path):
    import shutil
    graph = tmp_path / "graph-symbol.json"
    os.mkfifo(graph)
    params = Path(shutil.copy(SAMPLES / "cnn.h5", tmp_path / "cnn.h5"))
    done = _cli("run", params, "--symbol", graph, "--random-input", "1,3,32,32")
    assert done.returncode == 4 and "named pipe (FIFO), not a graph file" in done.stderr


@pytest.mark.parametrize("node, kind", [("/dev/null", "a character device"), ("/dev/zero", "a character device")])
def test_devices_are_refused_as_inputs(node, kind):
    from modelsurgeon.core.binding import open_checkpoint, read_graph_file
    from modelsurgeon.core.formats.npyfile import read_npy
    for opener in (open_checkpoint, read_graph_file, read_npy):
        with pytest.raises(CheckpointError, match=f"is {kind}"):
            opener(node)


def test_a_directory_is_still_reported_as_one(tmp_path):
    from modelsurgeon.core.binding import open_checkpoint
    with pytest.raises(CheckpointError, match="is a directory, not a checkpoint file"):
        open_checkpoint(str(tmp_path))


def test_npy_inputs_are_read_defensively(tmp_path):
    from modelsurgeon.core.formats.npyfile import read_npy
    good = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.save(tmp_path / "good.npy", good)
    np.save(tmp_path / "fortran.npy", np.asfortranarray(good))
    np.testing.assert_array_equal(read_npy(tmp_path / "good.npy"), good)
    np.testing.assert_array_equal(read_npy(tmp_path / "fortran.npy"), good)
    os.mkfifo(tmp_path / "pipe.npy")
    with pytest.raises(CheckpointError, match="named pipe"):
        read_npy(tmp_path / "pipe.npy")
    # item 11: a header claiming (100000, 3, 1000, 1000) in a tiny file: refused before allocating
    bomb = tmp_path / "bomb.npy"
    with open(bomb, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False,
                                                      "shape": (100000, 3, 1000, 1000)})
        handle.write(b"\0" * 64)
    with pytest.raises(CheckpointError, match=r"declares .* \(1200000000000 bytes\) but the file holds 64 bytes"):
        read_npy(bomb)
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CheckpointError, match="Python objects"):
        read_npy(tmp_path / "objects.npy")
    (tmp_path / "text.npy").write_text("hello")
    with pytest.raises(CheckpointError, match="not a .npy array"):
        read_npy(tmp_path / "text.npy")


# -- item 1: rename --in-place is whole or absent ------------------------------------------------------

def _many_tensor_file(path: Path, count: int) -> Path:
    from modelsurgeon.core.formats.base import TensorInfo
    from modelsurgeon.core.formats.h5 import write_h5
    infos = [TensorInfo(f"layer{i}.weight", (4,), np.dtype("float32")) for i in range(count)]
    write_h5(str(path), "structural", infos, lambda info: np.full(4, float(info.key[5:-7]), np.float32))
    return path


def _renamed_reference(source: Path, where: Path, mapping_prefix: str) -> bytes:
    """The bytes an uninterrupted in-place rename of a copy of ``source`` produces."""
    import shutil

    from modelsurgeon.core.binding import open_checkpoint
    from modelsurgeon.core.formats.h5 import rename_in_place
    copy = Path(shutil.copy(source, where))
    with open_checkpoint(str(copy)) as reader:
        mapping = {key: mapping_prefix + key for key in reader.tensors}
    assert rename_in_place(str(copy), mapping) in ("journal", "clone")
    return copy.read_bytes()


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_in_place_rename_is_deterministic_and_journaled(tmp_path):
    source = _many_tensor_file(tmp_path / "m.h5", 50)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = _renamed_reference(source, tmp_path / "a" / "m.h5", "module.")
    assert first == _renamed_reference(source, tmp_path / "b" / "m.h5", "module.")
    assert _leftovers(tmp_path / "a") == []
    from modelsurgeon.core.binding import open_checkpoint
    with open_checkpoint(str(tmp_path / "a" / "m.h5")) as reader:
        assert list(reader.tensors)[:2] == ["module.layer0.weight", "module.layer1.weight"]
        np.testing.assert_array_equal(reader.read("module.layer7.weight"), np.full(4, 7, np.float32))


def test_in_place_rename_on_a_full_disk_leaves_the_file_as_it_was(tmp_path):
    """Item 1: a 2 MiB tmpfs filled to within 0-64 KiB of full; a 380-character prefix makes the
    metadata grow. Every run either renames completely (exit 0) or fails with exit 9, the file
    byte-identical and nothing left beside it."""
    from cli_helpers import invoke
    from system_helpers import tmpfs
    prefix = "p" * 380 + "."
    original = (SAMPLES / "cnn.h5").read_bytes()
    outcomes = set()
    with tmpfs(tmp_path / "disk", "size=2m") as mounted:
        if not mounted:
            pytest.skip("cannot mount a tmpfs here (not root); test_in_place_rename_survives_enospc_anywhere covers it")
        disk = tmp_path / "disk"
        for free_pages in (0, 1, 2, 3, 4, 6, 8, 12, 16):
            target = disk / "cnn.h5"
            target.write_bytes(original)
            fd = os.open(disk / "fill", os.O_WRONLY | os.O_CREAT)
            try:
                while os.write(fd, bytes(4096)) == 4096:
                    pass
            except OSError:
                pass
            finally:
                os.close(fd)
            os.truncate(disk / "fill", max(0, os.path.getsize(disk / "fill") - free_pages * 4096))
            result = invoke("rename", target, "--in-place", "--add-prefix", prefix, code=None)
            outcomes.add(result.exit_code)
            if result.exit_code == 0:
                (disk / "fill").unlink()
                shown = invoke("inspect", target, "--json")
                keys = [t["key"] for t in json.loads(shown.stdout)["tensors"]]
                assert keys and all(k.startswith(prefix) for k in keys)
            else:
                assert result.exit_code == 9, result.stderr
                assert "no space left on device" in result.stderr and "the file is unchanged" in result.stderr
                assert target.read_bytes() == original
                (disk / "fill").unlink()
            assert _leftovers(disk) == []
            target.unlink()
    assert outcomes == {0, 9}  # both ends of the range were reached


@pytest.mark.parametrize("where", ["journal", "reserve"])
def test_in_place_rename_survives_enospc_anywhere(tmp_path, monkeypatch, where):
    """Item 1 without a tmpfs: ENOSPC injected while writing the journal or reserving space."""
    import errno
    import shutil

    from modelsurgeon.core.errors import WriteError
    from modelsurgeon.core.formats import h5journal
    from modelsurgeon.core.formats.h5 import rename_in_place
    target = Path(shutil.copy(SAMPLES / "cnn.h5", tmp_path / "cnn.h5"))
    before = sha(target)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if where == "journal":
        monkeypatch.setattr(h5journal, "_journal_chunks", full)
    else:
        monkeypatch.setattr(h5journal, "_reserve", full)
    with pytest.raises(WriteError, match="no space left on device.*the file is unchanged"):
        rename_in_place(str(target), {"output.bias": "head.bias"})
    assert sha(target) == before and _leftovers(tmp_path) == []


def test_an_edit_interrupted_while_applying_completes_on_the_next_open(tmp_path, monkeypatch):
    """Item 1 (power loss / kill mid-write): the journal's pages are half written when the run dies;
    the next open finishes the edit, byte for byte."""
    import shutil

    from modelsurgeon.core.binding import open_checkpoint
    from modelsurgeon.core.formats import h5journal
    from modelsurgeon.core.formats.h5 import rename_in_place
    source = _many_tensor_file(tmp_path / "m.h5", 300)
    (tmp_path / "ref").mkdir()
    reference = _renamed_reference(source, tmp_path / "ref" / "m.h5", "module.")
    (tmp_path / "work").mkdir()
    target = Path(shutil.copy(source, tmp_path / "work" / "m.h5"))
    real_pwrite, calls = os.pwrite, []

    def dies_after_one(fd, data, offset):
        if calls:
            raise KeyboardInterrupt  # the process dies here
        calls.append(offset)
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(h5journal.os, "pwrite", dies_after_one)
    with pytest.raises(KeyboardInterrupt):
        rename_in_place(str(target), {f"layer{i}.weight": f"module.layer{i}.weight" for i in range(300)})
    monkeypatch.setattr(h5journal.os, "pwrite", real_pwrite)
    journal = Path(h5journal.journal_path(str(target)))
    assert journal.exists() and target.read_bytes() not in (source.read_bytes(), reference)
    with open_checkpoint(str(target)) as reader:  # recovery happens on open
        assert "module.layer299.weight" in reader.tensors
    assert target.read_bytes() == reference and not journal.exists()


def test_a_damaged_or_foreign_journal_is_dropped_and_the_file_untouched(tmp_path):
    import shutil

    from modelsurgeon.core.binding import open_checkpoint
    from modelsurgeon.core.formats import h5journal
    target = Path(shutil.copy(SAMPLES / "cnn.h5", tmp_path / "cnn.h5"))
    before = sha(target)
    journal = Path(h5journal.journal_path(str(target)))
    st = os.stat(target)

    def sealed(inode: int) -> bytes:
        body = b"".join(h5journal._journal_chunks((st.st_dev, inode, st.st_size, st.st_size), [(0, b"X" * 64)]))
        return body + hashlib.sha256(body).digest()

    mine = sealed(st.st_ino)
    for blob in (mine[:40], mine[:-1], mine[:-32] + bytes(32), sealed(st.st_ino + 1)):  # cut, bad digest, foreign
        journal.write_bytes(blob)
        with open_checkpoint(str(target)) as reader:
            assert "output.bias" in reader.tensors
        assert sha(target) == before and not journal.exists()


def test_sigkill_during_in_place_rename_leaves_old_or_renamed(tmp_path):
    """Item 1: real processes killed with SIGKILL at random moments of an in-place rename of a
    400-tensor file; after each kill the file (once opened, which finishes a journaled edit) is the
    old file or the renamed one, byte for byte."""
    import random
    import shutil
    import signal
    import time

    from modelsurgeon.core.binding import open_checkpoint
    source = _many_tensor_file(tmp_path / "m.h5", 400)
    old = source.read_bytes()
    (tmp_path / "ref").mkdir()
    reference = _renamed_reference(source, tmp_path / "ref" / "m.h5", "module.")
    script = ("import sys\nfrom modelsurgeon.core.formats.h5 import rename_in_place\n"
              "rename_in_place(sys.argv[1], {f'layer{i}.weight': f'module.layer{i}.weight' for i in range(400)})")
    (tmp_path / "work").mkdir()
    target = tmp_path / "work" / "m.h5"
    shutil.copy(source, target)
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", script, str(target)], check=True, timeout=120)
    span = time.monotonic() - start  # only to spread the kill moments; nothing asserts it
    assert target.read_bytes() == reference
    rng = random.Random(19)
    seen = set()
    for _ in range(8):
        shutil.copy(source, target)
        child = subprocess.Popen([sys.executable, "-c", script, str(target)])
        time.sleep(rng.uniform(0.0, span))
        child.send_signal(signal.SIGKILL)
        child.wait()
        with open_checkpoint(str(target)):
            pass
        now = target.read_bytes()
        assert now in (old, reference)
        seen.add(now == reference)
        assert [n for n in _leftovers(target.parent) if "journal" in n] == []


# -- item 12: HDF5 lock contention is reported as such ------------------------------------------------

def test_a_file_locked_by_a_writer_is_reported_as_locked_not_corrupt(tmp_path):
    import shutil

    from modelsurgeon.core.binding import open_checkpoint
    target = Path(shutil.copy(SAMPLES / "cnn.h5", tmp_path / "cnn.h5"))
    holder = subprocess.Popen([sys.executable, "-c", ("import sys, h5py\nf = h5py.File(sys.argv[1], 'r+')\n"
                               "print('open', flush=True)\nsys.stdin.read()"), str(target)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        env_locking = os.environ.get("HDF5_USE_FILE_LOCKING", "").upper()
        if env_locking in ("FALSE", "0"):
            pytest.skip("HDF5 file locking is turned off in this environment")
        with pytest.raises(CheckpointError, match="is locked by another process that has it open for writing"):
            open_checkpoint(str(target))
    finally:
        holder.stdin.close()
        holder.wait(30)


# -- items 11 and 12: safetensors headers, indexes, deep keys ---------------------------------------

def _raw_safetensors(path: Path, header: dict, data: bytes = b"") -> Path:
    import struct
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


@pytest.mark.parametrize("shape, message", [
    ([0] + [1] * 64, "65 dimensions; numpy arrays have at most 64"),
    ([0, 2**63], "no elements, but its other dimensions multiply to more than"),
    ([0, 2**40, 2**40], "no elements, but its other dimensions multiply to more than"),
])
def test_zero_element_tensors_numpy_cannot_hold_are_refused(tmp_path, shape, message):
    """Item 11: these listed fine and then crashed diff/convert (exit 70) in numpy."""
    from cli_helpers import invoke

    from modelsurgeon.core.binding import open_checkpoint
    path = _raw_safetensors(tmp_path / "odd.safetensors", {"x": {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}})
    with pytest.raises(CheckpointError, match=message):
        open_checkpoint(str(path))
    for args in (["convert", path, "-o", tmp_path / "out.h5"], ["diff", path, path, "--values"]):
        assert invoke(*args, code=None).exit_code == 4
    assert not (tmp_path / "out.h5").exists()


def test_zero_element_tensors_numpy_can_hold_still_work(tmp_path):
    from cli_helpers import invoke
    path = _raw_safetensors(tmp_path / "ok.safetensors", {"x": {"dtype": "F32", "shape": [0] + [1] * 63,
                                                               "data_offsets": [0, 0]},
                                                         "y": {"dtype": "F32", "shape": [0, 2**40], "data_offsets": [0, 0]}})
    invoke("convert", path, "-o", tmp_path / "out.safetensors")
    invoke("diff", path, tmp_path / "out.safetensors", "--values")
    # HDF5 holds at most 32 dimensions: refused before writing, not an internal error
    result = invoke("convert", path, "-o", tmp_path / "out.h5", code=6)
    assert "64 dimensions" in result.stderr and not (tmp_path / "out.h5").exists()


def test_a_shard_name_with_a_lone_surrogate_is_refused(tmp_path):
    """Item 11: '\\ud800' in a shard name was an internal error (UnicodeEncodeError)."""
    from cli_helpers import invoke

    from modelsurgeon.core.binding import open_checkpoint
    index = tmp_path / "model.safetensors.index.json"
    index.write_text('{"metadata": {}, "weight_map": {"a": "model-\\ud800.safetensors"}}')
    with pytest.raises(CheckpointError, match="lone surrogate"):
        open_checkpoint(str(index))
    assert invoke("inspect", index, code=None).exit_code == 4


def test_an_index_with_a_long_metadata_block_is_recognised(tmp_path):
    """Item 12: weight_map after 64 KiB of metadata; looks_like_index parses the whole JSON."""
    from safetensors.numpy import save_file

    from modelsurgeon.core.formats.safetensors_io import looks_like_index
    save_file({"a": np.arange(3, dtype=np.float32)}, str(tmp_path / "model-00001-of-00001.safetensors"))
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {"notes": "x" * 100_000},
                                 "weight_map": {"a": "model-00001-of-00001.safetensors"}}))
    assert index.read_bytes().find(b"weight_map") > 65536
    assert looks_like_index(index) and looks_like_index(index, ".safetensors")
    assert not looks_like_index(index, ".h5")
    (tmp_path / "list.json").write_text("[" + " " * 10 + "]")
    (tmp_path / "fake.json").write_text('{"metadata": {"weight_map": {}}}')
    os.mkfifo(tmp_path / "pipe.json")
    for other in ("list.json", "fake.json", "pipe.json", "missing.json"):
        assert not looks_like_index(tmp_path / other)


def test_a_malformed_graph_in_safetensors_metadata_is_set_aside_with_a_note(tmp_path):
    """Item 12: the tensors are listed; the graph is dropped with a note (it made inspect exit 6)."""
    from cli_helpers import invoke
    from safetensors.numpy import save_file

    from modelsurgeon.core.binding import open_checkpoint
    path = tmp_path / "g.safetensors"
    save_file({"a": np.zeros(3, np.float32)}, str(path),
              metadata={"modelsurgeon.graph": json.dumps({"nodes": 5}), "modelsurgeon.kind": "named"})
    with open_checkpoint(str(path)) as reader:
        assert reader.graph is None and list(reader.tensors) == ["a"]
        assert len(reader.notes) == 1 and "embedded graph is not a usable graph" in reader.notes[0]
    assert "a" in invoke("inspect", path).stdout


def test_many_empty_tensors_are_listed_without_per_tensor_package_calls(tmp_path, monkeypatch):
    """Item 12: 200,000 empty tensors took 23 s to inspect; the hot spots were one safetensors-package
    call per tensor and Python's cycle collector running over the parsed header. Counted, not timed
    (on 50,000: the counts do not depend on the size)."""
    import gc

    from modelsurgeon.core.formats import safetensors_io
    count = 50_000
    path = _raw_safetensors(tmp_path / "empty.safetensors",
                            {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(count)})
    package_calls = []
    real_open = safetensors_io._open_package

    class Counting:
        def __init__(self, handle):
            self.handle = handle

        def __getattr__(self, name):
            package_calls.append(name)
            return getattr(self.handle, name)

    monkeypatch.setattr(safetensors_io, "_open_package", lambda p: Counting(real_open(p)))
    collections = []
    gc.callbacks.append(lambda phase, info: collections.append(info) if phase == "start" else None)
    try:
        with safetensors_io.SafetensorsReader(path) as reader:
            assert len(reader.tensors) == count
    finally:
        gc.callbacks.pop()
    assert len(package_calls) < 10
    assert len(collections) < 10  # with the collector on throughout: hundreds
    assert gc.isenabled()


def test_keys_of_5000_segments_are_drawn_and_listed(tmp_path):
    """Item 11: inspect --tree, graph and diff --html recursed once per key segment (RecursionError)."""
    from cli_helpers import invoke
    from safetensors.numpy import save_file
    key = ".".join(["a"] * 5000) + ".weight"
    save_file({key: np.zeros(3, np.float32), "b.weight": np.ones(2, np.float32)}, str(tmp_path / "one.safetensors"))
    save_file({key: np.ones(3, np.float32), "b.weight": np.ones(2, np.float32)}, str(tmp_path / "two.safetensors"))
    document = json.loads(invoke("inspect", tmp_path / "one.safetensors", "--tree", "--json").stdout)
    node, depth = document["tree"][0], 1
    while node.get("children"):
        node, depth = node["children"][0], depth + 1
    from modelsurgeon.core.keytree import MAX_DEPTH
    assert depth == MAX_DEPTH and node["name"] == ".".join(["a"] * (5000 - MAX_DEPTH + 1)) + ".weight"
    invoke("inspect", tmp_path / "one.safetensors", "--tree")
    invoke("graph", tmp_path / "one.safetensors", "-o", tmp_path / "one.html")
    invoke("diff", tmp_path / "one.safetensors", tmp_path / "two.safetensors", "--html", tmp_path / "d.html", code=1)
    assert (tmp_path / "one.html").stat().st_size > 0 and (tmp_path / "d.html").stat().st_size > 0


def test_the_overlay_behaves_like_the_file_it_stands_for(tmp_path):
    """h5journal.Overlay (what HDF5 edits in memory) against a real file given the same writes,
    truncations and reads, then the journal's runs applied to a copy give the same bytes."""
    import io
    import random

    from modelsurgeon.core.formats import h5journal
    rng = random.Random(7)
    for round_ in range(30):
        base = rng.randbytes(rng.randrange(0, 20000))
        original = tmp_path / f"o{round_}"
        original.write_bytes(base)
        reference = open(tmp_path / f"r{round_}", "w+b")  # a real file: truncate() also extends it
        reference.write(base)
        overlay = h5journal.Overlay(str(original))
        for _ in range(40):
            action = rng.random()
            if action < 0.5:
                at = rng.randrange(0, 25000)
                data = rng.randbytes(rng.randrange(1, 9000))
                for f in (overlay, reference):
                    f.seek(at)
                    f.write(data)
            elif action < 0.65:
                size = rng.randrange(0, 25000)
                for f in (overlay, reference):
                    f.truncate(size)
            else:
                at, n = rng.randrange(0, 26000), rng.randrange(0, 9000)
                got = bytearray(n)
                overlay.seek(at)
                count = overlay.readinto(got)
                reference.seek(at)
                assert bytes(got[:count]) == reference.read(n)
            assert overlay.seek(0, io.SEEK_END) == reference.seek(0, io.SEEK_END)
        runs, size = overlay.runs(), overlay.size
        overlay.close()
        copy = tmp_path / f"c{round_}"
        copy.write_bytes(base)
        with open(copy, "r+b") as handle:
            for offset, data in runs:
                handle.seek(offset)
                handle.write(data)
            handle.truncate(size)
        reference.seek(0)
        assert copy.read_bytes() == reference.read()
        reference.close()
        original.unlink()
        copy.unlink()


def test_in_place_rename_of_a_file_open_elsewhere_is_refused_untouched(tmp_path):
    """The in-place edit takes the lock HDF5 takes: with another process reading the file through
    HDF5, the rename is refused (exit 4) and the file left byte-identical."""
    import shutil

    from cli_helpers import invoke
    target = Path(shutil.copy(SAMPLES / "cnn.h5", tmp_path / "cnn.h5"))
    before = sha(target)
    if os.environ.get("HDF5_USE_FILE_LOCKING", "").upper() in ("FALSE", "0"):
        pytest.skip("HDF5 file locking is turned off in this environment")
    holder = subprocess.Popen([sys.executable, "-c", ("import sys, h5py\nf = h5py.File(sys.argv[1], 'r')\n"
                               "print('open', flush=True)\nsys.stdin.read()"), str(target)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        result = invoke("rename", target, "--in-place", "--add-prefix", "m.", code=4)
        assert "is open in another process" in result.stderr
        assert sha(target) == before and _leftovers(tmp_path) == []
    finally:
        holder.stdin.close()
        holder.wait(30)
    invoke("rename", target, "--in-place", "--add-prefix", "m.")
