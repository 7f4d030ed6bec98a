"""A small functional namespace, so ``mx.nd.relu(x)`` ports as ``nd.relu(x)``.

Every function works on numpy arrays and, inside a traced forward pass, on Symbols (the call
then becomes a graph node). Operator-named functions (``FullyConnected``, ``Convolution``...)
take MXNet's attribute names.

>>> import numpy as np
>>> relu(np.array([-1.0, 2.0]))
array([0., 2.])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .ops import ACTIVATIONS, invoke


def _attrs(**kwargs: Any) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is not None}


def relu(x: Any) -> Any:
    return invoke("relu", [x])


def sigmoid(x: Any) -> Any:
    return invoke("sigmoid", [x])


def tanh(x: Any) -> Any:
    return invoke("tanh", [x])


def softsign(x: Any) -> Any:
    return invoke("softsign", [x])


def softrelu(x: Any) -> Any:
    return invoke("Activation", [x], {"act_type": "softrelu"})


def softmax(x: Any, axis: int = -1) -> Any:
    return invoke("softmax", [x], {"axis": axis})


def Activation(x: Any, act_type: str) -> Any:
    return invoke("Activation", [x], {"act_type": act_type})


def FullyConnected(x: Any, weight: Any, bias: Any = None, *, num_hidden: int, no_bias: bool = False,
                   flatten: bool = True) -> Any:
    return invoke("FullyConnected", [x, weight, None if no_bias else bias],
                  {"num_hidden": num_hidden, "no_bias": no_bias, "flatten": flatten})


def Convolution(x: Any, weight: Any, bias: Any = None, *, kernel: tuple[int, ...], num_filter: int,
                stride: tuple[int, ...] = (1, 1), dilate: tuple[int, ...] = (1, 1),
                pad: tuple[int, ...] = (0, 0), num_group: int = 1, no_bias: bool = False,
                layout: str = "NCHW") -> Any:
    return invoke("Convolution", [x, weight, None if no_bias else bias],
                  {"kernel": tuple(kernel), "stride": tuple(stride), "dilate": tuple(dilate),
                   "pad": tuple(pad), "num_filter": num_filter, "num_group": num_group,
                   "no_bias": no_bias, "layout": layout})


def Pooling(x: Any, *, kernel: tuple[int, ...] = (1, 1), pool_type: str = "max",
            stride: tuple[int, ...] = (1, 1), pad: tuple[int, ...] = (0, 0), global_pool: bool = False,
            pooling_convention: str = "valid", count_include_pad: bool | None = None,
            layout: str | None = None) -> Any:
    return invoke("Pooling", [x], _attrs(
        kernel=tuple(kernel), pool_type=pool_type, stride=tuple(stride), pad=tuple(pad),
        global_pool=global_pool, pooling_convention=pooling_convention,
        count_include_pad=count_include_pad, layout=layout))


def BatchNorm(x: Any, gamma: Any, beta: Any, moving_mean: Any, moving_var: Any, *,
              eps: float = 1e-3, momentum: float = 0.9, fix_gamma: bool = True,
              use_global_stats: bool = False, axis: int = 1) -> Any:
    return invoke("BatchNorm", [x, gamma, beta, moving_mean, moving_var],
                  {"eps": eps, "momentum": momentum, "fix_gamma": fix_gamma,
                   "use_global_stats": use_global_stats, "axis": axis})


def Dropout(x: Any, p: float = 0.5, axes: tuple[int, ...] = ()) -> Any:
    return invoke("Dropout", [x], {"p": p, "axes": tuple(axes)})


def Flatten(x: Any) -> Any:
    return invoke("Flatten", [x])


def concat(*arrays: Any, dim: int = 1) -> Any:
    return invoke("Concat", list(arrays), {"dim": dim, "num_args": len(arrays)})


def add(lhs: Any, rhs: Any) -> Any:
    return invoke("elemwise_add", [lhs, rhs])


flatten = Flatten


def zeros(shape: Any, dtype: Any = np.float32) -> np.ndarray:
    return np.zeros(shape, dtype)


def ones(shape: Any, dtype: Any = np.float32) -> np.ndarray:
    return np.ones(shape, dtype)


def array(data: Any, dtype: Any = np.float32) -> np.ndarray:
    return np.asarray(data, dtype)


def random_uniform(low: float = 0.0, high: float = 1.0, shape: Any = (1,), dtype: Any = np.float32) -> np.ndarray:
    from . import random
    return random.generator().uniform(low, high, shape).astype(dtype)


__all__ = [
    "ACTIVATIONS",
    "Activation",
    "BatchNorm",
    "Convolution",
    "Dropout",
    "Flatten",
    "FullyConnected",
    "Pooling",
    "add",
    "array",
    "concat",
    "flatten",
    "ones",
    "random_uniform",
    "relu",
    "sigmoid",
    "softmax",
    "softrelu",
    "softsign",
    "tanh",
    "zeros",
]
