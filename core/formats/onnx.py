"""An ``.onnx`` file as a checkpoint: its initializers, listed up front and read one at a time.

The model is parsed with the official ``onnx`` package without loading external data; tensors
stored in external data files are read on demand, from files that must lie inside the model's
own directory (no absolute paths, no ``..``, no symbolic link out of it) and hold every byte the
tensor claims. Keys are initializer names; initializers named by structural names (our export
records which; PyTorch's exporter names them by state-dict keys) say so in ``structural``.

>>> import os, tempfile, numpy as np
>>> from modelsurgeon.core.engine import nn
>>> from modelsurgeon.core.onnx.export import export_block, save
>>> net = nn.Dense(3, in_units=4); _ = net.initialize()
>>> path = os.path.join(tempfile.mkdtemp(), "dense.onnx")
>>> _ = save(export_block(net, (1, 4)), path)
>>> with OnnxReader(path) as reader:
...     [(i.key, i.shape) for i in reader.tensors.values()]
[('weight', (3, 4)), ('bias', (3,))]
"""

from __future__ import annotations

import json
import math
import os
import stat
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CheckpointError, MissingDependencyError
from .base import MAX_TENSORS, NAMED, CheckpointReader, TensorInfo, input_errors

if TYPE_CHECKING:
    from onnx import ModelProto, TensorProto

#: Model metadata: JSON {initializer name: graph variable name} of initializers named structurally.
STRUCTURAL_PROP = "modelsurgeon.structural"
EXTRA = "pip install 'modelsurgeon[onnx]'"


class MissingExtraError(MissingDependencyError):
    """The onnx extra (onnx, onnxruntime) is not installed."""


def require_onnx() -> ModuleType:
    """The ``onnx`` module, or a MissingExtraError naming the extra that installs it."""
    try:
        import onnx
    except ImportError:
        raise MissingExtraError(f"ONNX support needs the 'onnx' package: {EXTRA}") from None
    return onnx


def require_onnxruntime() -> ModuleType:
    """The ``onnxruntime`` module, or a MissingExtraError naming the extra that installs it."""
    try:
        import onnxruntime
    except ImportError:
        raise MissingExtraError(f"running ONNX models needs the 'onnxruntime' package: {EXTRA}") from None
    return onnxruntime


__all__ = ["EXTRA", "MissingExtraError", "require_onnx", "require_onnxruntime"]

#: Protocol buffers cannot be larger than 2 GiB; bigger models keep their weights in external data.
MAX_ONNX_BYTES = 2 << 30
#: ModelProto field numbers (onnx.proto), for byte sniffing.
_MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2}
#: Types numpy has no dtype for: read as float32 (the source type is kept in ``extra``).
_UPCAST = {"bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu"}
_STRUCTURAL_PRODUCERS = ("pytorch",)


def _varint(data: bytes, pos: int) -> tuple[int, int] | None:
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None


