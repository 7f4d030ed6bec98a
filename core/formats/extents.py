"""Copy tensors that pass through a rewrite unchanged inside the kernel, never through Python.

Most of a surgery's output is its input's tensors, byte for byte: every tensor of ``convert`` and
``rename -o``, all but the head in ``replace-head``. Where a reader can say exactly which bytes of
its file hold a tensor (an :class:`Extent`) and the writer knows where those bytes go, the copy is
one ``copy_file_range`` call: the data moves from page cache to page cache (or is shared outright
on file systems that can), as ``cp`` does, instead of being read into a fresh array and written
back out. Where the kernel cannot do that (another file system before Linux 5.3, a platform
without the call), the same copy runs through one reused buffer.

Every output is fsynced before it replaces its target (atomic.py). :class:`Writeback` starts
writing the output to disk while it is still being produced, from a helper thread, so that final
fsync finds little left to do: the disk works in parallel with the copying instead of after it.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeGuard

import numpy as np

from ..errors import CheckpointError
from .base import TensorInfo

#: Extents smaller than this move as one ``pread`` and one write: for them a kernel copy's set-up
#: costs more than the bytes (and a buffered output need not be flushed). Larger ones the kernel copies.
KERNEL_COPY_BYTES = 64 << 10
#: The buffer of the read/write fallback.
FALLBACK_CHUNK = 8 << 20
#: ``copy_file_range`` errors that mean "not here", after which the fallback takes over.
_UNSUPPORTED = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF,
                errno.ETXTBSY, errno.EPERM}


@dataclass(frozen=True)
class Extent:
    """Bytes ``[offset, offset + nbytes)`` of ``path`` hold a tensor exactly: its values in C order,
    little-endian, as ``dtype`` (never bool, whose stored bytes readers normalise)."""

    path: str
    offset: int
    nbytes: int
    dtype: np.dtype
    file_id: tuple[int, int]  # (st_dev, st_ino) of the file the reader opened


#: Where a writer may find an output tensor's bytes: ``locate(info)`` -> an extent, or None.
Locate = Callable[[TensorInfo], "Extent | None"]


def file_id(st: os.stat_result) -> tuple[int, int]:
    """Which file a stat result is of: (device, inode)."""
    return st.st_dev, st.st_ino


def usable(extent: Extent | None, dtype: np.dtype, nbytes: int) -> TypeGuard[Extent]:
    """Whether ``extent`` can stand in for a tensor the writer stores as ``dtype``, ``nbytes`` long."""
    return (extent is not None and extent.nbytes == nbytes
            and np.dtype(extent.dtype) == np.dtype(dtype).newbyteorder("<") and np.dtype(dtype).kind != "b")


def open_source(path: str, expected: tuple[int, int]) -> int:
    """A descriptor for reading ``path``, which must still be the file (``file_id``) that was opened."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise CheckpointError(path, f"cannot open: {exc.strerror or exc}") from None
    if file_id(os.fstat(fd)) != expected:
        os.close(fd)
        raise CheckpointError(path, "was replaced by another file after it was opened")
    return fd


def read_exact(fd: int, path: str, buffer: memoryview, offset: int, what: str) -> None:
    """Fill ``buffer`` (a byte view) from byte ``offset`` of ``fd``, in as many reads as it takes (one
    returns at most ~2 GiB on Linux). A file that ends first is an error, never zeros."""
    done, total = 0, len(buffer)
    while done < total:
        try:
            if hasattr(os, "preadv"):
                got = os.preadv(fd, [buffer[done:]], offset + done)
            else:  # Windows
                os.lseek(fd, offset + done, os.SEEK_SET)
                chunk = os.read(fd, min(total - done, 1 << 30))
                buffer[done:done + len(chunk)] = chunk
                got = len(chunk)
        except OSError as exc:
            raise CheckpointError(path, f"{what}: read error: {exc.strerror or exc}") from None
        if not got:
            raise CheckpointError(path, f"{what} runs past the end of the file (it ended after {done} of "
                                        f"{total} bytes: truncated since it was opened?)")
        done += got


#: Bytes written between two calls that start writing the output out to disk.
WRITEBACK_EVERY = 64 << 20
#: ``sync_file_range`` flag: start writing out the dirty pages, do not wait for any.
_SYNC_FILE_RANGE_WRITE = 2


