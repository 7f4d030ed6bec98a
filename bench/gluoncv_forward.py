"""Forward passes of the GluonCV models that run, ours against real MXNet 1.9.1 on the same machine.

Issue 15's guard: over the GluonCV models `run` supports, our numpy engine's forward pass at batch 1
stays within 2x of MXNet's. The cases are the ones ``tests/test_gluoncv_zoo.py`` builds with
``tools/gluoncv_zoo/make_cases.py`` (random weights, small inputs, exported by real MXNet), cached in
``tests/artifacts/gluoncv_zoo/``. For each case both engines load the same ``-symbol.json`` and
``.params`` and warm up twice; then they take turns: in each of 5 turns MXNet (hybridized with
static allocation, in one subprocess) runs two passes in a row and times the second, and ours does
the same right after, so both sides of a ratio see the machine within a second of each other (its
speed drifts by up to 1.5x over minutes here). ``--rounds N`` goes over all the cases N times
(default 3); each side's figure is the median of its N x 5 timed passes, so that one disturbed turn
cannot decide a row, and the table shows both medians and their ratio.

    python bench/gluoncv_forward.py [--cases DIR] [--only NAME,NAME] [--size N | --natural]
                                    [--rounds N] [--mxnet-python PATH]

The cases' inputs are kept small so that the tests run fast. ``--size N`` feeds both engines a random
1x3xNxN input instead; ``--natural`` the size each model is used at (:func:`natural_size`: 224x224 for
ImageNet classifiers, 299 for Inception and Xception, 32 for CIFAR, 256x192 for pose, 300/416/512 for
the detectors, 480x480 for segmentation, 192x640 for Monodepth2). A model whose graph is tied to its
case's input size (a dense layer after a flatten: AlexNet, VGG) keeps that size, and the row says so.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "artifacts" / "gluoncv_zoo"
TARGET = 2.0
TURNS, WARMUPS = 5, 2

MXNET_SIDE = r"""
import json, sys, time, warnings
import numpy as np
import mxnet as mx
warnings.filterwarnings("ignore")
warmups = int(sys.argv[1])
net = feed = None
for line in sys.stdin:  # {"case": folder, "shape": [h, w] or null} loads a model, {} times a turn
    ask = json.loads(line)
    if not ask:
        for _ in range(2):
            start = time.perf_counter(); net(*feed); mx.nd.waitall()
        print(json.dumps(time.perf_counter() - start), flush=True)
        continue
    case = ask["case"]
    x = np.load(case + "/input.npy")
    if ask["shape"]:
        x = np.random.default_rng(0).standard_normal((1, 3, *ask["shape"]), dtype=np.float32)
    net = mx.gluon.SymbolBlock.imports(case + "/model-symbol.json", ["data"], case + "/model-0000.params")
    net.hybridize(static_alloc=True, static_shape=True)
    feed = [mx.nd.array(x)]
    try:
        for _ in range(warmups):
            mx.nd.waitall(); net(*feed); mx.nd.waitall()
    except Exception as exc:
        print(json.dumps(False), flush=True)
        continue
    print(json.dumps(True), flush=True)
