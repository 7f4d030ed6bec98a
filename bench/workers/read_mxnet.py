"""Worker (MXNet's interpreter): ``mx.nd.load`` a .params file; prints the load time (imports excluded)."""

import json
import sys
import time

import mxnet as mx
import numpy as np

path = sys.argv[1]
# This VM makes the first touch of fresh memory after an idle spell slow (freed pages go back to the
# host): 300 MiB fresh per load cost 0.3-0.4 s extra, which MXNet pays during its big import and we
# would pay inside the timed load. Touch and free 512 MiB first, so both loads start from the same state.
_warm = np.ones(512 << 20, np.uint8)
del _warm
mx.nd.waitall()
start = time.perf_counter()
loaded = mx.nd.load(path)
mx.nd.waitall()
seconds = time.perf_counter() - start
arrays = loaded.values() if isinstance(loaded, dict) else loaded
print(json.dumps({"seconds": seconds, "tensors": len(loaded),
                  "bytes": sum(a.size * np.dtype(a.dtype).itemsize for a in arrays)}))
