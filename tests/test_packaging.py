"""The package installs as modelsurgeon.core / modelsurgeon.cli, and core stays a library."""

from __future__ import annotations

import ast
import importlib.util
import pathlib

import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_pyproject_lists_every_package_folder():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = set()
    for top in ("core", "cli"):
        for init in (ROOT / top).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT).parts
            found.add(".".join(("modelsurgeon", *relative)))
    assert found == listed


def test_no_top_level_core_or_cli_package_is_importable():
    import modelsurgeon.cli
    import modelsurgeon.core
    for name in ("core", "cli"):
        spec = importlib.util.find_spec(name)
        assert spec is None or "modelsurgeon" in str(spec.origin) or str(ROOT) in str(spec.origin)
    assert pathlib.Path(modelsurgeon.core.__file__).parent.name == "core"


def test_core_never_imports_click_or_rich_and_never_prints():
    offenders = []
    for path in (ROOT / "core").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{path.name}:{node.lineno} print()")
                continue
            else:
                continue
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in ("click", "rich")]
    assert offenders == []


def test_one_version_everywhere():
    from importlib import metadata

    from modelsurgeon.cli.output import VERSION
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["project"]["version"] == modelsurgeon_core_version() == VERSION == metadata.version("modelsurgeon")


def modelsurgeon_core_version() -> str:
    import modelsurgeon.core
    return modelsurgeon.core.__version__


def test_version_starts_without_numpy_or_h5py():
    """`modelsurgeon --version` must stay fast: the command modules (numpy, h5py) load lazily."""
    import subprocess
    import sys
    code = ("import sys; from modelsurgeon.cli.main import cli\n"
            "try:\n    cli.main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('numpy', 'h5py', 'rich') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_console_script_flushes_everything_and_keeps_its_exit_codes(tmp_path):
    """``main`` leaves with os._exit after the command (no interpreter teardown): what it printed must
    still arrive whole, and every exit code must survive."""
    import json
    import subprocess

    from system_helpers import console_script
    script = console_script()
    sample = str(ROOT / "sample_models" / "cnn.h5")
    done = subprocess.run([script, "inspect", sample, "--json"], capture_output=True, text=True)
    assert done.returncode == 0 and json.loads(done.stdout)["tensors"]
    done = subprocess.run([script, "inspect", str(tmp_path / "missing.h5")], capture_output=True, text=True)
    assert done.returncode == 3 and done.stderr.startswith("Error: ")
    done = subprocess.run([script, "--no-such-option"], capture_output=True, text=True)
    assert done.returncode == 2 and "No such option" in done.stderr
    done = subprocess.run([script, "convert", sample, "-o", str(tmp_path / "out.h5")], capture_output=True, text=True)
    assert done.returncode == 0 and (tmp_path / "out.h5").exists() and "wrote" in done.stderr


def test_surgery_on_a_plain_file_never_loads_the_engine(tmp_path):
    """The engine (Blocks, graphs, the model zoo) loads on first use: `convert` and `replace-head` of a
    file without an architecture or graph never import it; a file with one still gets it."""
    import subprocess
    import sys
    plain, out = tmp_path / "plain.h5", tmp_path / "out.h5"
    code = f"""
import sys
import numpy as np
from modelsurgeon.core.formats.base import STRUCTURAL, TensorInfo
from modelsurgeon.core.formats.h5 import write_h5
arrays = {{"features.0.weight": np.ones((4, 3), np.float32), "output.weight": np.ones((5, 4), np.float32),
          "output.bias": np.zeros(5, np.float32)}}
write_h5({str(plain)!r}, STRUCTURAL, [TensorInfo(k, a.shape, a.dtype) for k, a in arrays.items()],
         lambda info: arrays[info.key])
from modelsurgeon.cli.main import cli
for argv in (["convert", {str(plain)!r}, "-o", {str(out)!r}, "-q"],
             ["replace-head", {str(plain)!r}, "-o", {str(out)!r}, "--classes", "2", "--force", "-q"],
             ["replace-head", {str(ROOT / "sample_models" / "cnn.h5")!r}, "-o", {str(out)!r}, "--classes", "3",
              "--force", "-q"]):
    try:
        cli.main(argv)
    except SystemExit as done:
        assert not done.code, done.code
    print("model_zoo" if "modelsurgeon.core.engine.model_zoo" in sys.modules else "-")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["-", "-", "model_zoo"]


def test_lazy_module_hands_back_loaded_modules_and_refuses_missing_ones():
    import json

    import pytest

    from modelsurgeon.core.lazy import lazy_module
    assert lazy_module("json") is json
    with pytest.raises(ImportError, match="no module named"):
        lazy_module("modelsurgeon.core.no_such_module")
