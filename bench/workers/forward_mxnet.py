"""Worker (MXNet's interpreter): Gluon model-zoo forward passes, hybridized with static_alloc; see timing.py."""

import sys

import mxnet as mx
import numpy as np
from timing import blas_info, serve

net = mx.gluon.model_zoo.vision.get_model(sys.argv[1], classes=1000)
net.initialize(mx.init.Xavier())
net.hybridize(static_alloc=True, static_shape=True)


def make_step(batch):
    x = mx.nd.array(np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32))

    def step():
        out = net(x)
        out.wait_to_read()
        return out
    return step, (lambda out: {})


features = mx.runtime.Features()
serve({"mxnet": mx.__version__, "mkldnn": features.is_enabled("MKLDNN"), "openmp": features.is_enabled("OPENMP"),
       "blas": blas_info()}, make_step)
