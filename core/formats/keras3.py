"""Keras 3 files written back so Keras loads them: ``.weights.h5`` and ``.keras`` archives.

Layouts (Keras 3 ``saving_lib``, checked against files written by Keras 3.15):

* ``.weights.h5`` (``model.save_weights``): every object that owns variables has a group
  ``<attribute path>/vars`` whose datasets ``0, 1, ...`` are its variables in the layer's own
  order, and whose attribute ``name`` is the layer's name: ``/layers/conv2d/vars/0`` (a Conv2D's
  kernel), ``/layers/conv2d/vars/1`` (its bias), ``/vars`` (the model's own, named after it).
  Keras loads by these paths, and each layer wants exactly as many numbered variables as it has.
* ``.keras`` (``model.save``): an uncompressed zip of ``metadata.json`` (``keras_version``,
  ``date_saved``), ``config.json`` (the model's serialized config) and ``model.weights.h5`` (the
  layout above), plus ``assets/...`` for layers that keep files.

Keys are those :class:`~.keras.KerasH5Reader` gives a ``.weights.h5``: the dataset's path with
dots (``layers.conv2d.vars.0``); ``TensorInfo.extra["layer_name"]`` is the layer's name.

Reading a ``.keras`` archive (:class:`KerasArchiveReader`): ``config.json`` and ``metadata.json``
are read (bounded, UTF-8 JSON); ``model.weights.h5`` is copied to a private temporary file
(bounded against decompression bombs) and opened with :class:`~.keras.KerasH5Reader` (so it gets
the same hardened, crash-isolated HDF5 reading). ``config`` is the model's config as a dict and
``metadata["model_config"]`` its JSON text, as for legacy Keras ``.h5`` files.

Writing: :func:`write_keras_weights` writes the ``.weights.h5`` layout from keys of that form
(refusing, all at once, keys that are not ``<path>.vars.<n>`` or groups whose variables are not
numbered ``0..n-1``); :func:`write_keras` writes a ``.keras`` archive from the tensors and a
config (``metadata["model_config"]``). Optimizer state is not written (the reader does not list
it): a model loaded from the output starts a fresh optimizer (for a compiled model, Keras says it
skips loading the optimizer's variables). bfloat16 and float8 tensors (read
as float32 with ``extra["source_dtype"]``) are written back as Keras stores them (opaque bytes
with a ``dtype`` attribute). Outputs appear whole or not at all (atomic.py).

Surgery support: :func:`find_dense_head` finds the head of a Keras 3 file (the last Dense layer:
``vars/0`` a kernel ``(in, out)``, ``vars/1`` a bias ``(out,)``), and :func:`set_layer_outputs`
changes a layer's ``units`` (or ``filters``) in a config, as ``replace-head`` on a ``.keras``
file needs.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shutil
import stat
import tempfile
import weakref
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from ..errors import CheckpointError, ModelSurgeonError, SurgeryError
from . import h5safe
from .atomic import Committer, atomic_output
from .base import STRUCTURAL, CheckpointReader, TensorInfo
from .keras import KerasH5Reader
from .safetensors_dtypes import f32_to_bf16, f32_to_f8
from .spec import Format

Fetch = Callable[[TensorInfo], np.ndarray]
Progress = Callable[[int, int], None]

CONFIG_NAME, METADATA_NAME, WEIGHTS_NAME = "config.json", "metadata.json", "model.weights.h5"
#: The largest config.json / metadata.json read.
MAX_DOCUMENT = 64 << 20
#: A member larger than BOMB_FLOOR may declare this many times what it stores (compression)
#: before it is refused as a decompression bomb.
BOMB_RATIO = 1000
BOMB_FLOOR = 64 << 20
_VAR_KEY = re.compile(r"^(?:(?P<parent>.+)\.)?vars\.(?P<index>\d+)$")
#: Keras's names for the opaque dtypes it writes, by our source dtype code.
_OPAQUE_NAMES = {"BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}
_PLAIN = frozenset(np.dtype(t) for t in ("float16", "float32", "float64", "int8", "int16", "int32",
                                         "int64", "uint8", "uint16", "uint32", "uint64", "bool"))
#: Layer classes whose output count is ``units`` / ``filters`` in their config.
_UNITS_CLASSES = ("Dense",)
_FILTERS_CLASSES = ("Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "Convolution3D")


# ---------------------------------------------------------------------------------------------
# Keys <-> Keras's layout

def _layout(infos: Sequence[TensorInfo]) -> dict[str, list[TensorInfo]]:
    """HDF5 group path of each ``vars`` group -> its infos in index order; every problem at once."""
    groups: dict[str, dict[int, TensorInfo]] = {}
    problems: list[str] = []
    for info in infos:
        match = _VAR_KEY.match(info.key) if isinstance(info.key, str) else None
        parts = info.key.split(".") if match else []
        if match is None or any(part in ("", ".", "..") for part in parts) or "/" in info.key:
            problems.append(f"'{info.key}' is not a Keras 3 variable path (<layer path>.vars.<n>)")
            continue
        h5_path = info.extra.get("h5_path") if info.extra else None
        if isinstance(h5_path, str) and h5_path.strip("/").replace("/", ".") == info.key:
            parts = h5_path.strip("/").split("/")  # the file's own path, dots in names and all
        group = "/" + "/".join(parts[:-1])
        index = int(match.group("index"))
        if index in groups.setdefault(group, {}):
            problems.append(f"'{info.key}' is written twice")
        groups[group][index] = info
    result: dict[str, list[TensorInfo]] = {}
    for group, members in groups.items():
        if sorted(members) != list(range(len(members))):
            problems.append(f"{group} numbers its variables {sorted(members)}; Keras wants 0..{len(members) - 1}")
            continue
        result[group] = [members[i] for i in range(len(members))]
    if problems:
        shown = "; ".join(problems[:6]) + (f" (and {len(problems) - 6} more)" if len(problems) > 6 else "")
        raise ModelSurgeonError(f"cannot write a Keras 3 weights file: {shown}. Keras 3 files store each layer's "
                                "variables as <layer path>/vars/0, vars/1...; write .h5 or .safetensors for other keys")
    return result


def _stored(info: TensorInfo, array: Any, keep_source_dtype: bool) -> tuple[np.ndarray, str | None]:
    """(the array as stored, Keras's dtype attribute or None) after checking it against ``info``."""
    array = np.asarray(array)
    if tuple(array.shape) != tuple(info.shape):
        raise ModelSurgeonError(f"tensor '{info.key}' is {array.shape}, expected {tuple(info.shape)}")
    expected = np.dtype(info.dtype)
    if (array.dtype.kind, array.dtype.itemsize) != (expected.kind, expected.itemsize):
        raise ModelSurgeonError(f"tensor '{info.key}' is {array.dtype}, expected {expected}")
    code = info.extra.get("source_dtype") if info.extra else None
    if keep_source_dtype and code in _OPAQUE_NAMES and expected == np.float32:
        flat = np.ascontiguousarray(array, dtype=np.float32)
        bits = f32_to_bf16(flat) if code == "BF16" else f32_to_f8(flat, code)
        if bits is None:
            raise ModelSurgeonError(f"tensor '{info.key}' was {code} in its source but now holds values {code} "
                                    "cannot represent exactly; write it as float32 instead (keep_source_dtype=False)")
        return np.ascontiguousarray(bits).view(f"V{bits.dtype.itemsize}").reshape(info.shape), _OPAQUE_NAMES[code]
    return np.ascontiguousarray(array, dtype=expected.newbyteorder("=")), None


def _write_h5(handle_path: str, infos: Sequence[TensorInfo], fetch: Fetch, metadata: dict[str, str] | None,
              progress: Progress | None, keep_source_dtype: bool) -> None:
    groups = _layout(infos)
    for info in infos:
        if np.dtype(info.dtype).newbyteorder("=") not in _PLAIN:
            raise ModelSurgeonError(f"tensor '{info.key}' has dtype {np.dtype(info.dtype)}, which Keras cannot store")
    total = sum(info.nbytes for info in infos)
    done = 0
    with h5py.File(handle_path, "w") as f:
        model_name = (metadata or {}).get("model_name")
        if model_name:
            f.create_group("vars").attrs["name"] = model_name
        for group_path in sorted(groups, key=_natural):
            members = groups[group_path]
            group = f.require_group(group_path)
            names = {m.extra.get("layer_name") for m in members if m.extra and m.extra.get("layer_name")}
            if len(names) == 1:
                group.attrs["name"] = names.pop()
            for index, info in enumerate(members):
                array, declared = _stored(info, fetch(info), keep_source_dtype)
                dataset = group.create_dataset(str(index), data=array, track_times=False)  # reproducible bytes
                if declared is not None:
                    dataset.attrs["dtype"] = declared
                done += info.nbytes
                del array
                if progress is not None:
                    progress(done, total)


def _natural(name: str) -> tuple:
    parts = re.split(r"(\d+)", name)
    return tuple(int(part) if i % 2 else part for i, part in enumerate(parts))


def write_keras_weights(path: str | os.PathLike[str], infos: Sequence[TensorInfo], fetch: Fetch, *,
                        metadata: dict[str, str] | None = None, progress: Progress | None = None,
                        overwrite: bool = True, keep_source_dtype: bool = True,
                        later: Committer | None = None) -> None:
    """Write a Keras 3 ``.weights.h5`` that ``model.load_weights`` loads (see the module docstring).

    Keys are ``<layer path>.vars.<n>`` (as read from a Keras 3 file); ``extra["layer_name"]``
    names each layer's group and ``metadata["model_name"]`` the model's. Every tensor is fetched
    once, written, and released. Nothing is written if a key or dtype does not fit.
    """
    infos = list(infos)
    _layout(infos)  # every key problem before any file exists
    target = os.fspath(path)
    # our own output: reading it back needs no validation in a child
    with atomic_output(target, overwrite=overwrite, later=later, then=lambda: h5safe.trust(target)) as tmp:
        _write_h5(tmp, infos, fetch, metadata, progress, keep_source_dtype)


# ---------------------------------------------------------------------------------------------
# .keras archives

def sniff_keras_zip(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a zip holding ``config.json`` and ``model.weights.h5`` (a Keras 3 archive)."""
    try:
        with zipfile.ZipFile(os.fspath(path)) as archive:
            names = set(archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, RuntimeError):
        return False
    return CONFIG_NAME in names and WEIGHTS_NAME in names


def sniff(probe: Any) -> bool:
    """Detection from a probe with ``head`` (first bytes) and ``path``: a zip that is a Keras archive.
    (MXNet's ``.npz`` and ``torch.save`` files are zips too: this must be asked before the ``.npz`` sniff.)"""
    return bytes(probe.head[:4]) in (b"PK\x03\x04", b"PK\x05\x06") and sniff_keras_zip(probe.path)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]


def _member(archive: zipfile.ZipFile, name: str, path: str) -> zipfile.ZipInfo:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise CheckpointError(path, f"the Keras archive has no {name}") from None
    if info.file_size > max(BOMB_FLOOR, BOMB_RATIO * max(info.compress_size, 1)):
        raise CheckpointError(path, f"{name} declares {info.file_size} bytes but stores {info.compress_size}: "
                                    "refused as a decompression bomb")
    return info


def _read_json(archive: zipfile.ZipFile, name: str, path: str) -> Any:
    info = _member(archive, name, path)
    if info.file_size > MAX_DOCUMENT:
        raise CheckpointError(path, f"{name} is larger than {MAX_DOCUMENT} bytes")
    try:
        with archive.open(info) as handle:
            raw = handle.read(MAX_DOCUMENT + 1)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, RuntimeError) as exc:
        raise CheckpointError(path, f"cannot read {name} (truncated or corrupt?): {_short(exc)}") from None
    if len(raw) > MAX_DOCUMENT:
        raise CheckpointError(path, f"{name} is larger than {MAX_DOCUMENT} bytes")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise CheckpointError(path, f"{name} is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(path, f"{name} is not valid JSON: {_short(exc)}") from None


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


class KerasArchiveReader(CheckpointReader):
    """A Keras 3 ``.keras`` archive: its weights (keys as in ``.weights.h5``) and its config.

    ``config`` is ``config.json`` as a dict; ``metadata`` holds ``model_config`` (that JSON
    text), ``keras_version`` and ``date_saved`` (from ``metadata.json``) and what the weights file
    says (``model_name``, ``optimizer_tensors``); ``members`` lists the archive's other files
    (assets), which :func:`write_keras` copies with ``copy_from``.
    """

    format = "keras3"
    kind = STRUCTURAL

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._inner: KerasH5Reader | None = None
        self._temp: str | None = None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise CheckpointError(self.path, "no such file") from None
        except OSError as exc:
            raise CheckpointError(self.path, f"cannot open: {_short(exc)}") from None
        if not stat.S_ISREG(st.st_mode):
            raise CheckpointError(self.path, "not a regular file")
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        path = self.path
        try:
            archive = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile, ValueError, EOFError, RuntimeError) as exc:
            raise CheckpointError(path, f"not a readable Keras archive (zip): {_short(exc)}") from None
        with archive:
            config = _read_json(archive, CONFIG_NAME, path)
            if not isinstance(config, dict):
                raise CheckpointError(path, f"{CONFIG_NAME} is not a JSON object")
            about: Any = {}
            if METADATA_NAME in archive.namelist():
                about = _read_json(archive, METADATA_NAME, path)
            weights = _member(archive, WEIGHTS_NAME, path)
            self.members = [n for n in archive.namelist() if n not in (CONFIG_NAME, METADATA_NAME, WEIGHTS_NAME)]
            fd, self._temp = tempfile.mkstemp(prefix="modelsurgeon-keras-", suffix=".weights.h5")
            weakref.finalize(self, _remove, self._temp)
            try:
                with os.fdopen(fd, "wb") as out, archive.open(weights) as source:
                    copied = _copy_bounded(source, out, weights.file_size)
            except (OSError, zipfile.BadZipFile, ValueError, EOFError, RuntimeError) as exc:
                raise CheckpointError(path, f"cannot read {WEIGHTS_NAME} (truncated or corrupt?): "
                                            f"{_short(exc)}") from None
            if copied != weights.file_size:
                raise CheckpointError(path, f"{WEIGHTS_NAME} holds {copied} bytes, not the {weights.file_size} "
                                            "the archive declares")
        try:
            self._inner = KerasH5Reader(self._temp)
        except CheckpointError as exc:
            raise CheckpointError(path, f"{WEIGHTS_NAME}: {exc.problem}") from None
        if self._inner.format != "keras3-weights-h5" and self._inner.tensors:
            raise CheckpointError(path, f"{WEIGHTS_NAME} is not laid out as Keras 3 weights")
        self.config = config
        self.tensors = dict(self._inner.tensors)
        self.metadata = dict(self._inner.metadata)
        self.metadata["model_config"] = json.dumps(config)
        if isinstance(about, dict):
            for name in ("keras_version", "date_saved"):
                if isinstance(about.get(name), str):
                    self.metadata[name] = about[name]

    def read(self, key: str) -> np.ndarray:
        if self._inner is None:
            raise ModelSurgeonError(f"{self.path} is closed")
        return self._inner.read(key)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None
        if self._temp is not None:
            _remove(self._temp)
            self._temp = None


def _copy_bounded(source: Any, out: Any, limit: int) -> int:
    copied = 0
    while True:
        chunk = source.read(min(1 << 20, limit - copied + 1))
        if not chunk:
            return copied
        copied += len(chunk)
        if copied > limit:
            return copied
        out.write(chunk)


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def write_keras(path: str | os.PathLike[str], infos: Sequence[TensorInfo], fetch: Fetch, *,
                metadata: dict[str, str] | None = None, config: dict[str, Any] | None = None,
                copy_from: str | None = None, progress: Progress | None = None, overwrite: bool = True,
                keep_source_dtype: bool = True, later: Committer | None = None) -> None:
    """Write a ``.keras`` archive that ``keras.saving.load_model`` loads.

    The model's config is ``config``, else ``metadata["model_config"]`` (JSON text, as
    :class:`KerasArchiveReader` and legacy Keras ``.h5`` readers give it); without one the write
    is refused (a weights-only output is ``.weights.h5``). ``metadata.json`` gets the metadata's
    ``keras_version`` and ``date_saved``; ``copy_from`` (a source ``.keras``) gives the other
    members to copy (assets). Members are stored uncompressed with fixed timestamps, as Keras
    stores them; the same inputs give the same bytes.
    """
    metadata = dict(metadata or {})
    if config is None:
        text = metadata.get("model_config")
        if text is None:
            raise ModelSurgeonError("a .keras archive needs the model's config (config.json), which this input "
                                    "does not have; write the weights as .weights.h5 instead")
        try:
            config = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ModelSurgeonError(f"the model config is not valid JSON: {_short(exc)}") from None
    if not isinstance(config, dict):
        raise ModelSurgeonError("the model config must be a JSON object")
    infos = list(infos)
    _layout(infos)
    about = {k: metadata[k] for k in ("keras_version", "date_saved") if isinstance(metadata.get(k), str)}
    if "keras_version" not in about:
        about["keras_version"] = _installed_keras_version()
    with atomic_output(path, overwrite=overwrite, later=later) as tmp:
        weights_tmp = tmp[: -len(".part")] + "-weights.part"  # same prefix: a stale one is cleaned up
        try:
            _write_h5(weights_tmp, infos, fetch, metadata, progress, keep_source_dtype)
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
                archive.writestr(_zip_info(METADATA_NAME), json.dumps(about).encode("utf-8"))
                archive.writestr(_zip_info(CONFIG_NAME), json.dumps(config).encode("utf-8"))
                with open(weights_tmp, "rb") as source, archive.open(_zip_info(WEIGHTS_NAME), "w",
                                                                    force_zip64=True) as target:
                    shutil.copyfileobj(source, target, 1 << 20)
                if copy_from is not None:
                    _copy_members(copy_from, archive)
        finally:
            _remove(weights_tmp)


def _copy_members(source_path: str, archive: zipfile.ZipFile) -> None:
    try:
        with zipfile.ZipFile(source_path) as source:
            for info in source.infolist():
                if info.filename in (CONFIG_NAME, METADATA_NAME, WEIGHTS_NAME) or info.is_dir():
                    continue
                member = _member(source, info.filename, source_path)
                with source.open(member) as reader, archive.open(_zip_info(info.filename), "w",
                                                                 force_zip64=True) as writer:
                    shutil.copyfileobj(reader, writer, 1 << 20)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, RuntimeError) as exc:
        raise CheckpointError(source_path, f"cannot copy the archive's assets: {_short(exc)}") from None


