"""Benchmarks against real MXNet 1.9.1 (and PyTorch CPU when an interpreter with torch is given).

Each measurement runs in its own process, with the framework imported before the clock starts:
the workers in bench/workers/ print their timings as one JSON line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import harness
from findings import why
from harness import HERE, REPO, Context, json_line, log, measured, median, run, warm
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

def _forward(python: str, worker: str, model: str, reps: int, budget: float,
             env: dict[str, str] | None = None) -> dict:
    argv = [python, str(WORKERS / worker), model, ",".join(map(str, BATCHES)), str(reps), str(budget)]
    return json_line(run(argv, capture=True, env=env, cwd=WORKERS).stdout)


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

    For each model the four runs are interleaved (ours, MXNet idle; ours, MXNet with the busy loop),
    so both sides of a ratio see the same machine. PyTorch, when given, runs beside them idle.
    """
    if not ctx.mxnet_python:
        return [_not_run("5", "forward passes", ("<=", IDLE_TARGET), "no MXNet interpreter (--mxnet-python)")]
    reps = ctx.reps(9, 3)
    budget = ctx.reps(12, 4)  # seconds of timed passes per model and batch, at most
    env = dict(os.environ)
    set_vars = {k: env[k] for k in OPENBLAS_VARS if k in env}
    rows: list[Row] = []
    for model in MODELS:
        def attempt(model: str = model) -> dict[str, dict | None]:
            got: dict[str, dict | None] = {
                "ours": _forward(ctx.python, "forward_ours.py", model, reps, budget, env),
                "mxnet": _forward(ctx.mxnet_python, "forward_mxnet.py", model, reps, budget, env),
                "torch": (_forward(ctx.torch_python, "forward_torch.py", model, reps, budget, env)
                          if ctx.torch_python else None),
                "unset": (_forward(ctx.python, "forward_ours.py", model, reps, budget,
                                   {k: v for k, v in env.items() if k not in OPENBLAS_VARS}) if set_vars else None),
            }
            with BusyCore():
                got["ours_busy"] = _forward(ctx.python, "forward_ours.py", model, reps, budget, env)
                got["mxnet_busy"] = _forward(ctx.mxnet_python, "forward_mxnet.py", model, reps, budget, env)
            return got

        log(f"forward passes: {model}, idle and beside a busy core")
        got, meter = measured(attempt, retries=1, patience=harness.PATIENCE * 3)
        ours, theirs, torch = got["ours"], got["mxnet"], got["torch"]
        assert ours is not None and theirs is not None
        ctx.facts.setdefault("blas", {})["numpy"] = _blas_text(ours["runtime"])
        ctx.facts["blas"]["mxnet"] = (f"MXNet {theirs['runtime']['mxnet']}, MKL-DNN "
                                      f"{'on' if theirs['runtime']['mkldnn'] else 'off'}")
        if torch:
            ctx.facts["blas"]["torch"] = f"PyTorch {torch['runtime']['torch']}, {torch['runtime']['threads']} threads"
        short = "a" if model == "alexnet" else "r"
        command = (f"python bench/workers/forward_ours.py {model} 1,16 {reps} {budget}  vs  "
                   f"{ctx.mxnet_python} bench/workers/forward_mxnet.py {model} 1,16 {reps} {budget}")
        for batch in BATCHES:
            b = str(batch)
            for busy in (False, True):
                o = (got["ours_busy"] if busy else ours)
                m = (got["mxnet_busy"] if busy else theirs)
                assert o is not None and m is not None
                ot, mt = o["median"][b], m["median"][b]
                text = f"numpy {_ms(ot)}; MXNet {_ms(mt)}"
                if not busy:
                    text += f" (ranges {_range(o['times'][b])} / {_range(m['times'][b])})"
                    if torch:
                        p = torch["median"][b]
                        text += f"; PyTorch {_ms(p)} (numpy/PyTorch {ot / p:.1f}x)"
                else:
                    text += (f" (ranges {_range(o['times'][b])} / {_range(m['times'][b])}); idle -> busy: numpy "
                             f"{ot / ours['median'][b]:.2f}x, MXNet {mt / theirs['median'][b]:.2f}x slower")
                text += f"; {len(o['times'][b])}/{len(m['times'][b])} timed passes"
                if not o["runtime"].get("stable", True):
                    text += "; NUMPY OUTPUTS DIFFERED BETWEEN CALLS"
                target = BUSY_TARGET if busy else IDLE_TARGET
                rows.append(_miss(Row(
                    f"5{short}{batch}" + ("b" if busy else ""),
                    f"forward {model}, batch {batch}, " + ("one other core busy" if busy else "idle"),
                    ("<=", target), ot / mt, text, meter.text(),
                    ("(a busy loop pinned to one core)  " if busy else "") + command,
                    target_text=f"≤ {target:g}x MXNet's time")))
            unset = got["unset"]
            if unset:
                u = unset["median"][b]
                rows.append(Row(
                    f"5{short}{batch}u", f"same, idle, with {' and '.join(OPENBLAS_VARS)} unset",
                    ("<=", IDLE_TARGET), u / theirs["median"][b],
                    f"numpy {_ms(u)} ({_blas_text(unset['runtime'])}); MXNet {_ms(theirs['median'][b])}",
                    meter.text(), f"env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/workers/forward_ours.py "
                    f"{model} 1,16 {reps} {budget}", target_text=f"≤ {IDLE_TARGET:g}x MXNet's time"))
    return rows


def _range(times: list[float]) -> str:
    return f"{min(times) * 1000:.0f}-{max(times) * 1000:.0f} ms"


def _miss(row: Row) -> Row:
    if row.met is False and not row.note:
        row.note = why(row.id)
    return row


BENCHMARKS = {"mxnet-read": mxnet_read, "forward": forward}
