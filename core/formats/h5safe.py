"""Hardened HDF5 access shared by every HDF5-based reader (ours and Keras's).

Checkpoints arrive from strangers. A file is refused, with one :class:`CheckpointError`, when
it is not HDF5, is truncated or corrupt, links out of itself (soft or external links), holds
external or virtual datasets, declares a dataset far larger than the file could hold
(a "shape bomb") or an attribute larger than :data:`ATTR_LIMIT`, or names an object with
control characters.

The HDF5 C library trusts the bytes it parses: some corrupt files make it crash (a segfault
kills the whole process, no Python ``try`` can stop it) or loop forever. So :func:`open_h5`
first reads the file's metadata in a forked child process (:func:`validate_in_child`): the
child opens the file and touches everything a reader touches on open (every link, object,
attribute and dataset property, and a little of each dataset's data). If the child dies by a
signal, or makes no progress for :data:`VALIDATE_IDLE_TIMEOUT` seconds, the file is refused;
only then does the calling process open it. Forking after h5py is imported costs a few
milliseconds; the child's walk costs what the reader's own walk costs.

A reader may hand the child its own listing function instead (a *survey*, see
:func:`validate_in_child`): the child then touches exactly what that reader touches, sends the
listing back, and the calling process never parses the file's metadata at all.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import h5py
import numpy as np

from ..errors import CheckpointError
from . import h5journal, isolate
from .extents import Extent

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: A dataset may declare this many bytes more than it stores (compression) before it is a bomb.
BOMB_RATIO = 1000
BOMB_FLOOR = 64 << 20
#: The largest attribute a reader reads (Keras splits its name lists into 64 KiB chunks).
ATTR_LIMIT = 16 << 20
#: Validate files in a forked child before opening them (POSIX only; tests may switch it off).
VALIDATE = hasattr(os, "fork")
#: Seconds the validating child may go without progress before the file is refused as a hang.
VALIDATE_IDLE_TIMEOUT = 20.0
#: Memory the validating child may allocate beyond what the parent had when it forked.
VALIDATE_MEMORY = 2 << 30
#: Bytes of chunked or filtered dataset data the child reads in full (their chunk index and
#: decompression are where corrupt data crashes the library; contiguous data is a plain read).
VALIDATE_DATA_BUDGET = 64 << 20
_CONTROL = frozenset(chr(c) for c in (*range(0x20), 0x7F))
_validated: dict[tuple[Any, ...], None] = {}
_CACHE_SIZE = 64
#: The child's last byte on the pipe: it walked the file (Python errors included), or ran out of
#: memory. No verdict before the end of the pipe means it died by a signal.
_DONE, _NO_MEMORY = b"!", b"M"
#: Before the verdict, a child asked for a survey sends ``R``, the survey's length and its JSON.
_SURVEY = b"R"
#: ``survey(file, path, visit)``: a reader's whole listing of an open file as JSON data (None: not
#: its file), calling ``visit(dataset, plain)`` for each dataset it lists, ``plain`` when its values
#: are plain bytes in the file (a plain read; the others' chunk index and filters are touched).
Survey = Callable[[h5py.File, str, Callable[[h5py.Dataset, bool], None]], Any]


def is_hdf5(head: bytes) -> bool:
    return head.startswith(HDF5_MAGIC)


def open_h5(path: str, mode: str = "r") -> h5py.File:
    """Open an HDF5 file, turning every h5py/OS failure into a CheckpointError.

    The file is first validated in a child process (:func:`validate_in_child`), so a corrupt
    file that crashes or hangs the HDF5 library is refused instead of killing this process.
    """
    h5journal.recover(path)  # an in-place edit killed after its journal was written completes first
    if VALIDATE:
        validate_in_child(path)
    with h5_errors(path):
        return h5py.File(path, mode)


@contextlib.contextmanager
def h5_errors(path: str) -> Iterator[None]:
    """Turn h5py's failures to open a file into one CheckpointError, saying which it was."""
    try:
        yield
    except FileNotFoundError:
        raise CheckpointError(path, "no such file") from None
    except PermissionError:
        raise CheckpointError(path, "permission denied") from None
    except OSError as exc:
        if _is_lock_contention(exc):
            raise CheckpointError(path, "is locked by another process that has it open for writing (HDF5 file "
                                        "locking); try again when it is done, or set HDF5_USE_FILE_LOCKING=FALSE "
                                        "if that process is gone") from None
        raise CheckpointError(path, f"not a readable HDF5 file (truncated or corrupt?): {_short(exc)}") from None


