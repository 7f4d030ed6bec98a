"""Worker: forward passes of modelsurgeon's numpy engine (a zoo model, random weights); see timing.py."""

import sys

import numpy as np
from timing import blas_info, serve

from modelsurgeon.core.engine import initializer, random
from modelsurgeon.core.engine.model_zoo import vision

net = vision.get_model(sys.argv[1], classes=1000)
random.seed(0)
net.initialize(initializer.Xavier())


def make_step(batch):
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
    first = net(x)  # the first call finishes the deferred initialisation
    assert first.shape == (batch, 1000) and first.dtype == np.float32, (first.shape, first.dtype)
    # every later call must give the first call's bits
    return (lambda: net(x)), (lambda out: {"same": bool(np.array_equal(out, first))})


serve({"numpy": np.__version__, "blas": blas_info()}, make_step)