def _installed_keras_version() -> str:
    try:
        from importlib.metadata import version
        return version("keras")
    except Exception:
        return "3"


# ---------------------------------------------------------------------------------------------
# Surgery support: the head, and the config's record of its size

@dataclass(frozen=True)
class DenseHead:
    """A Keras Dense layer as a head: ``kernel`` (in, out) and ``bias`` (out,) keys in the file."""

    path: str  #: the layer's group path with dots (``layers.dense``)
    layer_name: str | None  #: the layer's name (its config ``name``) where the file records it
    kernel: str
    bias: str | None
    in_units: int
    units: int
    reason: str


def _dense_candidates(infos: Iterable[TensorInfo]) -> list[DenseHead]:
    by_key = {info.key: info for info in infos}
    found = []
    for key, info in by_key.items():
        match = _VAR_KEY.match(key)
        if match is None or match.group("index") != "0" or len(info.shape) != 2:
            continue
        parent = match.group("parent") or ""
        stem = f"{parent}.vars." if parent else "vars."
        bias = by_key.get(stem + "1")
        if bias is not None and bias.shape != (info.shape[1],):
            continue
        if stem + "2" in by_key:
            continue  # a Dense has a kernel and at most a bias
        found.append(DenseHead(parent, info.extra.get("layer_name") if info.extra else None, key,
                               bias.key if bias is not None else None, int(info.shape[0]), int(info.shape[1]), ""))
    return found