"""


class Ours:
    """Our engine on one case: loaded and warmed up; :meth:`turn` times the second of two passes."""

    def __init__(self, case: Path, shape: tuple[int, int] | None) -> None:
        from modelsurgeon.core.engine.symbol_block import SymbolBlock
        self.x = np.load(case / "input.npy")
        if shape:
            self.x = np.random.default_rng(0).standard_normal((1, 3, *shape), dtype=np.float32)
        self.net = SymbolBlock.imports(str(case / "model-symbol.json"), ["data"], str(case / "model-0000.params"))
        for _ in range(WARMUPS):
            self.net(self.x)

    def turn(self) -> float:
        for _ in range(2):
            start = time.perf_counter()
            self.net(self.x)
        return time.perf_counter() - start


def natural_size(name: str, family: str) -> tuple[int, int]:
    """The input size a GluonCV model is used at (height, width)."""
    if family == "classification":
        return (32, 32) if name.startswith("cifar_") else (299, 299) if name in ("inceptionv3", "xception") \
            else (224, 224)
    if family == "pose":
        return (256, 192)
    if family == "depth":
        return (192, 640)
    if family == "detection":
        side = 300 if name.startswith("ssd_300") else 416 if name.startswith("yolo3") else 512
        return (side, side)
    return (480, 480)  # segmentation: the ADE20K/VOC crop size (Cityscapes models too, to keep the run short)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=CASES)
    parser.add_argument("--only", help="comma-separated case names")
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--size", type=int, default=0, help="a random 1x3xNxN input instead of the case's own")
    sizes.add_argument("--natural", action="store_true", help="each model at the size it is used at")
    parser.add_argument("--rounds", type=int, default=3, help="turns over all the cases (medians compared)")
    parser.add_argument("--mxnet-python", default=str(ROOT / ".venv-mxnet" / "bin" / "python"))
    args = parser.parse_args()
    catalogue = json.loads((args.cases / "catalogue.json").read_text())
    wanted = set(args.only.split(",")) if args.only else None
    cases = [args.cases / name for name, entry in sorted(catalogue.items())
             if (wanted is None or name in wanted) and (args.cases / name / "output0.npy").exists()
             and not entry.get("inputs") and entry.get("input_shape", [0])[0] == 1]
    mxnet = subprocess.Popen([args.mxnet_python, "-c", MXNET_SIDE, str(WARMUPS)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert mxnet.stdin is not None and mxnet.stdout is not None

    def ask_mxnet(message: dict) -> Any:
        assert mxnet.stdin is not None and mxnet.stdout is not None
        mxnet.stdin.write(json.dumps(message) + "\n")
        mxnet.stdin.flush()
        return json.loads(mxnet.stdout.readline())

    shapes: dict[str, tuple[tuple[int, int] | None, str]] = {}
    figures: dict[str, tuple[list[float], list[float]]] = {case.name: ([], []) for case in cases}
    failed: dict[str, str] = {}
    for _ in range(args.rounds):
        for case in cases:  # case by case, and turn by turn within a case
            if case.name in failed:
                continue
            if case.name not in shapes:
                shape = (args.size, args.size) if args.size else \
                    natural_size(case.name, catalogue[case.name]["family"]) if args.natural else None
                shapes[case.name] = (shape, "x".join(map(str, shape)) if shape else "the case's")
            shape = shapes[case.name][0]
            loaded = ask_mxnet({"case": str(case), "shape": shape})
            if not loaded and shape is not None:  # the graph is tied to its case's input size
                size = "x".join(map(str, catalogue[case.name]["input_shape"][2:]))
                shapes[case.name] = (None, f"at the case's {size}")
                shape, loaded = None, ask_mxnet({"case": str(case), "shape": None})
            if not loaded:
                failed[case.name] = "MXNet does not run it"
                continue
            try:
                ours = Ours(case, shape)
                for _ in range(TURNS):
                    figures[case.name][1].append(ask_mxnet({}))
                    figures[case.name][0].append(ours.turn())
            except Exception as exc:
                failed[case.name] = f"does not run: {exc}"[:60]
                continue
    mxnet.stdin.close()
    if mxnet.wait():
        raise SystemExit(f"the MXNet side failed (exit {mxnet.returncode})")
    print(f"| model (batch 1) | input | ours | MXNet | ours / MXNet | within {TARGET:g}x |")
    print("|---|---|---|---|---|---|")
    timed = []
    for case in cases:
        if case.name in failed:
            print(f"| {case.name} | | | | - | {failed[case.name]} |")
            continue
        mine, theirs = (statistics.median(v) for v in figures[case.name])
        ratio = mine / theirs
        timed.append(ratio)
        print(f"| {case.name} | {shapes[case.name][1]} | {mine * 1e3:.2f} ms | {theirs * 1e3:.2f} ms | "
              f"{ratio:.2f}x | {'yes' if ratio <= TARGET else 'NO'} |")
    print(f"\n{sum(r <= TARGET for r in timed)} of {len(timed)} within {TARGET:g}x; "
          f"median {statistics.median(timed):.2f}x, worst {max(timed):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
