"""Forward passes of the GluonCV models that run, ours against real MXNet 1.9.1 on the same machine.

Issue 15's guard: over the GluonCV models `run` supports, our numpy engine's forward pass at batch 1
stays within 2x of MXNet's. The cases are the ones ``tests/test_gluoncv_zoo.py`` builds with
``tools/gluoncv_zoo/make_cases.py`` (random weights, small inputs, exported by real MXNet), cached in
``tests/artifacts/gluoncv_zoo/``. For each case both engines load the same ``-symbol.json`` and
``.params``, warm up twice, and the median of 7 timed passes on the case's own input is kept; the
MXNet side runs hybridized with static allocation in one subprocess, which times each case just
before ours does (the machine's speed drifts over minutes). Only ratios are reported.

    python bench/gluoncv_forward.py [--cases DIR] [--only NAME,NAME] [--size N] [--mxnet-python PATH]

``--size N`` feeds both engines a random 1x3xNxN input instead of the case's own (the cases are kept
small so the tests run fast; a model is usually run at its training size, 224 for ImageNet).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "artifacts" / "gluoncv_zoo"
TARGET = 2.0
RUNS, WARMUPS = 7, 2
#: Seconds between the MXNet side's answer and our first pass.
SETTLE = 0.5

MXNET_SIDE = r"""
import json, statistics, sys, time, warnings
import numpy as np
import mxnet as mx
warnings.filterwarnings("ignore")
runs, warmups, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for line in sys.stdin:  # one case folder a line; the answer is one JSON line
    case = line.strip()
    x = np.load(case + "/input.npy")
    if size:
        x = np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32)
    net = mx.gluon.SymbolBlock.imports(case + "/model-symbol.json", ["data"], case + "/model-0000.params")
    net.hybridize(static_alloc=True, static_shape=True)
    feed = [mx.nd.array(x)]
    for _ in range(warmups):
        mx.nd.waitall(); out = net(*feed); mx.nd.waitall()
    times = []
    for _ in range(runs):
        start = time.perf_counter(); out = net(*feed); mx.nd.waitall(); times.append(time.perf_counter() - start)
    print(json.dumps(statistics.median(times)), flush=True)
"""


def ours(case: Path, size: int) -> float:
    from modelsurgeon.core.engine.symbol_block import SymbolBlock
    x = np.load(case / "input.npy")
    if size:
        x = np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32)
    net = SymbolBlock.imports(str(case / "model-symbol.json"), ["data"], str(case / "model-0000.params"))
    for _ in range(WARMUPS):
        net(x)
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        net(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=CASES)
    parser.add_argument("--only", help="comma-separated case names")
    parser.add_argument("--size", type=int, default=0, help="a random 1x3xNxN input instead of the case's own")
    parser.add_argument("--mxnet-python", default=str(ROOT / ".venv-mxnet" / "bin" / "python"))
    args = parser.parse_args()
    catalogue = json.loads((args.cases / "catalogue.json").read_text())
    wanted = set(args.only.split(",")) if args.only else None
    cases = [args.cases / name for name, entry in sorted(catalogue.items())
             if (wanted is None or name in wanted) and (args.cases / name / "output0.npy").exists()
             and not entry.get("inputs") and entry.get("input_shape", [0])[0] == 1]
    mxnet = subprocess.Popen([args.mxnet_python, "-c", MXNET_SIDE, str(RUNS), str(WARMUPS), str(args.size)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert mxnet.stdin is not None and mxnet.stdout is not None
    rows = []
    for case in cases:  # the two engines alternate case by case, so both see the machine in the same state
        mxnet.stdin.write(f"{case}\n")
        mxnet.stdin.flush()
        theirs = json.loads(mxnet.stdout.readline())
        time.sleep(SETTLE)  # MXNet's OpenMP threads spin for a while after its last pass
        try:
            mine = ours(case, args.size)
        except Exception as exc:
            rows.append((case.name, None, f"does not run: {exc}"[:60]))
            continue
        rows.append((case.name, mine / theirs, ""))
    mxnet.stdin.close()
    if mxnet.wait():
        raise SystemExit(f"the MXNet side failed (exit {mxnet.returncode})")
    print(f"| model (batch 1) | ours / MXNet | within {TARGET:g}x |")
    print("|---|---|---|")
    for name, ratio, note in rows:
        print(f"| {name} | {'-' if ratio is None else f'{ratio:.2f}x'} | "
              f"{note or ('yes' if ratio <= TARGET else 'NO')} |")
    timed = [r for _, r, _ in rows if r is not None]
    print(f"\n{sum(r <= TARGET for r in timed)} of {len(timed)} within {TARGET:g}x; "
          f"median {statistics.median(timed):.2f}x, worst {max(timed):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
