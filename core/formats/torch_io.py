"""PyTorch checkpoints (``torch.save`` files): read through PyTorch's own safe loader, written by ``torch.save``.

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
was unwrapped is ``metadata["wrapper"]``. Keys keep the file's order. ``member=NAME`` (a dotted
path such as ``model_ema`` or ``model.module``) chooses another dict of tensors than the default;
when the file holds several, ``metadata["members"]`` lists them (a JSON list) and a wrong name is
refused with that list.

Crashes. PyTorch's unpickler can be driven into a crash by a small hostile file (a dictionary key
that is a tuple nested a million deep overflows the C stack when it is hashed). So the file is
first loaded and listed in a forked child (:mod:`.isolate`); a child that dies, runs out of memory
or hangs makes the file a :class:`CheckpointError`, and only then is it loaded here (Python-level
errors are left to this load, which reports them in its own words).

Dtypes: tensors are read as numpy arrays of the same dtype; ``bfloat16`` and the float8 types
become float32 (exact), with ``TensorInfo.extra["source_dtype"]`` = the safetensors code
(``"BF16"``, ``"F8_E4M3"``...), as for safetensors files. Tensors that share memory exactly
(tied weights) get ``alias_of`` = the first key holding them.

Writing. :func:`write_torch` writes a plain state dict (an ``OrderedDict`` of tensors in the
infos' order) with ``torch.save`` (never a pickle of our own), which ``torch.load(path,
weights_only=True)`` loads: the same keys, dtypes (float32 infos whose ``source_dtype`` is
``BF16`` or an 8-bit float go back to that dtype) and values; tensors with ``alias_of`` are stored
once and shared, as tied weights are. Saving the same tensors twice gives the same bytes.
"""

from __future__ import annotations

import json
import os
import re
import reprlib
import stat
import threading
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, cast

import numpy as np

from ..errors import CheckpointError, MissingDependencyError, ModelSurgeonError, ParameterError
from . import isolate
from .atomic import Committer, atomic_output
from .base import STRUCTURAL, CheckpointReader, TensorInfo
from .spec import Format, Probe

#: Wrapper keys tried, in this order, when the top-level dict holds no tensor.
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "model_state",
                "state_dict_ema", "model_ema", "ema", "params", "weights")
#: How many wrappers deep we look.
MAX_UNWRAP = 4
NEEDS_TORCH = ("this is a PyTorch checkpoint; reading it needs PyTorch: pip install torch "
               "(it is loaded with weights_only=True, never unpickled by modelsurgeon)")
NEEDS_TORCH_TO_WRITE = ("writing a PyTorch checkpoint needs PyTorch (pip install torch); or write "
                        "safetensors instead (-o model.safetensors), which PyTorch loads with safetensors.torch")
