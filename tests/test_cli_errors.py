"""Errors: exit codes from cli/errors.py's ExitCode, one-line messages, JSON error objects, --traceback."""

from __future__ import annotations

import errno
import re

import h5py
import numpy as np
import pytest
from cli_helpers import Workspace, describe, error_line, invoke, json_error, ws  # noqa: F401

from modelsurgeon.cli.errors import ExitCode

# -- bad inputs, for every command that reads a checkpoint ---------------------------------------


def _reading_commands(ws: Workspace, path) -> list[list[object]]:
    return [
        ["inspect", path],
        ["inspect", path, "--stats"],
        ["diff", ws["cnn.h5"], path],
        ["diff", path, ws["cnn.h5"]],
        ["run", path],
        ["rename", path, "-o", ws.out("r.h5"), "--map", "a=b"],
        ["replace-head", path, "-o", ws.out("h.h5"), "--classes", "3"],
        ["convert", path, "-o", ws.out("c.h5")],
    ]


def _bad_file(ws: Workspace, tmp_path, kind: str):
    path = tmp_path / f"bad-{kind}.h5"
    if kind == "text":
        path.write_text("this is not a checkpoint\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(ws["cnn.h5"].read_bytes()[:3000])
    elif kind == "truncated-tail":
        data = ws["cnn.h5"].read_bytes()
        path.write_bytes(data[: len(data) - 200])
    elif kind == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "foreign-hdf5":
        with h5py.File(path, "w") as f:
            f["something"] = np.zeros(3)
    elif kind == "directory":
        path = tmp_path / "a-directory"
        path.mkdir()
    return path


@pytest.mark.parametrize("kind", ["text", "empty", "truncated", "garbage", "foreign-hdf5", "directory"])
def test_not_a_checkpoint_is_exit_4(ws, tmp_path, kind):
    path = _bad_file(ws, tmp_path, kind)
    for args in _reading_commands(ws, path):
        result = ws.invoke(*args, code=ExitCode.BAD_CHECKPOINT)
        assert str(path) in error_line(result), describe(result, args)
        assert ws.output_files() == []


def test_truncated_tail_is_exit_4(ws, tmp_path):
    path = _bad_file(ws, tmp_path, "truncated-tail")
    result = ws.invoke("inspect", path, "--stats", code=ExitCode.BAD_CHECKPOINT)
    assert str(path) in error_line(result)


def test_missing_input_is_exit_3(ws):
    missing = ws.out("missing.h5")
    for args in _reading_commands(ws, missing):
        result = ws.invoke(*args, code=ExitCode.NOT_FOUND)
        assert error_line(result) == f"{missing}: no such file", describe(result, args)
        assert ws.output_files() == []


def test_missing_input_json_error(ws):
    result = ws.invoke("inspect", ws.out("missing.h5"), "--json", code=None)
    error = json_error(result, ExitCode.NOT_FOUND)
    assert error == {"code": 3, "type": "not_found", "message": f"{ws.out('missing.h5')}: no such file"}


def test_bad_checkpoint_json_error(ws, tmp_path):
    path = _bad_file(ws, tmp_path, "text")
    error = json_error(ws.invoke("inspect", path, "--json", code=None), ExitCode.BAD_CHECKPOINT)
    assert error["type"] == "bad_checkpoint" and str(path) in error["message"]


def test_hostile_hdf5_external_link_is_exit_4(ws, tmp_path):
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as f:
        f["data"] = np.arange(4, dtype=np.float32)
    path = tmp_path / "hostile.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "modelsurgeon"
        f.attrs["kind"] = "structural"
        f.attrs["format_version"] = np.int64(1)
        tensors = f.create_group("tensors")
        tensors["weight"] = h5py.ExternalLink(str(secret), "/data")
    result = ws.invoke("inspect", path, "--stats", code=ExitCode.BAD_CHECKPOINT)
    assert str(path) in error_line(result)


# -- usage errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["inspect", "--bogus", "x.h5"],
    ["nosuchcommand"],
    ["inspect"],
    ["diff", "only-one.h5"],
    ["replace-head", "x.h5", "--classes", "three"],
    ["run", "x.h5", "--top-k", "-1"],
    ["convert", "x.h5", "--format", "pickle", "-o", "y"],
])
def test_usage_errors_are_exit_2(ws, args):
    result = ws.invoke(*args, code=ExitCode.USAGE)
    assert result.stdout == ""
    assert "Usage: modelsurgeon" in result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1


def test_usage_error_json(ws):
    result = ws.invoke("inspect", "--bogus", ws["cnn.h5"], "--json", code=None)
    error = json_error(result, ExitCode.USAGE)
    assert "--bogus" in error["message"]


