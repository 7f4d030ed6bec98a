"""Run a risky parse of a foreign file in a forked child, so a crash is an error, not our death.

Some libraries parse untrusted bytes in C, or recurse in C without a guard: PyTorch's
``weights_only`` unpickler hashes a dictionary key that is a tuple nested a million deep and
the interpreter overflows its C stack (SIGSEGV). No Python ``try`` can catch that. So
:func:`run_in_child` forks, runs ``work`` in the child with bounded memory and time, and
reports back:

* ``work`` returned: its result (``None`` or a short text) is returned to the caller;
* ``work`` raised: the exception's text comes back as ``CheckpointError(path, text)``;
* the child died by a signal, ran out of memory, or outlived ``timeout``: a CheckpointError
  naming what happened and the library that did it.

The child never prints (its standard streams go to ``/dev/null``), ignores Ctrl-C (the
parent's to handle) and ends itself if the parent disappears. The caller then repeats the
parse itself, knowing it does not crash. Forking a process that has imported a large library
costs a few milliseconds (pages are shared copy-on-write). Where ``fork`` does not exist,
:func:`run_in_child` runs nothing and returns None.

>>> run_in_child("x", lambda: "fine", library="nothing") if AVAILABLE else "fine"
'fine'
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from collections.abc import Callable

from ..errors import CheckpointError

AVAILABLE = hasattr(os, "fork")
#: Memory the child may allocate beyond what the parent had when it forked (plus what it maps).
CHILD_MEMORY = 2 << 30
_OK, _ERROR, _NO_MEMORY = b"K", b"E", b"M"
#: The longest message a child sends back.
_MESSAGE_LIMIT = 2000


def run_in_child(path: str, work: Callable[[], str | None], *, library: str, timeout: float = 120.0,
                 extra_memory: int = 0) -> str | None:
    """Run ``work()`` in a forked child; return its result or raise CheckpointError (see module docstring).

    ``library`` names what parses the file, for the messages ("PyTorch"). ``extra_memory`` is
    added to the child's memory limit (a file it maps, for instance).
    """
    if not AVAILABLE:
        return None
    stall = f"{library} made no progress reading this file for {timeout:g} s: refused as corrupt or hostile"
    collected = fork_and_collect(path, lambda write_fd: _child(work, extra_memory), timeout, stall,
                                 fallback=_ERROR + b"the child ended unexpectedly")
    if collected is None:
        return None  # cannot fork (process limit): the caller parses without the safety net
    received, status = collected
    kind, body = bytes(received[:1]), bytes(received[1:]).decode("utf-8", "replace")
    if kind == _OK:
        return body or None
    if kind == _ERROR:
        raise CheckpointError(path, body)
    if kind == _NO_MEMORY:
        raise CheckpointError(path, f"{library} needs more than {CHILD_MEMORY >> 20} MiB of memory to read this "
                                    "file: refused as corrupt or hostile")
    name = "it was killed"
    if status is not None and os.WIFSIGNALED(status):
        try:
            name = signal.Signals(os.WTERMSIG(status)).name
        except ValueError:
            name = f"signal {os.WTERMSIG(status)}"
    raise CheckpointError(path, f"{library} crashed ({name}) reading this file: it is corrupt or hostile "
                                "(read in a separate process, so nothing else was harmed)")


def fork_and_collect(path: str, child: Callable[[int], bytes], idle_timeout: float, stall: str, *,
                     fallback: bytes = b"") -> tuple[bytes, int | None] | None:
    """Fork; the child runs ``child(write_fd)`` (it may write to the pipe as it goes) and writes the
    bytes it returns (``fallback`` if it raises), then exits. The parent reads everything the child
    writes, and returns (those bytes, the child's wait status), or None when it cannot fork. A child
    silent for ``idle_timeout`` seconds is killed and ``stall`` raised as a CheckpointError; a child
    left behind by any error is killed and reaped.
    """
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return None
    if pid == 0:  # the child: never returns
        reply = fallback
        try:
            os.close(read_fd)
            reply = child(write_fd)
        finally:
            with contextlib.suppress(OSError):
                view = memoryview(reply)
                while view:
                    view = view[os.write(write_fd, view):]
            os._exit(0)
    os.close(write_fd)
    received, status = bytearray(), None
    try:
        poller = select.poll()  # not select(): it fails for descriptors past 1024
        poller.register(read_fd, select.POLLIN | select.POLLHUP)
        while True:
            if not poller.poll(int(idle_timeout * 1000)):
                raise CheckpointError(path, stall)
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break  # end of file: the child has exited
            received += chunk
        with contextlib.suppress(ChildProcessError):  # SIGCHLD ignored: the kernel reaped it already
            _, status = os.waitpid(pid, 0)
        pid = 0
    finally:
        os.close(read_fd)
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)
    return bytes(received), status


def _child(work: Callable[[], str | None], extra_memory: int) -> bytes:
    parent = os.getppid()
    with contextlib.suppress(Exception):
        import faulthandler
        faulthandler.disable()  # a crash here is expected and reported by the parent
    with contextlib.suppress(Exception):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
    with contextlib.suppress(Exception):
        _limit_memory(extra_memory)
    if os.getppid() != parent:
        os._exit(0)
    try:
        result = work()
    except MemoryError:
        return _NO_MEMORY
    except CheckpointError as exc:
        return _ERROR + exc.problem.encode("utf-8", "replace")[:_MESSAGE_LIMIT]
    except BaseException as exc:
        text = (str(exc).splitlines() or [""])[0][:300] or type(exc).__name__
        return _ERROR + f"cannot read it: {type(exc).__name__}: {text}".encode("utf-8", "replace")
    return _OK + (result or "").encode("utf-8", "replace")[:_MESSAGE_LIMIT]


def _limit_memory(extra: int) -> None:
    import resource
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[0])
    current = pages * os.sysconf("SC_PAGE_SIZE")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = current + CHILD_MEMORY + max(extra, 0)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft == resource.RLIM_INFINITY or wanted < soft:
        resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