def _config_layers(config: Any) -> Iterator[dict[str, Any]]:
    """Every layer entry of a serialized model config, depth first, in the config's order."""
    if isinstance(config, dict):
        inner = config.get("config")
        if isinstance(inner, dict) and isinstance(inner.get("layers"), list):
            for layer in inner["layers"]:
                if isinstance(layer, dict):
                    yield layer
                    yield from _config_layers(layer)


def find_dense_head(infos: Iterable[TensorInfo], config: dict[str, Any] | None = None,
                    layer: str | None = None) -> DenseHead:
    """The head of a Keras 3 file: ``layer`` (a layer name or group path), else the config's last
    Dense layer, else the last (in natural order of group paths) layer whose ``vars/0`` is a 2-D
    kernel with at most a matching ``vars/1`` bias. SurgeryError when there is none."""
    candidates = _dense_candidates(infos)
    if not candidates:
        raise SurgeryError("cannot find a head: no layer with a 2-D kernel (vars/0) and a matching bias (vars/1)")
    if layer is not None:
        chosen = [c for c in candidates if layer in (c.layer_name, c.path, c.path.replace(".", "/"))]
        if not chosen:
            names = sorted({c.layer_name or c.path for c in candidates})
            raise SurgeryError(f"no Dense layer {layer!r}; Dense layers: {', '.join(names)}")
        return _with_reason(chosen[0], "named with --head")
    if config is not None:
        dense = [entry.get("config", {}).get("name") for entry in _config_layers(config)
                 if entry.get("class_name") in _UNITS_CLASSES]
        for name in reversed(dense):
            chosen = [c for c in candidates if c.layer_name == name]
            if chosen:
                return _with_reason(chosen[0], f"the last Dense layer in the model's config ('{name}')")
    last = max(candidates, key=lambda c: _natural(c.path))
    return _with_reason(last, "the last layer with a 2-D kernel and a matching bias (Keras 3 layout)")


