"""Shared by the forward-pass workers (stdlib only: each framework's interpreter imports it)."""

import json
import statistics
import sys
import time


def parse_args():
    model, batches, reps, budget = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    return model, [int(b) for b in batches.split(",")], reps, budget


def time_passes(step, reps, budget):
    """Two warm-up passes, then up to ``reps`` timed passes (at least 3) within about ``budget`` seconds."""
    step()
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    count = max(3, min(reps, int(budget / max(first, 1e-4))))
    times = []
    for _ in range(count):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def blas_info():
    try:
        import threadpoolctl
    except ImportError:
        return None
    keep = ("internal_api", "version", "architecture", "num_threads", "threading_layer")
    return [{k: lib.get(k) for k in keep if k in lib} for lib in threadpoolctl.threadpool_info()]


def emit(model, times, runtime):
    print(json.dumps({"model": model, "times": {str(b): t for b, t in times.items()},
                      "median": {str(b): statistics.median(t) for b, t in times.items()},
                      "runtime": runtime}))
