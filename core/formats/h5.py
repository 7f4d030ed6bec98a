"""modelsurgeon's own HDF5 checkpoint format (specified in docs/format.md).

Layout::

    /                       attrs: format="modelsurgeon", kind="structural"|"named",
                                   format_version=1, creator="modelsurgeon 0.1.0"
    /tensors/<escaped key>  one dataset per tensor, in model order; a shared tensor is stored
                            once and hard-linked under its other keys.
                            named files: attrs role="arg"|"aux", structural=JSON list of names
    /meta/architecture      JSON text (optional): the layer tree, see core/architecture.py
    /meta/graph             JSON text (optional): MXNet -symbol.json schema
    /meta/metadata          JSON text (optional): {str: str} provenance and carried metadata

Files are reproducible: no timestamps, fixed creation order, so the same model saved twice
gives the same bytes.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import h5py
import numpy as np

from ..errors import CheckpointError, ModelSurgeonError
from . import h5journal, h5safe
from .atomic import Committer, atomic_output
from .base import MAX_TENSORS, NAMED, STRUCTURAL, CheckpointReader, TensorInfo
from .extents import Extent, ExtentCopier, Locate, file_id, open_source, read_exact, usable
from .spec import Documents, Format, Probe

FORMAT_NAME = "modelsurgeon"
FORMAT_VERSION = 1
KINDS = (STRUCTURAL, NAMED)
ROLES = ("arg", "aux")
#: The dtypes a tensor may have (docs/format.md, "Dtypes").
DTYPES = frozenset(np.dtype(t) for t in (
    "float16", "float32", "float64", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64", "bool"))

#: HDF5's limit on a dataset's dimensions (H5S_MAX_RANK).
MAX_RANK = 32

Fetch = Callable[[TensorInfo], np.ndarray]
Progress = Callable[[int, int], None]


def escape_key(key: str) -> str:
    """The dataset name of a key: ``%``, ``/`` and control characters percent-encoded, ``.`` alone as ``%2E``.

    >>> escape_key("features.0.weight"), escape_key("dense/kernel:0"), escape_key(".")
    ('features.0.weight', 'dense%2Fkernel:0', '%2E')
    """
    if not isinstance(key, str) or not key:
        raise ModelSurgeonError(f"tensor keys must be non-empty strings, not {key!r}")
    if key == ".":
        return "%2E"
    if _ESCAPED.search(key) is None:
        return key  # nearly every key
    out = []
    for char in key:
        if char in "%/" or ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"%{ord(char):02X}")
        else:
            out.append(char)
    return "".join(out)


_ESCAPED = re.compile("[%/\x00-\x1f\x7f]")


def unescape_key(name: str) -> str:
    """Inverse of :func:`escape_key`."""
    if "%" not in name:
        return name
    out, i = [], 0
    while i < len(name):
        if name[i] == "%" and _is_hex(name[i + 1:i + 3]):
            out.append(chr(int(name[i + 1:i + 3], 16)))
            i += 3
        else:
            out.append(name[i])
            i += 1
    return "".join(out)


def _is_hex(text: str) -> bool:
    return len(text) == 2 and all(c in "0123456789abcdefABCDEF" for c in text)


def is_ours(f: h5py.File) -> bool:
    try:
        return h5safe.attribute(f, "format", f.filename) in (FORMAT_NAME, FORMAT_NAME.encode())
    except (OSError, KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(f.filename, f"cannot read the root attributes (corrupt?): {exc}") from None


def _attr_text(f: h5py.File, name: str, path: str) -> str:
    value = h5safe.attribute(f, name, path)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise CheckpointError(path, f"root attribute '{name}' is missing or not text")
    return value


class H5Reader(CheckpointReader):
    """Reads our HDF5 checkpoints; validates the whole layout before listing anything.

    The listing comes from :func:`survey`: run in the child process that validates the file
    (``survey=`` its result; the library then never parses this file's metadata here), or run
    here on an open ``handle``. Tensors stored as plain bytes are read with ``pread``; HDF5 is
    opened in this process only for the others (chunked, compressed, big-endian, bool).
    """

    format = "modelsurgeon-h5"

    def __init__(self, path: str, handle: h5py.File | None = None, writable: bool = False,
                 survey: dict[str, Any] | None = None) -> None:
        self.path = os.fspath(path)
        self._f: h5py.File | None = None
        self._fd = -1
        if survey is None:
            self._f = handle if handle is not None else h5safe.open_h5(self.path, "r+" if writable else "r")
        try:
            if survey is None:
                survey = _survey_open(self._f, self.path)
            self._adopt(survey)
        except BaseException:
            self.close()
            raise

    def _adopt(self, survey: dict[str, Any]) -> None:
        self.kind = survey["kind"]
        self.creator = survey["creator"]
        self.architecture = survey["architecture"]
        self.graph = survey["graph"]
        self.metadata = survey["metadata"]
        self._file_id = file_id(os.stat(self.path))
        self.tensors = {}
        self._names: dict[str, str] = {}
        self._extents: dict[str, Extent | None] = {}
        for key, name, shape, dtype, role, structural, alias_of, offset in survey["tensors"]:
            info = TensorInfo(key, tuple(shape), np.dtype(dtype), role, tuple(structural), alias_of)
            self.tensors[key] = info
            self._names[key] = name
            self._extents[key] = None if offset is None else Extent(self.path, offset, info.nbytes, info.dtype,
                                                                    self._file_id)

    def read(self, key: str) -> np.ndarray:
        extent = self.extent(key)
        if extent is None and self.tensors[key].size == 0:
            return np.empty(self.tensors[key].shape, self.tensors[key].dtype)
        if extent is None:
            return h5safe.read_dataset(self.dataset(key), self.path)
        array = np.empty(self.tensors[key].shape, extent.dtype)
        # (HDF5 would read past the end of a file cut short after opening as zeros; this refuses)
        view = memoryview(array.reshape(-1)).cast("B")  # type: ignore[arg-type]  # ndarray is a Buffer
        read_exact(self._descriptor(), self.path, view, extent.offset, f"tensor {key!r}")
        return array

    def _descriptor(self) -> int:
        """A descriptor to ``pread`` from: HDF5's own if it has the file open, else one of ours."""
        if self._f is not None:
            return self._f.id.get_vfd_handle()
        if self._fd < 0:
            self._fd = open_source(self.path, self._file_id)
        return self._fd

    def extent(self, key: str) -> Extent | None:
        if key not in self._names:
            raise ModelSurgeonError(f"no tensor '{key}' in {self.path}")
        return self._extents[key]

    def dataset(self, key: str) -> h5py.Dataset:
        """The HDF5 dataset of tensor ``key`` (opens the file in this process if needed)."""
        if key not in self._names:
            raise ModelSurgeonError(f"no tensor '{key}' in {self.path}")
        if self._f is None:
            if file_id(os.stat(self.path)) != self._file_id:
                raise CheckpointError(self.path, "was replaced by another file after it was opened")
            self._f = h5safe.open_h5(self.path)
        return self._f["tensors"][self._names[key]]

    def read_chunks(self, key: str, chunk_bytes: int) -> Iterator[np.ndarray]:
        """Tensor ``key`` as consecutive flat pieces (C order) of at most about ``chunk_bytes``, read
        by hyperslab: a compressed dataset is never whole in memory (only the HDF5 chunks a piece
        touches are inflated)."""
        info = self.tensors.get(key, None)
        if info is None:
            raise ModelSurgeonError(f"no tensor '{key}' in {self.path}")
        if not info.shape or info.size == 0:
            yield self.read(key).reshape(-1)
            return
        ds = self.dataset(key)
        limit = max(1, chunk_bytes // info.dtype.itemsize)
        # the first axis k whose trailing block fits: iterate over the axes before it, take runs along it
        axis = next(k for k in range(len(info.shape)) if math.prod(info.shape[k + 1:]) <= limit)
        rows = max(1, limit // math.prod(info.shape[axis + 1:]))
        for outer in np.ndindex(*info.shape[:axis]):
            for start in range(0, info.shape[axis], rows):
                where = (*outer, slice(start, start + rows))
                try:
                    piece = ds[where]
                except (OSError, RuntimeError, ValueError) as exc:
                    raise CheckpointError(self.path, f"cannot read {ds.name} (corrupt?): "
                                                     f"{' '.join(str(exc).split())[:200]}") from None
                yield np.asarray(piece).astype(info.dtype, copy=False).reshape(-1)

    def close(self) -> None:
        if self._f is not None and self._f.id.valid:
            self._f.close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def survey(f: h5py.File, path: str,
           visit: Callable[[h5py.Dataset, bool], None] = lambda ds, plain: None) -> dict[str, Any] | None:
    """Everything :class:`H5Reader` needs from one of our files, as JSON-ready data; None if the
    file is not ours. Checks the whole layout: a malformed file raises CheckpointError.

    This runs in the child process that validates an input (h5safe.validate_in_child), which
    sends the result back, and in this process for files that need no validation. It touches
    exactly what the reader touches later; ``visit(dataset, plain)`` is called for each tensor dataset,
    ``plain`` when its values lie in the file as plain bytes (the validating child reads the others).
    """
    if not is_ours(f):
        return None
    version = h5safe.attribute(f, "format_version", path)
    if not isinstance(version, (int, np.integer)):
        raise CheckpointError(path, "root attribute 'format_version' is missing or not an integer")
    if int(version) > FORMAT_VERSION:
        raise CheckpointError(path, f"written in format version {int(version)} by a newer modelsurgeon; "
                                    f"this version reads up to {FORMAT_VERSION}")
    kind = _attr_text(f, "kind", path)
    if kind not in KINDS:
        raise CheckpointError(path, f"unknown checkpoint kind {kind!r} (expected structural or named)")
    creator = h5safe.attribute(f, "creator", path, "")
    creator = creator.decode("utf-8", "replace") if isinstance(creator, bytes) else str(creator)
    file_size = os.stat(path).st_size
    tensors: list[list[Any]] = []
    names: dict[str, str] = {}
    first_at: dict[Any, str] = {}
    group = f.get("tensors")
    if group is None:
        raise CheckpointError(path, "no /tensors group")
    if isinstance(group, h5py.Group) and len(group) > MAX_TENSORS:
        raise CheckpointError(path, f"/tensors holds {len(group)} members, more than the {MAX_TENSORS} "
                                    "modelsurgeon reads: refused")
    for name, obj in h5safe.children(group, path):
        if not isinstance(obj, h5py.Dataset):
            raise CheckpointError(path, f"/tensors/{name} is a group; tensors must be datasets")
        offset, shape, dtype = h5safe.dataset_layout(obj, path, file_size)
        visit(obj, offset is not None)
        key = unescape_key(name)
        if key in names:
            raise CheckpointError(path, f"key {key!r} is stored twice (datasets {names[key]!r} and {name!r})")
        if dtype not in DTYPES:
            raise CheckpointError(path, f"tensor '{key}' has unsupported dtype {dtype}")
        address = h5py.h5o.get_info(obj.id).addr
        role = h5safe.attribute(obj, "role", path)
        role = role.decode() if isinstance(role, bytes) else role
        if role is not None and role not in ROLES:
            raise CheckpointError(path, f"tensor '{key}' has unknown role {role!r}")
        tensors.append([key, name, [int(d) for d in shape], dtype.str, role, _structural(obj, key, path),
                        first_at.get(address), offset])
        first_at.setdefault(address, key)
        names[key] = name
    meta = f.get("meta")
    if meta is not None and not isinstance(meta, h5py.Group):
        raise CheckpointError(path, "/meta should be a group")
    members = dict(h5safe.children(meta, path)) if meta is not None else {}
    metadata = _json(members, "metadata", path) or {}
    if not isinstance(metadata, dict):
        raise CheckpointError(path, "/meta/metadata must be a JSON object")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise CheckpointError(path, "/meta/metadata must map strings to strings")
    return {"kind": kind, "creator": creator, "tensors": tensors, "architecture": _json(members, "architecture", path),
            "graph": _json(members, "graph", path), "metadata": metadata}


def _survey_open(f: h5py.File, path: str) -> dict[str, Any]:
    """:func:`survey` of an open file, turning h5py's assorted complaints into one CheckpointError."""
    try:
        result = survey(f, path)
    except CheckpointError:
        raise
    except (OSError, KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(path, f"corrupt HDF5 metadata: {' '.join(str(exc).split())[:200]}") from None
    if result is None:
        raise CheckpointError(path, "HDF5 file is not a modelsurgeon checkpoint (no format attribute)")
    return result


def _structural(ds: h5py.Dataset, key: str, path: str) -> list[str]:
    raw = h5safe.attribute(ds, "structural", path)
    if raw is None:
        return []
    try:
        names = json.loads(raw)
    except (TypeError, ValueError):
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise CheckpointError(path, f"tensor '{key}' has a malformed 'structural' attribute")
    return names


def _json(members: dict[str, Any], name: str, path: str) -> Any:
    obj = members.get(name)
    if obj is None:
        return None
    if not isinstance(obj, h5py.Dataset):
        raise CheckpointError(path, f"/meta/{name} should be a dataset")
    text = h5safe.read_text(obj, path)
    try:
        return json.loads(text)
    except ValueError:
        raise CheckpointError(path, f"/meta/{name} is not valid JSON") from None
    except RecursionError:
        raise CheckpointError(path, f"/meta/{name} is nested too deeply to read") from None


def _write_text(group: h5py.Group, name: str, document: Any) -> None:
    text = json.dumps(document, sort_keys=False, separators=(",", ":"))
    group.create_dataset(name, data=text, dtype=h5py.string_dtype("utf-8"), track_times=False)


def write_h5(path: str, kind: str, infos: Sequence[TensorInfo], fetch: Fetch, *,
             architecture: dict[str, Any] | None = None, graph: dict[str, Any] | None = None,
             metadata: dict[str, str] | None = None, progress: Progress | None = None,
             overwrite: bool = True, locate: Locate | None = None, later: Committer | None = None) -> None:
    """Write a checkpoint atomically, fetching and writing one tensor at a time.

    An info with ``alias_of`` set becomes a hard link to that earlier key (shared tensor).
    Where ``locate(info)`` gives the tensor's bytes in another file (an unchanged input tensor),
    they are copied into the dataset's space by the kernel instead of fetched. With ``later``, the
    finished file is committed (fsynced and renamed into place) on that queue's thread.
    """
    if kind not in KINDS:
        raise ModelSurgeonError(f"kind must be 'structural' or 'named', not {kind!r}")
    seen: set[str] = set()
    for info in infos:
        escape_key(info.key)
        if info.key in seen:
            raise ModelSurgeonError(f"duplicate tensor key '{info.key}'")
        if info.alias_of is not None and info.alias_of not in seen:
            raise ModelSurgeonError(f"'{info.key}' aliases '{info.alias_of}', which is not written before it")
        if info.dtype not in DTYPES:
            raise ModelSurgeonError(f"tensor '{info.key}' has dtype {info.dtype}, which the format "
                                    "does not store (see docs/format.md)")
        if len(info.shape) > MAX_RANK:
            raise ModelSurgeonError(f"tensor '{info.key}' has {len(info.shape)} dimensions; HDF5 stores at most "
                                    f"{MAX_RANK} (write safetensors instead)")
        seen.add(info.key)
    total = sum(info.nbytes for info in infos if info.alias_of is None)
    done = 0
    from ..version import __version__
    # our own output: reading it back needs no validation in a child
    with atomic_output(path, overwrite=overwrite, later=later, then=lambda: h5safe.trust(path)) as tmp, \
            _write_errors(), \
            h5py.File(tmp, "w", track_order=True, libver=("earliest", "v110")) as f, \
            ExtentCopier(os.open(tmp, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)), owned=True) as copier:
        f.attrs["format"] = FORMAT_NAME
        f.attrs["kind"] = kind
        f.attrs["format_version"] = np.int64(FORMAT_VERSION)
        f.attrs["creator"] = f"modelsurgeon {__version__}"
        group = f.create_group("tensors", track_order=True)
        dcpl, lcpl = _creation_plist(), _link_plist()
        # All metadata first (flushed below), then all data: HDF5 writes metadata out as it goes,
        # and a write into a page the kernel is writing back waits for the disk; with the metadata
        # on disk before the first tensor, the data phase is pure copying.
        datasets = []
        for info in infos:
            name = escape_key(info.key)
            if info.alias_of is not None:
                group[name] = group[escape_key(info.alias_of)]
                continue
            ds = _create_dataset(group, name, info, dcpl, lcpl)
            if info.role is not None:
                ds.attrs["role"] = info.role
            if info.structural:
                ds.attrs["structural"] = json.dumps(list(info.structural))
            datasets.append((ds, info))
        f.flush()
        for ds, info in datasets:
            extent = locate(info) if locate is not None else None
            if usable(extent, info.dtype, info.nbytes):
                copier.copy(extent, ds.id.get_offset())
            else:
                array = np.asarray(fetch(info), order="C")
                if array.shape != info.shape or array.dtype != info.dtype:
                    raise ModelSurgeonError(f"tensor '{info.key}' is {array.shape} {array.dtype}, "
                                            f"expected {info.shape} {info.dtype}")
                if array.size:
                    ds.write_direct(array)
                    copier.wrote(array.nbytes)
                del array
            done += info.nbytes
            if progress is not None:
                progress(done, total)
        if architecture is not None or graph is not None or metadata:
            meta = f.create_group("meta", track_order=True)
            if architecture is not None:
                _write_text(meta, "architecture", architecture)
            if graph is not None:
                _write_text(meta, "graph", graph)
            if metadata:
                _write_text(meta, "metadata", dict(sorted(metadata.items())))


_ERRNO = re.compile(r"\berrno = (\d+)")


@contextlib.contextmanager
def _write_errors() -> Iterator[None]:
    """HDF5 reports a failed write (a full disk...) as a RuntimeError that quotes the errno;
    raise it as the OSError it is, so the output is reported like any other write error."""
    try:
        yield
    except RuntimeError as exc:
        match = _ERRNO.search(str(exc))
        if match is None:
            raise
        number = int(match.group(1))
        raise OSError(number, os.strerror(number)) from None


def _creation_plist() -> Any:
    """How every tensor dataset is created: contiguous, space allocated at once, never filled, no
    timestamps. Every byte is then written exactly once, by h5py or by a kernel copy into
    ``get_offset()``."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.CONTIGUOUS)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    dcpl.set_obj_track_times(False)
    return dcpl


def _link_plist() -> Any:
    """Link names are UTF-8, as h5py marks them."""
    lcpl = h5py.h5p.create(h5py.h5p.LINK_CREATE)
    lcpl.set_char_encoding(h5py.h5t.CSET_UTF8)
    return lcpl


def _create_dataset(group: h5py.Group, name: str, info: TensorInfo, dcpl: Any, lcpl: Any) -> h5py.Dataset:
    """The low-level calls h5py's ``create_dataset`` makes, minus its per-call checks (same bytes)."""
    space = h5py.h5s.create_simple(info.shape) if info.shape else h5py.h5s.create(h5py.h5s.SCALAR)
    dsid = h5py.h5d.create(group.id, name.encode("utf-8"), _file_type(info.dtype), space, dcpl=dcpl, lcpl=lcpl)
    return h5py.Dataset(dsid)


@functools.cache
def _file_type(dtype: np.dtype) -> Any:
    """The HDF5 type a dtype is stored as (one per dtype: building it costs more than the dataset)."""
    return h5py.h5t.py_create(dtype, logical=1)


def rename_in_place(path: str, mapping: dict[str, str], *, architecture: dict[str, Any] | None = None,
                    graph: dict[str, Any] | None = None, structural: dict[str, tuple[str, ...]] | None = None) -> str:
    """Rename tensors of an existing file without rewriting their data; returns how it was done.

    Datasets move to temporary names first, so swaps and chains (a->b, b->a) work.
    ``architecture``/``graph``, when given, replace the stored documents.

    Whatever fails (a full disk, SIGKILL, power loss), ``path`` ends as the old file or the
    completely renamed one. Where the file system can clone a file (reflinks: btrfs, xfs...), the
    renames happen in a clone that then atomically replaces the file (``'clone'``). Elsewhere
    (ext4...) HDF5 edits the file in memory and the changed metadata pages reach the file through
    a journal (``'journal'``, see :mod:`.h5journal`): no data is copied either way.
    """
    target = os.path.realpath(path)  # act on the file a symbolic link points to, not the link
    h5journal.recover(target)
    if h5safe.VALIDATE:
        h5safe.validate_in_child(target)
    try:
        with atomic_output(target) as clone:
            if not _reflink(target, clone):
                raise _NoClone  # leaves the target untouched and removes the temporary
            with h5safe.h5_errors(clone), h5py.File(clone, "r+") as f:
                _rename_inside(f, path, mapping, architecture, graph, structural)
        how = "clone"
    except _NoClone:
        def change(overlay: h5journal.Overlay) -> None:
            with h5safe.h5_errors(target), _write_errors(), h5py.File(overlay, "r+") as f:
                _rename_inside(f, path, mapping, architecture, graph, structural)
        h5journal.edit(target, change)
        how = "journal"
    h5safe.trust(target)
    return how


class _NoClone(Exception):
    """The file system cannot clone files."""


def _reflink(source: str, destination: str) -> bool:
    """Clone ``source`` into ``destination`` sharing its blocks (FICLONE); False where unsupported."""
    try:
        import fcntl
        ficlone = 0x40049409
        with open(source, "rb") as src, open(destination, "wb") as dst:
            fcntl.ioctl(dst.fileno(), ficlone, src.fileno())
        return True
    except (OSError, ImportError):
        return False


def _rename_inside(f: h5py.File, path: str, mapping: dict[str, str], architecture: dict[str, Any] | None,
                   graph: dict[str, Any] | None, structural: dict[str, tuple[str, ...]] | None) -> None:
    listing = _survey_open(f, path)
    names = {entry[0]: entry[1] for entry in listing["tensors"]}
    group = f["tensors"]
    for old in mapping:
        if old not in names:
            raise ModelSurgeonError(f"no tensor '{old}' in {path}")
    # Every link moves out and back in its original order: renamed keys keep their place
    # in the creation-ordered group, and swaps (a->b, b->a) cannot collide.
    staging = {}
    for index, key in enumerate(names):
        temp = f"%00rename{index}"
        group.move(names[key], temp)
        staging[key] = temp
    for key, temp in staging.items():
        group.move(temp, escape_key(mapping.get(key, key)))
    if structural:
        for key, keys in structural.items():
            group[escape_key(key)].attrs["structural"] = json.dumps(list(keys))
    for name, document in (("architecture", architecture), ("graph", graph)):
        if document is None:
            continue
        meta = f.require_group("meta")
        if name in meta:
            del meta[name]
        _write_text(meta, name, document)


# -- the format's description -----------------------------------------------------------------

def sniff(probe: Probe) -> bool:
    return h5safe.is_hdf5(probe.head)


def open_hdf5(path: str) -> CheckpointReader:
    """Our HDF5 checkpoint (validated and listed in a forked child first), else a Keras HDF5 file."""
    if h5safe.VALIDATE:  # the validating child lists our files too: nothing is parsed twice
        listing = h5safe.validate_in_child(path, survey)
        if listing is not None:
            return H5Reader(path, survey=listing)
    handle = h5safe.open_h5(path)
    try:
        if is_ours(handle):
            return H5Reader(path, handle)
        from . import keras
        if keras.looks_like_keras(handle):
            handle.close()
            return keras.KerasH5Reader(path)
    except BaseException:
        handle.close()
        raise
    handle.close()
    raise CheckpointError(path, "HDF5 file is neither a modelsurgeon checkpoint nor a Keras weights file")


def write_checkpoint(path: str, infos: Sequence[TensorInfo], fetch: Fetch, documents: Documents, *,
                     progress: Progress | None = None, overwrite: bool = True, locate: Locate | None = None,
                     later: Committer | None = None) -> list[str]:
    write_h5(path, documents.kind, infos, fetch, architecture=documents.architecture, graph=documents.graph,
             metadata=documents.metadata, progress=progress, overwrite=overwrite, locate=locate, later=later)
    return []


FORMAT = Format("h5", "modelsurgeon HDF5", (".h5", ".hdf5"), sniff, open_hdf5, write_checkpoint, shards=True,
                reports=("modelsurgeon-h5",))
