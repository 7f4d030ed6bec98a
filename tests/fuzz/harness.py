"""Run one reader on one input in a forked child, bounded in time and memory, and classify the end.

The reliability tests (``tests/test_reliability_*.py``) and the corpus replay use this, and so do
the optional atheris harnesses beside it. A child that segfaults, hangs or allocates more than
its budget is reported, never allowed to take the test process down with it:

* ``ok``: the reader opened the input and read every tensor;
* ``error``: a documented error (a :class:`ModelSurgeonError`, usually a ``CheckpointError``);
* ``bad``: any other exception (a bug: the user would see "internal error");
* ``memory``: ``MemoryError``: something allocated past the budget (a size taken from the file
  without a check);
* ``crash``: the child died by a signal (the HDF5 C library segfaulting, say);
* ``hang``: the child ran past its time limit.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import signal
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent
FIXTURES = TESTS / "fixtures"
CORPUS = TESTS / "fuzz_corpus"
SAMPLES = TESTS.parent / "sample_models"

#: What a child may allocate beyond what the test process had when it forked.
MEMORY_BUDGET = 768 << 20
#: Seconds a child may run.
TIME_LIMIT = 20


@dataclass(frozen=True)
class Outcome:
    kind: str  # ok, error, bad, memory, crash, hang
    detail: str = ""

    @property
    def acceptable(self) -> bool:
        return self.kind in ("ok", "error")

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}" if self.detail else self.kind


def _limit_memory(budget: int) -> None:
    import resource
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[0])
    limit = pages * os.sysconf("SC_PAGE_SIZE") + budget
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def isolated(function: Callable[..., Any], *args: Any, time_limit: int = TIME_LIMIT,
             memory: int = MEMORY_BUDGET, validate_timeout: float = 2.0) -> Outcome:
    """Run ``function(*args)`` in a forked child and classify how it ended.

    ``validate_timeout`` shortens the HDF5 validator's no-progress timeout in the child, so an
    input that makes the HDF5 library loop is refused in seconds rather than the default 20 s.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        report: dict[str, str] = {"kind": "bad", "detail": "no report"}
        try:
            os.close(read_fd)
            with contextlib.suppress(Exception):
                import faulthandler
                faulthandler.disable()
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.alarm(time_limit)
            _limit_memory(memory)
            from modelsurgeon.core.errors import ModelSurgeonError
            from modelsurgeon.core.formats import h5safe
            h5safe.VALIDATE_IDLE_TIMEOUT = validate_timeout
            try:
                result = function(*args)
                report = {"kind": "ok", "detail": "" if result is None else str(result)[:300]}
            except ModelSurgeonError as exc:
                report = {"kind": "error", "detail": f"{type(exc).__name__}: {exc}"[:500]}
            except MemoryError:
                report = {"kind": "memory", "detail": traceback.format_exc()[-1500:]}
            except RecursionError:
                report = {"kind": "bad", "detail": "RecursionError: " + traceback.format_exc()[-800:]}
            except BaseException as exc:
                report = {"kind": "bad", "detail": f"{type(exc).__name__}: {exc}"[:300] + "\n"
                          + traceback.format_exc()[-1500:]}
            os.write(write_fd, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks = []
    finished = False
    try:
        while True:
            ready, _, _ = select.select([read_fd], [], [], time_limit + 10)
            if not ready:
                break
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:  # every copy of the write end is closed: the child is exiting
                finished = True
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
        if not finished:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if not finished:
        return Outcome("hang", f"still running after {time_limit + 10} s")
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number == signal.SIGALRM:
            return Outcome("hang", f"ran past {time_limit} s")
        return Outcome("crash", signal.Signals(number).name)
    try:
        report = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        return Outcome("bad", "unreadable report")
    return Outcome(report.get("kind", "bad"), report.get("detail", "no report"))


# -- what is run on each input ---------------------------------------------------------------------

def open_and_read(path: str) -> str:
    """What every command does first: open, list, read every tensor; build the documents."""
    from modelsurgeon.core.binding import open_checkpoint
    from modelsurgeon.core.engine import architecture as arch
    from modelsurgeon.core.engine.symbol import Graph
    with open_checkpoint(path) as reader:
        for key in reader.keys():  # noqa: SIM118 - a reader, not a dict
            reader.read(key)
        if reader.architecture is not None:
            arch.build(reader.architecture)
        if reader.graph is not None:
            Graph.from_json(reader.graph).check_ops()
        return f"{reader.format} {len(reader.tensors)} tensors"


def graph_file(path: str) -> str:
    """A ``-symbol.json`` as ``run``/``imports`` use it: read, validate, build a SymbolBlock."""
    from modelsurgeon.core.binding import read_graph_file
    from modelsurgeon.core.engine.symbol_block import SymbolBlock
    graph = read_graph_file(path)
    params = {n.name for n in graph.nodes if n.is_variable and n.name != "data"}
    inputs = [name for name in graph.variables() if name not in params] or graph.variables()[:1]
    block = SymbolBlock(graph, inputs)
    return f"{len(graph.nodes)} nodes, {len(block.collect_params())} parameters"


def architecture_text(text: bytes) -> str:
    """An architecture document as a reader would get it from ``/meta/architecture``."""
    from modelsurgeon.core.engine import architecture as arch
    from modelsurgeon.core.errors import ModelSurgeonError
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise ModelSurgeonError("not JSON") from None
    arch.build(document)
    return "built"


# -- inputs -----------------------------------------------------------------------------------------

def mutations(data: bytes, seed: int, count: int, protect: int = 0) -> Iterable[tuple[str, bytes]]:
    """``count`` reproducible mutants of ``data``: byte sets, runs, bit flips, truncations, splices.

    ``protect`` keeps that many leading bytes intact (so the format is still detected).
    """
    rng = random.Random(seed)
    size = len(data)
    for number in range(count):
        damaged = bytearray(data)
        how = rng.random()
        if how < 0.35:
            edits = [(rng.randrange(protect, size), rng.randrange(256)) for _ in range(rng.choice((1, 1, 2, 4)))]
            for at, value in edits:
                damaged[at] = value
            label = "set " + ",".join(f"{at}={value}" for at, value in edits)
        elif how < 0.55:
            at = rng.randrange(protect, size)
            bit = rng.randrange(8)
            damaged[at] ^= 1 << bit
            label = f"flip {at}:{bit}"
        elif how < 0.7:
            at = rng.randrange(protect, size)
            run = bytes([rng.choice((0x00, 0xFF, 0x7F, 0x80))]) * rng.randint(2, 16)
            damaged[at:at + len(run)] = run
            label = f"run {at}+{len(run)}"
        elif how < 0.85:
            cut = rng.randrange(max(protect, 1), size)
            damaged = damaged[:cut]
            label = f"truncate {cut}"
        else:
            src, dst, length = rng.randrange(size), rng.randrange(protect, size), rng.randint(4, 64)
            piece = data[src:src + length]
            damaged[dst:dst + len(piece)] = piece
            label = f"splice {src}->{dst}+{length}"
        yield f"#{number} {label}", bytes(damaged[:size])


def write(directory: Path, name: str, data: bytes) -> str:
    path = directory / name
    path.write_bytes(data)
    return str(path)
