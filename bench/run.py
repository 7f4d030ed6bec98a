#!/usr/bin/env python3
"""Run every modelsurgeon benchmark and rewrite the results table in bench/README.md.

    python bench/run.py             # everything: 1 GiB and 4 GiB synthetic files (about 10-15 minutes)
    python bench/run.py --quick     # 256 MiB file, no 4 GiB file, fewer repetitions (a fast check)
    python bench/run.py --only stream,inplace --keep

It installs this checkout into a fresh venv in its work directory (``pip install .``, as the README
does) and times that; ``--current-env`` times the modelsurgeon installed beside the interpreter running
it instead. A full run rewrites the table in bench/README.md; --quick and --only print it (use --readme to
write it anyway).
Every figure is a ratio against its baseline measured in the same run; see bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parent.parent

import harness  # noqa: E402
import io_bench  # noqa: E402
import mx_bench  # noqa: E402
from harness import Context, GiB, MiB, log  # noqa: E402
from report import Row, render, write_readme  # noqa: E402

#: In the order they run; the 4 GiB streaming run goes last (it is the longest).
ORDER = ["startup", "inspect", "inplace", "stream", "sharded", "mxnet-read", "forward", "stream-large"]
BENCHMARKS = {**io_bench.BENCHMARKS, **mx_bench.BENCHMARKS}
FIRST_ID = {"startup": "1b", "inspect": "1a", "inplace": "3", "stream": "2", "sharded": "6", "mxnet-read": "4",
            "forward": "5", "stream-large": "2L"}
DEFAULT_MXNET = next((p for p in ("/work/main/.venv-mxnet/bin/python", "/work/mxnet-venv/bin/python")
                      if Path(p).exists()), "/work/mxnet-venv/bin/python")
DEFAULT_TORCH = "/tmp/torchvenv/bin/python"


def _interpreter(given: str | None, default: str, module: str) -> str | None:
    """``given`` or ``default`` if that interpreter imports ``module``; None (benchmark skipped) otherwise."""
    if given == "none":
        return None
    candidate = given or default
    if not Path(candidate).exists():
        if given:
            raise SystemExit(f"{candidate} does not exist")
        return None
    check = harness.run([candidate, "-c", f"import {module}"], check=False)
    if check.returncode != 0:
        if given:
            raise SystemExit(f"{candidate} cannot import {module}: {check.stderr.strip()[-300:]}")
        return None
    return candidate


def _workdir(requested: str | None, need: int) -> Path:
    if requested:
        path = Path(requested)
        path.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="modelsurgeon-bench-", dir=path))
    # /tmp may be small here: take whichever of /work and /tmp has the room.
    choices = [p for p in ("/work", tempfile.gettempdir()) if os.path.isdir(p) and os.access(p, os.W_OK)]
    best = max(choices, key=harness.free_bytes)
    if harness.free_bytes(best) < need:
        raise SystemExit(f"need about {need / GiB:.1f} GiB free for the synthetic files; {best} has "
                         f"{harness.free_bytes(best) / GiB:.1f} GiB (use --quick or --no-large)")
    return Path(tempfile.mkdtemp(prefix="modelsurgeon-bench-", dir=best))


def _install(workdir: Path) -> tuple[str, str, str]:
    """A fresh virtual environment with this checkout installed as the README installs it.

    ``pip install .`` (not editable): an editable install's import hook costs every process 10-30 ms
    at start-up (it imports pathlib and searches its own finder), which no user of the tool pays and
    which would count against every command timed here. Returns (python, console script, header text).
    """
    venv = workdir / "venv"
    log(f"installing {REPO} into {venv} (pip install ., as the README does)")
    harness.run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    harness.run([*pip, str(REPO)])
    harness.run([*pip, "threadpoolctl"], check=False)  # optional: names the BLAS kernel in the header
    return python, str(venv / "bin" / "modelsurgeon"), (
        "modelsurgeon installed for this run into a fresh venv with `pip install .` (as the README does: "
        "not editable, modules compiled to bytecode at install)")


def _current_install() -> tuple[str, str, str]:
    """The modelsurgeon installed beside this interpreter (``--current-env``)."""
    here = Path(sys.executable).parent
    cli = str(here / "modelsurgeon") if (here / "modelsurgeon").exists() else shutil.which("modelsurgeon")
    if cli is None:
        raise SystemExit("the modelsurgeon console script is not installed beside this interpreter "
                         "(pip install -e . in the venv, or leave out --current-env)")
    return sys.executable, cli, _precompile(sys.executable)


def _precompile(python: str) -> str:
    """Compile modelsurgeon's modules to bytecode, as a regular ``pip install`` does at install time.

    An editable install never does, and where PYTHONDONTWRITEBYTECODE is set (as on the machines
    here) every command would compile its modules from source again (~0.1 s of each start-up).
    """
    code = ("import compileall, modelsurgeon.core, modelsurgeon.cli; "
            "[compileall.compile_dir(p, quiet=1) for m in (modelsurgeon.core, modelsurgeon.cli) for p in m.__path__]")
    harness.run([python, "-c", code])
    flag = os.environ.get("PYTHONDONTWRITEBYTECODE")
    return ("modelsurgeon's modules compiled to bytecode before timing (as `pip install` does; "
            + (f"PYTHONDONTWRITEBYTECODE={flag} is set here, so imports would not write it)" if flag
               else "imports would have written it too)"))


def _header(ctx: Context, args: argparse.Namespace, started: float, seconds: float) -> list[str]:
    m = harness.machine()
    command = "python bench/run.py" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:])
    lines = [
        f"Run {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))} with `{command}` "
        f"({'quick' if ctx.quick else 'full'} mode, {seconds / 60:.1f} min).",
        "",
        f"- Machine: {m['cpu']} ({m.get('simd', '')}), {m['cores']} cores, {m['ram_gib']} GiB RAM; "
        f"disk: {ctx.facts['disk']}; Linux {m['kernel']}, Python {m['python']}; {ctx.facts['bytecode']}.",
    ]
    blas = ctx.facts.get("blas", {})
    env = harness.blas_env()
    lines.append(f"- BLAS: numpy: {blas.get('numpy', 'not measured')}; {blas.get('mxnet', 'MXNet not run')}"
                 + (f"; {blas['torch']}" if "torch" in blas else "; PyTorch not run")
                 + f". Environment: {', '.join(f'{k}={v}' for k, v in env.items()) or 'no OPENBLAS_* / OMP_* set'}.")
    for name, facts in sorted(ctx.facts.items()):
        if not isinstance(facts, dict):
            continue
        if name.startswith("synth-"):
            lines.append(f"- `{name}`: {facts['tensors']} float32 tensors, {facts['file_bytes'] / MiB:.1f} MiB on "
                         f"disk, largest tensor {facts['largest_tensor_bytes'] / MiB:.1f} MiB "
                         f"(made by bench/synth.py with `write_h5` in {facts['seconds']:.1f} s, "
                         f"peak RSS {facts['max_rss'] / MiB:.0f} MiB).")
    lines += [
        "- Each command runs in a fresh process from the work directory (the file names in the commands are "
        "those files); streaming figures are warm-cache (the input read before each job) and every timed write "
        "starts after an untimed `sync`. Ratios compare medians, except the streaming throughput rows (2c-2f), "
        "which take the median of per-repetition ratios (each repetition's cp+fsync over that repetition's run); "
        "\"other load\" is the CPU (in cores) other "
        "processes used while that benchmark ran, and the 1-minute load average at its start; a benchmark is "
        f"repeated when others used more than {harness.BUSY_LIMIT} cores.",
    ]
    return lines


def _other_cores(row: Row) -> float:
    try:
        return float(row.load.split()[0])
    except (ValueError, IndexError):
        return 0.0


def _row_order(row: Row) -> tuple[str, bool, bool]:
    """1a, 1b; 2 throughput (1 GiB, then 4 GiB), 2m memory (same); 3; 4; 5; 6."""
    memory = row.id.startswith("2m")
    return (row.id[:2] if row.id[0] == "1" else row.id[0], memory, row.id.startswith("2") and row.id.endswith("L"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--quick", action="store_true", help="256 MiB instead of 1 GiB, no 4 GiB file, fewer reps")
    parser.add_argument("--only", help=f"comma-separated benchmarks: {','.join(ORDER)}")
    parser.add_argument("--skip", help="comma-separated benchmarks to leave out")
    parser.add_argument("--size-mib", type=float, help="size of the main synthetic file (default 1024, quick 256)")
    parser.add_argument("--large-mib", type=float,
                        help="size of the large synthetic file (default 4096; quick and 0: skipped)")
    parser.add_argument("--workdir", help="parent folder for the temporary files (default: /work or /tmp, "
                                          "whichever has more room)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (synthetic files) at the end")
    parser.add_argument("--mxnet-python", help=f"interpreter with MXNet 1.9.1 (default {DEFAULT_MXNET}; "
                                               "'none' skips 4 and 5)")
    parser.add_argument("--torch-python", help=f"interpreter with PyTorch (default {DEFAULT_TORCH} if it "
                                               "exists; 'none' skips it)")
    parser.add_argument("--patience", type=float, default=harness.PATIENCE,
                        help="seconds to wait for other processes to calm down before each measurement "
                             "(default %(default)s; 0: never wait)")
    parser.add_argument("--wait-budget", type=float, default=harness.WAIT_BUDGET,
                        help="seconds of waiting for a quiet machine the whole run may spend (default %(default)s)")
    parser.add_argument("--current-env", action="store_true",
                        help="time the modelsurgeon installed beside this interpreter instead of installing "
                             "this checkout into a fresh venv first (no network needed; an editable install "
                             "adds its start-up cost to every command)")
    parser.add_argument("--readme", action="store_true", help="write bench/README.md even with --quick/--only")
    parser.add_argument("--no-readme", action="store_true", help="only print the table")
    parser.add_argument("--json", help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)

    harness.PATIENCE = args.patience
    harness.WAIT_BUDGET = args.wait_budget
    chosen = [n.strip() for n in args.only.split(",")] if args.only else list(ORDER)
    skip = {n.strip() for n in args.skip.split(",")} if args.skip else set()
    unknown = [n for n in [*chosen, *skip] if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(ORDER)}")
    chosen = [n for n in ORDER if n in chosen and n not in skip]

    main_mib = args.size_mib or (256 if args.quick else 1024)
    large_mib = args.large_mib if args.large_mib is not None else (0 if args.quick else 4096)
    if "stream-large" not in chosen:
        large_mib = 0
    need = int((main_mib * 3.3 + large_mib * 2.2) * MiB) + GiB
    workdir = _workdir(args.workdir, need)
    python, cli, installed = _current_install() if args.current_env else _install(workdir)
    ctx = Context(workdir=workdir, quick=args.quick, cli=cli, python=python,
                  main_bytes=int(main_mib * MiB), large_bytes=int(large_mib * MiB),
                  mxnet_python=_interpreter(args.mxnet_python, DEFAULT_MXNET, "mxnet"),
                  torch_python=_interpreter(args.torch_python, DEFAULT_TORCH, "torch"))
    ctx.facts["disk"] = harness.disk(workdir)
    ctx.facts["bytecode"] = installed
    log(f"work directory {workdir}; benchmarks: {', '.join(chosen)}")
    started = time.time()
    rows: list[Row] = []
    failed = False
    try:
        if "stream-large" in chosen and len(chosen) > 1 and ctx.large_bytes:
            # Made before the other benchmarks run, not just before its own: for a few minutes after
            # 4 GiB have been written the virtual disk writes slower (the first repetitions of the 4 GiB
            # rows ran up to 2x slower than the last when the file had just been made).
            ctx.synthetic(ctx.large_bytes)
        for name in chosen:
            log(f"== {name} (other processes now use {harness.other_load():.2f} cores, "
                f"load average {os.getloadavg()[0]:.2f})")
            begun = time.perf_counter()
            try:
                got = BENCHMARKS[name](ctx)
            except Exception as exc:  # one broken benchmark must not lose the others' figures
                failed = True
                traceback.print_exc()
                got = [Row(FIRST_ID[name], f"{name}: the benchmark failed", None, None, "—", "—", "",
                           note=f"failed: {type(exc).__name__}: {' '.join(str(exc).split())[:400]}", met=False)]
            for row in got:
                log(f"   {row.id}: {row.status()} {'' if row.ratio is None else f'{row.ratio:.2f}x'} {row.measured}")
            rows += got
            log(f"   ({time.perf_counter() - begun:.0f} s)")
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    rows.sort(key=_row_order)  # stable: within a group, the order the benchmark gave
    header = _header(ctx, args, started, time.time() - started)
    busy = [r for r in rows if _other_cores(r) > harness.BUSY_LIMIT]
    if busy:
        header.append(f"- **This run shared the machine**: {len(busy)} of {len(rows)} rows were measured while other "
                      f"processes used more than {harness.BUSY_LIMIT} cores (\"other load\"); their ratios carry "
                      "that noise (see \"Findings\").")
    block = render(rows, header)
    print(block)
    if args.json:
        Path(args.json).write_text(json.dumps([r.as_dict() for r in rows], indent=2) + "\n")
    partial = args.quick or args.only or args.skip or args.size_mib or args.large_mib is not None
    if not args.no_readme and (args.readme or not partial):
        write_readme(Path(__file__).resolve().parent / "README.md", block)
        log("wrote bench/README.md")
    elif not args.no_readme:
        log("partial run: bench/README.md left as it was (--readme writes it)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
