"""Synthetic checkpoints for the benchmarks, written with modelsurgeon's own streaming writer.

A synthetic checkpoint has exactly ``TENSORS`` (200) float32 tensors: 99 ``features.<i>`` layers
(a 2-D weight and a bias each) and a 2-D ``output`` head (``output.weight``, ``output.bias``) at the
end, so ``replace-head`` finds a head. The weights' sizes vary between 0.5x and 1.5x of their mean,
so the largest tensor is about 1.5x the average, and the total is within a fraction of a percent of
the size asked for. The same shapes scaled down give the 1 MiB twin with the same keys.

Each tensor is generated when the writer asks for it and dropped after, so making a 4 GiB file
needs only about one tensor of memory. Run as a script to make a file in a fresh process::

    python bench/synth.py OUT.h5 --mib 1024
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

TENSORS = 200
LAYERS = TENSORS // 2 - 1  # 99 features layers + the output head = 100 weight/bias pairs
CLASSES = 1000


def plan_shapes(total_bytes: int) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) of every tensor, in file order, for a file of about ``total_bytes`` of float32 data."""
    elements = max(total_bytes // 4, TENSORS * 64)
    mean = elements / (LAYERS + 1)  # elements of an average weight (the biases are tiny)
    cols = int(min(1024, max(4, 2 ** round(np.log2(mean ** 0.5 / 2)))))
    # Weight i has rows_i x cols elements, rows_i proportional to 0.5 .. 1.5 (a fixed shuffle).
    weights = [0.5 + ((i * 37) % 100) / 99 for i in range(LAYERS)]
    head_rows = int(min(CLASSES, max(2, mean // cols)))
    rows_budget = elements / (cols + 1) - head_rows  # every row has a bias element too
    scale = rows_budget / sum(weights)
    shapes: list[tuple[str, tuple[int, ...]]] = []
    for i, weight in enumerate(weights):
        rows = max(1, int(weight * scale))
        shapes.append((f"features.{i}.weight", (rows, cols)))
        shapes.append((f"features.{i}.bias", (rows,)))
    shapes.append(("output.weight", (head_rows, cols)))
    shapes.append(("output.bias", (head_rows,)))
    return shapes


def make_checkpoint(path: str, total_bytes: int, seed: int = 0) -> dict[str, int]:
    """Write a synthetic structural checkpoint to ``path``; returns its total and largest tensor bytes."""
    from modelsurgeon.core.formats.base import STRUCTURAL, TensorInfo
    from modelsurgeon.core.formats.h5 import write_h5

    float32 = np.dtype(np.float32)
    infos = [TensorInfo(key, shape, float32) for key, shape in plan_shapes(total_bytes)]
    order = {info.key: n for n, info in enumerate(infos)}

    def fetch(info: TensorInfo) -> np.ndarray:
        rng = np.random.default_rng((seed, order[info.key]))
        array = rng.standard_normal(info.shape, dtype=np.float32)
        array *= np.float32(0.02)  # in place: one tensor in memory at a time
        return array

    write_h5(path, STRUCTURAL, infos, fetch, metadata={"bench.synthetic": f"{total_bytes} bytes seed={seed}"})
    return {"tensors": len(infos), "data_bytes": sum(i.nbytes for i in infos),
            "largest_tensor_bytes": max(i.nbytes for i in infos), "file_bytes": os.path.getsize(path)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("output")
    parser.add_argument("--mib", type=float, required=True, help="data size in MiB")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import json
    print(json.dumps(make_checkpoint(args.output, int(args.mib * (1 << 20)), args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
