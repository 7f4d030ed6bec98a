"""Worker (MXNet's interpreter): Gluon model-zoo forward passes, hybridized with static_alloc."""

import mxnet as mx
import numpy as np
from timing import blas_info, emit, parse_args, time_passes

model, batches, reps, budget = parse_args()
net = mx.gluon.model_zoo.vision.get_model(model, classes=1000)
net.initialize(mx.init.Xavier())
net.hybridize(static_alloc=True, static_shape=True)
times = {}
for batch in batches:
    x = mx.nd.array(np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32))

    def step(x=x):
        net(x).wait_to_read()

    times[batch] = time_passes(step, reps, budget)
features = mx.runtime.Features()
emit(model, times, {"mxnet": mx.__version__, "mkldnn": features.is_enabled("MKLDNN"),
                    "openmp": features.is_enabled("OPENMP"), "blas": blas_info()})
