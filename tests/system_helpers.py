"""Running the installed ``modelsurgeon`` against real system conditions (tests and docs/make_reliability_table.py).

* :func:`console_script`: the installed command (beside this interpreter: .venv/bin in CI).
* :func:`tmpfs`: a tiny real file system, to fill up or make read-only (we run as root in CI).
* :func:`drop_permission_override`: so that, as root, a command obeys ``chmod`` like any user.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


def console_script() -> str:
    """The installed ``modelsurgeon`` (beside this interpreter: .venv/bin in CI, /work/venv/bin here)."""
    beside = Path(sys.executable).parent / "modelsurgeon"
    found = str(beside) if beside.exists() else shutil.which("modelsurgeon")
    assert found, "the modelsurgeon console script is not installed beside the interpreter or on PATH"
    return found


@contextlib.contextmanager
def tmpfs(directory: Path, options: str) -> Iterator[bool]:
    """A tmpfs mounted at ``directory`` with ``options`` (``size=1m``, ``ro,size=1m``); yields False where
    mounting is impossible (not root), and unmounts on the way out."""
    directory.mkdir(exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)], capture_output=True)
    except OSError:
        done = None
    if done is None or done.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        if subprocess.run(["umount", str(directory)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(directory)], capture_output=True)


def drop_permission_override() -> None:
    """preexec_fn: as root, lose CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so the exec'd command obeys
    file permissions like any user (root ignores chmod otherwise)."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
