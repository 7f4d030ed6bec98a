"""Promise 4 of docs/reliability.md: a write killed at any moment loses nothing.

Real ``modelsurgeon`` processes (the installed console script) run ``convert`` (to HDF5,
safetensors and MXNet ``.params``), ``rename`` and ``replace-head`` on a ~100 MB checkpoint and
are killed with SIGKILL at random moments, most of them while the output is being written.
After every kill:

* the output path holds either nothing, the file that was there before (byte for byte), or the
  complete new output (byte for byte what an unkilled run writes: our writers are reproducible);
* the input is byte-identical;
* what a kill leaves is at most ``.modelsurgeon-tmp-<pid>@...`` files, and the next successful
  run in that directory removes them (their writers are dead).
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from system_helpers import console_script, drop_permission_override, tmpfs

from modelsurgeon.core.formats.atomic import TEMP_PREFIX

#: (label, arguments before -o, output file name)
COMMANDS = [
    ("convert-h5", ["convert", "{input}"], "out.h5"),
    ("convert-safetensors", ["convert", "{input}"], "out.safetensors"),
    ("convert-params", ["convert", "{input}"], "out.params"),
    ("rename", ["rename", "{input}", "--map", "^layers=blocks"], "out.h5"),
    ("replace-head", ["replace-head", "{input}", "--classes", "7", "--seed", "0"], "out.h5"),
]
KILLS_PER_COMMAND = 12
TENSORS = 96  # of 1 MiB each, plus a small head: ~97 MB


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def temps(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith(TEMP_PREFIX))


@pytest.fixture(scope="module")
def big_input(tmp_path_factory) -> tuple[Path, str]:
    """A structural checkpoint written by the core writer: many 1 MiB tensors and an ``output`` head."""
    from modelsurgeon.core.formats.base import TensorInfo
    from modelsurgeon.core.formats.h5 import write_h5
    path = tmp_path_factory.mktemp("crash-input") / "big.h5"
    block = np.random.default_rng(0).standard_normal((256, 1024)).astype(np.float32)
    infos = []
    for i in range(TENSORS):
        infos += [TensorInfo(f"layers.{i}.weight", (256, 1024), np.dtype(np.float32)),
                  TensorInfo(f"layers.{i}.bias", (256,), np.dtype(np.float32))]
    infos += [TensorInfo("output.weight", (10, 1024), np.dtype(np.float32)),
              TensorInfo("output.bias", (10,), np.dtype(np.float32))]

    def fetch(info):
        number = sum(map(ord, info.key)) % 101
        return block + number if info.shape == (256, 1024) else np.full(info.shape, number, np.float32)

    write_h5(str(path), "structural", infos, fetch)
    assert path.stat().st_size > 90 << 20
    return path, sha256(path)


def _argv(command, input_path: Path, output: Path) -> list[str]:
    _, args, _ = command
    return [console_script(), *[a.format(input=input_path) for a in args], "-o", str(output), "--force", "-q"]


@pytest.fixture(scope="module")
def references(big_input, tmp_path_factory) -> dict[str, tuple[str, float, float]]:
    """label -> (hash of the complete output, seconds a run takes, seconds until its temp file appears)."""
    from modelsurgeon.core.binding import open_checkpoint
    input_path, _ = big_input
    found = {}
    for command in COMMANDS:
        label, _, name = command
        directory = tmp_path_factory.mktemp(f"ref-{label}")
        output = directory / name
        runs = []
        for _ in range(2):  # the first run pays for cold caches; kills are timed from the quicker one
            started = time.monotonic()
            process = subprocess.Popen(_argv(command, input_path, output), stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE)
            appeared = None
            while process.poll() is None:
                if appeared is None and temps(directory):
                    appeared = time.monotonic() - started
                time.sleep(0.0005)
            total = time.monotonic() - started
            assert process.returncode == 0, process.stderr.read().decode()
            runs.append((total, appeared if appeared is not None else total * 0.5, sha256(output)))
        assert runs[0][2] == runs[1][2], f"{label}: two runs wrote different files"
        with open_checkpoint(str(output)) as reader:  # the complete output is a valid checkpoint
            assert len(reader.tensors) == 2 * TENSORS + 2
            for key in reader.keys():  # noqa: SIM118 - a reader, not a dict
                reader.read(key)
        total, appeared, digest = min(runs)
        found[label] = (digest, total, appeared)
    return found


def _kill_one(command, input_path: Path, directory: Path, reference, rng: random.Random, old: Path | None):
    """One run killed at a random moment: (killed while running?, output state, killed mid-write?)."""
    label, _, name = command
    complete, total, appeared = reference
    output = directory / name
    previous = None
    if old is not None:
        shutil.copyfile(old, output)
        previous = sha256(output)
    elif output.exists():
        output.unlink()
    process = subprocess.Popen(_argv(command, input_path, output), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    started = time.monotonic()
    if rng.random() < 0.7:  # most kills land while the output is being written
        mine = f"{TEMP_PREFIX}{process.pid}@"  # not the leftovers of earlier kills
        while process.poll() is None and not any(t.startswith(mine) for t in temps(directory)) \
                and time.monotonic() - started < total * 3:
            time.sleep(0.0005)
        time.sleep(rng.uniform(0, max(0.6 * (total - appeared), 0.02)))
    else:  # the rest anywhere: start-up, reading, validation, writing, renaming
        time.sleep(rng.uniform(0, 0.6 * total))  # a run can be quicker than the reference run
    running = process.poll() is None
    writing = any(t.startswith(f"{TEMP_PREFIX}{process.pid}@") for t in temps(directory))
    if running:
        process.send_signal(signal.SIGKILL)
    process.wait()
    if not output.exists():
        state = "absent"
    else:
        now = sha256(output)
        assert now in (complete, previous), f"{label}: the output is neither the old file nor a complete new one"
        state = "complete" if now == complete else "old"
    assert previous is None or state != "absent", f"{label}: the old output was lost"
    return running, state, running and writing


def test_sigkill_at_random_moments_loses_nothing(big_input, references, tmp_path):
    input_path, input_hash = big_input
    old = Path(__file__).resolve().parent.parent / "sample_models" / "cnn.h5"  # a valid file to overwrite
    lanes = []
    for lane in range(2):  # two lanes on two cores, each in its own directory
        plan = []
        for command in COMMANDS:
            for number in range(KILLS_PER_COMMAND // 2):
                plan.append((command, number % 3 == 0))
        random.Random(lane).shuffle(plan)
        directory = tmp_path / f"lane{lane}"
        directory.mkdir()
        lanes.append((lane, directory, plan))

    def run_lane(lane, directory, plan):
        rng = random.Random(1000 + lane)
        results = []
        for command, overwrite in plan:
            results.append((command[0], *_kill_one(command, input_path, directory, references[command[0]], rng,
                                                   old if overwrite else None)))
        return results

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = [r for lane in pool.map(lambda args: run_lane(*args), lanes) for r in lane]
    killed = [o for o in outcomes if o[1]]
    assert len(killed) >= 50, f"only {len(killed)} of {len(outcomes)} runs were still running when killed"
    states = {o[2] for o in killed}
    mid_write = sum(1 for o in killed if o[3])
    assert mid_write >= 25, f"only {mid_write} kills landed while a temporary output file was being written"
    assert "absent" in states, "no kill landed before the output appeared: the test does not probe the write"
    assert sha256(input_path) == input_hash, "the input changed"
    left = {lane: temps(directory) for lane, directory, _ in lanes}
    # the next successful run in each directory removes what the killed runs left behind
    for lane, directory, _ in lanes:
        command = COMMANDS[lane]
        done = subprocess.run(_argv(command, input_path, directory / command[2]), capture_output=True)
        assert done.returncode == 0, done.stderr.decode()
        assert sha256(directory / command[2]) == references[command[0]][0]
        assert temps(directory) == [], f"lane {lane}: temporary files left after a successful run: {temps(directory)}"
    print(f"\n{len(killed)} kills ({mid_write} while the temporary output was being written; "
          f"{sum(1 for o in killed if o[2] == 'absent')} before the output appeared, "
          f"{sum(1 for o in killed if o[2] == 'complete')} after it was complete, "
          f"{sum(1 for o in killed if o[2] == 'old')} with the old file still in place); "
          f"temporaries left by kills: {sum(len(v) for v in left.values())}, all removed by the next run")


def test_stale_temps_of_live_writers_and_other_hosts_are_kept(tmp_path):
    """Only a dead writer's temporary goes at once; a live one's, another host's or a recent foreign one stays."""
    from modelsurgeon.core.formats import atomic
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = atomic.temp_prefix().split("@")[1].split("-")[0]
    names = {
        "dead": f"{TEMP_PREFIX}{dead.pid}@{host}-abc.part",
        "alive": f"{TEMP_PREFIX}{os.getppid()}@{host}-abc.part",
        "other-host": f"{TEMP_PREFIX}{dead.pid}@00000000-abc.part",
        "old-style-recent": f"{TEMP_PREFIX}abc123.part",
        "old-style-ancient": f"{TEMP_PREFIX}def456.part",
        "not-ours": "model.h5",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"x")
    ancient = time.time() - 7200
    os.utime(tmp_path / names["old-style-ancient"], (ancient, ancient))
    removed = atomic.clean_stale_temps(str(tmp_path))
    left = set(os.listdir(tmp_path))
    assert removed == 2
    assert left == {names[k] for k in ("alive", "other-host", "old-style-recent", "not-ours")}


