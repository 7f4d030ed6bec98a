"""Worker: forward passes of modelsurgeon's numpy engine (a zoo model, random weights)."""

import numpy as np
from timing import blas_info, emit, parse_args, time_passes

from modelsurgeon.core.engine import initializer, random
from modelsurgeon.core.engine.model_zoo import vision

model, batches, reps, budget = parse_args()
net = vision.get_model(model, classes=1000)
random.seed(0)
net.initialize(initializer.Xavier())
times = {}
stable = True
for batch in batches:
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
    out = net(x)
    assert out.shape == (batch, 1000) and out.dtype == np.float32, (out.shape, out.dtype)
    times[batch] = time_passes(lambda x=x: net(x), reps, budget)
    stable = stable and np.array_equal(out, net(x))  # the first call and a later one give the same bits
emit(model, times, {"numpy": np.__version__, "blas": blas_info(), "stable": stable})
