"""Shared helpers and fixtures for the CLI tests (tests/test_cli_*.py).

Import what a module needs, fixtures included (pytest finds a fixture by its name in the
test module)::

    from cli_helpers import Workspace, ws, invoke, parse_json

Every test works on copies of ``sample_models/`` in its own temporary directory
(:class:`Workspace`). :meth:`Workspace.invoke` runs the CLI through click's ``CliRunner``
(stdout and stderr kept apart), checks the exit code, and then checks that every input
copy is still byte-identical: no command may touch its input.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from modelsurgeon.cli.errors import ExitCode
from modelsurgeon.cli.main import cli
from modelsurgeon.core import __version__

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"
SAMPLE_FILES = ("tutorial.h5", "tutorial-named.h5", "tutorial-symbol.json", "mlp.h5", "cnn.h5",
                "cnn-named.h5", "cnn-symbol.json")
COMMANDS = ("inspect", "rename", "replace-head", "convert", "diff", "run", "zoo")
ENVELOPE = {"schema_version", "tool", "version", "command"}

#: The CNN sample: zoo convention (features / output), 10 classes, input 1x3x32x32.
CNN_INPUT = (1, 3, 32, 32)
CNN_KEYS = ["features.0.weight", "features.0.bias", "features.1.gamma", "features.1.beta",
            "features.1.running_mean", "features.1.running_var", "features.3.weight", "features.3.bias",
            "features.4.gamma", "features.4.beta", "features.4.running_mean", "features.4.running_var",
            "features.6.weight", "features.6.bias", "output.weight", "output.bias"]
MLP_KEYS = ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"]
TUTORIAL_KEYS = ["dense0.weight", "dense0.bias", "dense1.weight", "dense1.bias", "mydense.weight", "mydense.bias"]


# -- running the CLI ----------------------------------------------------------------------------

def invoke(*args: Any, code: int | None = 0, **kwargs: Any) -> Result:
    """Run ``modelsurgeon ARGS`` through CliRunner; check the exit code (None: any)."""
    runner = CliRunner()
    kwargs.setdefault("prog_name", "modelsurgeon")  # CliRunner would say 'cli' (the group's name)
    result = runner.invoke(cli, [str(a) for a in args], **kwargs)
    if code is not None:
        assert result.exit_code == int(code), describe(result, args)
    # SurgeonGroup turns every exception into an exit code: nothing may escape it
    assert result.exception is None or isinstance(result.exception, SystemExit), describe(result, args)
    return result


def describe(result: Result, args: Sequence[Any] = ()) -> str:
    return (f"modelsurgeon {' '.join(map(str, args))}\nexit code {result.exit_code}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}\n"
            f"--- exception ---\n{result.exception!r}")


def parse_json(result: Result, command: str | None = None) -> dict[str, Any]:
    """stdout must be exactly one JSON document with the versioned envelope."""
    text = result.stdout
    try:
        # json.loads refuses anything after the document; NaN/Infinity are not JSON (jq refuses them)
        document = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise AssertionError(f"stdout is not one JSON document ({exc}):\n{text}") from None
    assert isinstance(document, dict)
    assert document["schema_version"] == 1
    assert document["tool"] == "modelsurgeon"
    assert document["version"] == __version__
    if command is not None:
        assert document["command"] == command
    return document


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_error(result: Result, code: ExitCode) -> dict[str, Any]:
    """Under --json an error is one JSON object on stdout (and nothing on stderr)."""
    assert result.exit_code == int(code), describe(result)
    document = json.loads(result.stdout, parse_constant=_refuse_constant)
    assert set(document) == {"schema_version", "tool", "version", "error"}, document
    assert document["schema_version"] == 1 and document["tool"] == "modelsurgeon"
    error = document["error"]
    assert set(error) == {"code", "type", "message"}
    assert error["code"] == int(code)
    assert error["type"] == code.name.lower()
    assert error["message"] and "\n" not in error["message"]
    assert result.stderr == ""
    return error


def error_line(result: Result) -> str:
    """The one ``Error: ...`` line on stderr (checks there is exactly one line and no traceback).

    A usage error (exit 2) is click's: the usage line and its hint, then the one ``Error:`` line.
    """
    assert result.stdout == "" or not result.stdout.startswith("{"), describe(result)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, describe(result)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if result.exit_code == 2 and lines and lines[0].startswith("Usage: "):
        assert len(lines) == 3 and lines[1].startswith("Try "), describe(result)
        lines = lines[2:]
    assert len(lines) == 1, describe(result)
    assert lines[0].startswith("Error: "), describe(result)
    return lines[0][len("Error: "):]


def table(result: Result) -> tuple[list[str], list[list[str]]]:
    """A plain-text (piped) table: a tab-separated header line, then tab-separated rows."""
    assert "\x1b[" not in result.stdout, "no terminal escapes when stdout is not a terminal"
    lines = result.stdout.splitlines()
    assert lines, describe(result)
    header = lines[0].split("\t")
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(row) == len(header) for row in rows), result.stdout
    return header, rows


# -- files --------------------------------------------------------------------------------------

def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _stat_key(path: Path) -> tuple[int, int, int]:
    st = Path(path).stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


class Workspace:
    """Copies of the sample files in ``<tmp>/in`` (guarded: never modified) and outputs in ``<tmp>/out``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.inputs = root / "in"
        self.outputs = root / "out"
        self.inputs.mkdir()
        self.outputs.mkdir()
        for name in SAMPLE_FILES:
            shutil.copyfile(SAMPLES / name, self.inputs / name)
        self._guarded: dict[Path, tuple[tuple[int, int, int], str]] = {}
        self.guard(*(self.inputs / name for name in SAMPLE_FILES))

    def __getitem__(self, name: str) -> Path:
        """An input copy: ``ws['cnn.h5']``."""
        return self.inputs / name

    def out(self, name: str) -> Path:
        return self.outputs / name

    def guard(self, *paths: Path) -> None:
        """Also check these files are never modified (e.g. crafted inputs)."""
        for path in paths:
            self._guarded[Path(path)] = (_stat_key(path), digest(path))

    def assert_inputs_unchanged(self, full: bool = False) -> None:
        """Byte-identical inputs. After each command a file whose (inode, size, mtime) is unchanged is
        taken as unchanged (any write or replace changes them); ``full`` re-hashes everything."""
        changed = []
        for path, (stat_key, hashed) in self._guarded.items():
            if not path.exists() or ((full or _stat_key(path) != stat_key) and digest(path) != hashed):
                changed.append(str(path))
        assert not changed, f"inputs were modified: {changed}"

    def invoke(self, *args: Any, code: int | None = 0, **kwargs: Any) -> Result:
        """Run the CLI; afterwards every input is byte-identical: the sample copies, files guarded
        earlier, and every existing file named on this command line (except the -o target and the
        file an --in-place rename is asked to change)."""
        if "--in-place" not in map(str, args):
            targets = {str(args[i + 1]) for i, a in enumerate(args[:-1]) if str(a) in ("-o", "--output")}
            for arg in args:
                path = Path(str(arg))
                if str(arg) not in targets and path.is_file() and path not in self._guarded:
                    self.guard(path)
        result = invoke(*args, code=code, **kwargs)
        self.assert_inputs_unchanged()
        return result

    def json(self, *args: Any, code: int = 0, command: str | None = None) -> dict[str, Any]:
        result = self.invoke(*args, "--json", code=code)
        assert result.stderr == "", describe(result, args)
        return parse_json(result, command)

    def output_files(self) -> list[str]:
        return sorted(p.name for p in self.outputs.iterdir())

    def forward(self, path: Path, shape: str | None = None, seed: int = 3) -> np.ndarray:
        """``run PATH [--random-input SHAPE] --seed S -o y.npy``: the model's output array."""
        target = self.root / f"forward-{len(list(self.root.glob('forward-*')))}.npy"
        args = ["run", path, "--seed", seed, "-o", target]
        if shape is not None:
            args += ["--random-input", shape]
        self.invoke(*args)
        return np.load(target)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = Workspace(tmp_path)
    yield workspace
    workspace.assert_inputs_unchanged(full=True)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a checkpoint, by key, in file order."""
    from modelsurgeon.core.binding import open_checkpoint
    with open_checkpoint(str(path)) as reader:
        return {key: np.array(reader.read(key)) for key in reader.tensors}


def read_documents(path: Path) -> tuple[str, Any, Any, dict[str, str]]:
    """(kind, architecture, graph, metadata) of a checkpoint."""
    from modelsurgeon.core.binding import open_checkpoint
    with open_checkpoint(str(path)) as reader:
        return reader.kind, reader.architecture, reader.graph, dict(reader.metadata)


def structural_arrays(path: Path) -> dict[str, np.ndarray]:
    """Tensors by structural name (a named file's recorded names; a structural file's keys)."""
    from modelsurgeon.core.binding import open_checkpoint
    out = {}
    with open_checkpoint(str(path)) as reader:
        for info in reader.tensors.values():
            for name in info.structural or (info.key,):
                out[name] = np.array(reader.read(info.key))
    return out


def assert_same_arrays(a: dict[str, np.ndarray], b: dict[str, np.ndarray], keys: Iterable[str] | None = None) -> None:
    """Bit-identical tensors (same dtype, shape and bytes)."""
    for key in (a if keys is None else keys):
        assert a[key].dtype == b[key].dtype, key
        assert a[key].shape == b[key].shape, key
        assert a[key].tobytes() == b[key].tobytes(), key


def write_variant(source: Path, target: Path, *, transform: Callable[[str, np.ndarray], np.ndarray] | None = None,
                  keep_structural: bool = True, architecture: Any = "same", graph: Any = "same") -> Path:
    """Rewrite a modelsurgeon HDF5 file with core's writer, changing tensors (any shape/dtype) or documents."""
    from modelsurgeon.core.binding import open_checkpoint
    from modelsurgeon.core.formats.base import TensorInfo
    from modelsurgeon.core.formats.h5 import write_h5
    with open_checkpoint(str(source)) as reader:
        arrays = {}
        for key, info in reader.tensors.items():
            if info.alias_of is None:
                array = np.array(reader.read(key))
                arrays[key] = transform(key, array) if transform is not None else array
        infos = [TensorInfo(i.key, arrays[i.alias_of or i.key].shape, arrays[i.alias_of or i.key].dtype, i.role,
                            i.structural if keep_structural else (), i.alias_of)
                 for i in reader.tensors.values()]
        write_h5(str(target), reader.kind, infos, lambda info: arrays[info.key],
                 architecture=reader.architecture if architecture == "same" else architecture,
                 graph=reader.graph if graph == "same" else graph, metadata=dict(reader.metadata))
    return target


