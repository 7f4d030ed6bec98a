"""Editing an HDF5 file in place, whole or not at all (a redo journal).

HDF5 has no journal of its own: a process killed (or a disk filling up) while the library rewrites
a file's metadata leaves it unreadable. Renaming the tensors of a large file must not copy its data
either (issue 4, benchmark 3), and where the file system cannot clone files (ext4) the edit has to
happen in the file itself. So the edit runs in two phases:

1. **In memory.** The HDF5 library works on an :class:`Overlay`, a file object (h5py's ``fileobj``
   driver) that reads the real file but keeps every write in memory, page by page. The real file is
   only read. Any failure here (a missing key, a bug, Ctrl-C) leaves it untouched.
2. **Journal, then apply.** The changed pages and the new size go to a journal beside the file
   (``.<name>.modelsurgeon-journal``: written to a temporary file, fsynced, renamed into place, the
   directory synced; a SHA-256 covers it). The space the edit needs is reserved (``fallocate``),
   then the pages are written into the file, the file is fsynced and the journal removed. A full
   disk while writing the journal or reserving space: the journal is dropped and the file is
   exactly as it was.

Killed (SIGKILL, power loss) before the journal is in place, the file is untouched; after it, the
next open of the file through :func:`recover` (every HDF5 open goes through ``h5safe``, which calls
it) writes the journal's pages again and removes it: the edit completes. The journal only ever
rewrites metadata, so it is small (kilobytes to a few megabytes for 20,000 tensors).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import CheckpointError, WriteError

PAGE = 4096
MAGIC = b"MSJOURNAL1\n"
_HEAD = struct.Struct("<QQQQQ")  # device, inode, old size, new size, number of runs
_RUN = struct.Struct("<QQ")  # offset, length
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def journal_path(path: str) -> str:
    """Where the journal of an in-place edit of ``path`` (a real path) lives."""
    directory, name = os.path.split(os.path.realpath(path))
    return os.path.join(directory, f".{name}.modelsurgeon-journal")


class Overlay(io.RawIOBase):
    """A file opened for reading, with every write kept in memory (pages of :data:`PAGE` bytes)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self.base_size = self.size = os.fstat(self._fd).st_size
        self._pos = 0
        self.pages: dict[int, bytearray] = {}

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def _base(self, offset: int, length: int) -> bytes:
        """The real file's bytes (zeros past its end or past the edited size)."""
        data = os.pread(self._fd, length, offset) if offset < self.base_size else b""
        return data + bytes(length - len(data))

    def _page(self, number: int) -> bytearray:
        page = self.pages.get(number)
        if page is None:
            page = self.pages[number] = bytearray(self._base(number * PAGE, PAGE))
            # bytes cut off by a truncation read back as zeros, as in a real file
            end = self.size - number * PAGE
            if 0 <= end < PAGE:
                page[end:] = bytes(PAGE - end)
        return page

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        length = max(0, min(len(view), self.size - self._pos))
        start = self._pos
        view[:length] = self._base(start, length)
        first, last = start // PAGE, (start + length - 1) // PAGE
        dirty = (range(first, last + 1) if last - first < len(self.pages)
                 else sorted(n for n in self.pages if first <= n <= last))
        for number in dirty:
            page = self.pages.get(number)
            if page is None or length == 0:
                continue
            lo, hi = max(start, number * PAGE), min(start + length, (number + 1) * PAGE)
            view[lo - start:hi - start] = page[lo - number * PAGE:hi - number * PAGE]
        self._pos += length
        return length

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        start, end = self._pos, self._pos + len(view)
        if end > self.size:
            self._grow(end)
        at = start
        while at < end:
            number = at // PAGE
            page = self._page(number)
            upto = min(end, (number + 1) * PAGE)
            page[at - number * PAGE:upto - number * PAGE] = view[at - start:upto - start]
            at = upto
        self._pos = end
        return len(view)

    def _grow(self, size: int) -> None:
        """Extend the edited size; bytes between the old end and ``size`` read as zeros."""
        if self.size < self.base_size:  # after a truncation the cut-off real bytes must read as zeros
            for number in range(self.size // PAGE, (min(size, self.base_size) - 1) // PAGE + 1):
                page = self._page(number)
                lo = max(self.size - number * PAGE, 0)
                hi = min(size - number * PAGE, PAGE)
                if lo < hi:
                    page[lo:hi] = bytes(hi - lo)
        self.size = size

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else size
        if size > self.size:
            self._grow(size)
        else:
            self.size = size
            edge = self.pages.get(size // PAGE)
            if edge is not None:
                edge[size % PAGE:] = bytes(PAGE - size % PAGE)
            for number in [n for n in self.pages if n * PAGE >= size and n != size // PAGE]:
                del self.pages[number]
        return size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        super().close()

    def runs(self) -> list[tuple[int, bytes]]:
        """The edit: runs of changed bytes ``(offset, data)`` within the new size, adjacent pages merged."""
        runs: list[tuple[int, bytes]] = []
        for number in sorted(self.pages):
            offset = number * PAGE
            if offset >= self.size:
                continue
            data = bytes(self.pages[number][:min(PAGE, self.size - offset)])
            if data == self._base(offset, len(data)) and offset + len(data) <= self.base_size:
                continue
            if runs and runs[-1][0] + len(runs[-1][1]) == offset:
                runs[-1] = (runs[-1][0], runs[-1][1] + data)
            else:
                runs.append((offset, data))
        return runs


def edit(path: str, change: Callable[[Overlay], None]) -> bool:
    """Run ``change(overlay)`` (it opens HDF5 on the overlay and closes it again), then make its
    writes to ``path`` durable through a journal. Returns whether the file changed.

    A full disk raises WriteError with the file unchanged; nothing else is left behind.
    """
    recover(path)
    with _exclusive(path, wait=0.0):
        overlay = Overlay(path)
        try:
            change(overlay)
            st = os.fstat(overlay._fd)
            runs, old_size, new_size = overlay.runs(), overlay.base_size, overlay.size
        finally:
            overlay.close()
        if not runs and new_size == old_size:
            return False
        journal = journal_path(path)
        _write_journal(journal, path, (st.st_dev, st.st_ino, old_size, new_size), runs)
        _apply(path, journal, (st.st_dev, st.st_ino, old_size, new_size), runs)
    return True


@contextlib.contextmanager
def _exclusive(path: str, wait: float) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (the ``flock`` HDF5's own file locking takes): no other
    editor, nor an HDF5 library with the file open, meanwhile. Waits up to ``wait`` seconds."""
    if os.environ.get("HDF5_USE_FILE_LOCKING", "").upper() in ("FALSE", "0"):
        yield
        return
    try:
        import fcntl
    except ImportError:  # no flock (Windows): HDF5 does not lock there either
        yield
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise CheckpointError(path, "is open in another process (HDF5 file locking); an in-place "
                                                "edit needs it to itself: try again when that process is done") \
                        from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # (releases the lock)


def _write_journal(journal: str, path: str, head: tuple[int, int, int, int], runs: list[tuple[int, bytes]]) -> None:
    from .atomic import atomic_output
    digest = hashlib.sha256()
    try:
        with atomic_output(journal) as tmp, open(tmp, "wb") as handle:
            for chunk in _journal_chunks(head, runs):
                digest.update(chunk)
                handle.write(chunk)
            handle.write(digest.digest())
    except WriteError as exc:
        why = str(exc).rpartition(": ")[2].replace(" while writing; nothing was written", "")
        raise WriteError(f"{path}: cannot write the in-place edit's journal ({why}); the file is unchanged") \
            from None


def _journal_chunks(head: tuple[int, int, int, int], runs: list[tuple[int, bytes]]) -> Iterator[bytes]:
    yield MAGIC + _HEAD.pack(*head, len(runs))
    for offset, data in runs:
        yield _RUN.pack(offset, len(data))
        yield data


def _read_journal(journal: str) -> tuple[tuple[int, int, int, int], list[tuple[int, bytes]]] | None:
    """The journal's contents; None if it is not a whole, intact journal."""
    with open(journal, "rb") as handle:
        blob = handle.read()
    body, digest = blob[:-32], blob[-32:]
    if len(blob) < len(MAGIC) + _HEAD.size + 32 or not body.startswith(MAGIC) \
            or hashlib.sha256(body).digest() != digest:
        return None
    at = len(MAGIC)
    *head, count = _HEAD.unpack_from(body, at)
    at += _HEAD.size
    runs = []
    for _ in range(count):
        if at + _RUN.size > len(body):
            return None
        offset, length = _RUN.unpack_from(body, at)
        at += _RUN.size
        runs.append((offset, body[at:at + length]))
        at += length
    return (head[0], head[1], head[2], head[3]), runs


def _apply(path: str, journal: str, head: tuple[int, int, int, int], runs: list[tuple[int, bytes]]) -> None:
    """Write the journal's runs into the file; on a full disk, undo the reservation and drop the journal."""
    _, _, old_size, new_size = head
    fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    try:
        try:
            _reserve(fd, runs, old_size, new_size)
        except OSError as exc:
            if exc.errno not in _NO_SPACE:
                raise
            os.ftruncate(fd, old_size)  # the reservation may have grown the file: back to the old bytes
            os.fsync(fd)
            _drop(journal)
            raise WriteError(f"{path}: no space left on device for the in-place edit; the file is unchanged") \
                from None
        for offset, data in runs:
            written = 0
            while written < len(data):
                written += os.pwrite(fd, data[written:], offset + written)
        if os.fstat(fd).st_size != new_size:
            os.ftruncate(fd, new_size)
        os.fsync(fd)
    finally:
        os.close(fd)
    _drop(journal)


def _reserve(fd: int, runs: list[tuple[int, bytes]], old_size: int, new_size: int) -> None:
    """Allocate every block the runs write (holes included) before writing any, so a full disk
    shows up here, while the file still holds its old bytes."""
    if not hasattr(os, "posix_fallocate"):
        return
    for offset, data in runs:
        try:
            os.posix_fallocate(fd, offset, len(data))
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):  # the file system cannot reserve: write anyway
                return
            raise


def _drop(journal: str) -> None:
    from .atomic import _sync_directory
    with contextlib.suppress(FileNotFoundError):
        os.unlink(journal)
    _sync_directory(os.path.dirname(journal))


def recover(path: str) -> bool:
    """Finish an in-place edit of ``path`` that was interrupted after its journal was written.

    Called before every HDF5 open; costs one failed ``stat`` when there is no journal. A journal
    that is incomplete or damaged (the run died while writing it) or that belongs to another file
    (same name, another inode) is removed: the file it would have edited was never touched.
    """
    journal = journal_path(path)
    try:
        found = _read_journal(journal)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise CheckpointError(path, f"cannot read the journal of an interrupted in-place edit, {journal}: "
                                    f"{exc.strerror or exc}") from None
    try:
        st = os.stat(path)
    except OSError:
        return False
    if found is None or (st.st_dev, st.st_ino) != found[0][:2]:
        with contextlib.suppress(OSError):
            _drop(journal)
        return False
    try:
        with _exclusive(path, wait=10.0):  # an editor still applying it holds the lock for milliseconds
            if os.path.exists(journal):
                _apply(path, journal, *found)
    except OSError as exc:
        raise CheckpointError(path, f"an interrupted in-place rename left its journal {journal}, and finishing "
                                    f"it needs write access: {exc.strerror or exc}") from None
    return True