def test_no_command_shows_help(ws):
    result = ws.invoke(code=None)
    assert result.exit_code in (0, ExitCode.USAGE)
    assert "Usage: modelsurgeon" in result.stdout + result.stderr


# -- every exit code ----------------------------------------------------------------------------


def _mismatched(ws: Workspace, tmp_path):
    """cnn.h5's tensors with mlp.h5's architecture: the checkpoint does not fit the model."""
    from cli_helpers import read_documents, write_variant
    return write_variant(ws["cnn.h5"], tmp_path / "mismatch.h5", architecture=read_documents(ws["mlp.h5"])[1])


def _unsupported(ws: Workspace, tmp_path):
    """cnn-named.h5 whose graph uses an operator the engine does not know."""
    from cli_helpers import read_documents, write_variant
    graph = read_documents(ws["cnn-named.h5"])[2]
    for node in graph["nodes"]:
        if node["op"] == "Flatten":
            node["op"] = "NoSuchOperator"
    return write_variant(ws["cnn-named.h5"], tmp_path / "unsupported.h5", graph=graph)


def test_exit_code_mismatch(ws, tmp_path):
    path = _mismatched(ws, tmp_path)
    message = error_line(ws.invoke("run", path, code=ExitCode.MISMATCH))
    assert "missing" in message and "unexpected" in message


def test_exit_code_unsupported(ws, tmp_path):
    path = _unsupported(ws, tmp_path)
    message = error_line(ws.invoke("run", path, "--random-input", "1,3,32,32", code=ExitCode.UNSUPPORTED))
    assert "NoSuchOperator" in message


def test_exit_code_invalid(ws):
    message = error_line(ws.invoke("rename", ws["cnn.h5"], "-o", ws.out("r.h5"), "--map", "^features=",
                                   code=ExitCode.INVALID))
    assert "nothing was written" in message


def test_exit_code_output_exists(ws):
    ws.out("x.h5").write_bytes(b"")
    for args in (["rename", ws["cnn.h5"], "--map", "^output=head"], ["replace-head", ws["cnn.h5"], "--classes", "2"],
                 ["convert", ws["cnn.h5"]], ["zoo", "mobilenet0.25"]):
        result = ws.invoke(*args, "-o", ws.out("x.h5"), code=ExitCode.OUTPUT_EXISTS)
        assert error_line(result) == f"{ws.out('x.h5')} already exists (use --force to overwrite it)"
        error = json_error(ws.invoke(*args, "-o", ws.out("x.h5"), "--json", code=None), ExitCode.OUTPUT_EXISTS)
        assert "--force" in error["message"]
    assert ws.out("x.h5").read_bytes() == b""


def test_exit_code_io_error_disk_full(ws, monkeypatch):
    from modelsurgeon.core.formats import atomic

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(atomic.os, "replace", full)  # publishing with --force
    monkeypatch.setattr(atomic.os, "link", full)  # publishing a new file without --force
    result = ws.invoke("convert", ws["cnn.h5"], "-o", ws.out("c.h5"), code=ExitCode.IO_ERROR)
    assert "no space left on device" in error_line(result)
    assert ws.output_files() == [], "the temporary file is cleaned up"


def test_exit_code_io_error_permission_denied(ws, monkeypatch):
    """'9 cannot write output (permission, disk full...)': a directory we may not write in is exit 9."""
    from modelsurgeon.core.formats import atomic

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", args[0])

    monkeypatch.setattr(atomic, "_create_temp", denied)
    result = ws.invoke("convert", ws["cnn.h5"], "-o", ws.out("c.h5"), code=None)
    message = error_line(result)
    assert "permission denied" in message
    assert result.exit_code == ExitCode.IO_ERROR, describe(result)


def test_exit_code_io_error_missing_output_directory(ws):
    target = ws.out("no-such-dir") / "c.h5"
    result = ws.invoke("convert", ws["cnn.h5"], "-o", target, code=None)
    assert "does not exist" in error_line(result)
    assert result.exit_code == ExitCode.IO_ERROR, describe(result)


def _explode(monkeypatch, exc: BaseException) -> None:
    from modelsurgeon.core import binding as checkpoint

    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr(checkpoint, "open_checkpoint", boom)


def test_exit_code_internal_error(ws, monkeypatch):
    _explode(monkeypatch, ValueError("something broke"))
    message = error_line(ws.invoke("inspect", ws["cnn.h5"], code=ExitCode.INTERNAL))
    assert message == "internal error (ValueError: something broke); run again with --traceback and report it"
    error = json_error(ws.invoke("inspect", ws["cnn.h5"], "--json", code=None), ExitCode.INTERNAL)
    assert "ValueError" in error["message"]