def _is_lock_contention(exc: OSError) -> bool:
    """HDF5 reports a lock held by another process as 'unable to lock file, errno = 11' (EAGAIN/EWOULDBLOCK)."""
    text = str(exc)
    return "unable to lock file" in text and any(f"errno = {n}" in text for n in (errno.EAGAIN, errno.EWOULDBLOCK,
                                                                                     errno.EACCES))


# -- validation in a child process ----------------------------------------------------------------

def _identity(path: str) -> tuple[Any, ...] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def validate_in_child(path: str, survey: Survey | None = None) -> Any:
    """Walk the file's metadata in a forked child; CheckpointError if the child crashes or hangs.

    Python-level errors in the child are ignored: the reader meets them again when it opens the
    file, and reports them in its own words. A file already validated (same inode, size and
    times) is not walked again.

    With ``survey`` (a reader's whole listing of a file, as JSON data), the child runs it instead
    of the walk, touching the data of each dataset it lists as the walk would, and sends the
    result back; this returns it, and the calling process never parses the file's metadata
    itself. A file the survey does not list (not the reader's, or malformed) is walked as usual
    and this returns None, as it does for a file validated before or changed meanwhile: the
    caller then opens the file (safely: it is validated) and reads it itself.
    """
    h5journal.recover(path)
    identity = _identity(path)
    if identity is None:
        return None  # missing or unreadable: h5py.File reports it
    if identity in _validated:
        return None
    stall = (f"the HDF5 library made no progress reading this file's metadata for {VALIDATE_IDLE_TIMEOUT:g} s "
             "(a corrupt file can make it loop forever): refused as corrupt")
    collected = isolate.fork_and_collect(path, lambda write_fd: _child_main(path, write_fd, survey),
                                         VALIDATE_IDLE_TIMEOUT, stall, fallback=_DONE)
    if collected is None:
        return None  # cannot fork (process limit): open without the safety net rather than fail
    received, status = collected
    last = bytes(received[-1:])
    if last == _NO_MEMORY:
        raise CheckpointError(path, f"reading this file's metadata needs more than {VALIDATE_MEMORY >> 20} MiB "
                                    "of memory: refused as corrupt or hostile")
    if last != _DONE:  # the child ended without its verdict: killed by a signal
        name = "killed"
        if status is not None and os.WIFSIGNALED(status):
            number = os.WTERMSIG(status)
            if number == signal.SIGALRM:
                raise CheckpointError(path, "the HDF5 library made no progress reading this file's metadata "
                                            "(a corrupt file can make it loop forever): refused as corrupt")
            try:
                name = signal.Signals(number).name
            except ValueError:
                name = f"signal {number}"
        raise CheckpointError(path, f"the HDF5 library crashed ({name}) reading this file: it is corrupt")
    if len(_validated) >= _CACHE_SIZE:
        _validated.clear()
    _validated[identity] = None
    return _survey_result(received, identity, path)


def _survey_result(received: bytes, identity: tuple[Any, ...], path: str) -> Any:
    """The survey the child sent (``R``, its length in 8 bytes, its JSON, before the verdict), if
    it sent one and the file is still the one it surveyed."""
    start = received.find(_SURVEY)
    if start < 0 or _identity(path) != identity:
        return None
    body = start + 1 + 8
    size = int.from_bytes(received[start + 1:body], "little")
    if body + size != len(received) - 1:
        return None
    try:
        return json.loads(received[body:body + size].decode("utf-8"))
    except ValueError:  # cannot happen with our own child; the caller then reads the file itself
        return None


def trust(path: str) -> None:
    """Record that ``path``, as it is now, was written by this process: opening it needs no child walk."""
    identity = _identity(path)
    if identity is not None:
        if len(_validated) >= _CACHE_SIZE:
            _validated.clear()
        _validated[identity] = None


