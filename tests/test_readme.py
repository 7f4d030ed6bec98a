"""The README walkthrough runs as written.

Every ```console block is a shell session: lines starting with ``$ `` are commands, the lines
after them (until the next command) are exactly what they print (stdout and stderr, as in a
pipe), each run by a plain ``bash -c`` as a reader's shell would (no ``pipefail``). The blocks run
in order in one scratch directory holding copies of ``sample_models/``
and ``tests/fixtures/``, with the installed ``modelsurgeon`` first on PATH.

``python tests/test_readme.py --update`` reruns the commands and rewrites the outputs in the
README from what they really print.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"^```console\n(.*?)^```\n", re.M | re.S)


def sessions(text: str) -> list[tuple[re.Match[str], list[tuple[str, str]]]]:
    """(block match, [(command, expected output)]) for every console block."""
    found = []
    for block in BLOCK.finditer(text):
        steps: list[tuple[str, list[str]]] = []
        for line in block.group(1).splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif steps:
                steps[-1][1].append(line)
        found.append((block, [(cmd, "\n".join(out).rstrip()) for cmd, out in steps]))
    return found


def scratch(tmp: Path) -> Path:
    shutil.copytree(ROOT / "sample_models", tmp / "sample_models")
    shutil.copytree(ROOT / "tests" / "fixtures", tmp / "tests" / "fixtures")
    return tmp


def run(command: str, cwd: Path) -> str:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONUNBUFFERED="1", COLUMNS="100", NO_COLOR="1")
    # plain bash, as a reader's shell runs the line: no pipefail or other option the reader would not have
    done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)
    return done.stdout.rstrip()


def test_readme_walkthrough_runs_as_written(tmp_path):
    if shutil.which("jq") is None:
        if os.environ.get("CI"):
            pytest.fail("jq is needed for the README's pipeline examples")
        pytest.skip("jq is not installed")
    work = scratch(tmp_path)
    blocks = sessions(README.read_text())
    assert len(blocks) >= 5
    for _, steps in blocks:
        for command, expected in steps:
            assert run(command, work) == expected, f"README command: $ {command}"


def update() -> None:
    import tempfile
    text = README.read_text()
    with tempfile.TemporaryDirectory() as tmp:
        work = scratch(Path(tmp))
        pieces, last = [], 0
        for block, steps in sessions(text):
            lines = []
            for command, _ in steps:
                lines.append(f"$ {command}")
                output = run(command, work)
                if output:
                    lines.append(output)
            pieces.append(text[last:block.start(1)] + "\n".join(lines) + "\n")
            last = block.end(1)
        pieces.append(text[last:])
    README.write_text("".join(pieces))


if __name__ == "__main__" and "--update" in sys.argv:
    update()
