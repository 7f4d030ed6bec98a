"""Converters: softmax, reductions, sorting and indexing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    pass

from .builder import Converter, _Ctx, _onnx_dtype, converts
from .shapes import _optional_tuple

# -- converters: softmax, reductions, indexing ----------------------------------------------------

def _tempered(c: _Ctx) -> str:
    t = c.attrs.get("temperature")
    if t in (None, 1.0):
        return c.inputs[0]
    return c.add("Div", [c.inputs[0], c.scalar(float(t), "temperature")], "/tempered")


def _softmax_family(onnx_op: str) -> Converter:
    def convert(c: _Ctx) -> str:
        if c.attrs.get("use_length"):
            raise c.unsupported("use_length=True (ONNX has no masked softmax)")
        axis = int(c.attrs.get("axis", -1))
        if c.out_dtypes[0] == c.dtypes[0]:
            return c.add(onnx_op, [_tempered(c)], axis=axis)
        return c.cast_to_output(c.add(onnx_op, [_tempered(c)], f"/{onnx_op.lower()}", axis=axis), suffix="")
    return convert


converts("softmax")(_softmax_family("Softmax"))
converts("log_softmax")(_softmax_family("LogSoftmax"))


@converts("SoftmaxActivation")
def _softmax_activation(c: _Ctx) -> str:
    return c.add("Softmax", c.inputs, axis=1 if c.attrs.get("mode", "instance") == "channel" else -1)


@converts("SoftmaxOutput", "Softmax")
def _softmax_output(c: _Ctx) -> str:  # inference: the label input plays no part
    return c.add("Softmax", c.inputs[:1], axis=1 if c.attrs.get("multi_output") else -1)


def _reduce_axes(c: _Ctx) -> list[int]:
    rank = len(c.shapes[0])
    axes = _optional_tuple(c.attrs.get("axis"))
    axes = [int(a) % rank for a in axes] if axes else list(range(rank))
    if c.attrs.get("exclude"):
        axes = [i for i in range(rank) if i not in axes]
    return axes


def _reduction(onnx_op: str) -> Converter:
    def convert(c: _Ctx) -> str:
        keep = 1 if c.attrs.get("keepdims") else 0
        axes = _reduce_axes(c)
        rank = len(c.shapes[0]) if keep else len(c.shapes[0]) - len(axes)
        if rank == len(c.out_shapes[0]):
            return c.add(onnx_op, [c.inputs[0], c.ints(axes, "axes")], keepdims=keep)
        out = c.add(onnx_op, [c.inputs[0], c.ints(axes, "axes")], "/reduce", keepdims=keep)
        return c.add("Reshape", [out, c.ints(c.target_shape(), "shape")])  # MXNet gives (1,), not a scalar
    return convert


for _mx, _onnx_op in {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax", "min": "ReduceMin",
                      "prod": "ReduceProd", "nansum": "ReduceSum", "sum_axis": "ReduceSum",
                      "max_axis": "ReduceMax", "min_axis": "ReduceMin"}.items():
    converts(_mx)(_reduction(_onnx_op))


@converts("norm")
def _norm(c: _Ctx) -> str:
    order = int(c.attrs.get("ord", 2))
    if order not in (1, 2):
        raise c.unsupported(f"ord={order}")
    return _reduction("ReduceL2" if order == 2 else "ReduceL1")(c)  # type: ignore[return-value]


def _arg_reduce(onnx_op: str) -> Converter:
    def convert(c: _Ctx) -> str:
        axis = c.attrs.get("axis")
        keep = 1 if c.attrs.get("keepdims") else 0
        x = c.inputs[0]
        if axis is None:
            x = c.add("Reshape", [x, c.ints([-1], "flat")], "/flat")
            axis, keep = 0, 1
        out = c.add(onnx_op, [x], "/index", axis=int(axis), keepdims=keep)
        return c.cast_to_output(out, suffix="")
    return convert


converts("argmax")(_arg_reduce("ArgMax"))
converts("argmin")(_arg_reduce("ArgMin"))


@converts("topk")
def _topk(c: _Ctx) -> Any:
    a = c.attrs
    axis = a.get("axis", -1)
    x = c.inputs[0]
    size = c.shapes[0]
    if axis is None:  # over the flattened array
        x = c.add("Reshape", [x, c.ints([-1], "flat")], "/flat")
        axis, size = 0, (int(np.prod(c.shapes[0])),)
    axis = int(axis) % len(size)
    k = int(a.get("k", 1))
    if k <= 0:
        k = size[axis]
    kind = a.get("ret_typ", "indices")
    values, indices = c.add("TopK", [x, c.ints([k], "k")], "/topk", outputs=2, axis=axis,
                            largest=0 if a.get("is_ascend") else 1, sorted=1)
    if kind == "mask":
        dtype = c.out_dtypes[0]
        zeros = c.add("ConstantOfShape", [c.add("Shape", [x], "/shape")], "/zeros",
                      value=c.b.onnx.numpy_helper.from_array(np.zeros(1, dtype)))
        ones = c.add("ConstantOfShape", [c.add("Shape", [indices], "/kshape")], "/ones",
                     value=c.b.onnx.numpy_helper.from_array(np.ones(1, dtype)))
        return c.add("ScatterElements", [zeros, indices, ones], axis=axis)
    if kind == "value":
        return c.add("Identity", [values])
    index_dtype = c.out_dtypes[-1]
    cast = c.add("Cast", [indices], "/indices" if kind == "both" else "", to=_onnx_dtype(c.b.onnx, index_dtype))
    if kind == "indices":
        return cast
    if kind == "both":
        return [c.add("Identity", [values]), cast]
    raise c.unsupported(f"ret_typ {kind}")


@converts("sort", "argsort")
def _sort(c: _Ctx) -> str:
    axis = c.attrs.get("axis", -1)
    x = c.inputs[0]
    if axis is None:
        x = c.add("Reshape", [x, c.ints([-1], "flat")], "/flat")
        axis = 0
    else:
        axis = int(axis) % len(c.shapes[0])
    size = c.add("Slice", [c.add("Shape", [x], "/shape"), c.ints([axis], "start"), c.ints([axis + 1], "end")],
                 "/size")  # every element, however long the axis is at run time
    values, indices = c.add("TopK", [x, size], "/topk", outputs=2, axis=axis,
                            largest=0 if c.attrs.get("is_ascend", True) else 1, sorted=1)
    if c.node.op.endswith("argsort"):
        return c.cast_to_output(indices, suffix="")
    return c.add("Identity", [values])


def _indices(c: _Ctx, value: str, size: int, mode: str, suffix: str) -> str:
    index = c.add("Cast", [value], f"/{suffix}_i64", to=7)
    if mode == "wrap":
        return c.add("Mod", [index, c.const(np.asarray(size, np.int64), f"{suffix}_size")], f"/{suffix}_wrap")
    return c.add("Clip", [index, c.const(np.asarray(0, np.int64), f"{suffix}_lo"),
                          c.const(np.asarray(size - 1, np.int64), f"{suffix}_hi")], f"/{suffix}_clip")


@converts("take")
def _take(c: _Ctx) -> str:
    axis = int(c.attrs.get("axis", 0)) % len(c.shapes[0])
    index = _indices(c, c.inputs[1], c.shapes[0][axis], c.attrs.get("mode", "clip"), "idx")
    return c.add("Gather", [c.inputs[0], index], axis=axis)


@converts("Embedding")
def _embedding(c: _Ctx) -> str:
    index = _indices(c, c.inputs[0], c.shapes[1][0], "clip", "idx")
    return c.add("Gather", [c.inputs[1], index], axis=0)


@converts("pick")
def _pick(c: _Ctx) -> str:
    rank = len(c.shapes[0])
    axis = int(c.attrs.get("axis", -1) if c.attrs.get("axis") is not None else -1) % rank
    index = _indices(c, c.inputs[1], c.shapes[0][axis], c.attrs.get("mode", "clip"), "idx")
    if len(c.shapes[1]) == rank - 1:
        index = c.add("Unsqueeze", [index, c.ints([axis], "axes")], "/lift")
    picked = c.add("GatherElements", [c.inputs[0], index], "/gather", axis=axis)
    if c.attrs.get("keepdims"):
        return c.add("Identity", [picked])
    return c.add("Squeeze", [picked, c.ints([axis], "sq_axes")])


@converts("gather_nd")
def _gather_nd(c: _Ctx) -> str:
    rank = len(c.shapes[1])
    index = c.add("Cast", [c.inputs[1]], "/i64", to=7)
    index = c.add("Transpose", [index], "/last", perm=[*range(1, rank), 0])
    return c.add("GatherND", [c.inputs[0], index])


@converts("where")
def _where(c: _Ctx) -> str:
    condition = c.add("Cast", [c.inputs[0]], "/cond", to=9)
    extra = len(c.shapes[1]) - len(c.shapes[0])
    if len(c.shapes[0]) == 1 and extra > 0:  # MXNet: a 1-D condition picks whole rows
        condition = c.add("Unsqueeze", [condition, c.ints(list(range(1, 1 + extra)), "row_axes")], "/rows")
    return c.add("Where", [condition, c.inputs[1], c.inputs[2]])


@converts("one_hot")
def _one_hot(c: _Ctx) -> str:
    a = c.attrs
    values = c.const(np.asarray([a.get("off_value", 0.0), a.get("on_value", 1.0)], c.out_dtypes[0]), "values")
    index = c.add("Cast", [c.inputs[0]], "/i64", to=7)
    return c.add("OneHot", [index, c.ints([int(a["depth"])], "depth"), values], axis=-1)


@converts("dot")
def _dot(c: _Ctx) -> str:
    a, b = c.inputs[:2]
    sa, sb = c.shapes[0], c.shapes[1]
    if c.attrs.get("transpose_a"):
        a = c.add("Transpose", [a], "/ta", perm=list(reversed(range(len(sa)))))
        sa = tuple(reversed(sa))
    if c.attrs.get("transpose_b"):
        b = c.add("Transpose", [b], "/tb", perm=list(reversed(range(len(sb)))))
        sb = tuple(reversed(sb))
    if len(sa) <= 2 and len(sb) <= 2:
        return c.add("MatMul", [a, b])
    a2 = c.add("Reshape", [a, c.ints([-1, sa[-1]], "a2")], "/a2")
    b2 = c.add("Reshape", [b, c.ints([sb[0], -1], "b2")], "/b2")
    return c.add("Reshape", [c.add("MatMul", [a2, b2], "/mm"), c.ints(c.target_shape(), "shape")])


@converts("batch_dot")
def _batch_dot(c: _Ctx) -> str:
    a, b = c.inputs[:2]
    if c.attrs.get("transpose_a"):
        perm = list(range(len(c.shapes[0])))
        perm[-1], perm[-2] = perm[-2], perm[-1]
        a = c.add("Transpose", [a], "/ta", perm=perm)
    if c.attrs.get("transpose_b"):
        perm = list(range(len(c.shapes[1])))
        perm[-1], perm[-2] = perm[-2], perm[-1]
        b = c.add("Transpose", [b], "/tb", perm=perm)
    return c.add("MatMul", [a, b])


@converts("Cast", "cast", "amp_cast")
def _cast(c: _Ctx) -> str:
    return c.cast_to_output(c.inputs[0], suffix="")


@converts("shape_array")
def _shape_array(c: _Ctx) -> str:
    return c.cast_to_output(c.add("Shape", c.inputs, "/shape"), suffix="")


@converts("size_array")
def _size_array(c: _Ctx) -> str:
    size = c.add("Reshape", [c.add("Size", c.inputs, "/size"), c.ints([1], "one")], "/one")
    return c.cast_to_output(size, suffix="")


@converts("zeros_like", "ones_like")
def _fill_like(c: _Ctx) -> str:
    value = 1 if c.node.op.startswith("ones") else 0
    tensor = c.b.onnx.numpy_helper.from_array(np.asarray([value], c.out_dtypes[0]))
    return c.add("ConstantOfShape", [c.add("Shape", c.inputs, "/shape")], value=tensor)


@converts("_arange", "_zeros", "_ones", "_full", "_contrib_MultiBoxPrior", "_npi_arange", "_npi_zeros",
          "_contrib_arange_like",
          "_npi_ones", "_npi_full")
def _shape_only(c: _Ctx) -> str:
    """Operators whose output depends only on attributes (and input shapes without the batch)."""
    value = c.out_values[0]
    if value is None:
        raise c.unsupported("its output is too large to store as a constant")
    if c.exporter.dynamic_batch and c.inputs:
        first, second = c.out_shapes[0], c.exporter.second_pass_shape(c.index, 0)
        if first != second:
            raise c.unsupported("its output depends on the batch size")
    return c.b.const(value, c.name)
