"""Converters: reshaping, slicing, concatenation, padding, tiling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    pass

from .builder import _INT64_MAX, _INT64_MIN, _Ctx, converts

# -- converters: shapes ----------------------------------------------------------------------------

@converts("Flatten")
def _flatten(c: _Ctx) -> str:
    return c.add("Flatten", c.inputs, axis=1)


@converts("Reshape", "reshape_like", "_npx_reshape", "_np_reshape", "_npi_reshape")
def _reshape(c: _Ctx) -> str:
    return c.add("Reshape", [c.inputs[0], c.ints(c.target_shape(), "shape")])


@converts("expand_dims")
def _expand_dims(c: _Ctx) -> str:
    axis = int(c.attrs["axis"]) % (len(c.shapes[0]) + 1)
    return c.add("Unsqueeze", [c.inputs[0], c.ints([axis], "axes")])


@converts("squeeze")
def _squeeze(c: _Ctx) -> str:
    axis = c.attrs.get("axis")
    if axis in (None, ()):
        axes = [i for i, d in enumerate(c.shapes[0]) if d == 1]
        if axes and axes[0] == 0 and c.exporter.dynamic_batch:
            raise c.unsupported("it squeezes every axis of size 1, the batch axis too: the output's rank "
                                "depends on the batch size; export with a fixed batch size")
    else:
        axes = [int(a) % len(c.shapes[0]) for a in (axis if isinstance(axis, (tuple, list)) else (axis,))]
    return c.add("Squeeze", [c.inputs[0], c.ints(axes, "axes")])


@converts("transpose")
def _transpose(c: _Ctx) -> str:
    axes = c.attrs.get("axes") or ()
    perm = [int(a) % len(c.shapes[0]) for a in axes] if axes else list(reversed(range(len(c.shapes[0]))))
    return c.add("Transpose", c.inputs, perm=perm)


@converts("SwapAxis", "swapaxes")
def _swap_axis(c: _Ctx) -> str:
    rank = len(c.shapes[0])
    perm = list(range(rank))
    d1, d2 = int(c.attrs.get("dim1", 0)) % rank, int(c.attrs.get("dim2", 0)) % rank
    perm[d1], perm[d2] = perm[d2], perm[d1]
    return c.add("Transpose", c.inputs, perm=perm)


@converts("Concat")
def _concat(c: _Ctx) -> str:
    return c.add("Concat", c.inputs, axis=int(c.attrs.get("dim", 1)))


@converts("stack")
def _stack(c: _Ctx) -> str:
    axis = int(c.attrs.get("axis", 0)) % (len(c.shapes[0]) + 1)
    axes = c.ints([axis], "axes")
    parts = [c.add("Unsqueeze", [x, axes], f"/u{i}") for i, x in enumerate(c.inputs)]
    return c.add("Concat", parts, axis=axis)


@converts("SliceChannel", "split")
def _split(c: _Ctx) -> list[str]:
    a = c.attrs
    n = int(a["num_outputs"])
    axis = int(a.get("axis", 1)) % len(c.shapes[0])
    parts = c.add("Split", c.inputs[:1], "/split", outputs=n, axis=axis, num_outputs=n)
    parts = parts if isinstance(parts, list) else [parts]
    if a.get("squeeze_axis"):
        axes = c.ints([axis], "axes")
        return [c.add("Squeeze", [p, axes], f"/sq{i}") for i, p in enumerate(parts)]
    return [c.add("Identity", [p], f":{i}" if i else "") for i, p in enumerate(parts)]


def _slice(c: _Ctx, begins: Sequence[Any], ends: Sequence[Any], steps: Sequence[Any], axes: Sequence[int]) -> str:
    starts, stops, strides = [], [], []
    for b, e, s in zip(begins, ends, steps):
        s = 1 if s is None else int(s)
        if s == 0:
            raise c.unsupported("a slice step of 0")
        starts.append((0 if s > 0 else _INT64_MAX) if b is None else int(b))
        stops.append((_INT64_MAX if s > 0 else _INT64_MIN) if e is None else int(e))
        strides.append(s)
    return c.add("Slice", [c.inputs[0], c.ints(starts, "starts"), c.ints(stops, "ends"), c.ints(list(axes), "axes"),
                           c.ints(strides, "steps")])


def _optional_tuple(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        import ast
        value = ast.literal_eval(value)
    return list(value) if isinstance(value, (tuple, list)) else [value]


@converts("slice", "crop")
def _slice_op(c: _Ctx) -> str:
    begin, end = _optional_tuple(c.attrs.get("begin")), _optional_tuple(c.attrs.get("end"))
    step = _optional_tuple(c.attrs.get("step")) or [None] * len(begin)
    step = step + [None] * (len(begin) - len(step))
    return _slice(c, begin, end, step, range(len(begin)))


@converts("slice_axis")
def _slice_axis(c: _Ctx) -> str:
    a = c.attrs
    return _slice(c, [a.get("begin", 0)], [a.get("end")], [1], [int(a["axis"]) % len(c.shapes[0])])


@converts("slice_like")
def _slice_like(c: _Ctx) -> str:
    axes = _optional_tuple(c.attrs.get("axes")) or list(range(len(c.shapes[1])))
    axes = [int(a) % len(c.shapes[0]) for a in axes]
    ends = c.add("Gather", [c.add("Shape", [c.inputs[1]], "/like_shape"), c.ints(axes, "axes_idx")], "/ends", axis=0)
    return c.add("Slice", [c.inputs[0], c.ints([0] * len(axes), "starts"), ends, c.ints(axes, "axes")])


@converts("reverse", "flip")
def _reverse(c: _Ctx) -> str:
    axes = [int(a) % len(c.shapes[0]) for a in _optional_tuple(c.attrs.get("axis"))]
    return _slice(c, [None] * len(axes), [None] * len(axes), [-1] * len(axes), axes)


@converts("tile")
def _tile(c: _Ctx) -> str:
    reps = list(c.attrs["reps"])
    rank = len(c.shapes[0])
    x = c.inputs[0]
    if len(reps) > rank:
        x = c.add("Unsqueeze", [x, c.ints(list(range(len(reps) - rank)), "lifted")], "/lift")
        rank = len(reps)
    reps = [1] * (rank - len(reps)) + reps
    return c.add("Tile", [x, c.ints(reps, "reps")])


@converts("repeat")
def _repeat(c: _Ctx) -> str:
    repeats = int(c.attrs["repeats"])
    axis = c.attrs.get("axis")
    x = c.inputs[0]
    if axis is None:
        x = c.add("Reshape", [x, c.ints([-1], "flat")], "/flat")
        axis, rank = 0, 1
    else:
        rank = len(c.shapes[0])
        axis = int(axis) % rank
    lifted = c.add("Unsqueeze", [x, c.ints([axis + 1], "axes")], "/lift")
    reps = [1] * (rank + 1)
    reps[axis + 1] = repeats
    tiled = c.add("Tile", [lifted, c.ints(reps, "reps")], "/tile")
    return c.add("Reshape", [tiled, c.ints(c.target_shape(), "shape")])


@converts("broadcast_to")
def _broadcast_to(c: _Ctx) -> str:
    shape = [1 if d == 0 else int(d) for d in c.attrs["shape"]]
    return c.add("Expand", [c.inputs[0], c.ints(shape, "shape")])


@converts("broadcast_axis", "broadcast_axes")
def _broadcast_axis(c: _Ctx) -> str:
    axes = _optional_tuple(c.attrs.get("axis"))
    sizes = _optional_tuple(c.attrs.get("size"))
    shape = [1] * len(c.shapes[0])
    for axis, size in zip(axes, sizes):
        shape[int(axis) % len(shape)] = int(size)
    return c.add("Expand", [c.inputs[0], c.ints(shape, "shape")])


@converts("broadcast_like")
def _broadcast_like(c: _Ctx) -> str:
    if c.attrs.get("lhs_axes") or c.attrs.get("rhs_axes"):
        raise c.unsupported("lhs_axes/rhs_axes")
    return c.add("Expand", [c.inputs[0], c.add("Shape", [c.inputs[1]], "/like_shape")])


@converts("Pad", "pad")
def _pad(c: _Ctx) -> str:
    a = c.attrs
    mode = a.get("mode", "constant")
    width = list(a["pad_width"])
    begins, ends = width[0::2], width[1::2]
    table = {"constant": "constant", "edge": "edge", "reflect": "reflect"}
    if mode not in table:
        raise c.unsupported(f"mode {mode}")
    inputs = [c.inputs[0], c.ints(begins + ends, "pads")]
    if mode == "constant":
        inputs.append(c.scalar(float(a.get("constant_value", 0.0)), "value"))
    return c.add("Pad", inputs, mode=table[mode])


def _dynamic_sizes(c: _Ctx, data: str) -> str:
    """Resize ``sizes``: the input's batch and channels, and the static spatial output size."""
    head = c.add("Slice", [c.add("Shape", [data], "/shape"), c.ints([0], "zero"), c.ints([2], "two")], "/nc")
    return c.add("Concat", [head, c.ints(list(c.out_shapes[0][2:]), "hw")], "/sizes", axis=0)


