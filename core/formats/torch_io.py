"""PyTorch checkpoints (``torch.save`` files), read through PyTorch's own safe loader.

modelsurgeon never unpickles anything itself. A ``.pt``/``.pth``/``.bin`` file is opened with
``torch.load(path, map_location="cpu", weights_only=True, mmap=True)`` (``mmap=False`` for the
legacy non-zip format, which cannot be mapped): PyTorch's restricted unpickler, which builds
only tensors, containers and primitive values and refuses every other Python object. A file
that needs more (a pickled model class, numpy objects, ...) is refused with a
:class:`CheckpointError` saying so. PyTorch is optional: without it, opening a PyTorch file
raises a CheckpointError telling how to install it.

What is read. The loaded object must be a dict. If any of its values is a tensor, it is the
state dict. Otherwise the first of :data:`WRAPPER_KEYS` present whose value is a dict is
unwrapped, repeatedly (``{"model": {"state_dict": ...}}``), until a dict holding tensors is
found. Only dense (strided) tensors of a supported dtype are kept; everything else (other
wrapper members such as ``optimizer`` or ``epoch``, non-tensor values, sparse or quantized
tensors) is listed in ``metadata["dropped"]`` (a JSON list of dotted paths), and the path that
was unwrapped is ``metadata["wrapper"]``. Keys keep the file's order.

Dtypes: tensors are read as numpy arrays of the same dtype; ``bfloat16`` and the float8 types
become float32 (exact), with ``TensorInfo.extra["source_dtype"]`` = the safetensors code
(``"BF16"``, ``"F8_E4M3"``...), as for safetensors files. Tensors that share memory exactly
(tied weights) get ``alias_of`` = the first key holding them.
"""

from __future__ import annotations

import json
import os
import re
import stat
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import CheckpointError, ModelSurgeonError
from .base import STRUCTURAL, CheckpointReader, TensorInfo
from .spec import Format, Probe

#: Wrapper keys tried, in this order, when the top-level dict holds no tensor.
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "model_state",
                "state_dict_ema", "model_ema", "ema", "params", "weights")
#: How many wrappers deep we look.
MAX_UNWRAP = 4
NEEDS_TORCH = ("this is a PyTorch checkpoint; reading it needs PyTorch: pip install torch "
               "(it is loaded with weights_only=True, never unpickled by modelsurgeon)")
#: torch dtype name -> (numpy dtype read() returns, source dtype code when upcast)
_DTYPES = {
    "float64": (np.dtype(np.float64), None), "float32": (np.dtype(np.float32), None),
    "float16": (np.dtype(np.float16), None), "int64": (np.dtype(np.int64), None),
    "int32": (np.dtype(np.int32), None), "int16": (np.dtype(np.int16), None),
    "int8": (np.dtype(np.int8), None), "uint8": (np.dtype(np.uint8), None),
    "uint16": (np.dtype(np.uint16), None), "uint32": (np.dtype(np.uint32), None),
    "uint64": (np.dtype(np.uint64), None), "bool": (np.dtype(np.bool_), None),
    "complex64": (np.dtype(np.complex64), None), "complex128": (np.dtype(np.complex128), None),
    "bfloat16": (np.dtype(np.float32), "BF16"),
    "float8_e4m3fn": (np.dtype(np.float32), "F8_E4M3"), "float8_e5m2": (np.dtype(np.float32), "F8_E5M2"),
    "float8_e4m3fnuz": (np.dtype(np.float32), "F8_E4M3FNUZ"),
    "float8_e5m2fnuz": (np.dtype(np.float32), "F8_E5M2FNUZ"),
    "float8_e8m0fnu": (np.dtype(np.float32), "F8_E8M0"),
}


