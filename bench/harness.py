"""Measurement helpers shared by the benchmarks: timed subprocesses, load checks, machine facts.

Every command runs in a fresh subprocess; its wall time is taken around ``Popen`` .. ``wait4`` and
its peak resident memory comes from that one child's ``rusage`` (``ru_maxrss``), so nothing the
harness itself holds is counted. While a benchmark runs, :class:`LoadMeter` works out how much CPU
*other* processes used (all CPU time from ``/proc/stat`` minus our own children's), because other
jobs on this 2-core machine can slow any single figure; ratios against a baseline measured in the
same run, interleaved, cancel most of that out, and the table records the load beside each ratio.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

MiB = 1 << 20
GiB = 1 << 30
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
#: Above this many cores' worth of CPU used by other processes a measurement is repeated.
BUSY_LIMIT = 0.5
#: How long to wait for a quiet machine before each attempt (bench/run.py --patience sets it).
PATIENCE = 60.0
#: All the waiting one run may do (bench/run.py --wait-budget); once spent, measurements go ahead.
WAIT_BUDGET = 600.0


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- one timed command --------------------------------------------------------------------------

@dataclasses.dataclass
class Run:
    argv: list[str]
    seconds: float
    max_rss: int  # bytes
    returncode: int
    stderr: str
    stdout: str = ""


class CommandFailed(RuntimeError):
    pass


def run(argv: Sequence[str], *, cwd: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None,
        capture: bool = False, check: bool = True) -> Run:
    """Run ``argv`` (no shell unless argv says so) and time it; stdout goes to /dev/null unless ``capture``."""
    argv = [os.fspath(a) for a in argv]
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=out if capture else subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen from waiting again
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
        out.seek(0)
        stdout = out.read().decode("utf-8", "replace") if capture else ""
    result = Run(argv, seconds, usage.ru_maxrss * 1024, proc.returncode, stderr, stdout)
    if check and result.returncode != 0:
        raise CommandFailed(f"{shell_text(argv)} exited {result.returncode}: {stderr.strip()[-800:]}")
    return result


def shell_text(argv: Sequence[str]) -> str:
    import shlex
    if len(argv) == 3 and argv[:2] == ["sh", "-c"]:
        return argv[2]
    argv = list(argv)
    if argv and os.path.basename(argv[0]) == "modelsurgeon":  # the console script, as a user types it
        argv[0] = "modelsurgeon"
    return " ".join(shlex.quote(a) for a in argv)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def sync_disk() -> None:
    """Flush every dirty page (not timed), so one timed write does not pay for the one before."""
    os.sync()


def warm(path: str | os.PathLike[str]) -> None:
    """Read a file once so it sits in the page cache (every streaming figure is warm-cache)."""
    with open(path, "rb", buffering=0) as handle:
        buf = bytearray(16 * MiB)
        while handle.readinto(buf):
            pass


def remove(*paths: str | os.PathLike[str]) -> None:
    for path in paths:
        p = Path(path)
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()


# -- load -------------------------------------------------------------------------------------

def _cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields) - idle) / hz, sum(fields) / hz


def _own_cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class LoadMeter:
    """CPU that other processes used while a block ran, in cores (0 = the machine was ours)."""

    def __enter__(self) -> LoadMeter:
        self.loadavg = os.getloadavg()[0]
        self._busy, _ = _cpu_seconds()
        self._own = _own_cpu()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        busy, _ = _cpu_seconds()
        wall = max(time.perf_counter() - self._wall, 1e-6)
        self.other_cores = max(0.0, ((busy - self._busy) - (_own_cpu() - self._own)) / wall)

    def text(self) -> str:
        return f"{self.other_cores:.2f} (avg1 {self.loadavg:.1f})"


def other_load(seconds: float = 1.0) -> float:
    """Cores' worth of CPU other processes use right now (we sleep while sampling)."""
    with LoadMeter() as meter:
        time.sleep(seconds)
    return meter.other_cores


def wait_for_quiet(limit: float = BUSY_LIMIT, patience: float | None = None) -> float:
    """Wait (up to ``patience`` seconds) until other processes use under ``limit`` cores; returns the last reading."""
    global WAIT_BUDGET
    patience = min(PATIENCE if patience is None else patience, WAIT_BUDGET)
    began = time.monotonic()
    busy = other_load()
    announced = False
    while busy > limit and time.monotonic() < began + patience:
        if not announced:
            log(f"other processes use {busy:.2f} cores; waiting up to {patience:.0f}s for a quieter machine")
            announced = True
        time.sleep(4)
        busy = other_load()
    WAIT_BUDGET = max(0.0, WAIT_BUDGET - (time.monotonic() - began))
    return busy