def repeated_blocks_file(path: Path, blocks: int = 4) -> Path:
    """``body`` = HybridSequential of ``blocks`` identical Dense(8, in_units=8), then ``output`` Dense(3)."""
    from modelsurgeon import core
    from modelsurgeon.core.engine import nn
    with core.name_scope():
        body = nn.HybridSequential()
        for _ in range(blocks):
            body.add(nn.Dense(8, in_units=8))
        net = nn.HybridSequential()
        net.register_child(body, "body")
        net.register_child(nn.Dense(3, in_units=8), "output")
        net.initialize()
        net.save_parameters(str(path))
    return path


def nonfinite_file(path: Path) -> Path:
    """A Dense(4, in_units=3) whose weight holds 2 NaN, 1 +Inf and 1 -Inf among known finite values."""
    from modelsurgeon import core
    from modelsurgeon.core.engine import nn
    with core.name_scope():
        net = nn.Dense(4, in_units=3)
        net.initialize()
        weight = np.arange(12, dtype=np.float32).reshape(4, 3)  # finite: 0..11 minus the four replaced
        weight[0, 0] = np.nan
        weight[1, 1] = np.nan
        weight[2, 2] = np.inf
        weight[3, 0] = -np.inf
        net.weight.set_data(weight)
        net.bias.set_data(np.array([1.0, 2.0, 3.0, 4.0], np.float32))
        net.save_parameters(str(path))
    return path


