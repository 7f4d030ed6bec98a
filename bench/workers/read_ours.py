"""Worker: read every tensor of a checkpoint with modelsurgeon; prints the load time (imports excluded)."""

import json
import sys
import time

import numpy as np

from modelsurgeon.core.binding import open_checkpoint

path = sys.argv[1]
# This VM makes the first touch of fresh memory after an idle spell slow (freed pages go back to the
# host): 300 MiB fresh per load cost 0.3-0.4 s extra, which MXNet pays during its big import and we
# would pay inside the timed load. Touch and free 512 MiB first, so both loads start from the same state.
_warm = np.ones(512 << 20, np.uint8)
del _warm
start = time.perf_counter()
with open_checkpoint(path) as reader:
    arrays = {key: reader.read(key) for key in reader.tensors}
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "tensors": len(arrays), "bytes": sum(a.nbytes for a in arrays.values())}))
