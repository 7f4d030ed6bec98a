"""Outputs appear whole or not at all: write a temporary file beside the target, then rename.

A process killed while writing (SIGKILL, power loss) leaves at most a temporary file
``.modelsurgeon-tmp-<pid>@<host>-<random>.part`` beside the target, never a partial target.
Temporary names carry the writer's process id and a tag of its host, so the next write into the
same directory removes the temporaries of writers that are gone (:func:`clean_stale_temps`),
and never those of a writer still running, here or on another machine sharing the directory.

>>> import os, tempfile
>>> target = os.path.join(tempfile.mkdtemp(), "out.bin")
>>> with atomic_output(target) as tmp:
...     _ = open(tmp, "wb").write(b"data")
>>> open(target, "rb").read()
b'data'
"""

from __future__ import annotations

import binascii
import contextlib
import errno
import os
import queue
import re
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from ..errors import OutputExistsError, WriteError

TEMP_PREFIX = ".modelsurgeon-tmp-"
_OURS = re.compile(re.escape(TEMP_PREFIX) + r"(\d+)@([0-9a-f]{8})-")


def _host_tag() -> str:
    """Eight hex digits naming this host (a CRC of its name: a tag to compare, not a secret)."""
    try:
        name = os.uname().nodename
    except AttributeError:  # Windows
        import socket
        name = socket.gethostname()
    return f"{binascii.crc32(name.encode('utf-8', 'replace')):08x}"


def temp_prefix() -> str:
    """This process's temporary-file prefix: ``.modelsurgeon-tmp-<pid>@<host tag>-``."""
    return f"{TEMP_PREFIX}{os.getpid()}@{_host_tag()}-"


class Committer(Protocol):
    """Where a finished output's commit goes instead of being done at once (:class:`CommitQueue`, :class:`CommitGroup`).

    :meth:`submit` takes the temporary file, its target and the commit that puts it in place;
    :attr:`committed` lists the targets put in place so far.
    """

    committed: list[str]

    def submit(self, tmp: str, target: str, commit: Callable[[], None]) -> None: ...


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], overwrite: bool = True,
                  later: Committer | None = None, then: Callable[[], None] | None = None) -> Iterator[str]:
    """Yield a temporary path in ``path``'s directory; on success it is renamed onto ``path``.

    On any exception (or a crash) the target is untouched and the temporary file is removed
    (a crash leaves at most a ``.modelsurgeon-tmp-*`` file, which :func:`clean_stale_temps` removes).
    With ``later``, the commit (fsync, rename, directory sync) is queued there instead of done
    before this returns; ``then`` runs once the target is in place.
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise WriteError(f"{target}: the directory {directory} does not exist")
    if not overwrite and os.path.exists(target):
        raise OutputExistsError(f"{target} already exists (use `overwrite` to overwrite it)")
    with contextlib.suppress(OSError):
        clean_stale_temps(directory)  # a killed earlier run's leftovers; frees their space first
    try:
        fd, tmp = _create_temp(directory)
    except PermissionError:
        raise WriteError(f"{target}: permission denied to write in {directory}") from None
    except OSError as exc:
        if exc.errno in _WRITE_ERRORS:
            raise WriteError(f"{target}: cannot write in {directory}: {_WRITE_ERRORS[exc.errno]}") from None
        raise
    os.close(fd)
    with _removed_on_failure(tmp, target):
        yield tmp
    if later is not None:
        with _removed_on_failure(tmp, target):  # the queue refuses work once a commit failed
            later.submit(tmp, target, lambda: _commit(tmp, target, directory, overwrite, then))
    else:
        _commit(tmp, target, directory, overwrite, then)


def _keep(target: str) -> str:
    """A hard link to ``target`` if it is a file (to put it back), else ''."""
    if not os.path.isfile(target):
        return ""
    directory = os.path.dirname(os.path.abspath(target))
    backup = os.path.join(directory, f"{temp_prefix()}{binascii.hexlify(os.urandom(6)).decode()}.keep")
    try:
        os.link(target, backup)
    except OSError:
        return ""  # no hard links here: a failed group cannot put this file back
    return backup


def _remove_all(paths: Iterable[str]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _refuse_non_regular(target: str) -> None:
    """Outputs replace regular files only: never a device, a FIFO, a socket or a directory."""
    try:
        info = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):
        return
    if not stat.S_ISREG(info.st_mode):
        raise WriteError(f"{target} is not a regular file; outputs only replace regular files")


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise the :class:`WriteError` that writing ``path`` would meet in its directory (missing, not a
    directory, no permission, read-only...), by creating and removing an empty temporary file there;
    so a command can refuse before any work or report."""
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise WriteError(f"{target}: the directory {directory} does not exist")
    try:
        fd, tmp = _create_temp(directory)
    except PermissionError:
        raise WriteError(f"{target}: permission denied to write in {directory}") from None
    except OSError as exc:
        reason = _WRITE_ERRORS.get(exc.errno or 0) or exc.strerror or str(exc)
        raise WriteError(f"{target}: cannot write in {directory}: {reason.lower()}") from None
    os.close(fd)
    os.unlink(tmp)


def _commit(tmp: str, target: str, directory: str, overwrite: bool, then: Callable[[], None] | None) -> None:
    """Make the finished ``tmp`` durable and put it in place of ``target``."""
    with _removed_on_failure(tmp, target):
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, _mode_for(target))
        _refuse_non_regular(target)
        if overwrite:
            os.replace(tmp, target)
        else:
            _publish_new(tmp, target)
        _sync_directory(directory)
    if then is not None:
        then()


@contextlib.contextmanager
def _removed_on_failure(tmp: str, target: str) -> Iterator[None]:
    try:
        yield
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno in _WRITE_ERRORS:
            # the disk filled up (or went read-only) mid-write: say which output, and that it is absent
            raise WriteError(f"{target}: {_WRITE_ERRORS[exc.errno]} while writing; nothing was written") from None
        raise