#: Load foreign files in a forked child first (see the module docstring; tests may switch it off).
VALIDATE = isolate.AVAILABLE
_validated: dict[tuple[Any, ...], None] = {}
_CACHE_SIZE = 64
_LOAD_LOCK = threading.Lock()
_LABELS = reprlib.Repr()
_LABELS.maxlevel, _LABELS.maxtuple, _LABELS.maxstring, _LABELS.maxother = 3, 4, 60, 60
#: torch dtype name -> (numpy dtype read() returns, source dtype code when upcast)
_DTYPES: dict[str, tuple[np.dtype[Any], str | None]] = {
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
        except RecursionError:
            raise CheckpointError(path, "PyTorch cannot load it: its objects are nested too deeply "
                                        "(hostile or corrupt)") from None
        except MemoryError:
            raise CheckpointError(path, "PyTorch ran out of memory loading it (hostile or corrupt?)") from None
        except Exception as exc:  # UnpicklingError, zip and OS errors...
            if "Weights only load failed" in str(exc):
                reason = _weights_only_reason(exc)
                raise CheckpointError(path, "the file contains non-tensor Python objects"
                                            + (f" ({reason})" if reason else "")
                                            + "; they are refused for safety (modelsurgeon loads PyTorch "
                                              "files with weights_only=True and never unpickles code)") from None
            raise CheckpointError(path, f"PyTorch cannot load it (truncated or corrupt?): {_short(exc)}") from None
    raise CheckpointError(path, f"PyTorch cannot load it: {_short(last) if last else 'unknown error'}")


def _label(key: Any) -> str:
    """A key for a message: strings as they are, anything else a bounded repr (never recursing deep)."""
    if isinstance(key, str):
        return key
    try:
        return _LABELS.repr(key)
    except (RecursionError, MemoryError, ValueError):  # pragma: no cover - reprlib bounds the depth
        return f"<{type(key).__name__}>"


def _holds_tensors(torch: Any, value: Any) -> bool:
    return isinstance(value, Mapping) and any(isinstance(v, torch.Tensor) for v in value.values())


def _members(torch: Any, loaded: Mapping) -> list[str]:
    """Dotted paths (at most :data:`MAX_UNWRAP` deep, breadth first) of the dicts that hold tensors."""
    found: list[str] = []
    level: list[tuple[str, Mapping]] = [("", loaded)]
    for _ in range(MAX_UNWRAP):
        nested: list[tuple[str, Mapping]] = []
        for prefix, mapping in level:
            for key, value in mapping.items():
                if isinstance(key, str) and isinstance(value, Mapping):
                    path = f"{prefix}{key}"
                    if _holds_tensors(torch, value):
                        found.append(path)
                    nested.append((path + ".", value))
        level = nested
    return found


def _choose(torch: Any, path: str, loaded: Any, member: str | None) -> tuple[Mapping, str, list[str], list[str]]:
    """(state dict, its dotted path + '.' or '', dropped labels, members holding tensors)."""
    if not isinstance(loaded, Mapping):
        raise CheckpointError(path, f"the file holds a {type(loaded).__name__}, not a dict of tensors")
    members = _members(torch, loaded)
    dropped: list[str] = []
    state: Mapping = loaded
    prefix = ""
    if member is not None:
        parts = member.split(".") if member else []
        for part in parts:
            inner = state.get(part) if isinstance(state, Mapping) else None
            if not isinstance(inner, Mapping):
                state = {}
                break
            dropped.extend(f"{prefix}{_label(k)}" for k in state if k != part)
            state, prefix = inner, f"{prefix}{part}."
        if not parts or not _holds_tensors(torch, state):
            listed = ", ".join(repr(m) for m in members) or "none"
            top = "the top level, " if _holds_tensors(torch, loaded) else ""
            raise ParameterError("member", f"{path}: no member {member!r} holding tensors; the file has {top}"
                                           f"members: {listed} (choose one with `member`)")
        return state, prefix, dropped, members
    for _ in range(MAX_UNWRAP):
        if any(isinstance(value, torch.Tensor) for value in state.values()):
            break
        inner_key = next((k for k in WRAPPER_KEYS if isinstance(state.get(k), Mapping)), None)
        if inner_key is None:
            break
        dropped.extend(f"{prefix}{_label(k)}" for k in state if k != inner_key)
        state, prefix = state[inner_key], f"{prefix}{inner_key}."
    if not any(isinstance(value, torch.Tensor) for value in state.values()):
        keys = ", ".join(repr(_label(k)) for k in list(state)[:8]) + (", ..." if len(state) > 8 else "")
        hint = f"; members holding tensors: {', '.join(repr(m) for m in members)} (choose one with `member`)" \
            if members else ""
        raise CheckpointError(path, f"no state dict found: no tensors at the top level or under "
                                    f"{'/'.join(WRAPPER_KEYS[:5])}... (keys: {keys or 'none'}){hint}")
    return state, prefix, dropped, members


def _identity(path: str) -> tuple[Any, ...] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _validate_in_child(torch: Any, path: str, member: str | None, size: int) -> None:
    """Load and list the file in a forked child first: a crash there is a CheckpointError here."""
    identity = _identity(path)
    if identity is not None and (identity, member) in _validated:
        return

    def work() -> None:
        try:
            state, _, dropped, _ = _choose(torch, path, _load(torch, path), member)
            for key, value in state.items():  # everything the reader does with keys and values
                _label(key)
                if isinstance(key, str) and isinstance(value, torch.Tensor):
                    str(value.dtype), tuple(value.shape), value.layout
            json.dumps(dropped)
        except MemoryError:
            raise
        except Exception:
            return

    isolate.run_in_child(path, work, library="PyTorch", timeout=120.0 + size / (20 << 20), extra_memory=size)
    if identity is not None:
        if len(_validated) >= _CACHE_SIZE:
            _validated.clear()
        _validated[(identity, member)] = None


class TorchReader(CheckpointReader):
    """A ``torch.save`` checkpoint's state dict (see the module docstring); ``member`` chooses one."""

    format = "torch"
    kind = STRUCTURAL

    def __init__(self, path: str | os.PathLike[str], member: str | None = None) -> None:
        self.path = os.fspath(path)
        self.member = member
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
        with _LOAD_LOCK:  # no thread is inside torch.load when another forks (the child would inherit its locks)
            if VALIDATE:
                _validate_in_child(torch, self.path, member, st.st_size)
            loaded = _load(torch, self.path)
        self._list(loaded, member)

    def _list(self, loaded: Any, member: str | None) -> None:
        torch, path = self._torch, self.path
        state, prefix, dropped, members = _choose(torch, path, loaded, member)
        self.tensors = {}
        first_at: dict[tuple, str] = {}
        for key, value in state.items():
            label = f"{prefix}{_label(key)}"
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
        if len(members) > 1 or (members and not prefix):
            self.metadata["members"] = json.dumps(members)

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


# ---------------------------------------------------------------------------------------------
# Writing

#: safetensors-style source dtype code -> torch dtype attribute name
_SOURCE_DTYPES = {"BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
                  "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz", "F8_E8M0": "float8_e8m0fnu"}
_WRITABLE = frozenset(dtype for dtype, code in _DTYPES.values() if code is None)


def _tensor(torch: Any, info: TensorInfo, array: Any, keep_source_dtype: bool) -> Any:
    array = np.asarray(array)
    if tuple(array.shape) != tuple(info.shape):
        raise ModelSurgeonError(f"tensor '{info.key}' is {array.shape}, expected {tuple(info.shape)}")
    expected = np.dtype(info.dtype)
    if (array.dtype.kind, array.dtype.itemsize) != (expected.kind, expected.itemsize):
        raise ModelSurgeonError(f"tensor '{info.key}' is {array.dtype}, expected {expected}")
    native = expected.newbyteorder("=")
    if array.dtype != native or not array.flags.c_contiguous:
        array = np.array(array, dtype=native, order="C")
    with warnings.catch_warnings():
        # a read-only array (a view of a memory-mapped input) is shared, not copied: torch.save only
        # reads it, and copying every tensor would double the memory the write needs
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        tensor = torch.from_numpy(array)
    code = info.extra.get("source_dtype") if info.extra else None
    if keep_source_dtype and code and expected == np.float32:
        name = _SOURCE_DTYPES.get(code)
        target = getattr(torch, name, None) if name else None
        if target is None:
            raise ModelSurgeonError(f"tensor '{info.key}' was {code} in its source, which this PyTorch cannot "
                                    "store; write it as float32 instead (keep_source_dtype=False)")
        converted = tensor.to(target)
        if code != "BF16" and not bool(torch.equal(converted.to(torch.float32).nan_to_num(7.0),
                                                   tensor.nan_to_num(7.0))):
            raise ModelSurgeonError(f"tensor '{info.key}' was {code} in its source but now holds values {code} "
                                    "cannot represent exactly; write it as float32 instead (keep_source_dtype=False)")
        tensor = converted
    return tensor


def write_torch(path: str | os.PathLike[str], infos: Sequence[TensorInfo], fetch: Callable[[TensorInfo], np.ndarray],
                *, metadata: dict[str, str] | None = None, progress: Callable[[int, int], None] | None = None,
                overwrite: bool = True, keep_source_dtype: bool = True, later: Committer | None = None) -> None:
    """Write a PyTorch state dict with ``torch.save``, atomically (see the module docstring).

    ``fetch(info)`` returns the tensor's array, of exactly ``info.shape`` and ``info.dtype``; an
    info with ``alias_of`` shares the earlier key's tensor (tied weights) and is not fetched.
    ``metadata`` is accepted for a writer signature like the others' but not stored: a state dict
    holds tensors only, which is what ``weights_only=True`` loaders expect. PyTorch keeps every
    tensor in memory until ``torch.save`` writes them, so this needs the checkpoint's size in
    memory. Without PyTorch, :class:`MissingDependencyError` says to install it or write
    safetensors. With ``later`` the commit is queued there (atomic.CommitQueue).

    >>> import tempfile, numpy as np
    >>> from modelsurgeon.core.formats.base import TensorInfo
    >>> out = os.path.join(tempfile.mkdtemp(), "w.pt")
    >>> info = TensorInfo("w", (2,), np.dtype("float32"))
    >>> write_torch(out, [info], lambda i: np.ones(2, np.float32))
    >>> import torch
    >>> dict(torch.load(out, weights_only=True))
    {'w': tensor([1., 1.])}
    """
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(f"{os.fspath(path)}: {NEEDS_TORCH_TO_WRITE}") from None
    infos = list(infos)
    seen: set[str] = set()
    problems: list[str] = []
    for info in infos:
        if not isinstance(info.key, str) or not info.key:
            problems.append(f"tensor key {info.key!r} is not a non-empty string")
        elif info.key in seen:
            problems.append(f"duplicate tensor key '{info.key}'")
        elif info.alias_of is not None and info.alias_of not in seen:
            problems.append(f"'{info.key}' aliases '{info.alias_of}', which is not written before it")
        elif np.dtype(info.dtype).newbyteorder("=") not in _WRITABLE:
            problems.append(f"tensor '{info.key}' has dtype {np.dtype(info.dtype)}, which PyTorch cannot store")
        seen.add(info.key)
    if problems:
        raise ModelSurgeonError("cannot write a PyTorch state dict: " + "; ".join(problems[:8])
                                + (f" (and {len(problems) - 8} more)" if len(problems) > 8 else ""))
    total = sum(info.nbytes for info in infos if info.alias_of is None)
    done = 0
    state: OrderedDict[str, Any] = OrderedDict()
    for info in infos:
        if info.alias_of is not None:
            state[info.key] = state[info.alias_of]
            continue
        state[info.key] = _tensor(torch, info, fetch(info), keep_source_dtype)
        done += info.nbytes
        if progress is not None:
            progress(done, total)
    target = os.fspath(path)
    with atomic_output(target, overwrite=overwrite, later=later, then=lambda: _trust(target)) as tmp:
        # a file object, not a path: the archive's inner folder is then always "archive", so the
        # bytes do not depend on the temporary file's name
        with open(tmp, "wb") as handle:
            sink = _Sink(handle)
            try:
                torch.save(state, cast(IO[bytes], sink))  # torch.save only calls write() and flush()
            except RuntimeError:
                if sink.error is not None:  # torch reports a failed write (a full disk) as a RuntimeError
                    raise sink.error from None
                raise


class _Sink:
    """A file object for ``torch.save`` that keeps the ``OSError`` of a failed write (ENOSPC...), which
    torch turns into a RuntimeError about positions, so the caller can report the real reason."""

    def __init__(self, handle: Any):
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            self.handle.write(data)
        except OSError as exc:
            self.error = exc
            raise
        return memoryview(data).nbytes

    def flush(self) -> None:
        try:
            self.handle.flush()
        except OSError as exc:
            self.error = exc
            raise


def _trust(path: str) -> None:
    """Our own output needs no child load when it is read back."""
    identity = _identity(path)
    if identity is not None:
        if len(_validated) >= _CACHE_SIZE:
            _validated.clear()
        _validated[(identity, None)] = None


def write_file(path: str, infos: Sequence[TensorInfo], fetch: Callable[[TensorInfo], np.ndarray], documents: Any, *,
               progress: Callable[[int, int], None] | None = None, overwrite: bool = True, locate: Any = None,
               later: Committer | None = None) -> list[str]:
    """:func:`write_torch` with the registry's writer signature (``documents`` has ``architecture``,
    ``graph``, ``metadata``); returns notes on what a state dict cannot keep."""
    write_torch(path, infos, fetch, progress=progress, overwrite=overwrite, later=later)
    notes = [f"the {what} is not stored: a PyTorch state dict holds tensors only"
             for what in ("architecture", "graph") if getattr(documents, what, None) is not None]
    kept = {k for k in (getattr(documents, "metadata", None) or {}) if k not in ("wrapper", "dropped", "members")}
    if kept:
        notes.append(f"metadata ({', '.join(sorted(kept))}) is not stored: a PyTorch state dict holds tensors only")
    return notes


# -- the format's description -----------------------------------------------------------------

def _sniff(probe: Probe) -> bool:
    if probe.head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return sniff_torch_zip(probe.path)
    return is_legacy_pickle(probe.head)


FORMAT = Format("torch", "PyTorch .pt/.pth", (".pt", ".pth", ".bin"), _sniff, TorchReader, write_file,
                reports=("torch",))
