"""What a new user meets (issue 18), each at the command line: bad values are usage errors, mistyped
commands get suggestions, refused outputs are named before any report (never a temporary name),
progress is one bar at a terminal and nothing in a pipe, replace-head refuses a consumed layer in a
file with keys only, Hugging Face model folders and ``--member`` work as inputs.
"""

from __future__ import annotations

import itertools
import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
from cli_helpers import SAMPLES, error_line, invoke, ws  # noqa: F401 - ws is a fixture
from system_helpers import console_script, drop_permission_override, tmpfs

from modelsurgeon.cli import output as output_module
from modelsurgeon.cli.commands import COMMANDS
from modelsurgeon.cli.errors import ExitCode

TMP_MARK = ".modelsurgeon-tmp"
ESCAPE = "\x1b"
LIVE_START = "\x1b[?25l"  # rich hides the cursor once when a live display (one bar) starts


def _write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> Path:
    from safetensors.numpy import save_file
    save_file(tensors, str(path))
    return path


# -- 2. values that fail validation are usage errors (exit 2, click's style) ----------------------

CNN = str(SAMPLES / "cnn.h5")

BAD_VALUES = {
    "inspect --filter '('": (["inspect", CNN, "--filter", "("], "--filter"),
    "inspect --member on HDF5": (["inspect", CNN, "--member", "model"], "--member"),
    "replace-head --classes 0": (["replace-head", CNN, "-o", "{out}/h.h5", "--classes", "0"], "--classes"),
    "replace-head --classes x": (["replace-head", CNN, "-o", "{out}/h.h5", "--classes", "x"], "--classes"),
    "replace-head --keep-classes x": (["replace-head", CNN, "-o", "{out}/h.h5", "--keep-classes", "x"],
                                      "--keep-classes"),
    "replace-head --keep-classes -1": (["replace-head", CNN, "-o", "{out}/h.h5", "--keep-classes", "-1"],
                                       "--keep-classes"),
    "replace-head --keep-classes 1,1": (["replace-head", CNN, "-o", "{out}/h.h5", "--keep-classes", "1,1"],
                                        "--keep-classes"),
    "replace-head --keep-classes 100 (the head has 10)": (
        ["replace-head", CNN, "-o", "{out}/h.h5", "--keep-classes", "100"], "--keep-classes"),
    "replace-head --keep-classes longer than --classes": (
        ["replace-head", CNN, "-o", "{out}/h.h5", "--classes", "2", "--keep-classes", "1,2,3"], "--keep-classes"),
    "replace-head --seed abc": (["replace-head", CNN, "-o", "{out}/h.h5", "--classes", "3", "--seed", "abc"],
                                "--seed"),
    "replace-head --seed -1": (["replace-head", CNN, "-o", "{out}/h.h5", "--classes", "3", "--seed", "-1"], "--seed"),
    "replace-head --init nosuch": (["replace-head", CNN, "-o", "{out}/h.h5", "--classes", "3", "--init", "nosuch"],
                                   "--init"),
    "replace-head --head nosuch": (["replace-head", CNN, "-o", "{out}/h.h5", "--classes", "3", "--head", "nosuch"],
                                   "--head"),
    "replace-head --max-shard-size 0": (
        ["replace-head", CNN, "-o", "{out}/h.h5", "--classes", "3", "--max-shard-size", "0"], "--max-shard-size"),
    "replace-head --format nosuch": (["replace-head", CNN, "-o", "{out}/h.h5", "--classes", "3", "--format", "x"],
                                     "--format"),
    "run --random-input 1,3,abc": (["run", CNN, "--random-input", "1,3,abc"], "--random-input"),
    "run --random-input 0,3": (["run", CNN, "--random-input", "0,3"], "--random-input"),
    "run --top-k -1": (["run", CNN, "--top-k", "-1"], "--top-k"),
    "run --seed -1": (["run", CNN, "--seed", "-1"], "--seed"),
    "run --input not an .npy": (["run", CNN, "--input", CNN], "--input"),
    "zoo NAME unknown": (["zoo", "resnet18v1", "-o", "{out}/z.h5"], "NAME"),
    "zoo --classes 0": (["zoo", "alexnet", "-o", "{out}/z.h5", "--classes", "0"], "--classes"),
    "zoo --seed -1": (["zoo", "alexnet", "-o", "{out}/z.h5", "--seed", "-1"], "--seed"),
    "rename --map without =": (["rename", CNN, "-o", "{out}/r.h5", "--map", "abc"], "--map"),
    "rename --map bad regex": (["rename", CNN, "-o", "{out}/r.h5", "--map", "(=x"], "--map"),
    "rename --max-shard-size abc": (["rename", CNN, "-o", "{out}/r.h5", "--map", "a=b", "--max-shard-size", "abc"],
                                    "--max-shard-size"),
    "convert --model unknown": (["convert", CNN, "-o", "{out}/c.h5", "--model", "nosuch"], "--model"),
    "convert --input-shape 0": (["convert", CNN, "-o", "{out}/c.h5", "--input-shape", "0"], "--input-shape"),
    "convert --to nosuch": (["convert", CNN, "-o", "{out}/c.h5", "--to", "nosuch"], "--to"),
    "diff --member on HDF5": (["diff", CNN, CNN, "--member", "model"], "--member"),
    "graph --input-shape abc": (["graph", CNN, "-o", "{out}/g.html", "--input-shape", "abc"], "--input-shape"),
    "graph -o not a picture": (["graph", CNN, "-o", "{out}/g.png"], "g.png"),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_a_bad_value_is_a_usage_error(case, tmp_path):
    args, named = BAD_VALUES[case]
    result = invoke(*[a.format(out=tmp_path) for a in args], code=ExitCode.USAGE)
    line = error_line(result)
    assert named in line, line
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # nothing written
    as_json = invoke(*[a.format(out=tmp_path) for a in args], "--json", code=ExitCode.USAGE)
    error = json.loads(as_json.stdout)["error"]
    assert error["code"] == 2 and error["type"] == "usage" and named in error["message"]


def test_every_command_has_a_bad_value_case():
    covered = {args[0] for args, _ in BAD_VALUES.values()}
    assert set(COMMANDS) - {"select", "average", "adapt-input", "resize-embedding", "fit"} <= covered


def _bad_value(param: click.Parameter) -> str | None:
    """A value the option's own validation must refuse, or None when every string is valid."""
    kind = param.type
    if isinstance(kind, click.Choice):
        return "no-such-choice"
    if isinstance(kind, (click.IntRange, click.FloatRange)):
        return "-999999" if kind.min is not None else "abc"
    if kind in (click.INT, click.FLOAT):
        return "abc"
    example = getattr(param.callback, "bad_example", None)  # validating callbacks name a value they refuse
    if example is not None:
        return example
    if isinstance(kind, click.Path) and not kind.dir_okay:
        return "."  # a directory where a file is wanted
    return None


def _options_with_values() -> list[tuple[str, str, str]]:
    import importlib
    found = []
    for name, module in sorted(COMMANDS.items()):
        command = importlib.import_module(f"modelsurgeon.cli.commands.{module}").command
        for param in command.params:
            if isinstance(param, click.Option) and not param.is_flag and not param.hidden:
                value = _bad_value(param)
                if value is not None:
                    found.append((name, param.opts[-1], value))
            elif isinstance(param, click.Argument) and getattr(param.callback, "bad_example", None):
                found.append((name, param.name or "", param.callback.bad_example))  # type: ignore[union-attr]
    return found


@pytest.mark.parametrize("name,option,value", _options_with_values())
def test_every_option_refuses_a_bad_value_with_exit_2(name, option, value, tmp_path):
    """Every command, every option that validates: its bad value is exit 2 naming the option, before
    the input is opened (the option comes first on the line, and the input is a real sample)."""
    import importlib
    command = importlib.import_module(f"modelsurgeon.cli.commands.{COMMANDS[name]}").command
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if option.startswith("-"):
        line = [option, value, *(CNN if p.name != "name" else "alexnet" for p in arguments)]
        shown = option
    else:  # an argument that validates: the bad value in its place
        line = [value if p.name == option else CNN for p in arguments]
        shown = option.upper()
    result = invoke(name, *line, code=None)
    assert result.exit_code == ExitCode.USAGE, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr
    assert f"Invalid value for '{shown}'" in result.stderr or "is a directory" in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_number_lists_for_options_such_as_weights():
    """The shared callback for comma-separated options (--weights 0.5,0.5): bad items are exit 2."""
    from click.testing import CliRunner

    from modelsurgeon.cli.options import number_list

    @click.command()
    @click.option("--weights", callback=number_list(float, minimum=0, name="weights"))
    def average(weights):
        click.echo(json.dumps(weights))

    ok = CliRunner().invoke(average, ["--weights", "0.5, 0.25,0.25"])
    assert ok.exit_code == 0 and json.loads(ok.stdout) == [0.5, 0.25, 0.25]
    for bad, words in [("0.5,x", "'x' in '0.5,x' is not a float"), ("0.5,-1", "'-1' is below 0"),
                       ("nan", "'nan' is not a number"), (",", "give comma-separated weights")]:
        result = CliRunner().invoke(average, ["--weights", bad])
        assert result.exit_code == 2 and f"Invalid value for '--weights': {words}" in result.stderr, result.stderr


def test_a_valid_request_that_cannot_be_done_stays_exit_6(tmp_path):
    """A layer that exists but holds several layers: the value is valid, the request cannot be done."""
    result = invoke("replace-head", CNN, "-o", tmp_path / "h.h5", "--classes", "3", "--head", "features",
                    code=ExitCode.INVALID)
    assert "--head" in error_line(result)


# -- 3. suggestions for mistyped commands and options ---------------------------------------------

@pytest.mark.parametrize("typed,meant", [("inpsect", "inspect"), ("replace-haed", "replace-head"),
                                         ("convrt", "convert"), ("dif", "diff")])
def test_a_mistyped_command_gets_a_suggestion(typed, meant):
    result = invoke(typed, CNN, code=ExitCode.USAGE)
    assert f"No such command '{typed}'. Did you mean '{meant}'?" in error_line(result)


def test_a_mistyped_command_through_the_console_script():
    done = subprocess.run([console_script(), "inpsect"], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert "Error: No such command 'inpsect'. Did you mean 'inspect'?" in done.stderr


def test_an_unknown_command_far_from_any_gets_no_guess():
    line = error_line(invoke("xyzzy", code=ExitCode.USAGE))
    assert "No such command 'xyzzy'" in line and "Did you mean" not in line


@pytest.mark.parametrize("args,meant", [(["inspect", CNN, "--stast"], "--stats"),
                                        (["replace-head", CNN, "--clases", "3"], "--classes"),
                                        (["run", CNN, "--random-inptu", "1,3,32,32"], "--random-input")])
def test_a_mistyped_option_gets_a_suggestion(args, meant):
    line = error_line(invoke(*args, code=ExitCode.USAGE))
    assert "Did you mean" in line and f"'{meant}'" in line


# -- 4. refused outputs: the user's path and why, before any report; never a temporary name -------

RENAME = ["--map", r"^output\.=classifier."]


def _refused(result, path_given: str) -> str:
    line = error_line(result)
    assert TMP_MARK not in result.stderr and TMP_MARK not in result.stdout
    assert path_given in line, line
    assert result.stdout == ""  # no change table before the refusal
    return line


def test_output_in_proc_is_refused_before_the_table(tmp_path):
    result = invoke("rename", CNN, *RENAME, "-o", "/proc/x.h5", code=ExitCode.IO_ERROR)
    assert "cannot write in /proc" in _refused(result, "/proc/x.h5")


@pytest.mark.parametrize("extra", [["--max-shard-size", "1KB"], []])
def test_a_sharded_output_is_named_as_given_not_as_its_first_shard(extra):
    output = "/proc/x.safetensors" + ("" if extra else ".index.json")
    result = invoke("rename", CNN, *RENAME, "-o", output, *extra, code=ExitCode.IO_ERROR)
    assert _refused(result, output).startswith(f"{output}: ")
    assert "00001-of" not in result.stderr


def test_output_in_a_missing_directory(tmp_path):
    target = str(tmp_path / "no" / "such" / "x.h5")
    result = invoke("rename", CNN, *RENAME, "-o", target, code=ExitCode.IO_ERROR)
    assert "does not exist" in _refused(result, target)


@pytest.mark.parametrize("command", [["graph", CNN, "-o"], ["run", CNN, "-o"], ["diff", CNN, CNN, "--html"]])
def test_a_directory_where_a_file_is_written(tmp_path, command):
    (tmp_path / "existing_dir").mkdir()
    result = invoke(*command, tmp_path / "existing_dir", "--force", code=ExitCode.USAGE)
    assert "is a directory" in _refused(result, "existing_dir")


def test_an_existing_directory_as_checkpoint_output_is_a_model_folder(tmp_path):
    folder = tmp_path / "existing_dir"
    folder.mkdir()
    result = invoke("rename", CNN, *RENAME, "-o", folder, "--force")
    assert TMP_MARK not in result.stderr
    written = sorted(p.name for p in folder.iterdir())
    assert written and not any(TMP_MARK in name for name in written)


def test_a_directory_without_write_permission(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        done = subprocess.run([console_script(), "rename", CNN, *RENAME, "-o", str(locked / "x.h5")],
                              capture_output=True, text=True, preexec_fn=drop_permission_override, check=False)
    finally:
        locked.chmod(0o700)
    assert done.returncode == ExitCode.IO_ERROR, done.stderr
    assert done.stdout == "" and TMP_MARK not in done.stderr
    assert str(locked / "x.h5") in done.stderr and "permission denied" in done.stderr
    assert list(locked.iterdir()) == []


@pytest.fixture(scope="module")
def big_model(tmp_path_factory) -> Path:
    """A ~2 MB checkpoint: too big for a 256 KiB file system."""
    rng = np.random.default_rng(0)
    return _write_safetensors(tmp_path_factory.mktemp("big") / "big.safetensors",
                              {f"layers.{i}.weight": rng.standard_normal((128, 1024)).astype(np.float32)
                               for i in range(4)})


WRITERS = ["x.h5", "x.safetensors", "x.params", "x.npz", "x.pt", "folder/", "x.safetensors.index.json"]


def _fill(tmp_path: Path, big_model: Path, name: str, code: ExitCode = ExitCode.IO_ERROR) -> tuple[object, list[str]]:
    full = tmp_path / "full"
    extra = ["--max-shard-size", "1MB"] if name.endswith(".index.json") else []
    with tmpfs(full, "size=256k") as mounted:
        if not mounted:
            pytest.skip("cannot mount a tmpfs here (not root)")
        result = invoke("rename", big_model, "--add-prefix", "m.", "-o", f"{full}/{name}", *extra, code=code)
        left = sorted(p.name for p in full.iterdir())
    assert TMP_MARK not in result.stderr and "Traceback" not in result.stderr
    return result, left


@pytest.mark.parametrize("name", WRITERS)
def test_a_disk_without_room_is_refused_before_the_report(tmp_path, big_model, name):
    result, left = _fill(tmp_path, big_model, name)
    line = _refused(result, str(tmp_path / "full"))
    assert "no space left on device" in line and "needs at least" in line
    assert left == []


@pytest.mark.parametrize("name", WRITERS)
def test_a_full_disk_mid_write_names_the_output(tmp_path, big_model, name, monkeypatch):
    """The writer itself fails mid-write (ENOSPC; the early check is off): the user's path and why,
    nothing left behind, exit 9."""
    if name.endswith(".pt"):
        pytest.importorskip("torch")
    from modelsurgeon.cli import target
    monkeypatch.setattr(target, "check_space", lambda output, needed: None)
    result, left = _fill(tmp_path, big_model, name)
    line = error_line(result)
    assert "no space left on device" in line and str(tmp_path / "full") in line
    assert left == []
    assert "layers.0.weight" in result.stdout  # the failure comes after the report (it is in the table)


def test_a_read_only_file_system(tmp_path):
    ro = tmp_path / "ro"
    with tmpfs(ro, "ro,size=64k") as mounted:
        if not mounted:
            pytest.skip("cannot mount a tmpfs here (not root)")
        result = invoke("rename", CNN, *RENAME, "-o", ro / "x.h5", code=ExitCode.IO_ERROR)
    assert "read-only file system" in _refused(result, str(ro / "x.h5"))


# -- 5. progress: one bar on stderr at a terminal, nothing in a pipe ------------------------------

@pytest.fixture
def terminal(monkeypatch):
    """stderr is a terminal and every job is big enough for a bar."""
    monkeypatch.setattr(output_module.Output, "stderr_is_terminal", property(lambda self: True))
    monkeypatch.setattr(output_module, "PROGRESS_THRESHOLD", 0)


def _bars(stderr: str) -> int:
    return stderr.count(LIVE_START)


PROGRESS_CASES = {
    "inspect --stats": (["inspect", CNN, "--stats"], "reading"),
    "zoo": (["zoo", "mobilenet0.25", "--classes", "10", "-o", "{out}/z.h5"], "writing z.h5"),
    "diff --values": (["diff", CNN, CNN, "--values"], "comparing"),
    "convert": (["convert", CNN, "-o", "{out}/c.safetensors"], "writing c.safetensors"),
    "rename": (["rename", CNN, *RENAME, "-o", "{out}/r.h5"], "writing r.h5"),
    "replace-head": (["replace-head", CNN, "--classes", "3", "-o", "{out}/h.h5"], "writing h.h5"),
    "run": (["run", CNN], "running"),
    "graph": (["graph", CNN, "-o", "{out}/g.html"], "drawing cnn.h5"),
}


@pytest.mark.parametrize("case", list(PROGRESS_CASES))
def test_one_bar_at_a_terminal(case, tmp_path, terminal):
    args, stage = PROGRESS_CASES[case]
    result = invoke(*[a.format(out=tmp_path) for a in args], code=None)
    assert result.exit_code in (0, 1), result.stderr
    assert _bars(result.stderr) == 1, result.stderr
    assert stage in result.stderr
    assert ESCAPE not in result.stdout


@pytest.mark.parametrize("case", list(PROGRESS_CASES))
def test_no_bar_in_a_pipe(case, tmp_path, monkeypatch):
    monkeypatch.setattr(output_module, "PROGRESS_THRESHOLD", 0)  # would draw, if stderr were a terminal
    args, _ = PROGRESS_CASES[case]
    result = invoke(*[a.format(out=tmp_path) for a in args], code=None)
    assert result.exit_code in (0, 1), result.stderr
    assert ESCAPE not in result.stderr and ESCAPE not in result.stdout
    for line in result.stderr.splitlines():  # notes only
        assert line.startswith(("wrote ", "note: ", "compared by ", "same", "different")), line


def test_no_bar_with_json_or_quiet(tmp_path, terminal):
    for flag in ("--json", "--quiet"):
        result = invoke("inspect", CNN, "--stats", flag)
        assert _bars(result.stderr) == 0 and ESCAPE not in result.stderr


def test_zoo_shows_building_then_writing_on_the_same_bar(tmp_path, terminal):
    result = invoke("zoo", "mobilenet0.25", "--classes", "10", "-o", tmp_path / "z.h5")
    assert _bars(result.stderr) == 1
    assert result.stderr.index("building mobilenet0.25") < result.stderr.index("writing z.h5")


def test_diff_progress_counts_the_bytes_to_compare(tmp_path, terminal):
    """Both files' bytes of the tensors compared: twice the CNN's bytes against itself (not a count
    of tensors shown as bytes)."""
    from modelsurgeon.core import binding
    with binding.open_checkpoint(CNN) as reader:
        both = output_module.human_bytes(2 * sum(i.nbytes for i in reader.tensors.values()))
    result = invoke("diff", CNN, CNN, "--values")
    assert f"0 B / {both}" in result.stderr and f"{both} / {both}" in result.stderr
    assert "16 B" not in result.stderr and "/ 16 " not in result.stderr


def test_diff_progress_callback_reports_bytes(tmp_path):
    from modelsurgeon.core import binding
    from modelsurgeon.core.surgery.diff import diff
    calls = []
    with binding.open_checkpoint(CNN) as a, binding.open_checkpoint(SAMPLES / "cnn-named.h5") as b:
        diff(a, b, values=True, progress=lambda done, total: calls.append((done, total)))
        expected = sum(i.nbytes for i in a.tensors.values()) * 2
    assert calls[0] == (0, expected) and calls[-1] == (expected, expected)
    assert all(d1 <= d2 for (d1, _), (d2, _) in itertools.pairwise(calls))


def _pty_run(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run the console script with stderr (and stdout) on a pseudo-terminal; (exit code, all it drew)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([console_script(), *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=follower,
                               stderr=follower, env=dict(os.environ, COLUMNS="100", TERM="xterm"))
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 120)
        if not ready:
            process.kill()
            break
        try:
            data = os.read(leader, 65536)
        except OSError:  # the other side closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return process.wait(), b"".join(chunks).decode(errors="replace")


def test_zoo_at_a_real_terminal_draws_one_bar(tmp_path):
    code, drawn = _pty_run(["zoo", "mobilenet0.25", "--classes", "10", "-o", "z.h5"], tmp_path)
    assert code == 0, drawn
    assert _bars(drawn) == 1 and "building mobilenet0.25" in drawn
    assert "wrote z.h5" in drawn and (tmp_path / "z.h5").exists()


def test_zoo_in_a_pipe_prints_only_its_note(tmp_path):
    done = subprocess.run([console_script(), "zoo", "mobilenet0.25", "--classes", "10", "-o", "z.h5"], cwd=tmp_path,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stderr == "wrote z.h5\n" and done.stdout == ""


# -- 6. replace-head on a file with keys only refuses a layer whose outputs are consumed -----------

@pytest.fixture
def keys_only(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    return _write_safetensors(tmp_path / "keys.safetensors", {
        "features.0.weight": rng.standard_normal((16, 3, 3, 3)).astype(np.float32),
        "features.0.bias": np.zeros(16, np.float32),
        "features.1.gamma": np.ones(16, np.float32), "features.1.beta": np.zeros(16, np.float32),
        "features.1.running_mean": np.zeros(16, np.float32), "features.1.running_var": np.ones(16, np.float32)})


def test_replace_head_refuses_a_consumed_layer_in_a_keys_only_file(keys_only, tmp_path):
    out = tmp_path / "out.safetensors"
    result = invoke("replace-head", keys_only, "--head", "features.0", "--classes", "4", "-o", out,
                    code=ExitCode.INVALID)
    line = error_line(result)
    assert "features.1.gamma" in line and "features.1.running_var" in line and "--ignore-consumers" in line
    assert not out.exists() and result.stdout == ""


def test_replace_head_ignore_consumers_writes(keys_only, tmp_path):
    from safetensors.numpy import load_file
    out = tmp_path / "out.safetensors"
    invoke("replace-head", keys_only, "--head", "features.0", "--classes", "4", "-o", out, "--ignore-consumers")
    written, before = load_file(str(out)), load_file(str(keys_only))
    assert written["features.0.weight"].shape == (4, 3, 3, 3) and written["features.0.bias"].shape == (4,)
    for key in ("features.1.gamma", "features.1.beta", "features.1.running_mean", "features.1.running_var"):
        np.testing.assert_array_equal(written[key], before[key])


# -- 7. Hugging Face model folders and --member -----------------------------------------------------

ARTIFACTS = Path(os.environ.get("MS_TEST_ARTIFACTS") or Path(__file__).resolve().parent / "artifacts")


@pytest.fixture(scope="session")
def bert_folder() -> Path:
    """A tiny BERT classifier saved by transformers (save_pretrained), made once and cached under
    tests/artifacts/ (importing transformers takes longer than every test here)."""
    folder = ARTIFACTS / "hf-tiny-bert-v1"
    if not (folder / "config.json").exists():
        transformers = pytest.importorskip("transformers")
        pytest.importorskip("torch")
        import tempfile
        config = transformers.BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=16, max_position_embeddings=16, num_labels=3)
        transformers.set_seed(0)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=ARTIFACTS))
        transformers.BertForSequenceClassification(config).save_pretrained(str(scratch))
        try:
            os.rename(scratch, folder)  # atomic: another worker may have made it first
        except OSError:
            import shutil
            shutil.rmtree(scratch, ignore_errors=True)
    return folder


def test_folder_inspect_and_diff(bert_folder):
    document = json.loads(invoke("inspect", bert_folder, "--json").stdout)
    assert "classifier.weight" in [t["key"] for t in document["tensors"]]
    with_slash = json.loads(invoke("inspect", f"{bert_folder}/", "--json").stdout)
    assert with_slash["tensors"] == document["tensors"] and with_slash["format"] == document["format"]
    compared = json.loads(invoke("diff", bert_folder, bert_folder, "--values", "--json").stdout)
    assert compared["equal"] and all(v["equal"] for v in compared["values"])


def test_folder_replace_head_writes_a_folder(bert_folder, tmp_path):
    """The folder a transformers model loads from (test_writeback_hf.py loads such folders with
    transformers): the head's tensors and config.json's num_labels/id2label follow --classes."""
    from safetensors.numpy import load_file
    invoke("replace-head", bert_folder, "--classes", "5", "--seed", "0", "-o", f"{tmp_path / 'dir3'}/")
    weights = load_file(str(tmp_path / "dir3" / "model.safetensors"))
    config = json.loads((tmp_path / "dir3" / "config.json").read_text())
    assert weights["classifier.weight"].shape == (5, 8) and weights["classifier.bias"].shape == (5,)
    assert len(config["id2label"]) == 5 and config.get("num_labels", 5) == 5


def test_folder_rename_to_a_folder(bert_folder, tmp_path):
    from safetensors.numpy import load_file
    invoke("rename", bert_folder, "--strip-prefix", "bert.", "-o", f"{tmp_path / 'dir2'}/")
    renamed = load_file(str(tmp_path / "dir2" / "model.safetensors"))
    original = load_file(str(bert_folder / "model.safetensors"))
    assert "pooler.dense.weight" in renamed and "bert.pooler.dense.weight" not in renamed
    np.testing.assert_array_equal(renamed["pooler.dense.weight"], original["bert.pooler.dense.weight"])
    assert (tmp_path / "dir2" / "config.json").exists()


def test_folder_convert_to_one_file(bert_folder, tmp_path):
    from safetensors.numpy import load_file
    invoke("convert", bert_folder, "-o", tmp_path / "x.safetensors")
    converted, original = load_file(str(tmp_path / "x.safetensors")), load_file(str(bert_folder / "model.safetensors"))
    assert converted.keys() == original.keys()
    for key in original:
        np.testing.assert_array_equal(converted[key], original[key])


def test_folder_graph_and_run(bert_folder, tmp_path):
    invoke("graph", bert_folder, "-o", tmp_path / "g.html")
    assert (tmp_path / "g.html").stat().st_size > 0
    line = error_line(invoke("run", bert_folder, code=ExitCode.INVALID))
    assert str(bert_folder) in line and "transformers" in line


def test_a_folder_without_config_names_the_file_to_use(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    _write_safetensors(folder / "model.safetensors", {"w": np.zeros(2, np.float32)})
    line = error_line(invoke("inspect", folder, code=ExitCode.BAD_CHECKPOINT))
    assert f"name the file to read: {folder / 'model.safetensors'}" in line


@pytest.fixture
def training_checkpoint(tmp_path) -> Path:
    torch = pytest.importorskip("torch")
    path = tmp_path / "ckpt.pt"
    torch.save({"epoch": 3, "model": {"fc.weight": torch.ones(2, 3), "fc.bias": torch.zeros(2)},
                "model_ema": {"fc.weight": torch.full((2, 3), 2.0), "fc.bias": torch.ones(2)}}, path)
    return path


def test_member_chooses_the_state_dict(training_checkpoint, tmp_path):
    from safetensors.numpy import load_file
    document = json.loads(invoke("inspect", training_checkpoint, "--member", "model_ema", "--json").stdout)
    assert [t["key"] for t in document["tensors"]] == ["fc.weight", "fc.bias"]
    invoke("convert", training_checkpoint, "--member", "model_ema", "-o", tmp_path / "ema.safetensors")
    np.testing.assert_array_equal(load_file(str(tmp_path / "ema.safetensors"))["fc.weight"], np.full((2, 3), 2.0))
    invoke("replace-head", training_checkpoint, "--member", "model_ema", "--classes", "4", "-o", tmp_path / "h.pt")
    import torch
    assert torch.load(tmp_path / "h.pt", weights_only=True)["fc.weight"].shape == (4, 3)
    compared = json.loads(invoke("diff", training_checkpoint, tmp_path / "ema.safetensors", "--member", "model_ema",
                                 "--values", "--json").stdout)
    assert compared["equal"]


def test_a_member_that_is_not_there_is_a_usage_error(training_checkpoint):
    line = error_line(invoke("inspect", training_checkpoint, "--member", "ema", code=ExitCode.USAGE))
    assert "Invalid value for '--member'" in line and "'model', 'model_ema'" in line and "--member" in line


# -- 1. the oracle skip says how to get the oracle -------------------------------------------------

def test_the_oracle_skip_says_what_to_install(tmp_path):
    import conftest
    ok, why = conftest._mxnet_available(str(tmp_path / "no-python"))
    assert not ok
    for words in ("python3 -m venv .venv-mxnet", "numpy==1.23.5 mxnet==1.9.1", "MS_MXNET_PYTHON"):
        assert words in why
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "numpy==1.23.5 mxnet==1.9.1" in readme and "MS_MXNET_PYTHON=$PWD/.venv-mxnet/bin/python" in readme
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "numpy==1.23.5 mxnet==1.9.1" in ci and ".venv-mxnet" in ci


def test_the_readme_pipeline_example_needs_no_pipefail():
    """The example prints modelsurgeon's status in a plain bash (no pipefail): the line as written."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    line = next(text for text in readme.splitlines() if "no-such-file.h5 --json | jq" in text)
    assert "PIPESTATUS" in line or "pipefail" in line
    assert re.search(r'"exit \$\?"', line) is None or "pipefail" in line
    assert sys.executable  # the walkthrough test (test_readme.py) runs it with a plain bash -c


def test_zoo_refuses_its_output_before_building_the_model(tmp_path, monkeypatch):
    from modelsurgeon.core.engine.model_zoo import vision

    def never(*args, **kwargs):
        raise AssertionError("the model was built before the output was checked")

    monkeypatch.setattr(vision, "get_model", never)
    taken = tmp_path / "taken.h5"
    taken.write_bytes(b"mine")
    assert "already exists" in error_line(invoke("zoo", "vgg16", "-o", taken, code=ExitCode.OUTPUT_EXISTS))
    assert "/proc/x.h5" in error_line(invoke("zoo", "vgg16", "-o", "/proc/x.h5", code=ExitCode.IO_ERROR))
    assert taken.read_bytes() == b"mine"