def _with_reason(head: DenseHead, reason: str) -> DenseHead:
    return DenseHead(head.path, head.layer_name, head.kernel, head.bias, head.in_units, head.units, reason)


def set_layer_outputs(config: dict[str, Any], layer_name: str, outputs: int) -> dict[str, Any]:
    """A copy of a serialized Keras model config with layer ``layer_name``'s outputs set to
    ``outputs`` (``units`` of a Dense layer, ``filters`` of a convolution).

    >>> config = {"class_name": "Sequential", "config": {"layers": [
    ...     {"class_name": "Dense", "config": {"name": "head", "units": 10}}]}}
    >>> set_layer_outputs(config, "head", 3)["config"]["layers"][0]["config"]["units"]
    3
    """
    if not isinstance(outputs, int) or isinstance(outputs, bool) or outputs <= 0:
        raise SurgeryError(f"a layer's outputs must be a positive integer, not {outputs!r}")
    result = copy.deepcopy(config)
    matches = [entry for entry in _config_layers(result)
               if isinstance(entry.get("config"), dict) and entry["config"].get("name") == layer_name]
    if not matches:
        names = [e.get("config", {}).get("name") for e in _config_layers(result) if isinstance(e.get("config"), dict)]
        raise SurgeryError(f"the model config has no layer {layer_name!r} (layers: {', '.join(map(str, names))})")
    if len(matches) > 1:
        raise SurgeryError(f"the model config has several layers named {layer_name!r}")
    entry = matches[0]
    if entry.get("class_name") in _UNITS_CLASSES:
        entry["config"]["units"] = outputs
    elif entry.get("class_name") in _FILTERS_CLASSES:
        entry["config"]["filters"] = outputs
    else:
        raise SurgeryError(f"layer {layer_name!r} is a {entry.get('class_name')}; only Dense and convolution "
                           "layers can change their number of outputs")
    return result