def sniff(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes, 16 or more) starts like a serialized ONNX ModelProto.

    Walks the protobuf fields in ``head``: the first must be ``ir_version`` (a small varint) and every
    following one a ModelProto field with its wire type, until the bytes run out. Cheap and strict;
    :func:`is_onnx` parses the whole file to be sure.
    """
    if len(head) < 4 or head[0] != 0x08:
        return False
    first = _varint(head, 1)
    if first is None or not 3 <= first[0] <= 64:
        return False
    pos, fields = first[1], 1
    while pos < len(head):
        tag = _varint(head, pos)
        if tag is None:
            return fields > 1 or pos >= len(head) - 10
        number, wire = tag[0] >> 3, tag[0] & 7
        if _MODEL_FIELDS.get(number) != wire:
            return False
        pos = tag[1]
        value = _varint(head, pos)
        if value is None:
            return True  # cut off by the end of head
        if wire == 2:
            pos = value[1] + value[0]
        else:
            pos = value[1]
        fields += 1
    return True


def is_onnx(path: str) -> bool:
    """Whether ``path`` parses as an ONNX model (a cheap byte check first, then onnx itself)."""
    with input_errors(path):
        with open(path, "rb") as handle:
            head = handle.read(64)
    if not sniff(head):
        return False
    try:
        load_model(path)
    except CheckpointError:
        return False
    return True


def load_model(path: str) -> ModelProto:
    """Parse ``path`` with onnx, without its external data; CheckpointError if it is not a model."""
    onnx = require_onnx()
    with input_errors(path, "ONNX model"):
        size = os.path.getsize(path)
        if size > MAX_ONNX_BYTES:
            raise CheckpointError(path, f"is {size} bytes; an ONNX protobuf cannot exceed 2 GiB")
        with open(path, "rb") as handle:
            data = handle.read()
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:
        raise CheckpointError(path, f"is not a valid ONNX model ({type(exc).__name__})") from None
    if not model.HasField("graph") or model.ir_version <= 0:
        raise CheckpointError(path, "is not an ONNX model (no graph or IR version)")
    return model


def external_info(tensor: TensorProto) -> dict[str, str] | None:
    """The external-data entries of ``tensor`` (location, offset, length...), or None when inline."""
    onnx = require_onnx()
    if tensor.data_location != onnx.TensorProto.EXTERNAL:
        return None
    return {entry.key: entry.value for entry in tensor.external_data}


def safe_location(path: str, location: str, directory: str | None = None) -> str:
    """The absolute path of external data ``location`` of model ``path``, if it stays inside its directory."""
    base = os.path.realpath(directory or os.path.dirname(os.path.abspath(path)))
    if not location or os.path.isabs(location) or "\x00" in location or location.startswith(("\\", "/")):
        raise CheckpointError(path, f"external data location {location!r} is not a relative file name")
    parts = location.replace("\\", "/").split("/")
    if ".." in parts:
        raise CheckpointError(path, f"external data location {location!r} leaves the model's directory")
    target = os.path.realpath(os.path.join(base, *parts))
    if os.path.commonpath([base, target]) != base:
        raise CheckpointError(path, f"external data location {location!r} leads out of the model's directory")
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        raise CheckpointError(path, f"external data file {location!r} is missing") from None
    except OSError as exc:
        raise CheckpointError(path, f"cannot read external data file {location!r}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise CheckpointError(path, f"external data {location!r} is not a regular file")
    return target


class OnnxReader(CheckpointReader):
    """The initializers of an ONNX model, keyed by name (see the module docstring)."""

    def __init__(self, path: str):
        onnx = require_onnx()
        self.path = path
        self.format = "onnx"
        self.kind = NAMED
        self.model = load_model(path)
        model = self.model
        self.metadata = {"producer": f"{model.producer_name} {model.producer_version}".strip(),
                         "ir_version": str(model.ir_version),
                         "opset": ",".join(f"{o.domain or 'ai.onnx'}:{o.version}" for o in model.opset_import)}
        props = {p.key: p.value for p in model.metadata_props}
        self.metadata.update({f"prop:{k}": v for k, v in props.items()})
        try:
            structural = set(json.loads(props.get(STRUCTURAL_PROP, "{}")))
        except ValueError:
            structural = set()
        by_producer = model.producer_name.lower() in _STRUCTURAL_PRODUCERS
        # running statistics are MXNet's auxiliary states: BatchNormalization's inputs 3 and 4
        aux = {name for node in model.graph.node if node.op_type == "BatchNormalization"
               for name in node.input[3:5]}
        initializers = list(model.graph.initializer)
        if len(initializers) > MAX_TENSORS:
            raise CheckpointError(path, f"lists {len(initializers)} initializers, more than {MAX_TENSORS}")
        self._protos: dict[str, Any] = {}
        self._external: dict[str, tuple[str, int, int]] = {}
        self.tensors = {}
        sizes: dict[str, int] = {}
        for tensor in initializers:
            key = tensor.name
            if not key:
                raise CheckpointError(path, "an initializer has no name")
            if key in self.tensors:
                raise CheckpointError(path, f"initializer {key!r} appears twice")
            if tensor.segment.ByteSize():
                raise CheckpointError(path, f"initializer {key!r} is segmented, which is not supported")
            shape = tuple(int(d) for d in tensor.dims)
            if any(d < 0 for d in shape):
                raise CheckpointError(path, f"initializer {key!r} has a negative dimension {shape}")
            try:
                stored = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type))
            except (KeyError, TypeError, ValueError):
                raise CheckpointError(path, f"initializer {key!r} has an unsupported data type "
                                            f"{tensor.data_type}") from None
            if stored.kind in "OUSV" or tensor.data_type in (onnx.TensorProto.STRING, onnx.TensorProto.UNDEFINED):
                raise CheckpointError(path, f"initializer {key!r} has a non-numeric data type")
            extra: dict[str, Any] = {}
            dtype = stored
            if stored.name in _UPCAST:
                dtype = np.dtype(np.float32)
                extra["source_dtype"] = stored.name
            external = external_info(tensor)
            count = math.prod(shape)
            if external is not None:
                location = safe_location(path, external.get("location", ""))
                try:
                    offset = int(external.get("offset", "0"))
                    length = int(external["length"]) if "length" in external else None
                except ValueError:
                    raise CheckpointError(path, f"initializer {key!r} has a malformed external offset or "
                                                "length") from None
                if location not in sizes:
                    sizes[location] = os.path.getsize(location)
                needed = count * stored.itemsize
                if length is None:
                    length = needed
                if offset < 0 or length != needed or offset + length > sizes[location]:
                    raise CheckpointError(path, f"initializer {key!r}: external data ({offset}+{length} bytes) "
                                                f"does not fit its shape {shape} or its file "
                                                f"({sizes[location]} bytes)")
                self._external[key] = (location, offset, length)
                extra["external"] = os.path.relpath(location, os.path.dirname(os.path.realpath(path)))
            else:
                self._check_inline(tensor, key, count, stored)
            self._protos[key] = tensor
            named = key in structural or (by_producer and "." in key)
            self.tensors[key] = TensorInfo(key, shape, dtype, "aux" if key in aux else "arg", (key,) if named else (),
                                           extra=extra)

    def _check_inline(self, tensor: Any, key: str, count: int, dtype: np.dtype) -> None:
        """The stored values must number exactly what the shape claims (no shape bombs)."""
        if tensor.HasField("raw_data"):
            if len(tensor.raw_data) != count * dtype.itemsize:
                raise CheckpointError(self.path, f"initializer {key!r} holds {len(tensor.raw_data)} bytes; its "
                                                 f"shape {tuple(tensor.dims)} needs {count * dtype.itemsize}")
            return
        fields = [f for f in ("float_data", "int32_data", "int64_data", "double_data", "uint64_data")
                  if len(getattr(tensor, f))]
        stored = sum(len(getattr(tensor, f)) for f in fields)
        if dtype.kind == "c":
            stored //= 2
        if stored != count and not (count and dtype.itemsize < 4 and dtype.kind in "fiub" and stored == count):
            raise CheckpointError(self.path, f"initializer {key!r} holds {stored} values; its shape "
                                             f"{tuple(tensor.dims)} needs {count}")

    def read(self, key: str) -> np.ndarray:
        onnx = require_onnx()
        if key not in self.tensors:
            raise KeyError(key)
        info = self.tensors[key]
        tensor = self._protos[key]
        stored = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type))
        if key in self._external:
            location, offset, length = self._external[key]
            with input_errors(location, "external data file"):
                with open(location, "rb") as handle:
                    handle.seek(offset)
                    data = handle.read(length)
            if len(data) != length:
                raise CheckpointError(self.path, f"external data of {key!r} ends early (file changed?)")
            array = np.frombuffer(data, dtype=stored.newbyteorder("<") if stored.itemsize > 1 else stored)
            array = array.reshape(info.shape).astype(stored, copy=True)
        else:
            try:
                array = onnx.numpy_helper.to_array(tensor)
            except Exception as exc:
                raise CheckpointError(self.path, f"cannot decode initializer {key!r}: {exc}") from None
            array = np.array(array, copy=True)
        if array.dtype != info.dtype:
            array = array.astype(info.dtype)
        return array


__all__ = ["MAX_ONNX_BYTES", "OnnxReader", "external_info", "is_onnx", "load_model", "safe_location", "sniff"]
