"""Threads for the kernels: independent tasks on the free cores, each BLAS call single-threaded.

OpenBLAS parallelises every matrix product by itself, and its threads synchronise inside each
call; when another process holds one of the cores, each of those waits costs a scheduler slice
and a forward pass slows down several times. The kernels here instead cut a layer into tasks that
share nothing (images, bands of output rows, groups of filters), run them on a small pool of
threads (numpy releases the GIL in copies and products) with BLAS limited to one thread while
they run, and hand the tasks out one at a time: a thread that owns a free core simply takes more
of them, so a busy core slows the pass by its share, not by a synchronisation at every product.
Two things keep that true beside another process's busy loop: a helper thread stays off the core
its caller runs on (:func:`_avoid`; otherwise the scheduler wakes it beside its caller and the two
share one core), and a task whose helper has lost its core mid-task is computed again by the caller
rather than waited for (:class:`_Batch`).

How a layer is cut depends on its shapes only, never on the number of threads or on timing, so
results are bit-identical from one call to the next and on any machine with the same BLAS. A layer
is cut into as many tasks as its work pays for (:func:`pieces`): handing tasks to other threads
costs tens of microseconds, more than a small layer's whole product, so a small layer is one task
and runs in the calling thread. A forward pass holds :func:`forward_pass` around all its layers, so
BLAS is switched to one thread once per pass rather than once per layer, and every product runs
on one BLAS thread whether its task ran in the calling thread or in the pool.

``MODELSURGEON_THREADS`` sets the number of threads (1: everything in the calling thread, BLAS
left as it is; a pass holding :func:`forward_pass` reads it once); by default it is the number of
cores this process may run on (``os.sched_getaffinity``). Without ``threadpoolctl`` (which finds
the BLAS numpy loaded) the kernels run in the calling thread.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, TypeVar

import numpy as np

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"pid": None, "pool": None, "size": 0, "blas": None, "depth": 0, "saved": [],
                         "helpers": []}
_LOCAL = threading.local()


def thread_count() -> int:
    """Threads a kernel may use: ``MODELSURGEON_THREADS`` or the cores this process may run on."""
    given = os.environ.get("MODELSURGEON_THREADS", "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    if _STATE.get("cores_pid") != os.getpid():  # asked once per process: every layer asks
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cores = os.cpu_count() or 1
        _STATE.update(cores=max(1, cores), cores_pid=os.getpid())
    return _STATE["cores"]


def _blas() -> list[Any] | None:
    """threadpoolctl's controllers of the BLAS libraries loaded in this process ([] if it is missing)."""
    if _STATE["blas"] is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _STATE["blas"] = []
        else:
            _STATE["blas"] = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
    return _STATE["blas"]


def _pool(size: int) -> ThreadPoolExecutor:
    if _STATE["pid"] != os.getpid() or _STATE["size"] != size:  # a forked child needs its own threads
        _STATE.update(pid=os.getpid(), size=size,
                      pool=ThreadPoolExecutor(size, thread_name_prefix="modelsurgeon-kernel"))
    return _STATE["pool"]


#: Multiply-adds a task must have at least before a layer is cut into several: handing a task to
#: another thread costs ~50 microseconds here, what one core needs for ~2M multiply-adds.
MIN_TASK_WORK = 2 << 20


