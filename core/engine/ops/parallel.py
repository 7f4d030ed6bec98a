"""Threads for the kernels: independent tasks on the free cores, each BLAS call single-threaded.

OpenBLAS parallelises every matrix product by itself, and its threads synchronise inside each
call; when another process holds one of the cores, each of those waits costs a scheduler slice
and a forward pass slows down several times. The kernels here instead cut a layer into tasks that
share nothing (images, bands of output rows, groups of filters), run them on a small pool of
threads (numpy releases the GIL in copies and products) with BLAS limited to one thread while
they run, and hand the tasks out one at a time: a thread that owns a free core simply takes more
of them, so a busy core slows the pass by its share, not by a synchronisation at every product.

How a layer is cut depends on its shapes only, never on the number of threads or on timing, so
results are bit-identical from one call to the next and on any machine with the same BLAS. A layer
is cut into as many tasks as its work pays for (:func:`pieces`): handing tasks to other threads
costs tens of microseconds, more than a small layer's whole product, so a small layer is one task
and runs in the calling thread. A forward pass holds :func:`single_blas` around all its layers, so
BLAS is switched to one thread once per pass rather than once per layer, and every product runs
on one BLAS thread whether its task ran in the calling thread or in the pool.

``MODELSURGEON_THREADS`` sets the number of threads (1: everything in the calling thread, BLAS
left as it is; a pass holding :func:`single_blas` reads it once); by default it is the number of
cores this process may run on (``os.sched_getaffinity``). Without ``threadpoolctl`` (which finds
the BLAS numpy loaded) the kernels run in the calling thread.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"pid": None, "pool": None, "size": 0, "blas": None, "depth": 0, "saved": []}
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
    """BLAS limited to one thread while any parallel region runs (nested and concurrent callers count)."""

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


def run(tasks: Sequence[Callable[[], None]]) -> None:
    """Run independent ``tasks`` (they write disjoint outputs), each exactly once, and wait for all.

    The calling thread works too; tasks are handed out one at a time in order, so the threads that
    get the most CPU do the most. A single task runs in the calling thread, with BLAS on one thread
    as in the pool. The first exception raised by a task is raised here.
    """
    if len(tasks) == 1 and _STATE["depth"]:  # a small layer inside a pass: BLAS is on one thread already
        tasks[0]()
        return
    cores = _STATE["threads"] if _STATE["depth"] else thread_count()
    threads = min(cores, len(tasks))
    if cores <= 1 or not _blas() or getattr(_LOCAL, "inside", False):
        for task in tasks:
            task()
        return
    if threads <= 1:
        with _SingleBlas():
            for task in tasks:
                task()
        return
    counter = itertools.count()
    failed: list[BaseException] = []

    def drain() -> None:
        _LOCAL.inside = True  # a kernel called from a task runs its own tasks in place
        try:
            while not failed:
                index = next(counter)  # atomic under the GIL
                if index >= len(tasks):
                    return
                try:
                    tasks[index]()
                except BaseException as exc:  # handed to the caller below
                    failed.append(exc)
        finally:
            _LOCAL.inside = False

    with _SingleBlas():
        pool = _pool(threads - 1)
        helpers: list[Future[None]] = [pool.submit(drain) for _ in range(threads - 1)]
        drain()
        for helper in helpers:
            helper.result()
    if failed:
        raise failed[0]


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

    def task(c0: int) -> Callable[[], None]:
        def product() -> None:
            np.matmul(a, b[:, c0:c0 + step], out=out[:, c0:c0 + step])
        return product

    run([task(c0) for c0 in range(0, columns, step)])
    return out