def measured(attempt: Callable[[], Any], *, retries: int = 1, limit: float = BUSY_LIMIT,
             patience: float | None = None) -> tuple[Any, LoadMeter]:
    """Run ``attempt`` under a LoadMeter; repeat (up to ``retries`` more times) while others loaded the machine.

    Returns the result of the least disturbed attempt and its meter.
    """
    best: tuple[Any, LoadMeter] | None = None
    for n in range(retries + 1):
        wait_for_quiet(limit, patience)
        with LoadMeter() as meter:
            result = attempt()
        if best is None or meter.other_cores < best[1].other_cores:
            best = (result, meter)
        if meter.other_cores <= limit:
            break
        if n < retries:
            log(f"other processes used {meter.other_cores:.2f} cores during the measurement; repeating it")
    assert best is not None
    return best


# -- the machine --------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "kernel": platform.release()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        info["cpu"] = fields.get("Model name", "?").strip()
        flags = fields.get("Flags", "")
        info["simd"] = " ".join(f for f in ("avx2", "avx512f", "amx_tile") if f in flags.split())
    except (OSError, subprocess.CalledProcessError):
        info["cpu"] = platform.processor() or "?"
    info["cores"] = os.cpu_count()
    with open("/proc/meminfo") as handle:
        total_kb = int(handle.readline().split()[1])
    info["ram_gib"] = round(total_kb / (1 << 20), 1)
    return info


def disk(path: str | os.PathLike[str]) -> str:
    """'ext4 on vda (ssd/virtual, rotational=0)' or what can be found out."""
    try:
        out = subprocess.run(["df", "--output=source,fstype", os.fspath(path)], capture_output=True, text=True,
                             check=True).stdout.splitlines()[-1].split()
        source, fstype = out[0], out[1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "?"
    name = os.path.basename(source)
    kind = ""
    rotational = Path(f"/sys/block/{name}/queue/rotational")
    if rotational.exists():
        kind = "reports rotational=1" if rotational.read_text().strip() == "1" else "non-rotational"
    if name.startswith("vd"):
        kind = f"virtio virtual disk ({kind}; the host's storage is not visible)"
    return f"{fstype} on {source}, {kind}".rstrip(", ")


def blas_env() -> dict[str, str]:
    return {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                                       "OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ}


def free_bytes(path: str | os.PathLike[str]) -> int:
    return shutil.disk_usage(path).free


def json_line(text: str) -> Any:
    """The last line of a worker's stdout that is a JSON document."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON in worker output: {text[-400:]!r}")


# -- what every benchmark gets ------------------------------------------------------------------

@dataclasses.dataclass
class Context:
    workdir: Path
    quick: bool
    cli: str  # the modelsurgeon console script
    python: str  # the interpreter modelsurgeon is installed in
    main_bytes: int  # the "1 GiB" file (256 MiB with --quick)
    large_bytes: int  # the "4 GiB" file (0: skipped)
    small_bytes: int = MiB
    mxnet_python: str | None = None
    torch_python: str | None = None
    _files: dict[str, Path] = dataclasses.field(default_factory=dict)
    facts: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # by file name, from synth.py

    def reps(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def synthetic(self, size: int) -> Path:
        """The synthetic checkpoint of ``size`` data bytes, made once per run in a fresh process."""
        name = f"synth-{size // MiB}MiB.h5"
        if name not in self._files:
            path = self.workdir / name
            need = size * 1.1 + 64 * MiB
            if free_bytes(self.workdir) < need:
                raise RuntimeError(f"not enough free disk in {self.workdir} for a {size / GiB:.2f} GiB file")
            log(f"making {path.name} ({size / MiB:.0f} MiB, 200 float32 tensors)")
            made = run([self.python, str(HERE / "synth.py"), str(path), "--mib", str(size / MiB)], capture=True)
            facts = json_line(made.stdout)
            facts["path"] = path
            facts["seconds"] = made.seconds
            facts["max_rss"] = made.max_rss
            self._files[name] = path
            self.facts[name] = facts
        return self._files[name]

    def fact(self, path: Path) -> dict[str, Any]:
        return self.facts[path.name]

    def drop(self, path: Path) -> None:
        """Delete a synthetic file once no benchmark needs it any more."""
        remove(path)
        self._files.pop(path.name, None)