def shared_file(path: Path) -> Path:
    """Two Dense(4, in_units=4) in a HybridSequential, the second sharing the first's Parameters
    (``1.weight``/``1.bias`` are stored as links to ``0.weight``/``0.bias``), with its architecture."""
    from modelsurgeon import core
    from modelsurgeon.core.engine import nn
    with core.name_scope():
        net = nn.HybridSequential()
        first, second = nn.Dense(4, in_units=4), nn.Dense(4, in_units=4)
        net.add(first, second)
        second.share_parameters(first.collect_params())
        net.initialize()
        net(np.zeros((1, 4), np.float32))
        net.save_parameters(str(path))
    return path


def format_available(module: str) -> bool:
    """Whether ``modelsurgeon.core.formats.<module>`` exists and imports (other helpers write them)."""
    if importlib.util.find_spec(f"modelsurgeon.core.formats.{module}") is None:
        return False
    try:
        importlib.import_module(f"modelsurgeon.core.formats.{module}")
    except ImportError:
        return False
    return True


def require_format(module: str) -> None:
    if not format_available(module):
        pytest.skip(f"modelsurgeon.core.formats.{module} is not available yet")



@pytest.fixture(scope="module")
def squeezenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``modelsurgeon zoo squeezenet1.1 --classes 10`` written once per module (guard its digest)."""
    path = tmp_path_factory.mktemp("zoo") / "squeezenet.h5"
    invoke("zoo", "squeezenet1.1", "-o", path, "--classes", 10, "--seed", 0)
    return path


def option_names(command: str) -> set[str]:
    """Every long option the CLI command accepts (to check messages only suggest real options)."""
    cmd = cli.get_command(None, command)
    names: set[str] = set()
    for param in cmd.params:
        names.update(o for o in getattr(param, "opts", []) if o.startswith("--"))
    names.update({"--help", "--json", "--quiet"})
    return names


def suggested_options(message: str) -> set[str]:
    return set(re.findall(r"--[a-z][a-z-]*", message))
