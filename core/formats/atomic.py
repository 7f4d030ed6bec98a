"""Outputs appear whole or not at all: write a temporary file beside the target, then rename.

>>> import os, tempfile
>>> target = os.path.join(tempfile.mkdtemp(), "out.bin")
>>> with atomic_output(target) as tmp:
...     _ = open(tmp, "wb").write(b"data")
>>> open(target, "rb").read()
b'data'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from ..errors import OutputExistsError, WriteError

TEMP_PREFIX = ".modelsurgeon-tmp-"


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], overwrite: bool = True) -> Iterator[str]:
    """Yield a temporary path in ``path``'s directory; on success it is renamed onto ``path``.

    On any exception (or a crash) the target is untouched and the temporary file is removed
    (a crash leaves at most a ``.modelsurgeon-tmp-*`` file, which :func:`clean_stale_temps` removes).
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise WriteError(f"{target}: the directory {directory} does not exist")
    if not overwrite and os.path.exists(target):
        raise OutputExistsError(f"{target} already exists (use --force to overwrite it)")
    try:
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".part", dir=directory)
    except PermissionError:
        raise WriteError(f"{target}: permission denied to write in {directory}") from None
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, _mode_for(target))
        if not overwrite and os.path.exists(target):
            raise OutputExistsError(f"{target} already exists (use --force to overwrite it)")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _mode_for(target: str) -> int:
    """Keep an existing file's mode; a new file gets the usual 0o666 less the umask (mkstemp uses 0o600)."""
    try:
        return os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def clean_stale_temps(directory: str, older_than: float = 3600.0) -> int:
    """Remove our temporary files left in ``directory`` by a killed run; returns how many."""
    import time

    removed = 0
    now = time.time()
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            if entry.name.startswith(TEMP_PREFIX) and now - entry.stat().st_mtime > older_than:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed += 1
    return removed