@converts("UpSampling")
def _upsampling(c: _Ctx) -> str:
    a = c.attrs
    kind = a.get("sample_type", "nearest")
    scale = int(a["scale"])
    if kind == "nearest":
        height, width = c.shapes[0][2] * scale, c.shapes[0][3] * scale
        outs = []
        for i, (x, shape) in enumerate(zip(c.inputs, c.shapes)):
            sy, sx = height // shape[2], width // shape[3]
            scales = c.const(np.asarray([1, 1, sy, sx], np.float32), f"scales{i}")
            outs.append(c.add("Resize", [x, "", scales], f"/up{i}" if len(c.inputs) > 1 else "", mode="nearest",
                              coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
        if len(outs) == 1:
            return outs[0]
        if c.attrs.get("multi_input_mode", "concat") == "sum":
            return c.add("Sum", outs)
        return c.add("Concat", outs, axis=1)
    if kind == "bilinear":  # a grouped transposed convolution with the given (bilinear) weight
        kernel = 2 * scale - scale % 2
        pad = -(-(scale - 1) // 2)
        groups = int(a.get("num_filter", c.shapes[0][1]))
        return c.add("ConvTranspose", c.inputs[:2], kernel_shape=[kernel, kernel], strides=[scale, scale],
                     pads=[pad, pad, pad, pad], group=groups)
    raise c.unsupported(f"sample_type {kind}")


@converts("_contrib_BilinearResize2D", "_npx_bilinear_resize2d")
def _bilinear_resize(c: _Ctx) -> str:
    align = c.attrs.get("align_corners", True)
    sizes = _dynamic_sizes(c, c.inputs[0])
    return c.add("Resize", [c.inputs[0], "", "", sizes], mode="linear",
                 coordinate_transformation_mode="align_corners" if align else "half_pixel")


@converts("depth_to_space")
def _depth_to_space(c: _Ctx) -> str:
    return c.add("DepthToSpace", c.inputs, blocksize=int(c.attrs["block_size"]), mode="DCR")


@converts("space_to_depth")
def _space_to_depth(c: _Ctx) -> str:
    return c.add("SpaceToDepth", c.inputs, blocksize=int(c.attrs["block_size"]))