class CommitQueue:
    """Commits finished outputs (fsync, rename, directory sync) in order on a helper thread.

    A sharded write queues each shard's commit here and goes on writing the next shard, so the
    disk flushes one shard while the next is copied instead of idling between them. :meth:`wait`
    returns once every queued output is in place, raising the first failure. Left by an exception,
    it finishes the commit under way, removes the temporaries still queued and commits nothing more;
    :attr:`committed` lists the targets put in place, for the caller to remove.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[str, str, Callable[[], None]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._abandoned = False
        self.committed: list[str] = []

    def __enter__(self) -> CommitQueue:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            self._abandoned = True
        self._stop()
        if kind is None:
            self._raise_failure()  # a commit that failed fails the block, waited for or not

    def submit(self, tmp: str, target: str, commit: Callable[[], None]) -> None:
        """Queue ``commit``, which puts the finished ``tmp`` in place of ``target``."""
        self._raise_failure()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="modelsurgeon-commit", daemon=True)
            self._thread.start()
        self._jobs.put((tmp, target, commit))

    def wait(self) -> None:
        """Return once everything queued is committed; raise the first commit that failed."""
        self._stop()
        self._raise_failure()

    def _stop(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            tmp, target, commit = job
            if self._abandoned or self._error is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                continue
            try:
                commit()
            except BaseException as exc:
                self._error = exc
            else:
                self.committed.append(target)


class CommitGroup:
    """Outputs that appear together or not at all (an MXNet export's ``.params`` and ``-symbol.json``).

    Used as ``later=`` of :func:`atomic_output`, it holds each finished temporary file; leaving the
    block normally commits them all in the order given, leaving it by an exception removes them
    all. If a commit fails after others went through, those are undone: files that did not exist
    are removed, files they replaced are put back (each was kept as a hard link until the end).
    """

    def __init__(self) -> None:
        self._jobs: list[tuple[str, str, Callable[[], None]]] = []
        self.committed: list[str] = []

    def __enter__(self) -> CommitGroup:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        jobs, self._jobs = self._jobs, []
        if kind is not None:
            _remove_all(tmp for tmp, _, _ in jobs)
            return
        backups: dict[str, str] = {}
        try:
            for index, (tmp, target, commit) in enumerate(jobs):
                if target not in backups:
                    backups[target] = _keep(target)
                try:
                    commit()
                except BaseException:
                    _remove_all(tmp for tmp, _, _ in jobs[index:])
                    raise
                self.committed.append(target)
        except BaseException:
            for target in reversed(self.committed):  # undo what went through
                with contextlib.suppress(OSError):
                    if backups.get(target):
                        os.replace(backups[target], target)
                    else:
                        os.unlink(target)
            self.committed = []
            raise
        finally:
            _remove_all(backup for backup in backups.values() if backup)

    def submit(self, tmp: str, target: str, commit: Callable[[], None]) -> None:
        self._jobs.append((tmp, target, commit))


def _create_temp(directory: str) -> tuple[int, str]:
    """Create a new, empty, private temporary file in ``directory`` (as ``tempfile.mkstemp`` does)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    prefix = temp_prefix()
    for _ in range(100):
        path = os.path.join(directory, f"{prefix}{os.urandom(6).hex()}.part")
        try:
            return os.open(path, flags, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", directory)


#: Errors that mean "the output cannot be written here", reported as a WriteError naming the output.
_WRITE_ERRORS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
                 errno.EFBIG: "file too large for the file system", errno.EROFS: "read-only file system"}


def _publish_new(tmp: str, target: str) -> None:
    """Move ``tmp`` to ``target`` only if ``target`` does not exist, atomically where links work.

    A hard link fails with EEXIST when another writer got there first (two commands writing the
    same output without --force: one wins, the other is told the output exists).
    """
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise OutputExistsError(f"{target} already exists (use `overwrite` to overwrite it)") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK,
                             errno.ENOSYS):
            raise
        if os.path.exists(target):  # no hard links here (FAT, some network file systems)
            raise OutputExistsError(f"{target} already exists (use `overwrite` to overwrite it)") from None
        os.replace(tmp, target)
        return
    os.unlink(tmp)


def _sync_directory(directory: str) -> None:
    """Make the rename durable (a power cut after this keeps the new file); best effort."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _mode_for(target: str) -> int:
    """Keep an existing file's mode; a new file gets the usual 0o666 less the umask (mkstemp uses 0o600)."""
    try:
        return os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        with _UMASK_LOCK:  # reading the umask means setting it: one thread at a time (CommitQueue)
            mask = os.umask(0)
            os.umask(mask)
        return 0o666 & ~mask


_UMASK_LOCK = threading.Lock()


def clean_stale_temps(directory: str, older_than: float = 3600.0) -> int:
    """Remove temporary files left in ``directory`` by killed runs; returns how many.

    A temporary of this host whose writer process no longer exists is removed at once; any other
    ``.modelsurgeon-tmp-*`` file (another host's, or named before process ids were recorded)
    only when it has not been modified for ``older_than`` seconds. A live writer's file is never
    touched.
    """
    removed = 0
    now = time.time()
    host = _host_tag()
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(directory):
            if not entry.name.startswith(TEMP_PREFIX):
                continue
            match = _OURS.match(entry.name)
            try:
                if match and match.group(2) == host:
                    stale = not _alive(int(match.group(1)))
                else:
                    stale = now - entry.stat(follow_symlinks=False).st_mtime > older_than
                if stale and entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
                    removed += 1
            except (FileNotFoundError, ValueError):
                continue
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process (or an absurd number): leave its file alone
    return True
