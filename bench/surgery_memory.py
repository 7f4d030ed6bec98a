"""Peak memory of the everyday surgeries (issue 17) on a generated 1 GiB checkpoint, against the budget.

Each command runs as a fresh process; its peak memory is that child's own ``ru_maxrss`` (as
``/usr/bin/time -v`` reports it). The budget is the issue's: the largest tensor + 100 MiB, and for
``average`` two tensors per input + 100 MiB. The checkpoint is ``bench/synth.py``'s layout (99
``features.<i>`` dense layers and an ``output`` head) with a 4-D ``stem.weight`` convolution first,
so ``adapt-input`` has a convolution to change; a second one with another seed is the other input
of ``average``. Files go to a temporary directory (``--dir``) and are deleted unless ``--keep``.

    python bench/surgery_memory.py              # 1 GiB
    python bench/surgery_memory.py --mib 256    # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

MIB = 1 << 20
CLI = "from modelsurgeon.cli.main import main; main()"


def make(path: str, total_bytes: int, seed: int) -> dict[str, Any]:
    """A structural checkpoint: a conv stem, then synth.py's tensors, one generated at a time."""
    from synth import plan_shapes

    from modelsurgeon.core.formats.base import STRUCTURAL, TensorInfo
    from modelsurgeon.core.formats.h5 import write_h5

    shapes = [("stem.weight", (64, 3, 7, 7)), *plan_shapes(total_bytes)]
    infos = [TensorInfo(key, shape, np.dtype(np.float32)) for key, shape in shapes]
    order = {info.key: n for n, info in enumerate(infos)}

    def fetch(info: TensorInfo) -> np.ndarray:
        array = np.random.default_rng((seed, order[info.key])).standard_normal(info.shape, dtype=np.float32)
        array *= np.float32(0.02)
        return array

    write_h5(path, STRUCTURAL, infos, fetch)
    return {"largest": max(i.nbytes for i in infos), "bytes": sum(i.nbytes for i in infos),
            "rows0": shapes[1][1][0], "keys": [[k, list(s)] for k, s in shapes]}


def peak(args: list[str], cwd: str) -> tuple[int, float, int]:
    """(peak RSS in bytes, seconds, exit code) of one CLI run in a fresh process."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", CLI, *args], cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - start
    if process.returncode != 0 and process.stderr is not None:
        sys.stderr.write(process.stderr.read().decode(errors="replace")[-800:])
    if process.stderr is not None:
        process.stderr.close()
    return usage.ru_maxrss * 1024, elapsed, process.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=float, default=1024, help="checkpoint size (default 1024 MiB)")
    parser.add_argument("--dir", default=None, help="work directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the files")
    args = parser.parse_args(argv)
    work = args.dir or tempfile.mkdtemp(prefix="surgery-memory-", dir="/work" if os.path.isdir("/work") else None)
    os.makedirs(work, exist_ok=True)
    try:
        total = int(args.mib * MIB)
        first = make(os.path.join(work, "big.h5"), total, 0)
        make(os.path.join(work, "big2.h5"), total, 1)
        target = os.path.join(work, "target.json")
        with open(target, "w") as handle:
            json.dump([["model." + k, s] for k, s in first["keys"]], handle)
        largest = first["largest"]
        budget = largest + 100 * MIB
        jobs = [
            ("convert --dtype float16", ["convert", "big.h5", "-o", "f16.h5", "--dtype", "float16"], budget),
            ("convert --dtype bfloat16 (-> safetensors)",
             ["convert", "big.h5", "-o", "bf16.safetensors", "--dtype", "bfloat16"], budget),
            ("convert --dtype float8_e4m3fn (-> safetensors)",
             ["convert", "big.h5", "-o", "f8.safetensors", "--dtype", "float8_e4m3fn"], budget),
            ("select --drop '^output\\.'", ["select", "big.h5", "-o", "sel.h5", "--drop", r"^output\."], budget),
            ("select --root features", ["select", "big.h5", "-o", "root.h5", "--root", "features"], budget),
            ("average (2 inputs)", ["average", "big.h5", "big2.h5", "-o", "avg.h5"], 4 * largest + 100 * MIB),
            ("adapt-input --channels 1", ["adapt-input", "big.h5", "-o", "grey.h5", "--channels", "1"], budget),
            ("resize-embedding (+1000 rows)", ["resize-embedding", "big.h5", "-o", "emb.h5", "--key",
                                               "features.0.weight", "--rows", str(first["rows0"] + 1000)],
             budget + 1000 * 4 * 1024),
            ("fit --to (prefix model.)", ["fit", "big.h5", "--to", "target.json", "-o", "fit.h5"], budget),
        ]
        print(f"checkpoint: {first['bytes'] / MIB:.0f} MiB of float32, largest tensor {largest / MIB:.1f} MiB; "
              "budget = largest tensor + 100 MiB (average: two tensors per input + 100 MiB)")
        rows = []
        for title, command, limit in jobs:
            rss, seconds, code = peak([*command, "--force", "-q"], work)
            rows.append((title, rss, limit, seconds, code))
            for name in os.listdir(work):  # only the inputs stay between jobs
                if name not in ("big.h5", "big2.h5", "target.json"):
                    os.remove(os.path.join(work, name))
        print("| command | peak RSS | budget | within | time | exit |")
        print("|---|---|---|---|---|---|")
        for title, rss, limit, seconds, code in rows:
            print(f"| {title} | {rss / MIB:.0f} MiB | {limit / MIB:.0f} MiB | {'yes' if rss <= limit else 'NO'} | "
                  f"{seconds:.1f} s | {code} |")
        return 0 if all(rss <= limit and code == 0 for _, rss, limit, _, code in rows) else 1
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