class Writeback:
    """Starts the kernel writing an output file out while more is written (Linux ``sync_file_range``).

    Only a head start: it waits for nothing and promises nothing (the fsync at the end does). The call
    itself blocks for a while when the disk's queue is full (50-170 ms in all over a 1 GiB output
    here), so it is made from a helper thread, which overlaps that with the copying instead of
    stalling it. Requests that arrive while a call runs fold into the next call (each one covers the
    whole file). A request made before :meth:`close` is always served before ``close`` returns, so
    what happens does not depend on how the threads are scheduled. Where the call is missing or
    refused it does nothing. :meth:`close` it before the file is closed.
    """

    _call: Any = None  # sync_file_range from the C library, looked up once per process

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._requested = False
        self._closing = False

    def wrote(self, nbytes: int) -> None:
        self._pending += nbytes
        if self._pending >= WRITEBACK_EVERY:
            self._pending = 0
            self.start()

    def start(self) -> None:
        if self._closing or not Writeback._function():
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="modelsurgeon-writeback", daemon=True)
            self._thread.start()
        self._requested = True
        self._wake.set()

    def close(self) -> None:
        """Serve the request still waiting, if any, and stop the helper; the file may be closed afterwards."""
        self._closing = True
        if self._thread is not None:
            self._wake.set()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        call = Writeback._function()
        while True:
            self._wake.wait()
            self._wake.clear()
            closing = self._closing  # read first: every request made before close() is already set
            while self._requested:
                self._requested = False
                call(self._fd, 0, 0, _SYNC_FILE_RANGE_WRITE)  # the whole file; errors are ignored: a hint
            if closing:
                return

    @staticmethod
    def _function() -> Any:
        if Writeback._call is None:
            Writeback._call = False
            if sys.platform.startswith("linux"):
                try:
                    import ctypes
                    function = ctypes.CDLL(None, use_errno=True).sync_file_range
                    function.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
                    Writeback._call = function
                except (OSError, AttributeError, ImportError):
                    pass
        return Writeback._call


class ExtentCopier:
    """Copies extents into one open output file; keeps each source file open until :meth:`close`.

    It also paces the output's writeback: writers report the bytes they write themselves
    with :meth:`wrote`, and copies count on their own.
    """

    def __init__(self, destination_fd: int, owned: bool = False) -> None:
        self._fd = destination_fd
        self._owned = owned
        self._writeback = Writeback(destination_fd)
        self._sources: dict[str, int] = {}
        self._kernel = hasattr(os, "copy_file_range")
        self._buffer: bytearray | None = None

    def __enter__(self) -> ExtentCopier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def copy(self, extent: Extent, at: int) -> None:
        """Copy ``extent`` to byte ``at`` of the output (the output's file position is not used)."""
        if extent.nbytes < KERNEL_COPY_BYTES:
            data = self._small(extent)
            written = 0
            while written < len(data):
                written += os.pwrite(self._fd, data[written:], at + written)
            self._writeback.wrote(len(data))
            return
        source = self._source(extent.path, extent.file_id)
        done = 0
        while done < extent.nbytes:
            count = self._step(source, extent.nbytes - done, extent.offset + done, at + done)
            if count == 0:
                raise CheckpointError(extent.path, f"ends before byte {extent.offset + extent.nbytes} "
                                                   "(it changed after it was opened?)")
            done += count
        self._writeback.wrote(extent.nbytes)

    def wrote(self, nbytes: int) -> None:
        """Count ``nbytes`` the writer wrote to the output itself (for the writeback pacing)."""
        self._writeback.wrote(nbytes)

    def append(self, handle: BinaryIO, extent: Extent) -> None:
        """Copy ``extent`` at a buffered output's position and move the output past it."""
        if extent.nbytes < KERNEL_COPY_BYTES:
            handle.write(self._small(extent))
            self._writeback.wrote(extent.nbytes)
            return
        handle.flush()
        at = handle.tell()
        self.copy(extent, at)
        handle.seek(at + extent.nbytes)

    def _small(self, extent: Extent) -> bytes:
        """The bytes of a small extent, read with one ``pread``."""
        data = os.pread(self._source(extent.path, extent.file_id), extent.nbytes, extent.offset)
        if len(data) != extent.nbytes:
            raise CheckpointError(extent.path, f"ends before byte {extent.offset + extent.nbytes} "
                                               "(it changed after it was opened?)")
        return data

    def _step(self, source: int, count: int, src: int, dst: int) -> int:
        if self._kernel:
            try:
                return os.copy_file_range(source, self._fd, count, src, dst)
            except OSError as exc:
                if exc.errno not in _UNSUPPORTED:
                    raise
                self._kernel = False
        if self._buffer is None:
            self._buffer = bytearray(FALLBACK_CHUNK)
        view = memoryview(self._buffer)[:min(count, FALLBACK_CHUNK)]
        got = os.preadv(source, [view], src)
        written = 0
        while written < got:
            written += os.pwrite(self._fd, view[written:got], dst + written)
        return got

    def _source(self, path: str, expected: tuple[int, int]) -> int:
        fd = self._sources.get(path)
        if fd is None:
            fd = self._sources[path] = open_source(path, expected)
        return fd

    def close(self) -> None:
        self._writeback.close()
        while self._sources:
            os.close(self._sources.popitem()[1])
        if self._owned and self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
