"""Inference fusion for eager forward passes: ``Conv2D -> BatchNorm (-> relu)`` as one step.

Sequential containers ask :func:`run_fused` before running each child. When the child is a
plain ``Conv2D`` followed by a ``BatchNorm`` over channels (and optionally a ReLU), on a
float32 numpy input with every parameter initialised (or awaiting a deferred initialisation,
finished here: the first call is fused like every later one), the three run as one folded
convolution (:func:`modelsurgeon.core.engine.ops.convolution_batch_norm`): one pass over the output
instead of three. Tracing, other dtypes and anything unusual take the ordinary path, so
exported graphs and deferred initialisation are untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import ops, symbol
from ..block import Block
from .basic_layers import Activation, BatchNorm
from .conv_layers import Conv2D


def run_fused(children: Sequence[Block], index: int, x: Any) -> tuple[np.ndarray, int] | None:
    """(output, index of the next child to run) when children ``index``.. can run fused; else None."""
    if index + 1 >= len(children) or not isinstance(x, np.ndarray) or x.dtype != np.float32:
        return None
    conv, norm = children[index], children[index + 1]
    if type(conv) is not Conv2D or type(norm) is not BatchNorm or conv.act is not None or norm._axis != 1:
        return None
    if symbol.active_trace() is not None:
        return None
    params = [conv.weight, norm.gamma, norm.beta, norm.running_mean, norm.running_var]
    if conv.bias is not None:
        params.append(conv.bias)
    if not all(p.is_initialized or p._deferred is not None for p in params):
        return None
    # The first call also runs fused (finishing a deferred initialisation first, in the order the
    # unfused layers would), so every call of a model gives the same bits.
    conv._prepare(x)
    norm._prepare(np.empty((0, conv.weight.dims[0], 0, 0), np.float32))
    if not all(p.dtype == np.float32 for p in params):
        return None
    following = children[index + 2] if index + 2 < len(children) else None
    relu = type(following) is Activation and following._act_type == "relu"
    out = ops.convolution_batch_norm(
        x, conv.weight.data(), conv.bias.data() if conv.bias is not None else None, norm.gamma.data(),
        norm.beta.data(), norm.running_mean.data(), norm.running_var.data(),
        conv={"kernel": conv._kernel, "stride": conv._strides, "dilate": conv._dilation, "pad": conv._padding,
              "num_filter": conv._channels, "num_group": conv._groups},
        eps=norm._epsilon, fix_gamma=not norm._scale, relu=relu)
    _seen(conv, x)
    _seen(norm, out)
    if relu and following is not None:
        _seen(following, out)
    return out, index + (3 if relu else 2)


def _seen(block: Block, x: np.ndarray) -> None:
    """Record the input a skipped ``__call__`` would have (``export`` without inputs uses it)."""
    object.__setattr__(block, "_input_specs", [(x.shape, x.dtype)])
