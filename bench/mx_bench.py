"""Benchmarks against real MXNet 1.9.1 (and PyTorch CPU when an interpreter with torch is given).

Each measurement runs in its own process, with the framework imported before the clock starts:
the workers in bench/workers/ print their timings as one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness
from findings import why
from harness import HERE, REPO, Context, json_line, log, measured, median, run, shell_text, warm
from report import Row

WORKERS = HERE / "workers"
MODELS = ("alexnet", "resnet18_v1")
BATCHES = (1, 16)
#: Set on some machines for old OpenBLAS builds; they slow a current numpy (see the README).
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _not_run(row_id: str, name: str, target: tuple[str, float], reason: str) -> Row:
    return Row(row_id, name, target, None, "—", "—", "", note=f"not run: {reason}")


# -- 4: reading a real MXNet .params --------------------------------------------------------------

def alexnet_params(ctx: Context) -> tuple[Path, Path]:
    """alexnet.params (save_parameters) and alexnet-0000.params (export) written by real MXNet 1.9.1."""
    out = ctx.workdir / "mxnet-alexnet"
    files = (out / "alexnet.params", out / "alexnet-0000.params")
    if not all(f.exists() for f in files):
        assert ctx.mxnet_python
        log("exporting alexnet with real MXNet 1.9.1 (tools/mxnet_oracle/oracle.py)")
        run([ctx.mxnet_python, str(REPO / "tools" / "mxnet_oracle" / "oracle.py"), "export", "alexnet", str(out),
             "--classes", "1000", "--size", "224"])
    return files


def mxnet_read(ctx: Context) -> list[Row]:
    if not ctx.mxnet_python:
        return [_not_run("4", "read alexnet .params", (">=", 1.0), "no MXNet interpreter (--mxnet-python)")]
    rows = []
    reps = ctx.reps(7, 3)
    for row_id, path in zip(("4a", "4b"), alexnet_params(ctx), strict=True):
        ours_cmd = [ctx.python, str(WORKERS / "read_ours.py"), str(path)]
        mx_cmd = [ctx.mxnet_python, str(WORKERS / "read_mxnet.py"), str(path)]

        def attempt(path: Path = path, ours_cmd: list[str] = ours_cmd,
                    mx_cmd: list[str] = mx_cmd) -> tuple[float, float, dict, dict]:
            warm(path)
            ours, theirs = [], []
            for _ in range(reps):  # a fresh process each time, interleaved
                a = json_line(run(ours_cmd, capture=True).stdout)
                b = json_line(run(mx_cmd, capture=True).stdout)
                ours.append(a["seconds"])
                theirs.append(b["seconds"])
            return median(ours), median(theirs), a, b

        (ours, theirs, a, b), meter = measured(attempt)
        same = a["tensors"] == b["tensors"] and a["bytes"] == b["bytes"]
        kind = "save_parameters" if row_id == "4a" else "export (arg:/aux:)"
        rows.append(_miss(Row(
            row_id, f"read {path.name} ({path.stat().st_size / 1e6:.0f} MB, {kind}): ours vs `mx.nd.load`",
            (">=", 1.0), theirs / ours,
            f"ours {_ms(ours)} = {a['bytes'] / ours / 1e9:.2f} GB/s; mx.nd.load {_ms(theirs)}"
            + ("" if same else f" (MISMATCH: {a['tensors']}/{a['bytes']} vs {b['tensors']}/{b['bytes']})"),
            meter.text(), f"python bench/workers/read_ours.py {path.name}  vs  "
            f"{ctx.mxnet_python} bench/workers/read_mxnet.py {path.name}",
            target_text="≥ 1x (speed-up over MXNet)")))
    return rows


# -- 5: forward passes, idle and beside one busy core ------------------------------------------

class Worker:
    """A forward-pass worker process (bench/workers/timing.py), answering one turn at a time."""

    def __init__(self, python: str, worker: str, model: str, env: dict[str, str]) -> None:
        self.argv = [python, str(WORKERS / worker), model]
        # a file, not a pipe: a pipe nobody reads could fill up and stall the worker
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self.proc = subprocess.Popen(self.argv, cwd=WORKERS, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors)
        self.runtime = self._answer()["runtime"]

    def _answer(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.errors.seek(0)
            raise harness.CommandFailed(f"{shell_text(self.argv)} exited {self.proc.returncode}: "
                                        f"{self.errors.read().decode('utf-8', 'replace').strip()[-800:]}")
        return json.loads(line)

    def turn(self, batch: int) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{batch}\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.errors.close()


def _turns(workers: dict[str, Worker], batch: int, turns: int) -> dict[str, list[dict]]:
    """``turns`` rounds in which every worker times one pass in turn (the order alternates)."""
    got: dict[str, list[dict]] = {name: [] for name in workers}
    order = list(workers)
    for turn in range(turns):
        for name in order if turn % 2 == 0 else order[::-1]:
            got[name].append(workers[name].turn(batch))
    return got


def _blas_text(runtime: dict) -> str:
    libs = runtime.get("blas") or []
    return ", ".join(f"{lib.get('internal_api')} {lib.get('version')} kernel {lib.get('architecture')} "
                     f"x{lib.get('num_threads')}" for lib in libs) or "threadpoolctl not installed"


#: ours / MXNet targets of issue 20: idle, and beside a busy-loop process pinned to one core.
IDLE_TARGET, BUSY_TARGET = 1.2, 1.5


class BusyCore:
    """A busy-loop process pinned to one core (the last this process may use) while the block runs."""

    def __enter__(self) -> BusyCore:
        cores = sorted(os.sched_getaffinity(0))
        self.core = cores[-1]
        code = f"import os; os.sched_setaffinity(0, {{{self.core}}})\nwhile True: pass"
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # let it start spinning
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()


def forward(ctx: Context) -> list[Row]:
    """5: numpy engine vs MXNet 1.9.1, both with their default threads: idle, then beside one busy core.

    Each framework runs in one long-lived worker per model; in each turn every worker times one
    pass in turn, so both sides of a ratio see the machine within a second of each other (its speed
    drifts by up to 1.5x over minutes here). PyTorch, when given, takes its turns beside them idle.
    """
    if not ctx.mxnet_python:
        return [_not_run("5", "forward passes", ("<=", IDLE_TARGET), "no MXNet interpreter (--mxnet-python)")]
    turns = ctx.reps(9, 3)
    mxnet_python, torch_python = ctx.mxnet_python, ctx.torch_python
    env = dict(os.environ)
    set_vars = {k: env[k] for k in OPENBLAS_VARS if k in env}
    rows: list[Row] = []
    for model in MODELS:
        def attempt(model: str = model) -> dict[str, Any]:
            workers = {"ours": Worker(ctx.python, "forward_ours.py", model, env),
                       "mxnet": Worker(mxnet_python, "forward_mxnet.py", model, env)}
            if torch_python:
                workers["torch"] = Worker(torch_python, "forward_torch.py", model, env)
            if set_vars:
                workers["unset"] = Worker(ctx.python, "forward_ours.py", model,
                                          {k: v for k, v in env.items() if k not in OPENBLAS_VARS})
            try:
                got: dict[str, Any] = {"runtime": {name: w.runtime for name, w in workers.items()}}
                for batch in BATCHES:
                    got[f"idle {batch}"] = _turns(workers, batch, turns)
                pair = {name: workers[name] for name in ("ours", "mxnet")}
                with BusyCore():
                    for batch in BATCHES:
                        got[f"busy {batch}"] = _turns(pair, batch, turns)
            finally:
                for worker in workers.values():
                    worker.close()
            return got

        log(f"forward passes: {model}, idle and beside a busy core, {turns} turns a batch size")
        got, meter = measured(attempt, retries=1, patience=harness.PATIENCE * 3)
        runtime = got["runtime"]
        ctx.facts.setdefault("blas", {})["numpy"] = _blas_text(runtime["ours"])
        ctx.facts["blas"]["mxnet"] = (f"MXNet {runtime['mxnet']['mxnet']}, MKL-DNN "
                                      f"{'on' if runtime['mxnet']['mkldnn'] else 'off'}")
        if "torch" in runtime:
            ctx.facts["blas"]["torch"] = f"PyTorch {runtime['torch']['torch']}, {runtime['torch']['threads']} threads"
        short = "a" if model == "alexnet" else "r"
        command = (f"python bench/workers/forward_ours.py {model}  vs  "
                   f"{ctx.mxnet_python} bench/workers/forward_mxnet.py {model} (turn by turn)")
        for batch in BATCHES:
            idle = got[f"idle {batch}"]
            for busy in (False, True):
                passes = got[f"busy {batch}"] if busy else idle
                o, m = _seconds(passes["ours"]), _seconds(passes["mxnet"])
                ot, mt = median(o), median(m)
                per_turn = sorted(a / b for a, b in zip(o, m, strict=True))
                text = (f"numpy {_ms(ot)}; MXNet {_ms(mt)} (ranges {_range(o)} / {_range(m)}); "
                        f"per turn {per_turn[0]:.2f}-{per_turn[-1]:.2f}x")
                if busy:
                    text += (f"; idle -> busy: numpy {ot / median(_seconds(idle['ours'])):.2f}x, "
                             f"MXNet {mt / median(_seconds(idle['mxnet'])):.2f}x slower")
                elif "torch" in passes:
                    p = median(_seconds(passes["torch"]))
                    text += f"; PyTorch {_ms(p)} (numpy/PyTorch {ot / p:.1f}x)"
                text += f"; {len(o)} turns"
                if not all(answer["same"] for answer in passes["ours"]):
                    text += "; NUMPY OUTPUTS DIFFERED BETWEEN CALLS"
                target = BUSY_TARGET if busy else IDLE_TARGET
                rows.append(_miss(Row(
                    f"5{short}{batch}" + ("b" if busy else ""),
                    f"forward {model}, batch {batch}, " + ("one other core busy" if busy else "idle"),
                    ("<=", target), ot / mt, text, meter.text(),
                    ("(a busy loop pinned to one core)  " if busy else "") + command,
                    target_text=f"≤ {target:g}x MXNet's time")))
            if "unset" in idle:
                u = median(_seconds(idle["unset"]))
                rows.append(Row(
                    f"5{short}{batch}u", f"same, idle, with {' and '.join(OPENBLAS_VARS)} unset",
                    ("<=", IDLE_TARGET), u / median(_seconds(idle["mxnet"])),
                    f"numpy {_ms(u)} ({_blas_text(runtime['unset'])}); MXNet {_ms(median(_seconds(idle['mxnet'])))}",
                    meter.text(), f"env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/workers/forward_ours.py "
                    f"{model}", target_text=f"≤ {IDLE_TARGET:g}x MXNet's time"))
    return rows


def _seconds(answers: list[dict]) -> list[float]:
    return [answer["seconds"] for answer in answers]


def _range(times: list[float]) -> str:
    return f"{min(times) * 1000:.0f}-{max(times) * 1000:.0f} ms"


def _miss(row: Row) -> Row:
    if row.met is False and not row.note:
        row.note = why(row.id)
    return row


BENCHMARKS = {"mxnet-read": mxnet_read, "forward": forward}