def sniff_torch_zip(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a zip archive with a ``data.pkl`` member (``torch.save``'s format)."""
    try:
        with zipfile.ZipFile(os.fspath(path)) as archive:
            return any(name == "data.pkl" or name.endswith("/data.pkl") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, RuntimeError):
        return False


def is_legacy_pickle(head: bytes) -> bool:
    """Whether a file starting with ``head`` is a pickle (protocol 2-5): legacy ``torch.save``."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def _weights_only_reason(exc: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    found = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    if not found:
        return ""
    reason = found.group(1).strip()
    cut = reason.find(" was not an allowed global")
    return reason[:cut] if cut > 0 else reason[:200]


def _import_torch(path: str) -> Any:
    try:
        import torch
    except ImportError:
        raise CheckpointError(path, NEEDS_TORCH) from None
    return torch


def _load(torch: Any, path: str) -> Any:
    """``torch.load`` with the safe options, every failure a CheckpointError."""
    attempts = [{"mmap": True}, {}]
    last: BaseException | None = None
    for options in attempts:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, **options)
        except TypeError as exc:
            if "weights_only" in str(exc):
                raise CheckpointError(path, "this PyTorch cannot load checkpoints safely (no weights_only); "
                                            "upgrade it: pip install -U torch") from None
            if "mmap" in str(exc):  # torch < 2.1: no mmap
                last = exc
                continue
            raise CheckpointError(path, f"PyTorch cannot load it: {_short(exc)}") from None
        except RuntimeError as exc:
            if "mmap" in str(exc) and options:
                last = exc
                continue  # legacy (non-zip) format: load without mapping
            raise CheckpointError(path, f"PyTorch cannot load it (truncated or corrupt?): {_short(exc)}") from None
        except Exception as exc:  # UnpicklingError, zip and OS errors...
            if "Weights only load failed" in str(exc):
                reason = _weights_only_reason(exc)
                raise CheckpointError(path, "the file contains non-tensor Python objects"
                                            + (f" ({reason})" if reason else "")
                                            + "; they are refused for safety (modelsurgeon loads PyTorch "
                                              "files with weights_only=True and never unpickles code)") from None
            raise CheckpointError(path, f"PyTorch cannot load it (truncated or corrupt?): {_short(exc)}") from None
    raise CheckpointError(path, f"PyTorch cannot load it: {_short(last) if last else 'unknown error'}")


class TorchReader(CheckpointReader):
    """A ``torch.save`` checkpoint's state dict (see the module docstring)."""

    format = "torch"
    kind = STRUCTURAL

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._closed = False
        self._values: dict[str, Any] = {}
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise CheckpointError(self.path, "no such file") from None
        except OSError as exc:
            raise CheckpointError(self.path, f"cannot open: {_short(exc)}") from None
        if not stat.S_ISREG(st.st_mode):
            raise CheckpointError(self.path, "not a regular file")
        try:
            with open(self.path, "rb") as handle:
                head = handle.read(8)
        except OSError as exc:
            raise CheckpointError(self.path, f"cannot open: {_short(exc)}") from None
        if not (sniff_torch_zip(self.path) or is_legacy_pickle(head)):
            raise CheckpointError(self.path, "not a PyTorch checkpoint (neither a torch.save zip archive "
                                             "nor a legacy pickle)")
        torch = _import_torch(self.path)
        self._torch = torch
        self._stat = (st.st_dev, st.st_ino, st.st_size)
        loaded = _load(torch, self.path)
        self._load(loaded)

    def _load(self, loaded: Any) -> None:
        torch, path = self._torch, self.path
        if not isinstance(loaded, Mapping):
            raise CheckpointError(path, f"the file holds a {type(loaded).__name__}, not a dict of tensors")
        dropped: list[str] = []
        state, prefix = loaded, ""
        for _ in range(MAX_UNWRAP):
            if any(isinstance(value, torch.Tensor) for value in state.values()):
                break
            inner = next((k for k in WRAPPER_KEYS if isinstance(state.get(k), Mapping)), None)
            if inner is None:
                break
            dropped.extend(f"{prefix}{k}" if isinstance(k, str) else f"{prefix}{k!r}" for k in state if k != inner)
            state, prefix = state[inner], f"{prefix}{inner}."
        if not any(isinstance(value, torch.Tensor) for value in state.values()):
            keys = ", ".join(repr(k) for k in list(state)[:8]) + (", ..." if len(state) > 8 else "")
            raise CheckpointError(path, f"no state dict found: no tensors at the top level or under "
                                        f"{'/'.join(WRAPPER_KEYS[:5])}... (keys: {keys or 'none'})")
        self.tensors = {}
        first_at: dict[tuple, str] = {}
        for key, value in state.items():
            label = f"{prefix}{key}" if isinstance(key, str) else f"{prefix}{key!r}"
            if not isinstance(key, str) or not isinstance(value, torch.Tensor):
                dropped.append(label)
                continue
            name = str(value.dtype).replace("torch.", "")
            if value.layout != torch.strided or value.is_quantized or value.is_meta or name not in _DTYPES:
                dropped.append(label)
                continue
            dtype, code = _DTYPES[name]
            extra = {"source_dtype": code} if code else {}
            try:
                identity = (value.untyped_storage().data_ptr(), value.storage_offset(), tuple(value.shape),
                            tuple(value.stride()), name)
            except (RuntimeError, NotImplementedError):
                identity = None
            alias = first_at.get(identity) if identity is not None and identity[0] else None
            self.tensors[key] = TensorInfo(key, tuple(int(d) for d in value.shape), dtype, alias_of=alias, extra=extra)
            self._values[key] = value
            if identity is not None and identity[0] and alias is None:
                first_at[identity] = key
        self.metadata = {}
        if prefix:
            self.metadata["wrapper"] = prefix.rstrip(".")
        if dropped:
            self.metadata["dropped"] = json.dumps(dropped)

    def read(self, key: str) -> np.ndarray:
        if self._closed:
            raise ModelSurgeonError(f"{self.path} is closed")
        if key not in self._values:
            raise ModelSurgeonError(f"no tensor '{key}' in {self.path}")
        try:
            now = os.stat(self.path)
        except OSError:
            now = None
        if now is not None and (now.st_dev, now.st_ino) == self._stat[:2] and now.st_size != self._stat[2]:
            # the storages may be memory-mapped: reading past a truncation would crash the process
            raise CheckpointError(self.path, f"cannot read tensor {key!r}: the file changed size after it was opened")
        value = self._values[key].detach()
        if value.is_conj() or value.is_neg():
            value = value.resolve_conj().resolve_neg()
        info = self.tensors[key]
        try:
            if info.extra.get("source_dtype"):
                return value.to(self._torch.float32).numpy()
            array = value.numpy()
        except (RuntimeError, TypeError, ValueError) as exc:
            raise CheckpointError(self.path, f"cannot read tensor {key!r}: {_short(exc)}") from None
        if array.dtype != info.dtype:
            array = array.astype(info.dtype)
        array.flags.writeable = False  # a view of PyTorch's (memory-mapped) storage
        return array

    def close(self) -> None:
        self._values = {}
        self._closed = True


# -- the format's description -----------------------------------------------------------------

def _sniff(probe: Probe) -> bool:
    if probe.head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return sniff_torch_zip(probe.path)
    return is_legacy_pickle(probe.head)


FORMAT = Format("torch", "PyTorch .pt/.pth", (".pt", ".pth", ".bin"), _sniff, TorchReader,
                cannot_write="writing PyTorch files needs the torch writer; write .safetensors instead",
                reports=("torch",))