def test_exit_code_interrupted(ws, monkeypatch):
    _explode(monkeypatch, KeyboardInterrupt())
    result = ws.invoke("inspect", ws["cnn.h5"], code=ExitCode.INTERRUPTED)
    assert "Error: interrupted" in result.stderr.splitlines()
    assert "Traceback" not in result.stderr


def test_messages_are_one_line(ws, monkeypatch):
    from modelsurgeon.core.errors import SurgeryError
    _explode(monkeypatch, SurgeryError("first line\nsecond line\n\tthird"))
    assert error_line(ws.invoke("inspect", ws["cnn.h5"], code=ExitCode.INVALID)) == "first line second line third"
    error = json_error(ws.invoke("inspect", ws["cnn.h5"], "--json", code=None), ExitCode.INVALID)
    assert error["message"] == "first line second line third"


def test_exit_codes_documented_in_help_match_the_enum():
    text = invoke("--help").stdout
    block = " ".join(text.split("Exit codes:", 1)[1].split("Example", 1)[0].split())
    documented = {int(n) for n in re.findall(r"(\d+) [a-z]", block)}
    assert documented == {int(c) for c in ExitCode if c is not ExitCode.INTERRUPTED}


def test_exception_classes_map_to_their_codes():
    from modelsurgeon.cli.errors import exit_code_for
    from modelsurgeon.core import errors
    assert exit_code_for(errors.InputNotFoundError("x", "no such file")) is ExitCode.NOT_FOUND
    assert exit_code_for(errors.CheckpointError("x", "bad")) is ExitCode.BAD_CHECKPOINT
    assert exit_code_for(errors.MismatchError("m")) is ExitCode.MISMATCH
    assert exit_code_for(errors.OutputExistsError("o")) is ExitCode.OUTPUT_EXISTS
    assert exit_code_for(errors.UnsupportedOpError("u")) is ExitCode.UNSUPPORTED
    assert exit_code_for(errors.SurgeryError("s")) is ExitCode.INVALID
    assert exit_code_for(errors.ModelSurgeonError("e")) is ExitCode.INVALID
    assert exit_code_for(OSError(errno.EIO, "io")) is ExitCode.IO_ERROR
    assert exit_code_for(KeyboardInterrupt()) is ExitCode.INTERRUPTED
    assert exit_code_for(ZeroDivisionError()) is ExitCode.INTERNAL


# -- tracebacks ---------------------------------------------------------------------------------


def test_no_traceback_in_any_error_output(ws, tmp_path, monkeypatch):
    cases = [["inspect", ws.out("missing.h5")], ["inspect", _bad_file(ws, tmp_path, "truncated")],
             ["run", ws["tutorial.h5"]], ["run", _mismatched(ws, tmp_path)],
             ["rename", ws["cnn.h5"], "-o", ws.out("r.h5"), "--map", "(="]]
    for args in cases:
        for extra in ([], ["--json"]):
            result = ws.invoke(*args, *extra, code=None)
            assert result.exit_code not in (0, ExitCode.INTERNAL), describe(result, args)
            assert "Traceback" not in result.stdout + result.stderr, describe(result, args)
            assert 'File "' not in result.stdout + result.stderr, describe(result, args)


def test_traceback_on_request(ws):
    missing = ws.out("missing.h5")
    result = ws.invoke("--traceback", "inspect", missing, code=ExitCode.NOT_FOUND)
    assert "Traceback (most recent call last)" in result.stderr
    assert "InputNotFoundError" in result.stderr
    assert result.stderr.splitlines()[-1] == f"Error: {missing}: no such file"
    assert result.stdout == ""


def test_traceback_on_request_for_internal_errors(ws, monkeypatch):
    _explode(monkeypatch, ValueError("something broke"))
    result = ws.invoke("--traceback", "inspect", ws["cnn.h5"], code=ExitCode.INTERNAL)
    assert "Traceback (most recent call last)" in result.stderr and "ValueError: something broke" in result.stderr
    result = ws.invoke("--traceback", "inspect", ws["cnn.h5"], "--json", code=ExitCode.INTERNAL)
    json_stdout = result.stdout
    assert '"internal"' in json_stdout and "Traceback" in result.stderr


def test_traceback_after_the_command_as_the_message_suggests(ws, monkeypatch):
    """'run again with --traceback': appending it to the command line works too."""
    _explode(monkeypatch, ValueError("something broke"))
    result = ws.invoke("inspect", ws["cnn.h5"], "--traceback", code=None)
    assert result.exit_code == ExitCode.INTERNAL, describe(result)
    assert "Traceback (most recent call last)" in result.stderr