# ---------------------------------------------------------------------------------------------
# The registry's writer signature: (path, infos, fetch, documents, *, progress, overwrite, locate, later)

def _dropped_documents(documents: Any) -> list[str]:
    return [f"the {what} is not stored: Keras files hold Keras configs only"
            for what in ("architecture", "graph") if getattr(documents, what, None) is not None]


def write_weights_file(path: str, infos: Sequence[TensorInfo], fetch: Fetch, documents: Any, *,
                       progress: Progress | None = None, overwrite: bool = True, locate: Any = None,
                       later: Committer | None = None) -> list[str]:
    """:func:`write_keras_weights` for the registry; ``documents.metadata`` gives ``model_name``."""
    write_keras_weights(path, infos, fetch, metadata=getattr(documents, "metadata", None), progress=progress,
                        overwrite=overwrite, later=later)
    return _dropped_documents(documents)


def write_archive_file(path: str, infos: Sequence[TensorInfo], fetch: Fetch, documents: Any, *,
                       progress: Progress | None = None, overwrite: bool = True, locate: Any = None,
                       later: Committer | None = None, copy_from: str | None = None) -> list[str]:
    """:func:`write_keras` for the registry; the config is ``documents.config``, else
    ``documents.metadata["model_config"]``."""
    write_keras(path, infos, fetch, config=getattr(documents, "config", None),
                metadata=getattr(documents, "metadata", None), copy_from=copy_from,
                progress=progress, overwrite=overwrite, later=later)
    return _dropped_documents(documents)


# -- the formats' descriptions ----------------------------------------------------------------------

#: Keras weights files: read through HDF5's detection (``h5.open_hdf5``), written in Keras 3's layout.
FORMAT = Format("keras", "Keras HDF5 weights", (".weights.h5",), None, KerasH5Reader, write_weights_file,
                reports=("keras-h5", "keras3-weights-h5"))
#: ``.keras`` archives: config, metadata and weights in one zip.
ARCHIVE_FORMAT = Format("keras-archive", "Keras .keras archive", (".keras",), sniff, KerasArchiveReader,
                        write_archive_file, reports=("keras3",))
