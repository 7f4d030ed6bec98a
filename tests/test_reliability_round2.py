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
        except BaseException as exc:  # noqa: BLE001 - recorded and asserted below
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

        def use() -> None:
            barrier.wait()
            try:
                seen.append(lazy.build())
            except BaseException as exc:  # noqa: BLE001
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
    script = ("import sys\nfrom modelsurgeon.core.checkpoint import open_checkpoint\n"
              "r = open_checkpoint(sys.argv[1]); assert r.architecture is not None; print(len(r.tensors))")
    for _ in range(4):
        done = subprocess.run([sys.executable, "-c", script, str(index)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "16"


# -- item 5 (inputs): anything but a regular file is refused at once ------------------------------------

def _cli(*args: object, timeout: float = 60) -> subprocess.CompletedProcess:
    """The CLI in a child process, so that a command blocking on a FIFO fails the test instead of hanging it."""
    code = "import sys\nfrom modelsurgeon.cli.main import main\nsys.argv[0] = 'modelsurgeon'\nmain()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "model.safetensors"
    os.mkfifo(path)
    return path


def test_a_fifo_as_a_checkpoint_is_refused_without_blocking(fifo):
    from modelsurgeon.core.checkpoint import open_checkpoint
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
    from modelsurgeon.core.checkpoint import open_checkpoint, read_graph_file
    from modelsurgeon.core.formats.npyfile import read_npy
    for opener in (open_checkpoint, read_graph_file, read_npy):
        with pytest.raises(CheckpointError, match=f"is {kind}"):
            opener(node)


def test_a_directory_is_still_reported_as_one(tmp_path):
    from modelsurgeon.core.checkpoint import open_checkpoint
    with pytest.raises(CheckpointError, match="is a directory, not a checkpoint file$"):
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
