"""Shared by the forward-pass workers (stdlib only: each framework's interpreter imports it).

A worker is a long-lived process that answers the driver (bench/mx_bench.py) turn by turn, so that
the frameworks' passes alternate within seconds of each other and see the machine in the same state:

- when its model is built it prints one JSON line, ``{"ready": true, "runtime": {...}}``;
- for each line ``BATCH`` on stdin it runs two passes in a row on a batch of that size (two more
  before the first of each size) and prints ``{"seconds": <the second pass>, ...}``: the first pass
  of a turn finds its weights and buffers again after the other framework's turn, as any pass after
  the first does in a real process;
- it exits at the end of stdin.
"""

import json
import sys
import time


def serve(runtime, make_step):
    """Answer the driver. ``make_step(batch)`` returns ``(step, check)``: ``step()`` runs one pass and
    returns its output; ``check(output)`` returns extra fields for the answer (computed untimed)."""
    print(json.dumps({"ready": True, "runtime": runtime}), flush=True)
    steps = {}
    for line in sys.stdin:
        batch = int(line)
        if batch not in steps:
            steps[batch] = make_step(batch)
            for _ in range(2):
                steps[batch][0]()
        step, check = steps[batch]
        step()
        start = time.perf_counter()
        out = step()
        seconds = time.perf_counter() - start
        print(json.dumps({"seconds": seconds, **check(out)}), flush=True)


def blas_info():
    try:
        import threadpoolctl
    except ImportError:
        return None
    keep = ("internal_api", "version", "architecture", "num_threads", "threading_layer")
    return [{k: lib.get(k) for k in keep if k in lib} for lib in threadpoolctl.threadpool_info()]