def _child_main(path: str, progress_fd: int, survey: Survey | None = None) -> bytes:
    """The child's whole life: quiet, bounded, then walk the file."""
    parent = os.getppid()
    with contextlib.suppress(Exception):
        import faulthandler
        faulthandler.disable()  # a crash here is expected and reported by the parent
    with contextlib.suppress(Exception):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
    with contextlib.suppress(Exception):
        _limit_memory()
    idle = max(math.ceil(VALIDATE_IDLE_TIMEOUT) * 2, 2)
    count = 0

    def tick() -> None:
        # progress for the parent's watchdog; our own alarm ends us if we hang and the parent is gone
        nonlocal count
        count += 1
        if count % 32:
            return
        if os.getppid() != parent:
            os._exit(0)
        signal.alarm(idle)
        try:
            os.write(progress_fd, b".")
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.EBADF):
                os._exit(0)

    signal.alarm(idle)
    try:
        # a file the survey lists needs no other walk: the survey touches what the reader will
        if survey is None or not _send_survey(path, survey, tick, progress_fd):
            _walk_everything(path, tick)
    except MemoryError:
        return _NO_MEMORY
    except BaseException:
        return _DONE
    return _DONE


def _send_survey(path: str, survey: Survey, tick: Callable[[], None], fd: int) -> bool:
    """Run ``survey`` on the file and send its result to the parent; False if there is none."""
    budget = [VALIDATE_DATA_BUDGET]

    def visit(dataset: h5py.Dataset, plain: bool) -> None:
        tick()
        if not plain:
            with contextlib.suppress(Exception):
                _touch_dataset(dataset.id, budget)  # chunked data, read later in the parent

    try:
        with h5py.File(path, "r") as f:
            document = survey(f, path, visit)
        if document is None:
            return False
        body = json.dumps(document, separators=(",", ":")).encode("utf-8")
    except MemoryError:
        raise
    except Exception:
        return False
    view = memoryview(_SURVEY + len(body).to_bytes(8, "little") + body)
    while view:
        view = view[os.write(fd, view):]
    return True


def _limit_memory() -> None:
    import resource
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[0])
    current = pages * os.sysconf("SC_PAGE_SIZE")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = current + VALIDATE_MEMORY
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft == resource.RLIM_INFINITY or wanted < soft:
        resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))


def _walk_everything(path: str, tick: Any) -> None:
    """Touch every piece of metadata a reader may touch; follow hard links only, each object once.

    Written against h5py's low-level API: it costs a fraction of the high-level walk (which
    matters for files of many thousands of datasets), and touches no tensor data except where
    reading it means parsing more metadata (chunk indexes, filters, variable-length strings).
    """
    budget = [VALIDATE_DATA_BUDGET]
    with h5py.File(path, "r") as f:
        root = h5py.h5o.open(f.id, b"/")
        _touch_attributes(root, h5py.h5o.get_info(root).num_attrs, tick)
        seen: set[Any] = set()
        stack = [root]
        while stack:
            group = stack.pop()
            try:
                names = list(group)
            except Exception:
                continue
            for name in names:
                tick()
                try:
                    if group.links.get_info(name).type != h5py.h5l.TYPE_HARD:
                        continue  # soft and external links are never followed (readers refuse them)
                    obj = h5py.h5o.open(group, name)
                    info = h5py.h5o.get_info(obj)
                except Exception:
                    continue
                if info.addr in seen:
                    continue
                seen.add(info.addr)
                _touch_attributes(obj, info.num_attrs, tick)
                if isinstance(obj, h5py.h5g.GroupID):
                    stack.append(obj)
                elif isinstance(obj, h5py.h5d.DatasetID):
                    with contextlib.suppress(Exception):
                        _touch_dataset(obj, budget)


def _touch_attributes(obj: Any, count: int, tick: Any) -> None:
    if not count:
        return
    try:
        wrapper = h5py.Group(obj) if isinstance(obj, h5py.h5g.GroupID) else h5py.Dataset(obj)
        names = list(wrapper.attrs)
    except Exception:
        return
    for name in names:
        tick()
        with contextlib.suppress(Exception):
            attribute(wrapper, name, "")


