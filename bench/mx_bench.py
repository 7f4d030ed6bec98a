"""Benchmarks against real MXNet 1.9.1 (and PyTorch CPU when an interpreter with torch is given).

Each measurement runs in its own process, with the framework imported before the clock starts:
the workers in bench/workers/ print their timings as one JSON line.
"""

from __future__ import annotations

import os
from pathlib import Path

from findings import why
import harness
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


# -- 5: forward passes ----------------------------------------------------------------------------

def _forward(python: str, worker: str, model: str, reps: int, budget: float,
             env: dict[str, str] | None = None) -> dict:
    argv = [python, str(WORKERS / worker), model, ",".join(map(str, BATCHES)), str(reps), str(budget)]
    return json_line(run(argv, capture=True, env=env, cwd=WORKERS).stdout)


def _blas_text(runtime: dict) -> str:
    libs = runtime.get("blas") or []
    return ", ".join(f"{lib.get('internal_api')} {lib.get('version')} kernel {lib.get('architecture')} "
                     f"x{lib.get('num_threads')}" for lib in libs) or "threadpoolctl not installed"


ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def forward(ctx: Context) -> list[Row]:
    """5: numpy engine vs MXNet (and PyTorch): default threads (the target), then one thread each.

    BLAS threads spin while they wait for each other, so on this 2-core machine one busy core elsewhere
    can slow a 2-thread run several times over; the 1-thread rows stay comparable under such load.
    """
    if not ctx.mxnet_python:
        return [_not_run("5", "forward passes", ("<=", 2.0), "no MXNet interpreter (--mxnet-python)")]
    reps = ctx.reps(9, 3)
    budget = ctx.reps(12, 4)  # seconds of timed passes per model and batch, at most
    rows: list[Row] = []
    base_env = dict(os.environ)
    set_vars = {k: base_env[k] for k in OPENBLAS_VARS if k in base_env}
    for threads in ("default", "1"):
        env = base_env if threads == "default" else {**base_env, **ONE_THREAD}
        for model in MODELS:
            def attempt(model: str = model, env: dict[str, str] = env) -> tuple[dict, dict, dict | None, dict | None]:
                ours = _forward(ctx.python, "forward_ours.py", model, reps, budget, env)
                theirs = _forward(ctx.mxnet_python, "forward_mxnet.py", model, reps, budget, env)
                torch = (_forward(ctx.torch_python, "forward_torch.py", model, reps, budget, env)
                         if ctx.torch_python else None)
                unset = None
                if set_vars:  # the same numpy run with both variables unset, in that command alone
                    unset = _forward(ctx.python, "forward_ours.py", model, reps, budget,
                                     {k: v for k, v in env.items() if k not in OPENBLAS_VARS})
                return ours, theirs, torch, unset

            log(f"forward passes: {model}, {threads} threads")
            (ours, theirs, torch, unset), meter = measured(attempt, retries=1, patience=harness.PATIENCE * 3)
            if threads == "default":
                ctx.facts.setdefault("blas", {})["numpy"] = _blas_text(ours["runtime"])
                ctx.facts["blas"]["mxnet"] = (f"MXNet {theirs['runtime']['mxnet']}, MKL-DNN "
                                              f"{'on' if theirs['runtime']['mkldnn'] else 'off'}")
                if torch:
                    ctx.facts["blas"]["torch"] = (f"PyTorch {torch['runtime']['torch']}, "
                                                  f"{torch['runtime']['threads']} threads")
            short = "a" if model == "alexnet" else "r"
            prefix = "" if threads == "default" else "OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "
            for batch in BATCHES:
                b = str(batch)
                o, m = ours["median"][b], theirs["median"][b]
                text = f"numpy {_ms(o)}; MXNet {_ms(m)}"
                if torch:
                    p = torch["median"][b]
                    text += f"; PyTorch {_ms(p)} (numpy/PyTorch {o / p:.1f}x)"
                text += f"; {len(ours['times'][b])}/{len(theirs['times'][b])} timed passes"
                label = f"forward {model}, batch {batch}" + ("" if threads == "default" else ", 1 thread each")
                rows.append(_miss(Row(
                    f"5{short}{batch}" + ("" if threads == "default" else "-1t"), label,
                    ("<=", 2.0), o / m, text, meter.text(),
                    f"{prefix}python bench/workers/forward_ours.py {model} 1,16 {reps} {budget}  vs  "
                    f"{prefix}{ctx.mxnet_python} bench/workers/forward_mxnet.py {model} 1,16 {reps} {budget}",
                    target_text="≤ 2x MXNet's time")))
                if unset:
                    u = unset["median"][b]
                    rows.append(Row(
                        f"5{short}{batch}" + ("" if threads == "default" else "-1t") + "u",
                        f"same, with {' and '.join(OPENBLAS_VARS)} unset", ("<=", 2.0), u / m,
                        f"numpy {_ms(u)} ({_blas_text(unset['runtime'])}); MXNet {_ms(m)}", meter.text(),
                        f"env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE {prefix}python bench/workers/forward_ours.py "
                        f"{model} 1,16 {reps} {budget}", target_text="≤ 2x MXNet's time"))
    return rows


def _miss(row: Row) -> Row:
    if row.met is False and not row.note:
        row.note = why(row.id)
    return row


BENCHMARKS = {"mxnet-read": mxnet_read, "forward": forward}
