"""The operators: a registry of numpy kernels by MXNet operator name (:mod:`.registry`), and one
module per kernel family, each registering its own operators when imported."""

from . import conv, nn  # noqa: I001 - nn adds the attribute ranges of conv's Convolution
from . import deconv, elemwise, norm, reduce, resize, shape
from . import detection
from .conv import conv_output_shape, convolution, convolution_batch_norm
from .nn import ACTIVATIONS, activation, batch_norm, fully_connected, pooling, softmax
from .registry import REQUIRED, OpSpec, get, invoke, register, supported, supported_spec

__all__ = ["ACTIVATIONS", "REQUIRED", "OpSpec", "activation", "batch_norm", "conv", "conv_output_shape",
           "convolution", "convolution_batch_norm", "deconv", "detection", "elemwise", "fully_connected", "get",
           "invoke", "nn", "norm", "pooling", "reduce", "register", "resize", "shape", "softmax", "supported",
           "supported_spec"]