def test_temp_names_carry_the_writer(tmp_path, monkeypatch):
    from modelsurgeon.core.formats import atomic
    seen = []
    with atomic.atomic_output(str(tmp_path / "x.bin")) as tmp:
        seen.append(os.path.basename(tmp))
        Path(tmp).write_bytes(b"data")
    assert seen[0].startswith(f"{TEMP_PREFIX}{os.getpid()}@") and seen[0].endswith(".part")
    assert (tmp_path / "x.bin").read_bytes() == b"data"
    assert os.listdir(tmp_path) == ["x.bin"]


# -- promise 5: full disk, read-only, no permission, missing directory, output = input, two writers --

import errno

from cli_helpers import error_line, invoke

from modelsurgeon.cli.errors import ExitCode


def _run(*args, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run([console_script(), *map(str, args)], capture_output=True, text=True, preexec_fn=preexec)


def _one_error_line(done: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    return lines[0][len("Error: "):]


@pytest.mark.parametrize("suffix", [".h5", ".safetensors", ".params", ".npz"])
def test_full_disk_exits_9_and_leaves_nothing(suffix, big_input, tmp_path, monkeypatch):
    """A 1 MiB file system and a ~100 MB output: exit 9 naming the output, no partial file, input intact."""
    input_path, input_hash = big_input
    target = tmp_path / "full"
    with tmpfs(target, "size=1m") as mounted:
        output = target / f"out{suffix}"
        if mounted:
            done = _run("convert", input_path, "-o", output)
            assert done.returncode == ExitCode.IO_ERROR, done.stderr
            message = _one_error_line(done)
        else:  # no mount here (not root): the disk fills up after the first tensor instead
            import modelsurgeon.core.formats.safetensors_io as st
            real = st._encode

            def filling(*args, **kwargs):
                yield from real(*args, **kwargs)
                raise OSError(errno.ENOSPC, "No space left on device")

            monkeypatch.setattr(st, "_encode", filling)
            output = target / "out.safetensors"
            message = error_line(invoke("convert", input_path, "-o", output, code=ExitCode.IO_ERROR))
        if mounted:  # no room for the output: refused before writing (tests/test_cli_ux.py fills disks mid-write)
            assert message.startswith(f"{output}: no space left on device: the output needs at least "), message
        else:
            assert message == f"{output}: no space left on device while writing; nothing was written"
        assert os.listdir(target) == []
    assert sha256(input_path) == input_hash


def test_read_only_file_system_exits_9(tmp_path, monkeypatch):
    source = Path(__file__).resolve().parent.parent / "sample_models" / "cnn.h5"
    target = tmp_path / "ro"
    with tmpfs(target, "ro,size=1m") as mounted:
        if mounted:
            message = _one_error_line(done := _run("convert", source, "-o", target / "out.h5"))
            assert done.returncode == ExitCode.IO_ERROR
        else:
            from modelsurgeon.core.formats import atomic

            def read_only(*args, **kwargs):
                raise OSError(errno.EROFS, "Read-only file system")

            monkeypatch.setattr(atomic, "_create_temp", read_only)
            message = error_line(invoke("convert", source, "-o", target / "out.h5", code=ExitCode.IO_ERROR))
        assert message == f"{target / 'out.h5'}: cannot write in {target}: read-only file system"
        assert os.listdir(target) == []


def test_directory_without_write_permission_exits_9(tmp_path):
    source = Path(__file__).resolve().parent.parent / "sample_models" / "cnn.h5"
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        done = _run("convert", source, "-o", locked / "out.h5", preexec=drop_permission_override)
        assert done.returncode == ExitCode.IO_ERROR, done.stderr
        assert _one_error_line(done) == f"{locked / 'out.h5'}: permission denied to write in {locked}"
        assert os.listdir(locked) == []
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("where", ["missing-directory", "directory-is-a-file"])
def test_missing_output_directory_exits_9(where, tmp_path):
    source = Path(__file__).resolve().parent.parent / "sample_models" / "cnn.h5"
    if where == "directory-is-a-file":
        (tmp_path / "file").write_bytes(b"not a directory")
        output = tmp_path / "file" / "out.h5"
    else:
        output = tmp_path / "no" / "such" / "out.h5"
    done = _run("convert", source, "-o", output)
    assert done.returncode == ExitCode.IO_ERROR, done.stderr
    assert "does not exist" in _one_error_line(done)
    assert sorted(os.listdir(tmp_path)) == (["file"] if where == "directory-is-a-file" else [])


@pytest.mark.parametrize("alias", ["same-path", "relative", "hard-link", "symbolic-link"])
@pytest.mark.parametrize("command", [["convert"], ["rename", "--map", "^output=head"],
                                     ["replace-head", "--classes", "3"]])
def test_output_equal_to_input_exits_6_and_touches_nothing(alias, command, tmp_path, monkeypatch):
    source = tmp_path / "model.h5"
    shutil.copyfile(Path(__file__).resolve().parent.parent / "sample_models" / "cnn.h5", source)
    before = sha256(source)
    monkeypatch.chdir(tmp_path)
    output = {"same-path": source, "relative": Path("model.h5")}.get(alias)
    if alias == "hard-link":
        output = tmp_path / "alias.h5"
        os.link(source, output)
    elif alias == "symbolic-link":
        output = tmp_path / "alias.h5"
        output.symlink_to(source)
    result = invoke(command[0], source, *command[1:], "-o", output, "--force", code=ExitCode.INVALID)
    assert "is the input" in error_line(result)
    assert sha256(source) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"model.h5", output.name})


def test_two_writers_at_once_give_one_complete_file(big_input, references, tmp_path):
    """Two processes writing the same output: with --force both succeed and the file is whole;
    without it exactly one wins and the other exits 7; never a mixed or partial file."""
    input_path, _ = big_input
    complete = references["convert-h5"][0]
    for force in (True, False, False):
        output = tmp_path / "same.h5"
        if output.exists():
            output.unlink()
        extra = ["--force"] if force else []
        processes = [subprocess.Popen([console_script(), "convert", str(input_path), "-o", str(output), "-q", *extra],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
        codes = sorted(p.wait() for p in processes)
        errors = [p.stderr.read().decode() for p in processes]
        assert codes == ([0, 0] if force else [0, ExitCode.OUTPUT_EXISTS]), (codes, errors)
        if not force:
            assert any("already exists (use --force to overwrite it)" in e for e in errors), errors
        assert sha256(output) == complete
        assert temps(tmp_path) == []