def pieces(work: int, most: int) -> int:
    """How many tasks ``work`` multiply-adds are worth: at least 1, at most ``most`` (shapes only)."""
    return max(1, min(most, work // MIN_TASK_WORK))


class _SingleBlas:
    """BLAS limited to one thread while any parallel region runs (nested and concurrent callers count).

    Leaving the outermost region waits for helpers still busy with tasks whose results were already
    taken from another thread (:class:`_Batch`), so no product runs past the region's end."""

    def __enter__(self) -> None:
        with _LOCK:
            if _STATE["depth"] == 0:
                _STATE["threads"] = thread_count()  # read once per region: every layer asks
                libs = _blas() or []
                _STATE["saved"] = [(lib, lib.get_num_threads()) for lib in libs]
                for lib, threads in _STATE["saved"]:
                    if threads != 1:
                        lib.set_num_threads(1)
            _STATE["depth"] += 1

    def __exit__(self, *exc: object) -> None:
        with _LOCK:
            late = _STATE["helpers"] if _STATE["depth"] == 1 else []
            _STATE["helpers"] = [] if _STATE["depth"] == 1 else _STATE["helpers"]
        for helper in late:
            helper.exception()  # waits; a helper's own errors were handed to its caller already
        with _LOCK:
            _STATE["depth"] -= 1
            if _STATE["depth"] == 0:
                for lib, threads in _STATE["saved"]:
                    if threads != 1:
                        lib.set_num_threads(threads)
                _STATE["saved"] = []


def single_blas() -> _SingleBlas | contextlib.nullcontext[None]:
    """A context in which BLAS runs on one thread (nothing changes when the kernels use one thread)."""
    if thread_count() <= 1 or not _blas():
        return contextlib.nullcontext()
    return _SingleBlas()


def forward_pass() -> _SingleBlas | contextlib.nullcontext[None]:
    """The region one forward pass holds around all its layers (nothing when one is already held)."""
    return contextlib.nullcontext() if _STATE["depth"] else single_blas()


class Task(NamedTuple):
    """One independent part of a kernel's output.

    ``compute(dest)`` writes the part's final values into ``dest``: ``target`` itself, or a private
    array of the same shape and dtype whose values are then copied into ``target``. Either way the
    values are the same bits, so a part may be computed twice and written once."""

    target: np.ndarray
    compute: Callable[[np.ndarray], None]

    def write(self) -> None:
        self.compute(self.target)


def _cpu() -> int | None:
    """The core the calling thread runs on now (None where the C library cannot tell)."""
    getcpu = _STATE.get("getcpu")
    if getcpu is None:
        try:
            import ctypes
            getcpu = ctypes.CDLL(None).sched_getcpu
            getcpu.restype = ctypes.c_int
            getcpu.argtypes = []
        except (OSError, AttributeError):  # not Linux
            getcpu = lambda: -1
        _STATE["getcpu"] = getcpu
    cpu = getcpu()
    return cpu if cpu >= 0 else None


def _avoid(cpu: int) -> None:
    """Keep this helper thread off ``cpu`` (the caller's core), on the others this process may use.

    Left to itself, the scheduler wakes a helper on its waker's core whenever the other core is busy
    with another process, and the two threads then share one core: a pass beside a busy core ran no
    faster with two threads than with one. On the other core the helper gets its share of it."""
    if not hasattr(os, "sched_setaffinity") or _STATE.get("pinning") is False:
        return
    if _STATE.get("allowed_pid") != os.getpid():
        _STATE.update(allowed=frozenset(os.sched_getaffinity(0)), allowed_pid=os.getpid())
    mask = _STATE["allowed"] - {cpu} or _STATE["allowed"]
    if getattr(_LOCAL, "mask", None) != mask:
        try:
            os.sched_setaffinity(0, mask)
        except OSError:  # the cores allowed have changed under us: leave placement to the scheduler
            _STATE["pinning"] = False
            return
        _LOCAL.mask = mask


def run(tasks: Sequence[Task]) -> None:
    """Run independent ``tasks`` (their targets are disjoint), write each exactly once, and wait for all.

    The calling thread works too; tasks are handed out one at a time in order, so the threads that
    get the most CPU do the most (:class:`_Batch`). A single task runs in the calling thread, with
    BLAS on one thread as in the pool. The first exception raised by a task is raised here.
    """
    if len(tasks) == 1 and _STATE["depth"]:  # a small layer inside a pass: BLAS is on one thread already
        tasks[0].write()
        return
    cores = _STATE["threads"] if _STATE["depth"] else thread_count()
    threads = min(cores, len(tasks))
    if cores <= 1 or not _blas() or getattr(_LOCAL, "inside", False):
        for task in tasks:
            task.write()
        return
    with _SingleBlas():
        if threads <= 1:
            for task in tasks:
                task.write()
        else:
            _Batch(tasks).run(threads)


#: A helper's task counts as stalled once it has run this many times as long as the batch's finished
#: tasks took on average (and at least :data:`STALL_FLOOR` seconds): its thread has lost its core.
STALL_FACTOR = 2.0
STALL_FLOOR = 100e-6

_PENDING, _TAKEN, _CLAIMED, _DONE = range(4)


class _Batch:
    """One :func:`run` over the pool: the calling thread writes its tasks' targets directly; helpers
    compute theirs privately and copy the values in.

    When another process takes a core, a helper on it is descheduled for a scheduler slice (a few
    ms, longer than a whole layer here) in the middle of a task, and the caller would wait for it.
    Instead, once the caller has no task left, a helper's task that has run for
    :data:`STALL_FACTOR` times the batch's typical task is computed again by the caller; whichever
    thread claims a task first copies its values into the target, the other drops its own. A helper
    that loses keeps its thread busy until it finishes; the outermost region waits for it at its
    end. The values are the same bits whoever writes them (the same products on the same operands).
    """

    def __init__(self, tasks: Sequence[Task]) -> None:
        self.tasks = tasks
        self.counter = itertools.count()
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.state = [_PENDING] * len(tasks)
        self.started: list[float | None] = [None] * len(tasks)
        self.spent: list[float] = []
        self.failed: list[BaseException] = []

    def run(self, threads: int) -> None:
        pool = _pool(threads - 1)
        here = _cpu()
        helpers = [pool.submit(self._help, here) for _ in range(threads - 1)]
        with _LOCK:
            _STATE["helpers"] = [h for h in _STATE["helpers"] if not h.done()] + helpers
        _LOCAL.inside = True  # a kernel called from a task runs its own tasks in place
        try:
            while not self.failed:
                index = next(self.counter)  # atomic under the GIL
                if index >= len(self.tasks):
                    break
                self.state[index] = _CLAIMED
                start = time.perf_counter()
                self.tasks[index].write()
                self.spent.append(time.perf_counter() - start)
                self.state[index] = _DONE
            for index in range(len(self.tasks)):
                if not self.failed:
                    self._finish(index)
        finally:
            _LOCAL.inside = False
        if self.failed:
            raise self.failed[0]

    def _help(self, away: int | None) -> None:
        if away is not None:
            _avoid(away)
        _LOCAL.inside = True
        try:
            # numpy's warnings off, as in a graph's pass: a task whose values another thread wrote
            # first may read buffers the caller has moved on to, and its values are dropped
            with np.errstate(all="ignore"):
                while not self.failed:
                    index = next(self.counter)
                    if index >= len(self.tasks):
                        return
                    start = self.started[index] = time.perf_counter()
                    self.state[index] = _TAKEN
                    try:
                        values = _private(self.tasks[index])
                    except BaseException as exc:  # handed to the caller
                        with self.lock:
                            self.failed.append(exc)
                            self.changed.notify_all()
                        return
                    self.spent.append(time.perf_counter() - start)
                    self._commit(index, values)
        finally:
            _LOCAL.inside = False

    def _commit(self, index: int, values: np.ndarray) -> bool:
        """Copy ``values`` into the task's target unless another thread claimed it first."""
        with self.lock:
            if self.state[index] >= _CLAIMED:
                return False
            self.state[index] = _CLAIMED
        np.copyto(self.tasks[index].target, values)
        with self.lock:
            self.state[index] = _DONE
            self.changed.notify_all()
        return True

    def _finish(self, index: int) -> None:
        """Wait for a helper's task, or compute it here once it has stalled."""
        with self.lock:
            while self.state[index] != _DONE and not self.failed:
                if self.state[index] == _CLAIMED:  # its values are being copied in
                    self.changed.wait()
                    continue
                now = time.perf_counter()
                started = self.started[index]
                if started is None:  # taken, not yet marked: count from now
                    started = self.started[index] = now
                typical = sum(self.spent) / len(self.spent) if self.spent else STALL_FLOOR
                left = started + max(STALL_FACTOR * typical, STALL_FLOOR) - now
                if left <= 0:
                    break
                self.changed.wait(left)
            else:
                return
        values = _private(self.tasks[index])
        if not self._commit(index, values):
            with self.lock:
                while self.state[index] != _DONE and not self.failed:
                    self.changed.wait()


def _private(task: Task) -> np.ndarray:
    """The task's values computed into this thread's own buffer."""
    target = task.target
    values = scratch("private", target.size, target.dtype).reshape(target.shape)
    task.compute(values)
    return values


def scratch(name: str, size: int, dtype: np.dtype) -> np.ndarray:
    """A reusable 1-D buffer of this thread (fresh large allocations would fault in their pages every call)."""
    buffers: dict[tuple[str, str], np.ndarray] = _LOCAL.__dict__.setdefault("buffers", {})
    key = (name, np.dtype(dtype).str)
    buffer = buffers.get(key)
    if buffer is None or buffer.size < size:
        buffer = np.empty(size, dtype)
        buffers[key] = buffer
    return buffer[:size]


#: Bytes of :func:`kept` objects one thread holds before it lets them all go.
KEPT_BYTES = 64 << 20

T = TypeVar("T")


def kept(key: tuple[Any, ...], make: Callable[[], tuple[T, int]]) -> T:
    """An object of this thread for ``key``: made once by ``make`` (which returns it and the bytes it
    holds) and returned as it was left on every later call with the same key.

    Kernels keep buffers of one geometry this way (a convolution's zero-bordered input, a depthwise
    layer's zero-bordered phase images and sums, with the views into them): zeroing and slicing them
    afresh would cost passes and Python calls on every call. When a thread would hold more than
    :data:`KEPT_BYTES`, it drops everything it kept first."""
    store: dict[tuple[Any, ...], tuple[Any, int]] = _LOCAL.__dict__.setdefault("kept", {})
    entry = store.get(key)
    if entry is None:
        entry = make()
        if sum(size for _, size in store.values()) + entry[1] > KEPT_BYTES:
            store.clear()
        store[key] = entry
    return entry[0]


def bordered(key: tuple[Any, ...], shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A buffer of this thread for ``key`` that starts as zeros and keeps what its caller leaves in it.

    Convolutions copy their input into the interior of a zero-bordered buffer; one that writes the
    same interior on every call (``key`` names that geometry) finds the border still zero and skips
    zeroing it (five numpy calls a layer)."""
    def zeros() -> tuple[np.ndarray, int]:
        buffer = np.zeros(shape, dtype)
        return buffer, buffer.nbytes
    return kept(("bordered", key, shape, np.dtype(dtype).str), zeros)


#: Fewest output columns of one task of :func:`matmul`.
MATMUL_MIN_COLUMNS = 256


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D operands, its output columns cut into tasks (the cut depends on the shapes only).

    Dense layers use it so that no BLAS call of a forward pass runs on BLAS's own threads, whose
    spinning after each call would take a core from the next layer's tasks.
    """
    if a.ndim != 2 or b.ndim != 2:
        return a @ b
    columns = b.shape[1]
    chunks = min(pieces(a.shape[0] * a.shape[1] * columns, 8), max(1, columns // MATMUL_MIN_COLUMNS))
    if chunks == 1 and _STATE["depth"]:  # inside a pass: BLAS is on one thread already
        return a @ b
    if thread_count() == 1:
        return a @ b
    if chunks == 1:
        with single_blas():
            return a @ b
    out = np.empty((a.shape[0], columns), np.result_type(a, b))
    step = -(-columns // chunks)

    def task(c0: int) -> Task:
        def product(dest: np.ndarray) -> None:
            np.matmul(a, b[:, c0:c0 + step], out=dest)
        return Task(out[:, c0:c0 + step], product)

    run([task(c0) for c0 in range(0, columns, step)])
    return out
