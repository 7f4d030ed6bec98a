"""Normalisation operators other than BatchNorm (in :mod:`.nn`): InstanceNorm, LayerNorm,
GroupNorm and L2Normalization, at inference, statistics in float32 or wider."""

from __future__ import annotations

import numpy as np

from ...errors import ShapeError
from .registry import OpSpec, at_least, between, one_of, register


def _compute(data: np.ndarray) -> np.dtype:
    return np.promote_types(data.dtype, np.float32)


def _normalise(x: np.ndarray, axes: tuple[int, ...], eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    var = np.mean(np.square(centred), axis=axes, keepdims=True)
    std = np.sqrt(var + x.dtype.type(eps))
    return centred / std, mean, std


def instance_norm(data, gamma, beta, *, eps=1e-3):
    if data.ndim < 3:
        raise ShapeError(f"InstanceNorm: input {data.shape} needs at least 3 dimensions (N, C, ...)")
    x = data.astype(_compute(data), copy=False)
    out, _, _ = _normalise(x, tuple(range(2, data.ndim)), eps)
    shape = (1, -1) + (1,) * (data.ndim - 2)
    return (out * gamma.reshape(shape) + beta.reshape(shape)).astype(data.dtype, copy=False)


def layer_norm(data, gamma, beta, *, axis=-1, eps=1e-5, output_mean_var=False):
    if not -data.ndim <= axis < data.ndim:
        raise ShapeError(f"LayerNorm: axis {axis} is out of range for {data.ndim}-D input")
    axis %= data.ndim
    x = data.astype(_compute(data), copy=False)
    out, mean, std = _normalise(x, (axis,), eps)
    shape = [1] * data.ndim
    shape[axis] = -1
    out = (out * gamma.reshape(shape) + beta.reshape(shape)).astype(data.dtype, copy=False)
    if output_mean_var:
        return [out, mean.astype(data.dtype), std.astype(data.dtype)]
    return out


def group_norm(data, gamma, beta, *, num_groups=1, eps=1e-5, output_mean_var=False):
    """MXNet 1.x learns one gamma/beta per group; MXNet 2 one per channel: both sizes are accepted."""
    n, c = data.shape[:2]
    if c % num_groups:
        raise ShapeError(f"GroupNorm: {c} channels are not divisible into {num_groups} groups")
    x = data.astype(_compute(data), copy=False).reshape(n, num_groups, c // num_groups, *data.shape[2:])
    out, mean, std = _normalise(x, tuple(range(2, x.ndim)), eps)
    tail = (1,) * (data.ndim - 2)
    if gamma.size == num_groups and beta.size == num_groups:
        out = out * gamma.reshape(1, num_groups, 1, *tail) + beta.reshape(1, num_groups, 1, *tail)
        out = out.reshape(data.shape)
    elif gamma.size == c and beta.size == c:
        out = out.reshape(data.shape) * gamma.reshape(1, c, *tail) + beta.reshape(1, c, *tail)
    else:
        raise ShapeError(f"GroupNorm: gamma/beta of sizes {gamma.size}/{beta.size} fit neither "
                         f"{num_groups} groups nor {c} channels")
    out = out.astype(data.dtype, copy=False)
    if output_mean_var:
        return [out, mean.reshape(n, num_groups).astype(data.dtype), std.reshape(n, num_groups).astype(data.dtype)]
    return out


def l2_normalization(data, *, eps=1e-10, mode="instance"):
    if mode == "instance":
        axes = tuple(range(1, data.ndim))
    elif mode == "channel":
        axes = (1,)
    else:
        axes = tuple(range(2, data.ndim))
    if data.ndim < (3 if mode == "spatial" else 2):
        raise ShapeError(f"L2Normalization: {mode} mode needs more dimensions than input {data.shape}")
    x = data.astype(_compute(data), copy=False)
    norm = np.sqrt(np.sum(np.square(x), axis=axes, keepdims=True) + x.dtype.type(eps))
    return (x / norm).astype(data.dtype, copy=False)


_NORM_INPUTS = lambda attrs: ["data", "gamma", "beta"]
register(OpSpec("InstanceNorm", instance_norm, {"eps": ("float", 1e-3, at_least(0))}, inputs=_NORM_INPUTS),
         "_npx_instance_norm")
register(OpSpec("LayerNorm", layer_norm, {"axis": ("int", -1, between(-8, 7)), "eps": ("float", 1e-5, at_least(0)),
                                          "output_mean_var": ("bool", False)},
                inputs=_NORM_INPUTS, num_outputs=lambda attrs: 3 if attrs["output_mean_var"] else 1),
         "_npx_layer_norm")
register(OpSpec("GroupNorm", group_norm, {"num_groups": ("int", 1, at_least(1)), "eps": ("float", 1e-5, at_least(0)),
                                          "output_mean_var": ("bool", False)},
                inputs=_NORM_INPUTS, num_outputs=lambda attrs: 3 if attrs["output_mean_var"] else 1),
         "_npx_group_norm")
register(OpSpec("L2Normalization", l2_normalization,
                {"eps": ("float", 1e-10, at_least(0)),
                 "mode": ("str", "instance", one_of("instance", "channel", "spatial"))}),
         "_npx_l2_normalization")