def _touch_dataset(dataset: Any, budget: list[int]) -> None:
    shape, dtype = dataset.shape, dataset.dtype
    plist = dataset.get_create_plist()
    layout = plist.get_layout()
    if layout == h5py.h5d.VIRTUAL or plist.get_external_count():
        return  # never read: that would open other files (readers refuse these)
    plist.get_nfilters()
    if dataset.get_storage_size() == 0:
        return
    nbytes = math.prod(shape or ()) * dtype.itemsize
    if layout == h5py.h5d.CHUNKED and nbytes <= budget[0]:
        budget[0] -= nbytes
        h5py.Dataset(dataset)[()]  # the chunk index and the filter pipeline
    elif dtype.kind == "O" and shape == ():
        h5py.Dataset(dataset)[()]  # a variable-length string: the global heap (our /meta documents)
    # contiguous and compact data are plain reads at offsets the library checks against the file


def attribute(obj: Any, name: str, path: str, default: Any = None) -> Any:
    """The value of attribute ``name`` of ``obj`` (``default`` if absent), bounded by :data:`ATTR_LIMIT`."""
    where = _Name(obj)
    try:
        raw = name.encode("utf-8")
        if not h5py.h5a.exists(obj.id, raw):
            return default
        aid = h5py.h5a.open(obj.id, raw)
        shape = aid.shape or ()
        itemsize = aid.dtype.itemsize
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, UnicodeError) as exc:
        raise CheckpointError(path, f"cannot read attribute {name!r} of {where} (corrupt?): {_short(exc)}") from None
    declared = math.prod(shape) * max(itemsize, 1)
    if declared > ATTR_LIMIT:
        raise CheckpointError(path, f"attribute {name!r} of {where} declares {declared} bytes "
                                    f"(more than {ATTR_LIMIT}): refused")
    try:
        return obj.attrs[name]
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(path, f"cannot read attribute {name!r} of {where} (corrupt?): {_short(exc)}") from None


class _Name:
    """An object's path for an error message, looked up only if a message is written (it costs a call)."""

    def __init__(self, obj: Any) -> None:
        self._obj = obj

    def __str__(self) -> str:
        return getattr(self._obj, "name", None) or "/"


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def children(group: h5py.Group, path: str) -> Iterator[tuple[str, h5py.Group | h5py.Dataset]]:
    """Yield (name, object) for each member of ``group``, refusing links out of the file.

    Objects are opened through h5py's low-level API: for a file of hundreds of tensors that is
    half the cost of ``group[name]``, with the same result.
    """
    try:
        names = list(group.keys())
    except (OSError, RuntimeError, KeyError) as exc:
        raise CheckpointError(path, f"cannot list {group.name} (corrupt?): {_short(exc)}") from None
    gid = group.id
    for name in names:
        if not _plain_name(name):
            raise CheckpointError(path, f"{group.name}/{name!r} has control characters or invalid UTF-8 in its "
                                        "name; refused")
        raw = name.encode("utf-8")
        try:
            hard = gid.links.get_info(raw).type == h5py.h5l.TYPE_HARD
            link = None if hard else group.get(name, getlink=True)
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(path, f"cannot read link {group.name}/{name!r}: {_short(exc)}") from None
        if isinstance(link, h5py.ExternalLink):
            raise CheckpointError(path, f"{group.name}/{name!r} is an external link to "
                                        f"{link.filename!r}; links out of the file are refused")
        if isinstance(link, h5py.SoftLink):
            raise CheckpointError(path, f"{group.name}/{name!r} is a soft link to {link.path!r}; "
                                        "soft links are refused")
        if not hard:
            raise CheckpointError(path, f"{group.name}/{name!r} is a user-defined link; refused")
        try:
            yield name, _wrap(h5py.h5o.open(gid, raw))
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(path, f"cannot open {group.name}/{name!r} (corrupt?): {_short(exc)}") from None


