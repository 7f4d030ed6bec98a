"""Shape, indexing and creation operators: Reshape (with MXNet's special codes), transpose,
slicing, splitting, gathering, tiling, padding, casting, constant tensors.

Every kernel is a numpy view, index or copy over the whole array: no loops over elements.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ...errors import ShapeError, UnsupportedOpError
from .common import check_output_size
from .registry import NUM_ARGS, REQUIRED, OpSpec, at_least, one_of, register

#: dtype names MXNet writes in ``dtype`` attributes.
DTYPES = ("float16", "float32", "float64", "uint8", "int8", "int32", "int64", "bool", "int16", "uint16",
          "uint32", "uint64")
_DTYPE_CHECK = one_of(*DTYPES, "None")


def dtype_of(name: str | None, default: str = "float32") -> np.dtype:
    return np.dtype(default if name in (None, "None") else name)


def _axis(axis: int, ndim: int, op: str, extra: int = 0) -> int:
    """``axis`` normalised to [0, ndim + extra); a ShapeError naming the operator otherwise."""
    limit = ndim + extra
    if not -limit <= axis < limit:
        raise ShapeError(f"{op}: axis {axis} is out of range for {ndim}-D input")
    return axis % limit


def _prod(values) -> int:
    return math.prod(int(v) for v in values)


# -- Reshape ------------------------------------------------------------------------------------


def reshape_shape(src: tuple[int, ...], shape: tuple[int, ...], reverse: bool = False) -> tuple[int, ...]:
    """The output shape of MXNet 1.x ``Reshape``: 0 copies a dim, -1 infers one, -2 copies the rest,
    -3 merges two dims, -4 splits one into the next two values; ``reverse`` reads right to left."""
    if reverse:
        src, shape = src[::-1], _reverse_codes(shape)
    out: list[int] = []
    infer = None
    i = j = 0
    while j < len(shape):
        code = shape[j]
        if code == 0:
            if i >= len(src):
                raise ShapeError(f"Reshape: code 0 at position {j} has no input dimension to copy")
            out.append(src[i])
            i += 1
        elif code == -1:
            if infer is not None:
                raise ShapeError("Reshape: more than one -1")
            infer = len(out)
            out.append(1)
            i += 1
        elif code == -2:
            out.extend(src[i:])
            i = len(src)
        elif code == -3:
            if i + 1 >= len(src):
                raise ShapeError("Reshape: -3 needs two input dimensions")
            out.append(src[i] * src[i + 1])
            i += 2
        elif code == -4:
            if j + 2 >= len(shape) or i >= len(src):
                raise ShapeError("Reshape: -4 must be followed by two values and have an input dimension")
            d1, d2 = shape[j + 1], shape[j + 2]
            if (d1 == -1 and d2 == -1) or d1 < -1 or d2 < -1:
                raise ShapeError("Reshape: -4 split is ill-defined")
            d1 = src[i] // d2 if d1 == -1 else d1
            d2 = src[i] // d1 if d2 == -1 else d2
            if d1 * d2 != src[i]:
                raise ShapeError(f"Reshape: cannot split dimension {src[i]} into ({d1}, {d2})")
            out.extend((d1, d2))
            i += 1
            j += 2
        elif code > 0:
            out.append(code)
            i += 1
        else:
            raise ShapeError(f"Reshape: invalid code {code}")
        j += 1
    total = _prod(src)
    if infer is not None:
        known = _prod(out)
        if known == 0 or total % known:
            raise ShapeError(f"Reshape: cannot infer -1 for input {tuple(src)} into {tuple(shape)}")
        out[infer] = total // known
    if reverse:
        out.reverse()
    if _prod(out) != total:
        raise ShapeError(f"Reshape: input shape {tuple(src[::-1] if reverse else src)} does not fit "
                         f"{tuple(shape)} (gives {tuple(out)})")
    return tuple(out)


def _reverse_codes(shape: tuple[int, ...]) -> tuple[int, ...]:
    """MXNet reverses the codes literally (a -4 then needs its two values before it)."""
    return tuple(shape[::-1])


def reshape(data, *, shape=(), reverse=False, target_shape=(), keep_highest=False):
    if target_shape:
        raise UnsupportedOpError("Reshape with the deprecated target_shape attribute is not supported; use shape")
    return data.reshape(reshape_shape(data.shape, shape, reverse))


def npx_reshape_shape(src: tuple[int, ...], shape: tuple[int, ...], reverse: bool = False) -> tuple[int, ...]:
    """MXNet 2 ``npx.reshape`` codes: -1 infer, -2 copy, -3 drop a size-1 dim, -4 copy the rest,
    -5 merge two dims, -6 split one into the next two values."""
    mapping = {-2: 0, -4: -2, -5: -3, -6: -4}
    src_list = list(src[::-1] if reverse else src)
    codes = list(_reverse_codes(shape) if reverse else shape)
    converted: list[int] = []
    kept: list[int] = []
    i = j = 0
    while j < len(codes):
        code = codes[j]
        if code == -3:
            if i >= len(src_list) or src_list[i] != 1:
                raise ShapeError("reshape: -3 drops a dimension of size 1 only")
            i += 1
        elif code == -6:
            converted.extend((-4, *codes[j + 1:j + 3]))
            kept.append(src_list[i] if i < len(src_list) else 0)
            i += 1
            j += 2
        else:
            converted.append(mapping.get(code, code))
            take = len(src_list) - i if code == -4 else 2 if code == -5 else 1
            kept.extend(src_list[i:i + take])
            i += take
        j += 1
    kept.extend(src_list[i:])
    out = reshape_shape(tuple(kept), tuple(converted))
    return tuple(out[::-1]) if reverse else out


def reshape_like(lhs, rhs, *, lhs_begin=None, lhs_end=None, rhs_begin=None, rhs_end=None):
    def bounds(begin, end, ndim):
        begin = 0 if begin is None else begin % ndim if begin < 0 else begin
        end = ndim if end is None else end % ndim if end < 0 else end
        return begin, end
    lb, le = bounds(lhs_begin, lhs_end, lhs.ndim)
    rb, re_ = bounds(rhs_begin, rhs_end, rhs.ndim)
    shape = lhs.shape[:lb] + rhs.shape[rb:re_] + lhs.shape[le:]
    if _prod(shape) != lhs.size:
        raise ShapeError(f"reshape_like: {lhs.shape} cannot take the shape {shape}")
    return lhs.reshape(shape)


register(OpSpec("Reshape", reshape, {"shape": ("tuple", ()), "reverse": ("bool", False),
                                     "target_shape": ("tuple", ()), "keep_highest": ("bool", False)}),
         "reshape")
register(OpSpec("_npx_reshape", lambda a, *, newshape, reverse=False, order="C":
                a.reshape(npx_reshape_shape(a.shape, newshape, reverse)),
                {"newshape": ("tuple", REQUIRED), "reverse": ("bool", False), "order": ("str", "C", one_of("C"))},
                inputs=lambda attrs: ["a"]))
register(OpSpec("_np_reshape", lambda a, *, newshape, order="C": a.reshape(newshape),
                {"newshape": ("tuple", REQUIRED), "order": ("str", "C", one_of("C"))},
                inputs=lambda attrs: ["a"]), "_npi_reshape")
register(OpSpec("reshape_like", reshape_like,
                {"lhs_begin": ("optint", None), "lhs_end": ("optint", None), "rhs_begin": ("optint", None),
                 "rhs_end": ("optint", None)}, inputs=lambda attrs: ["lhs", "rhs"]), "_npx_reshape_like")

# -- axes -----------------------------------------------------------------------------------------


def transpose(data, *, axes=()):
    if axes and sorted(a % data.ndim for a in axes) != list(range(data.ndim)):
        raise ShapeError(f"transpose: axes {axes} are not a permutation of {data.ndim} dimensions")
    return np.ascontiguousarray(np.transpose(data, axes or None))


def expand_dims(data, *, axis):
    return np.expand_dims(data, _axis(axis, data.ndim, "expand_dims", extra=1))


def squeeze(data, *, axis=None):
    if axis is None:
        return data.reshape([d for d in data.shape if d != 1])
    axes = tuple(_axis(a, data.ndim, "squeeze") for a in axis)
    if any(data.shape[a] != 1 for a in axes):
        raise ShapeError(f"squeeze: dimensions {axes} of {data.shape} are not all 1")
    return np.squeeze(data, axes)


def swapaxes(data, *, dim1=0, dim2=0):
    return np.ascontiguousarray(np.swapaxes(data, _axis(dim1, data.ndim, "swapaxes"),
                                            _axis(dim2, data.ndim, "swapaxes")))


def flip(data, *, axis):
    return np.flip(data, tuple(_axis(a, data.ndim, "reverse") for a in axis)).copy()


register(OpSpec("transpose", transpose, {"axes": ("tuple", ())}), "_npi_transpose", "_np_transpose")
register(OpSpec("expand_dims", expand_dims, {"axis": ("int", REQUIRED)}), "_npi_expand_dims")
register(OpSpec("squeeze", squeeze, {"axis": ("axes", None)}), "_npi_squeeze", "_np_squeeze")
register(OpSpec("SwapAxis", swapaxes, {"dim1": ("int", 0), "dim2": ("int", 0)}), "swapaxes")
register(OpSpec("reverse", flip, {"axis": ("tuple", REQUIRED)}), "flip", "_npi_flip")


def depth_to_space(data, *, block_size):
    n, c, h, w = data.shape
    b = block_size
    if c % (b * b):
        raise ShapeError(f"depth_to_space: {c} channels are not divisible by {b * b}")
    x = data.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    return np.ascontiguousarray(x).reshape(n, c // (b * b), h * b, w * b)


def space_to_depth(data, *, block_size):
    n, c, h, w = data.shape
    b = block_size
    if h % b or w % b:
        raise ShapeError(f"space_to_depth: {h}x{w} is not divisible by {b}")
    x = data.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return np.ascontiguousarray(x).reshape(n, c * b * b, h // b, w // b)


register(OpSpec("depth_to_space", depth_to_space, {"block_size": ("int", REQUIRED, at_least(1))}))
register(OpSpec("space_to_depth", space_to_depth, {"block_size": ("int", REQUIRED, at_least(1))}))

# -- slicing and splitting ------------------------------------------------------------------------


def slice_op(data, *, begin, end, step=()):
    if len(begin) != len(end) or (step and len(step) != len(begin)) or len(begin) > data.ndim:
        raise ShapeError(f"slice: begin {begin}, end {end}, step {step} do not fit input {data.shape}")
    index = tuple(slice(b, e, s) for b, e, s in zip(begin, end, step or (None,) * len(begin)))
    if any(s == 0 for s in step):
        raise ShapeError("slice: step 0")
    return data[index].copy()


def slice_axis(data, *, axis, begin, end=None):
    axis = _axis(axis, data.ndim, "slice_axis")
    index = [slice(None)] * data.ndim
    index[axis] = slice(begin, end)
    return data[tuple(index)].copy()


def slice_like(data, shape_like, *, axes=()):
    index = [slice(None)] * data.ndim
    for axis in (axes or range(min(data.ndim, shape_like.ndim))):
        a = _axis(axis, data.ndim, "slice_like")
        index[a] = slice(0, shape_like.shape[axis])
    return data[tuple(index)].copy()


def split(data, *, num_outputs, axis=1, squeeze_axis=False):
    axis = _axis(axis, data.ndim, "SliceChannel")
    if data.shape[axis] % num_outputs:
        raise ShapeError(f"SliceChannel: dimension {axis} of {data.shape} does not split into {num_outputs}")
    parts = np.split(data, num_outputs, axis=axis)
    return [np.squeeze(p, axis) if squeeze_axis else p.copy() for p in parts]


def split_v2(data, *, indices=(), axis=1, squeeze_axis=False, sections=0):
    axis = _axis(axis, data.ndim, "split")
    cuts = sections if sections > 0 else list(indices[1:] if indices and indices[0] == 0 else indices)
    parts = np.split(data, cuts, axis=axis)
    return [np.squeeze(p, axis) if squeeze_axis else p.copy() for p in parts]


def _split_v2_outputs(attrs):
    if attrs.get("sections", 0) > 0:
        return attrs["sections"]
    indices = attrs.get("indices", ())
    return len(indices) + (0 if indices and indices[0] == 0 else 1)


def crop(*data, num_args=1, offset=(), h_w=(), center_crop=False):
    x = data[0]
    if x.ndim != 4:
        raise ShapeError(f"Crop: input {x.shape} is not 4-D (NCHW)")
    if num_args == 2:
        height, width = data[1].shape[2:4]
    else:
        height, width = ((*tuple(h_w), 0, 0))[:2]
    if center_crop:
        top, left = (x.shape[2] - height) // 2, (x.shape[3] - width) // 2
    else:
        top, left = ((*tuple(offset), 0, 0))[:2]
    if not (top >= 0 and top + height <= x.shape[2] and left >= 0 and left + width <= x.shape[3]) \
            or height <= 0 or width <= 0:
        raise ShapeError(f"Crop: a {height}x{width} window at ({top}, {left}) does not fit input {x.shape}")
    return x[:, :, top:top + height, left:left + width].copy()


register(OpSpec("Crop", crop, {"num_args": ("int", 1, one_of(1, 2)), "offset": ("tuple", (), at_least(0)),
                               "h_w": ("tuple", (), at_least(0)), "center_crop": ("bool", False)},
                inputs=lambda attrs: ["data", "crop_like"] if attrs.get("num_args") == 2 else ["data"]))
register(OpSpec("slice", slice_op, {"begin": ("otuple", REQUIRED), "end": ("otuple", REQUIRED),
                                    "step": ("otuple", ())}), "crop", "_slice", "_npi_slice")
register(OpSpec("slice_axis", slice_axis, {"axis": ("int", REQUIRED), "begin": ("int", REQUIRED),
                                           "end": ("optint", None)}), "_npx_slice_axis")
register(OpSpec("slice_like", slice_like, {"axes": ("tuple", ())}, inputs=lambda attrs: ["data", "shape_like"]),
         "_npx_slice_like")
register(OpSpec("SliceChannel", split, {"num_outputs": ("int", REQUIRED, at_least(1)), "axis": ("int", 1),
                                        "squeeze_axis": ("bool", False)},
                num_outputs=lambda attrs: attrs["num_outputs"]), "split")
register(OpSpec("_split_v2", split_v2, {"indices": ("tuple", ()), "axis": ("int", 1),
                                        "squeeze_axis": ("bool", False), "sections": ("int", 0, at_least(0))},
                num_outputs=_split_v2_outputs), "_npi_split")

# -- gathering --------------------------------------------------------------------------------------


def _indices(index: np.ndarray, size: int, mode: str) -> np.ndarray:
    index = index.astype(np.int64) if index.dtype.kind == "f" else index.astype(np.int64, copy=False)
    if mode == "wrap":
        return np.mod(index, size)
    return np.clip(index, 0, size - 1)


def take(a, indices, *, axis=0, mode="clip"):
    axis = _axis(axis, a.ndim, "take")
    return np.take(a, _indices(indices, a.shape[axis], mode), axis=axis)


def pick(data, index, *, axis=-1, keepdims=False, mode="clip"):
    if axis is None:
        flat = data.reshape(-1)
        return flat[_indices(index, flat.size, mode)].reshape(index.shape)
    axis = _axis(axis, data.ndim, "pick")
    idx = _indices(index, data.shape[axis], mode)
    expected = data.shape[:axis] + data.shape[axis + 1:]
    if idx.shape == expected:
        idx = np.expand_dims(idx, axis)
    elif idx.shape != (*data.shape[:axis], 1, *data.shape[axis + 1:]):
        raise ShapeError(f"pick: index shape {index.shape} does not fit data {data.shape} on axis {axis}")
    out = np.take_along_axis(data, idx, axis=axis)
    return out if keepdims else np.squeeze(out, axis)


def gather_nd(data, indices):
    m = indices.shape[0]
    if m > data.ndim:
        raise ShapeError(f"gather_nd: indices of depth {m} for {data.ndim}-D data")
    idx = indices.astype(np.int64)
    index = tuple(np.clip(np.where(idx[k] < 0, idx[k] + data.shape[k], idx[k]), 0, data.shape[k] - 1)
                  for k in range(m))
    return data[index]


def embedding(data, weight, *, input_dim, output_dim, dtype="float32", sparse_grad=False):
    if weight.shape != (input_dim, output_dim):
        raise ShapeError(f"Embedding: weight shape {weight.shape} is not ({input_dim}, {output_dim})")
    return weight[_indices(data, input_dim, "clip")]


register(OpSpec("take", take, {"axis": ("int", 0), "mode": ("str", "clip", one_of("clip", "wrap", "raise"))},
                inputs=lambda attrs: ["a", "indices"]), "_npi_take")
register(OpSpec("pick", pick, {"axis": ("optint", -1), "keepdims": ("bool", False),
                               "mode": ("str", "clip", one_of("clip", "wrap"))},
                inputs=lambda attrs: ["data", "index"]), "_npx_pick")
register(OpSpec("gather_nd", gather_nd, inputs=lambda attrs: ["data", "indices"]), "_npx_gather_nd")
register(OpSpec("Embedding", embedding, {"input_dim": ("int", REQUIRED, at_least(1)),
                                         "output_dim": ("int", REQUIRED, at_least(1)),
                                         "dtype": ("str", "float32", _DTYPE_CHECK), "sparse_grad": ("bool", False)},
                inputs=lambda attrs: ["data", "weight"]), "_npx_embedding")

# -- tiling, stacking, padding ---------------------------------------------------------------------


def tile(data, *, reps):
    padded = (1,) * (len(reps) - data.ndim) + data.shape if len(reps) > data.ndim else data.shape
    full = (1,) * (len(padded) - len(reps)) + tuple(reps)
    check_output_size([a * b for a, b in zip(padded, full)], "tile")
    return np.tile(data, reps)


def repeat(data, *, repeats, axis=None):
    if axis is not None:
        axis = _axis(axis, data.ndim, "repeat")
    check_output_size([data.size, repeats], "repeat")
    return np.repeat(data, repeats, axis=axis)


def stack(*data, axis=0, num_args=None):
    return np.stack(data, axis=_axis(axis, data[0].ndim, "stack", extra=1))


def concat_np(*data, axis=0, dim=None, num_args=None):
    if axis is None:
        return np.concatenate([d.reshape(-1) for d in data])
    return np.concatenate(data, axis=axis)


def pad(data, *, mode="constant", pad_width, constant_value=0.0):
    if len(pad_width) != 2 * data.ndim:
        raise ShapeError(f"Pad: pad_width {pad_width} needs {2 * data.ndim} values for {data.ndim}-D input")
    pairs = [(pad_width[2 * i], pad_width[2 * i + 1]) for i in range(data.ndim)]
    check_output_size([d + b + a for d, (b, a) in zip(data.shape, pairs)], "Pad")
    if any(p != (0, 0) for p in pairs[:2]):
        raise ShapeError(f"Pad: only the spatial axes can be padded (pad_width {pad_width})")
    if mode == "constant":
        return np.pad(data, pairs, mode="constant", constant_values=data.dtype.type(constant_value))
    if mode == "reflect" and any(p >= size for (b, a), size in zip(pairs, data.shape) for p in (b, a)):
        raise ShapeError(f"Pad: reflect padding {pad_width} must be smaller than the input {data.shape}")
    return np.pad(data, pairs, mode=mode)


def cumsum(a, *, axis=None, dtype="None"):
    out = np.cumsum(a.reshape(-1) if axis is None else a, axis=0 if axis is None else _axis(axis, a.ndim, "cumsum"))
    return out.astype(a.dtype if dtype in (None, "None") else dtype_of(dtype), copy=False)


register(OpSpec("_np_cumsum", cumsum, {"axis": ("optint", None), "dtype": ("str", "None", _DTYPE_CHECK)},
                inputs=lambda attrs: ["a"]), "_npi_cumsum", "cumsum")


def _variadic(attrs):
    return [f"arg{i}" for i in range(attrs.get("num_args") or 0)]


register(OpSpec("tile", tile, {"reps": ("tuple", REQUIRED, at_least(0))}), "_npi_tile")
register(OpSpec("repeat", repeat, {"repeats": ("int", REQUIRED, at_least(0)), "axis": ("optint", None)}),
         "_npi_repeats")
register(OpSpec("stack", stack, {"axis": ("int", 0), "num_args": ("optint", None, NUM_ARGS)},
                inputs=_variadic, variadic=True), "_npi_stack")
register(OpSpec("_npi_concatenate", concat_np, {"axis": ("optint", 0), "dim": ("optint", None),
                                                "num_args": ("optint", None, NUM_ARGS)},
                inputs=_variadic, variadic=True))
register(OpSpec("Pad", pad, {"mode": ("str", "constant", one_of("constant", "edge", "reflect")),
                             "pad_width": ("tuple", REQUIRED, at_least(0)), "constant_value": ("float", 0.0)}),
         "pad")

# -- broadcasting -------------------------------------------------------------------------------------


def broadcast_to(data, *, shape):
    if len(shape) != data.ndim:
        raise ShapeError(f"broadcast_to: shape {shape} has a different rank than input {data.shape}")
    target = tuple(d if s == 0 else s for d, s in zip(data.shape, shape))
    check_output_size(target, "broadcast_to")
    return np.broadcast_to(data, target).copy()


def broadcast_axis(data, *, axis=(), size=()):
    if len(axis) != len(size):
        raise ShapeError(f"broadcast_axis: {len(axis)} axes but {len(size)} sizes")
    target = list(data.shape)
    for a, s in zip(axis, size):
        target[_axis(a, data.ndim, "broadcast_axis")] = s
    check_output_size(target, "broadcast_axis")
    return np.broadcast_to(data, target).copy()


def broadcast_like(lhs, rhs, *, lhs_axes=None, rhs_axes=None):
    if lhs_axes is None:
        return np.broadcast_to(lhs, rhs.shape).copy()
    target = list(lhs.shape)
    for a, b in zip(lhs_axes, rhs_axes or ()):
        target[_axis(a, lhs.ndim, "broadcast_like")] = rhs.shape[b]
    return np.broadcast_to(lhs, target).copy()


register(OpSpec("broadcast_to", broadcast_to, {"shape": ("tuple", REQUIRED, at_least(0))}), "_npi_broadcast_to")
register(OpSpec("broadcast_axis", broadcast_axis, {"axis": ("tuple", ()), "size": ("tuple", (), at_least(1))}),
         "broadcast_axes")
register(OpSpec("broadcast_like", broadcast_like, {"lhs_axes": ("axes", None), "rhs_axes": ("axes", None)},
                inputs=lambda attrs: ["lhs", "rhs"]))

# -- identity, casting, shape arrays, constants ----------------------------------------------------


def cast(data, *, dtype):
    return data.astype(dtype_of(dtype))


register(OpSpec("Cast", cast, {"dtype": ("str", REQUIRED, one_of(*DTYPES))}), "cast", "amp_cast")
register(OpSpec("_npi_astype", lambda data, *, dtype, copy=True: data.astype(dtype_of(dtype)),
                {"dtype": ("str", REQUIRED, one_of(*DTYPES)), "copy": ("bool", True)}))
register(OpSpec("BlockGrad", lambda data: data), "stop_gradient", "_npi_stop_gradient")
register(OpSpec("MakeLoss", lambda data, **_: data,
                {"grad_scale": ("float", 1.0), "valid_thresh": ("float", 0.0), "normalization": ("str", "null")}),
         "make_loss")
def _filled_like(value: int) -> Callable[..., np.ndarray]:
    def like(data, *, dtype="None"):  # GluonCV's CenterNet decoder passes dtype='int64'
        return np.full(data.shape, value, data.dtype if dtype in (None, "None") else dtype_of(dtype))
    return like


register(OpSpec("zeros_like", _filled_like(0), {"dtype": ("str", "None", _DTYPE_CHECK)}),
         "_npi_zeros_like", "_np_zeros_like")
register(OpSpec("ones_like", _filled_like(1), {"dtype": ("str", "None", _DTYPE_CHECK)}),
         "_npi_ones_like", "_np_ones_like")
register(OpSpec("shape_array", lambda data: np.array(data.shape, np.int64)), "_npx_shape_array", "_np_shape")
register(OpSpec("size_array", lambda data: np.array([data.size], np.int64)))


def arange(*, start, stop=None, step=1.0, repeat=1, infer_range=False, ctx="", dtype="float32"):
    if stop is None:
        start, stop = 0.0, start
    if step == 0:
        raise ShapeError("_arange: step 0")
    count = max(0, math.ceil((stop - start) / step))
    check_output_size([count, repeat], "_arange")
    values = start + step * np.arange(count, dtype=np.float64)
    return np.repeat(values, repeat).astype(dtype_of(dtype))


def arange_like(data, *, start=0.0, step=1.0, repeat=1, ctx="", axis=None):
    count = data.size if axis is None else data.shape[_axis(axis, data.ndim, "arange_like")]
    values = start + step * np.arange(-(-count // repeat), dtype=np.float64)
    out = np.repeat(values, repeat)[:count].astype(data.dtype)
    return out.reshape(data.shape) if axis is None else out


def _constant(fill):
    def kernel(*, shape=(), ctx="", dtype="float32", value=None):
        check_output_size(shape, "constant")
        return np.full(shape, fill if value is None else value, dtype_of(dtype))
    return kernel


register(OpSpec("_arange", arange, {"start": ("float", REQUIRED), "stop": ("optfloat", None), "step": ("float", 1.0),
                                    "repeat": ("int", 1, at_least(1)), "infer_range": ("bool", False),
                                    "ctx": ("str", ""), "dtype": ("str", "float32", _DTYPE_CHECK)},
                inputs=lambda attrs: []), "_npi_arange")
register(OpSpec("_contrib_arange_like", arange_like,
                {"start": ("float", 0.0), "step": ("float", 1.0), "repeat": ("int", 1, at_least(1)),
                 "ctx": ("str", ""), "axis": ("optint", None)}), "_npx_arange_like")
_SHAPE_ATTRS = {"shape": ("tuple", (), at_least(0)), "ctx": ("str", ""), "dtype": ("str", "float32", _DTYPE_CHECK)}
register(OpSpec("_zeros", _constant(0), dict(_SHAPE_ATTRS), inputs=lambda attrs: []), "_npi_zeros")
register(OpSpec("_ones", _constant(1), dict(_SHAPE_ATTRS), inputs=lambda attrs: []), "_npi_ones")
register(OpSpec("_full", _constant(0), {**_SHAPE_ATTRS, "value": ("float", REQUIRED)}, inputs=lambda attrs: []),
         "_npi_full")
