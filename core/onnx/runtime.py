"""Run an ONNX model through ONNX Runtime on numpy inputs (``run --engine onnxruntime``).

>>> import numpy as np
>>> from modelsurgeon.core.engine import nn
>>> from modelsurgeon.core.onnx.export import export_block
>>> net = nn.Dense(3, in_units=4); _ = net.initialize()
>>> x = np.ones((2, 4), np.float32)
>>> [out.shape for out in run(export_block(net, x.shape), [x])]
[(2, 3)]
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelSurgeonError, ShapeError
from . import require_onnxruntime

if TYPE_CHECKING:
    from onnx import ModelProto


@dataclass(frozen=True)
class InputSpec:
    """One graph input as ONNX Runtime sees it: dims are ints, or names/None where dynamic."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: np.dtype


_ORT_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
              "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int16)": "int16", "tensor(int8)": "int8",
              "tensor(uint8)": "uint8", "tensor(uint16)": "uint16", "tensor(uint32)": "uint32",
              "tensor(uint64)": "uint64", "tensor(bool)": "bool"}


def session(model: str | os.PathLike[str] | ModelProto | bytes, threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU for a path, a ModelProto or serialized bytes.

    A path is checked first (:class:`.reader.OnnxReader`): its external data must lie inside the
    model's directory.
    """
    ort = require_onnxruntime()
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    source: Any = model
    if isinstance(model, (str, os.PathLike)):
        from ..formats.onnx import OnnxReader
        with OnnxReader(os.fspath(model)):
            pass  # validates the file and the location of its external data
        source = os.fspath(model)
    elif not isinstance(model, bytes):
        source = model.SerializeToString()
    try:
        return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelSurgeonError(f"ONNX Runtime cannot load the model: {str(exc).strip().splitlines()[0]}") from None


def input_specs(model: str | os.PathLike[str] | ModelProto | bytes | Any) -> list[InputSpec]:
    """The graph inputs ONNX Runtime expects (initializers excluded)."""
    sess = model if hasattr(model, "get_inputs") else session(model)
    return [InputSpec(i.name, tuple(i.shape), np.dtype(_ORT_TYPES.get(i.type, "float32"))) for i in sess.get_inputs()]


def run(model: str | os.PathLike[str] | ModelProto | bytes | Any,
        inputs: Sequence[np.ndarray] | Mapping[str, np.ndarray], threads: int | None = None) -> list[np.ndarray]:
    """Run ``model`` (a path, ModelProto, bytes or an existing session) on ``inputs`` and return every output.

    Inputs are given in the graph's input order, or by name; each is cast to the dtype the graph
    declares.
    """
    sess: Any = model if hasattr(model, "get_inputs") else session(model, threads)
    specs = input_specs(sess)
    if isinstance(inputs, Mapping):
        unknown = sorted(set(inputs) - {s.name for s in specs})
        if unknown:
            raise ModelSurgeonError(f"the model has no input {unknown[0]!r}; its inputs: "
                                    f"{', '.join(s.name for s in specs)}")
        missing = [s.name for s in specs if s.name not in inputs]
        if missing:
            raise ModelSurgeonError(f"no value for model input {missing[0]!r}")
        arrays = [inputs[s.name] for s in specs]
    else:
        arrays = list(inputs)
        if len(arrays) != len(specs):
            raise ModelSurgeonError(f"the model takes {len(specs)} input(s) ({', '.join(s.name for s in specs)}), "
                                    f"{len(arrays)} given")
    feeds = {}
    for spec, array in zip(specs, arrays):
        value = np.ascontiguousarray(np.asarray(array), dtype=spec.dtype)
        if len(value.shape) != len(spec.shape) or any(isinstance(d, int) and d != v
                                                      for d, v in zip(spec.shape, value.shape)):
            raise ShapeError(f"input {spec.name!r} has shape {value.shape}; the model expects "
                             f"{tuple(d if isinstance(d, int) else '?' for d in spec.shape)}")
        feeds[spec.name] = value
    try:
        return [np.asarray(out) for out in sess.run(None, feeds)]
    except Exception as exc:
        raise ModelSurgeonError(f"ONNX Runtime failed: {str(exc).strip().splitlines()[0]}") from None


def run_file(path: str, inputs: Sequence[np.ndarray] | Mapping[str, np.ndarray], threads: int | None = None,
             **export_options: Any) -> list[np.ndarray]:
    """``run --engine onnxruntime``: run an ``.onnx`` file, or any checkpoint with a graph or an
    architecture (exported in memory first, on the shape of the first input), through ONNX Runtime."""
    from ..formats.onnx import is_onnx
    if is_onnx(path):
        return run(path, inputs, threads)
    from ..binding import open_checkpoint
    from .export import export_checkpoint
    arrays = list(inputs.values()) if isinstance(inputs, Mapping) else list(inputs)
    with open_checkpoint(path) as reader:
        model = export_checkpoint(reader, input_shape=np.shape(arrays[0]) if arrays else None, **export_options)
    return run(model, inputs, threads)


__all__ = ["InputSpec", "input_specs", "run", "run_file", "session"]