def _wrap(oid: Any) -> Any:
    """The high-level object for a low-level identifier, as ``group[name]`` gives it."""
    if isinstance(oid, h5py.h5d.DatasetID):
        return h5py.Dataset(oid)
    if isinstance(oid, h5py.h5g.GroupID):
        return h5py.Group(oid)
    return h5py.Datatype(oid)


def _plain_name(name: str | bytes) -> bool:
    if not isinstance(name, str):  # h5py hands over names that are not UTF-8 as bytes
        return False
    if any(char in _CONTROL for char in name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # h5py hands undecodable bytes over as surrogates
        return False
    return True


def check_dataset(ds: h5py.Dataset, path: str, file_size: int | None = None) -> int | None:
    """Refuse external, virtual and shape-bomb datasets (metadata only; reads no data).

    Returns where the dataset's values lie in the file as plain bytes (contiguous, unfiltered,
    fully written, little-endian, not bool: what :func:`read_dataset` returns, in C order), or
    None when they are not stored so.
    """
    return dataset_layout(ds, path, file_size)[0]


def dataset_layout(ds: h5py.Dataset, path: str,
                   file_size: int | None = None) -> tuple[int | None, tuple[int, ...], np.dtype]:
    """:func:`check_dataset`'s offset, with the dataset's shape and dtype it read on the way (each
    costs HDF5 calls, which add up over hundreds of tensors)."""
    where = _Name(ds)
    try:
        dsid = ds.id
        plist = dsid.get_create_plist()
        layout = plist.get_layout()
        if layout == h5py.h5d.VIRTUAL:
            raise CheckpointError(path, f"{where} is a virtual dataset; virtual datasets are refused")
        if plist.get_external_count():
            raise CheckpointError(path, f"{where} stores its data in external files; refused")
        shape, dtype = dsid.shape, dsid.dtype
        declared = math.prod(shape) * dtype.itemsize
        filtered = plist.get_nfilters() > 0  # a filter may compress (gzip, lzf, szip, plugins)
        stored = dsid.get_storage_size()
        plain = (layout == h5py.h5d.CONTIGUOUS and not filtered and dtype.kind != "b" and dtype.byteorder != ">"
                 and 0 < declared == stored)
        offset = dsid.get_offset() if plain else None
    except CheckpointError:
        raise
    except (OSError, RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(path, f"cannot read dataset {where} (corrupt?): {_short(exc)}") from None
    if file_size is None:
        file_size = os.path.getsize(path)
    limit = max(BOMB_FLOOR, BOMB_RATIO * max(stored, 1))
    if declared > limit or (not filtered and declared > max(file_size, 1) and declared > 0):
        raise CheckpointError(path, f"{where} declares {declared} bytes of data but the file holds "
                                    f"{stored} for it ({file_size} in all): refused as a shape bomb")
    return (None if offset is None else int(offset)), shape, dtype


def dataset_extent(ds: h5py.Dataset, path: str, file_id: tuple[int, int],
                   file_size: int | None = None) -> Extent | None:
    """The bytes of a contiguous, unfiltered, fully written dataset as an Extent; else None."""
    offset, shape, dtype = dataset_layout(ds, path, file_size)
    if offset is None:
        return None
    return Extent(path, offset, math.prod(shape) * dtype.itemsize, dtype, file_id)


def read_dataset(ds: h5py.Dataset, path: str) -> np.ndarray:
    """Read a whole dataset, reporting corruption as a CheckpointError."""
    try:
        return ds[()]
    except (OSError, RuntimeError, ValueError) as exc:
        raise CheckpointError(path, f"cannot read {ds.name} (corrupt?): {_short(exc)}") from None


def read_text(ds: h5py.Dataset, path: str, limit: int = 256 << 20) -> str:
    """Read a scalar string dataset (our JSON documents), bounded in size."""
    if ds.shape != () or ds.dtype.kind not in ("O", "S", "U"):
        raise CheckpointError(path, f"{ds.name} should be a text dataset")
    check_dataset(ds, path)
    value = read_dataset(ds, path)
    if isinstance(value, bytes):
        if len(value) > limit:
            raise CheckpointError(path, f"{ds.name} is larger than {limit} bytes")
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise CheckpointError(path, f"{ds.name} is not UTF-8 text") from None
    return str(value)
