"""Keras HDF5 checkpoints: legacy ``.h5`` (full model or weights only) and Keras 3 ``.weights.h5``.

Layouts (``/work/shared/reference/peers-formats.md`` §1-2, checked against files written by
Keras 3.15, see ``tests/fixtures/peers/README.md``):

* **legacy full model** (``model.save("m.h5")``): root attrs ``model_config`` (JSON),
  ``keras_version``, ``backend``, optional ``training_config``; group ``model_weights`` with
  attr ``layer_names``; one group per layer with attr ``weight_names``; each weight is the
  dataset at ``<layer>/<weight name>`` (the weight name holds ``/``, so it sits in subgroups).
* **legacy weights only** (tf.keras ``save_weights("w.h5")``): the ``model_weights`` layout at
  the file root.
* **Keras 3** ``.weights.h5``: a tree of attribute paths, each object's variables numbered
  ``0, 1, ...`` in a ``vars`` group: ``/layers/dense/vars/0``.

Keys (all structural, dotted):

* legacy: ``<layer name>.<weight name>`` where the weight name loses a ``:0`` suffix and
  everything up to and including the first path component equal to the layer name; its other
  ``/`` become dots. ``dense`` + ``dense/kernel:0`` -> ``dense.kernel``; Keras 3 writes
  ``sequential/conv/kernel`` for layer ``conv`` -> ``conv.kernel``; a nested model ``inner``
  with ``inner/dense/kernel`` (or tf.keras ``dense/kernel:0``) -> ``inner.dense.kernel``.
  Two weights that would get one key fall back to the full weight path for the later one.
  Order: ``layer_names`` order, then each layer's ``weight_names`` order; weights of the
  ``top_level_model_weights`` group come last, under that name.
* Keras 3: the dataset's HDF5 path with dots for slashes: ``layers.dense.vars.0``. We keep the
  path rather than inventing names, because the file only names *layers* (the ``vars`` group's
  ``name`` attribute, e.g. ``conv`` for ``layers/conv2d``), never variables, and the path is
  what Keras matches on load; the layer name is kept in ``TensorInfo.extra["layer_name"]``.
  Order: tree order, each group's own ``vars`` first, then ``layers``, then other members, names
  in natural order (``dense``, ``dense_1``, ``dense_2``, ``dense_10``; ``vars/2`` before
  ``vars/10``); HDF5 keeps no creation order for Keras's files, so this is the closest to
  model order the file allows.

Optimizer state (legacy ``optimizer_weights``, Keras 3 ``optimizer/``) is not listed as
tensors; ``metadata["optimizer_tensors"]`` counts it. ``TensorInfo.extra["h5_path"]`` keeps
every tensor's HDF5 path.

Dtypes: numpy's float16/32/64, (u)int8-64 and bool as stored (native byte order). Keras stores
bfloat16 as 2-byte opaque data (attr ``dtype="bfloat16"`` in Keras 3 files, no attr in legacy
ones): read as float32 with ``extra["source_dtype"] = "BF16"`` (exact), like safetensors.
1-byte opaque data with a ``dtype`` attr naming ``float8_e4m3fn``/``float8_e5m2`` likewise
(``F8_E4M3``/``F8_E5M2``). Anything else is refused.

Safety: the whole file tree is walked once on open with :func:`h5safe.children` (soft and
external links refused), every dataset passes :func:`h5safe.check_dataset`, a group reachable
twice (hard-link cycles, exponential DAGs) is refused, and weight names are looked up in that
walked tree, never resolved as HDF5 paths (so ``../`` or ``/`` in a name cannot reach elsewhere).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import h5py
import numpy as np

from ..errors import CheckpointError, ModelSurgeonError
from .base import STRUCTURAL, CheckpointReader, TensorInfo
from .extents import Extent, file_id
from .h5safe import attribute, check_dataset, children, dataset_extent, open_h5, read_dataset
from .safetensors_dtypes import bf16_to_f32, f8_to_f32

#: Attribute arrays larger than this are split by Keras into ``name0``, ``name1``...
MAX_ATTR_CHUNKS = 100_000
#: The most HDF5 objects the walk visits before refusing the file.
MAX_OBJECTS = 2_000_000
_PLAIN = frozenset(np.dtype(t) for t in ("float16", "float32", "float64", "int8", "int16", "int32",
                                         "int64", "uint8", "uint16", "uint32", "uint64", "bool"))
_OPAQUE = {(2, "bfloat16"): "BF16", (2, None): "BF16", (1, "float8_e4m3fn"): "F8_E4M3",
           (1, "float8_e5m2"): "F8_E5M2"}
_KERAS3_ROOTS = ("layers", "vars", "_layer_checkpoint_dependencies")


def _link_present(group: h5py.Group, name: str) -> bool:
    try:
        return group.get(name, getlink=True) is not None
    except (OSError, RuntimeError, KeyError, ValueError):
        return False


def looks_like_keras(f: h5py.File) -> bool:
    """Whether an open HDF5 file is laid out like a Keras checkpoint (legacy or Keras 3)."""
    try:
        attrs = f.attrs
        if attrs.get("format") in ("modelsurgeon", b"modelsurgeon"):
            return False
        if "layer_names" in attrs or "layer_names0" in attrs:
            return True
        if _link_present(f, "model_weights"):
            link = f.get("model_weights", getlink=True)
            if not isinstance(link, h5py.HardLink):
                return True  # a Keras-shaped file with a link: the reader refuses it loudly
            group = f["model_weights"]
            if isinstance(group, h5py.Group) and ("layer_names" in group.attrs or "layer_names0" in group.attrs):
                return True
        return any(_link_present(f, name) for name in _KERAS3_ROOTS)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError):
        return False


def _text(value: Any) -> str | None:
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, (str, np.str_)):
        return str(value)
    return None


def _string_list_attr(obj: h5py.Group, name: str, path: str) -> list[str] | None:
    """A Keras string-list attribute, joining ``name0, name1...`` chunks; None when absent."""
    try:
        attrs = obj.attrs
        if name in attrs:
            chunks = [attribute(obj, name, path)]
        elif f"{name}0" in attrs:
            chunks = []
            while f"{name}{len(chunks)}" in attrs:
                if len(chunks) >= MAX_ATTR_CHUNKS:
                    raise CheckpointError(path, f"{obj.name} attribute {name!r} has too many chunks")
                chunks.append(attribute(obj, f"{name}{len(chunks)}", path))
        else:
            return None
    except CheckpointError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(path, f"cannot read attribute {name!r} of {obj.name}: {exc}"[:300]) from None
    items: list[str] = []
    for chunk in chunks:
        array = np.asarray(chunk)
        if array.size == 0:
            continue
        for item in array.reshape(-1):
            if isinstance(item, (bytes, np.bytes_)):
                try:
                    items.append(bytes(item).decode("utf-8"))
                except UnicodeDecodeError:
                    raise CheckpointError(path, f"attribute {name!r} of {obj.name} is not UTF-8 text") from None
            elif isinstance(item, (str, np.str_)):
                items.append(str(item))
            else:
                raise CheckpointError(path, f"attribute {name!r} of {obj.name} should list names, "
                                            f"found {type(item).__name__}")
    return items


def _natural(name: str) -> tuple:
    parts = re.split(r"(\d+)", name)
    return tuple(int(part) if i % 2 else part for i, part in enumerate(parts))


def _keras3_order(name: str) -> tuple:
    rank = {"vars": 0, "layers": 1, "_layer_checkpoint_dependencies": 1}.get(name, 2)
    return (rank, _natural(name))


class _Tree:
    """Every object of the file by absolute HDF5 path, walked once with links refused."""

    def __init__(self, f: h5py.File, path: str) -> None:
        self.path = path
        self.file_size = os.path.getsize(path)
        self.objects: dict[str, h5py.Group | h5py.Dataset] = {"/": f}
        self.members: dict[str, list[str]] = {}
        self._seen_groups: set[Any] = set()
        self._walk(f, "/")

    def _address(self, obj: h5py.HLObject) -> Any:
        try:
            return h5py.h5o.get_info(obj.id).addr
        except (OSError, RuntimeError, ValueError, AttributeError):
            return obj.id.fileno, obj.name

    def _walk(self, root: h5py.Group, root_path: str) -> None:
        stack = [(root, root_path)]
        self._seen_groups.add(self._address(root))
        while stack:
            group, where = stack.pop()
            names = []
            for name, obj in children(group, self.path):
                full = f"{where.rstrip('/')}/{name}"
                names.append(name)
                if len(self.objects) >= MAX_OBJECTS:
                    raise CheckpointError(self.path, f"more than {MAX_OBJECTS} HDF5 objects: refused")
                self.objects[full] = obj
                if isinstance(obj, h5py.Group):
                    address = self._address(obj)
                    if address in self._seen_groups:
                        raise CheckpointError(self.path, f"{full} is a group reachable by two paths "
                                                         "(hard-link cycle?); refused")
                    self._seen_groups.add(address)
                    stack.append((obj, full))
                elif isinstance(obj, h5py.Dataset):
                    check_dataset(obj, self.path, self.file_size)
                else:
                    raise CheckpointError(self.path, f"{full} is neither a group nor a dataset")
            self.members[where] = names

    def group(self, where: str) -> h5py.Group | None:
        obj = self.objects.get(where)
        return obj if isinstance(obj, h5py.Group) else None


def _source_code(ds: h5py.Dataset, path: str, label: str) -> tuple[np.dtype, str | None]:
    """(dtype read() returns, source dtype code or None) for a weight dataset."""
    dtype = ds.dtype
    if dtype.kind == "V" and dtype.fields is None and dtype.subdtype is None:
        declared = _text(attribute(ds, "dtype", path))
        code = _OPAQUE.get((dtype.itemsize, declared))
        if code is None:
            raise CheckpointError(path, f"weight {label} has an opaque {dtype.itemsize}-byte dtype "
                                        f"({declared or 'undeclared'}) that modelsurgeon cannot read")
        return np.dtype(np.float32), code
    native = dtype.newbyteorder("=") if dtype.byteorder not in ("|", "=") else dtype
    if native not in _PLAIN:
        raise CheckpointError(path, f"weight {label} has dtype {dtype}, which modelsurgeon cannot read")
    return native, None


class KerasH5Reader(CheckpointReader):
    """A Keras HDF5 checkpoint (see the module docstring for layouts, keys and order).

    ``format`` is ``'keras-h5'`` (legacy, full model or weights only; ``variant`` says which)
    or ``'keras3-weights-h5'``. ``metadata`` holds what the file says about itself:
    ``model_config``/``training_config`` (JSON text), ``keras_version``, ``backend``,
    ``model_name`` (Keras 3), ``optimizer_tensors`` (a count).
    """

    kind = STRUCTURAL

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._f = open_h5(self.path)
        try:
            st = os.stat(self.path)
            self._file_id, self._file_size = file_id(st), st.st_size
            self._load()
        except CheckpointError:
            self._f.close()
            raise
        except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:  # h5py on damaged files
            self._f.close()
            text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise CheckpointError(self.path, f"cannot read the Keras file (truncated or corrupt?): {text}") from None
        except BaseException:
            self._f.close()
            raise

    # -- opening ------------------------------------------------------------------------------

    def _load(self) -> None:
        f, path = self._f, self.path
        self.tensors: dict[str, TensorInfo] = {}
        self._datasets: dict[str, h5py.Dataset] = {}
        self._codes: dict[str, str | None] = {}
        self.metadata = {}
        tree = _Tree(f, path)
        root_members = tree.members["/"]
        if _string_list_attr(f, "layer_names", path) is not None:
            self.format, self.variant = "keras-h5", "weights"
            self._legacy(tree, "/")
            self._meta_attrs(f, ("keras_version", "backend"))
        elif "model_weights" in root_members and tree.group("/model_weights") is not None \
                and _string_list_attr(tree.objects["/model_weights"], "layer_names", path) is not None:
            self.format, self.variant = "keras-h5", "model"
            self._legacy(tree, "/model_weights")
            self._meta_attrs(f, ("keras_version", "backend"))
            self._meta_attrs(tree.objects["/model_weights"], ("keras_version", "backend"))
            for name in ("model_config", "training_config"):
                self._json_attr(f, name)
        elif any(name in root_members for name in _KERAS3_ROOTS):
            self.format, self.variant = "keras3-weights-h5", "weights"
            self._keras3(tree)
        else:
            raise CheckpointError(path, "HDF5 file is not a Keras checkpoint (no layer_names attribute, "
                                        "model_weights group or layers/vars tree)")

    def _meta_attrs(self, obj: h5py.Group, names: tuple[str, ...]) -> None:
        for name in names:
            value = _text(attribute(obj, name, self.path))
            if value is not None:
                self.metadata.setdefault(name, value)

    def _json_attr(self, f: h5py.File, name: str) -> None:
        text = _text(attribute(f, name, self.path))
        if text is None:
            return
        try:
            json.loads(text)
        except (ValueError, RecursionError):
            self.metadata[f"{name}_error"] = f"root attribute {name} is not valid JSON; ignored"
            return
        self.metadata[name] = text

    def _add(self, key: str, ds: h5py.Dataset, extra: dict[str, Any]) -> None:
        label = f"{key!r} ({ds.name})"
        dtype, code = _source_code(ds, self.path, label)
        if code is not None:
            extra["source_dtype"] = code
        extra["h5_path"] = ds.name
        self.tensors[key] = TensorInfo(key, tuple(int(d) for d in ds.shape), dtype, extra=extra)
        self._datasets[key] = ds
        self._codes[key] = code

    def _legacy(self, tree: _Tree, base: str) -> None:
        path = self.path
        group = tree.objects[base]
        layer_names = _string_list_attr(group, "layer_names", path) or []
        prefix = base.rstrip("/")
        seen: set[str] = set()
        for name in layer_names:  # one pass: list.count per name was quadratic
            if name in seen:
                raise CheckpointError(path, f"layer_names lists {name!r} twice")
            seen.add(name)
        layers = list(layer_names)
        if "top_level_model_weights" in tree.members[base] and "top_level_model_weights" not in layers:
            layers.append("top_level_model_weights")
        for layer in layers:
            where = f"{prefix}/{layer}"
            layer_group = tree.group(where)
            if layer_group is None or "/" in layer or layer in ("", ".", ".."):
                raise CheckpointError(path, f"layer {layer!r} is listed in layer_names but {where} "
                                            "is not a group of the file")
            weight_names = _string_list_attr(layer_group, "weight_names", path) or []
            for weight in weight_names:
                parts = weight.split("/")
                if any(part in ("", ".", "..") for part in parts):
                    raise CheckpointError(path, f"layer {layer!r} has a malformed weight name {weight!r}")
                ds = tree.objects.get(f"{where}/{weight}")
                if not isinstance(ds, h5py.Dataset):
                    raise CheckpointError(path, f"weight {weight!r} of layer {layer!r} is missing "
                                                f"(expected a dataset at {where}/{weight})")
                key = self._legacy_key(layer, weight)
                if key in self.tensors:
                    key = ".".join([layer, *parts])
                if key in self.tensors:
                    raise CheckpointError(path, f"two weights of the file map to the key {key!r}")
                self._add(key, ds, {"layer": layer, "weight_name": weight})
        optimizer = tree.group("/optimizer_weights")
        if optimizer is not None:
            count = sum(1 for name, obj in tree.objects.items()
                        if name.startswith("/optimizer_weights/") and isinstance(obj, h5py.Dataset))
            self.metadata["optimizer_tensors"] = str(count)

    @staticmethod
    def _legacy_key(layer: str, weight: str) -> str:
        parts = re.sub(r":\d+$", "", weight).split("/")
        if layer in parts[:-1]:
            parts = parts[parts.index(layer) + 1:]
        return ".".join([layer, *parts])

    def _keras3(self, tree: _Tree) -> None:
        optimizer = 0

        def visit(where: str) -> None:
            nonlocal optimizer
            for name in sorted(tree.members.get(where, []), key=_keras3_order):
                full = f"{where.rstrip('/')}/{name}"
                obj = tree.objects[full]
                if isinstance(obj, h5py.Group):
                    visit(full)
                    continue
                if full.startswith("/optimizer/"):
                    optimizer += 1
                    continue
                extra: dict[str, Any] = {}
                parent = tree.objects[where]
                layer_name = _text(attribute(parent, "name", self.path)) if where.endswith("/vars") else None
                if layer_name is not None:
                    extra["layer_name"] = layer_name
                self._add(full.strip("/").replace("/", "."), obj, extra)

        visit("/")
        if optimizer:
            self.metadata["optimizer_tensors"] = str(optimizer)
        root_vars = tree.group("/vars")
        if root_vars is not None:
            name = _text(attribute(root_vars, "name", self.path))
            if name is not None:
                self.metadata["model_name"] = name

    # -- reading ------------------------------------------------------------------------------

    def read(self, key: str) -> np.ndarray:
        if key not in self._datasets:
            raise ModelSurgeonError(f"no tensor '{key}' in {self.path}")
        if not self._f.id.valid:
            raise ModelSurgeonError(f"{self.path} is closed")
        info = self.tensors[key]
        array = np.asarray(read_dataset(self._datasets[key], self.path))
        code = self._codes[key]
        if code is None:
            return np.asarray(array, dtype=info.dtype)
        if code == "BF16":
            values = bf16_to_f32(np.ascontiguousarray(array).view("<u2"))
        else:
            values = f8_to_f32(np.ascontiguousarray(array).view(np.uint8), code)
        return values.reshape(info.shape)

    def extent(self, key: str) -> Extent | None:
        if key not in self._datasets:
            raise ModelSurgeonError(f"no tensor '{key}' in {self.path}")
        if self._codes[key] is not None:
            return None  # stored as bf16/fp8 and widened on reading
        return dataset_extent(self._datasets[key], self.path, self._file_id, self._file_size)

    def close(self) -> None:
        if self._f.id.valid:
            self._f.close()
