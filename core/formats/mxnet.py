"""MXNet parameter files: the legacy binary ``.params`` container and MXNet 2's ``.npz``.

Legacy ``.params`` (``mx.nd.save``, ``save_parameters``, ``export``; all little-endian)::

    uint64 0x112 (list magic) | uint64 reserved | uint64 count | count x NDArray record
    | uint64 name count (0 = plain list, else == count) | per name: uint64 length, UTF-8 bytes

An NDArray record starts with a uint32 magic: ``0xF993FAC9`` (V2) or ``0xF993FACA`` (V3,
numpy-shape semantics) are followed by an int32 storage type; ``0xF993FAC8`` (V1) has no storage
type; any other value is the ndim of a pre-V1 record whose dims are uint32. Then the shape
(int32 ndim + int64 dims for V1-V3), the context (int32 dev_type, int32 dev_id), an int32 type
flag and the raw C-order data. Tensor data lies between the headers, so :class:`MXNetParamsReader`
walks the headers with small positioned reads and never touches the data until
:meth:`~MXNetParamsReader.read`.

MXNet 2's ``npx.savez`` writes an uncompressed zip of ``<key>.npy`` members, read here by
:class:`MXNetNpzReader` from the zip directory and each member's ``.npy`` header.

Choices where MXNet is silent or unsafe:

* bfloat16 (type flag 12) is refused when opening: numpy has no bfloat16 dtype, and widening to
  float32 would silently double the tensor and change its dtype on a round trip.
* "none" arrays (no shape, no data) and sparse storage (row_sparse, csr) are refused, naming the key.
* Everything after the names list (MXNet ignores it) is refused as trailing garbage; the
  reserved word and the saving device (MXNet ignores both) are accepted whatever they hold.
* int16/uint16/uint32/uint64 (type flags 8-11, MXNet 2 only: MXNet 1.9.1 fails with "Unknown
  type enum 8") are read; :func:`write_params` writes them only when asked to.
* :func:`write_params` writes V2 records (what ``mx.nd.save`` writes outside numpy-shape mode),
  byte for byte; ``np_shape=True`` writes V3 records as ``mx.nd.save`` does under
  ``mx.npx.set_np()``, the only way to store a 0-d tensor.
"""


from __future__ import annotations

import math
import os
import struct
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

import numpy as np

from ..errors import CheckpointError, OutputExistsError
from .atomic import CommitGroup, Committer, atomic_output
from .base import MAX_TENSORS, NAMED, CheckpointReader, TensorInfo, input_errors, without_aliases
from .extents import Extent, Locate, file_id, read_exact
from .spec import Documents, Fetch, Format, Probe, Progress, Writer

__all__ = [
    "MXNetNpzReader",
    "MXNetParamsReader",
    "sniff",
    "write_npz",
    "write_params",
]
from .mxnet_common import (
    _CHUNK,
    _LE_FLAGS,
    _NUM_AUX,
    _STYPES,
    _VERSION_NAMES,
    BF16_FLAG,
    LIST_MAGIC,
    MAX_NAME_BYTES,
    MAX_NDIM,
    V1_MAGIC,
    V2_MAGIC,
    V3_MAGIC,
    _check_nbytes,
    _fresh,
    _kind,
    _normalize_bool,
    _open,
    _pread,
    _short,
    _split_role,
    sniff,
)
from .mxnet_npz import MXNetNpzReader
from .mxnet_write import write_npz, write_params

# --------------------------------------------------------------------------------------------
# legacy binary .params


class _Cursor:
    """Bounds-checked little-endian reads at ``pos`` through a small window of the file."""

    def __init__(self, handle: BinaryIO, path: str, size: int):
        self.handle, self.path, self.size = handle, path, size
        self.pos = 0
        self._win = b""
        self._win_at = 0

    def remaining(self) -> int:
        return self.size - self.pos

    def need(self, n: int, what: str) -> None:
        if n > self.size - self.pos:
            raise CheckpointError(
                self.path, f"truncated: {what} at byte {self.pos} needs {n} bytes but only "
                           f"{max(self.size - self.pos, 0)} remain")

    def take(self, n: int, what: str) -> bytes:
        self.need(n, what)
        start = self.pos - self._win_at
        if start < 0 or start + n > len(self._win):
            want = min(max(n, _CHUNK), self.size - self.pos)
            self._win = _pread(self.handle, self.path, want, self.pos)
            self._win_at = self.pos
            start = 0
            if len(self._win) < n:
                raise CheckpointError(self.path, f"truncated: {what} at byte {self.pos}: the file "
                                                 "shrank while it was being read")
        self.pos += n
        return self._win[start:start + n]

    def unpack(self, fmt: str, what: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))

    def skip(self, n: int, what: str) -> None:
        self.need(n, what)
        self.pos += n


def _sparse_problem(stype_name: str) -> str:
    return (f"uses {stype_name} storage; only dense arrays are supported "
            "(convert it with .tostype('default') in MXNet)")


class _Record:
    __slots__ = ("flag", "index", "offset", "problem", "shape", "version")

    def __init__(self, index: int, version: str):
        self.index, self.version = index, version
        self.shape: tuple[int, ...] = ()
        self.flag = -1
        self.offset = -1
        self.problem: str | None = None  # refused, reported with the key once names are known


class MXNetParamsReader(CheckpointReader):
    """Reads MXNet's legacy binary ``.params`` (V1, V2, V3 and pre-V1 records, dense only).

    Opening walks every record header and the names list, checking each count, length and
    offset against the file size; only :meth:`read` reads tensor data.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        self.format = "mxnet-params"
        self.architecture = None
        self.graph = None
        self.metadata = {}
        self.tensors = {}
        self._handle: BinaryIO | None = _open(self.path)
        try:
            self._index()
        except BaseException:
            self.close()
            raise

    # -- indexing ------------------------------------------------------------------------------

    def _index(self) -> None:
        path = self.path
        if self._handle is None:
            raise CheckpointError(path, "the file is closed")
        st = os.fstat(self._handle.fileno())
        size, self._file_id = st.st_size, file_id(st)
        cur = _Cursor(self._handle, path, size)
        if size < 8:
            raise CheckpointError(path, f"not an MXNet .params file: only {size} bytes")
        (magic,) = cur.unpack("Q", "list magic")
        if magic != LIST_MAGIC:
            raise CheckpointError(path, f"not an MXNet .params file (list magic {magic:#x}, "
                                        f"expected {LIST_MAGIC:#x})")
        cur.unpack("Q", "reserved field")  # MXNet ignores it
        (count,) = cur.unpack("Q", "array count")
        # Every record takes at least 4 bytes and the names count 8 more.
        if count > max(cur.remaining() - 8, 0) // 4:
            raise CheckpointError(path, f"header claims {count} arrays but only "
                                        f"{cur.remaining()} bytes follow")
        if count > MAX_TENSORS:
            raise CheckpointError(path, f"header claims {count} arrays, more than the {MAX_TENSORS} "
                                        "modelsurgeon reads: refused")
        records: list[_Record] = []
        self._sparse: tuple[int, str] | None = None  # the first sparse record, set as soon as seen
        try:
            for index in range(count):
                records.append(self._record(cur, index))
            names = self._names(cur, count)
        except CheckpointError:
            if self._sparse is not None:  # sizes after a sparse record are guesses: report the cause
                index, stype_name = self._sparse
                raise CheckpointError(path, f"array #{index} {_sparse_problem(stype_name)}") from None
            raise

        stripped: dict[str, str] = {}
        versions = set()
        for rec, name in zip(records, names):
            if rec.problem:
                raise CheckpointError(path, f"array {name!r} {rec.problem}")
            key, role = _split_role(name)
            if key in stripped:
                raise CheckpointError(path, f"duplicate key {key!r} (from {stripped[key]!r} and {name!r})")
            stripped[key] = name
            versions.add(rec.version)
            self.tensors[key] = TensorInfo(key=key, shape=rec.shape, dtype=_LE_FLAGS[rec.flag], role=role,
                                           extra={"offset": rec.offset, "ndarray_version": rec.version})
        self.kind = _kind(names)
        if versions:
            self.metadata["ndarray_version"] = ",".join(sorted(versions))

    def _shape(self, cur: _Cursor, where: str, version: str) -> tuple[int, ...] | None:
        """An int32-ndim, int64-dims shape; None for MXNet's "none" (unknown) shape."""
        (ndim,) = cur.unpack("i", f"{where} ndim")
        if version == "V3" and ndim == -1:
            return None
        if version != "V3" and ndim == 0:
            return None  # legacy semantics: ndim 0 is the empty "none" array, nothing follows
        if not 0 <= ndim <= MAX_NDIM:
            raise CheckpointError(cur.path, f"{where} has ndim {ndim} (must be 0..{MAX_NDIM})")
        dims = cur.unpack(f"{ndim}q", f"{where} dims")
        if version == "V3" and -1 in dims:
            return None
        if any(d < 0 for d in dims):
            raise CheckpointError(cur.path, f"{where} has a negative dimension in shape {dims}")
        return tuple(dims)

    def _record(self, cur: _Cursor, index: int) -> _Record:
        path = self.path
        where = f"array #{index}"
        start = cur.pos
        (magic,) = cur.unpack("I", f"{where} magic")
        stype = 0
        if magic in (V2_MAGIC, V3_MAGIC):
            rec = _Record(index, _VERSION_NAMES[magic])
            (stype,) = cur.unpack("i", f"{where} storage type")
            if stype not in _STYPES or stype == -1:
                raise CheckpointError(path, f"{where} (at byte {start}) has unknown storage type {stype}")
            if stype in _NUM_AUX and self._sparse is None:
                self._sparse = (index, _STYPES[stype])
        elif magic == V1_MAGIC:
            rec = _Record(index, "V1")
        else:
            # pre-V1: the word just read is ndim, followed by uint32 dims
            rec = _Record(index, "pre-V1")
            if magic > MAX_NDIM:
                raise CheckpointError(path, f"{where} (at byte {start}) starts with {magic:#010x}, "
                                            "which is neither an NDArray magic nor a plausible ndim")
            if magic == 0:
                rec.problem = "is an empty (none) NDArray with no shape or data"
                return rec
            rec.shape = tuple(cur.unpack(f"{magic}I", f"{where} dims"))
        nad = _NUM_AUX.get(stype, 0)
        if nad:
            storage_shape = self._shape(cur, f"{where} storage shape", rec.version)
            if storage_shape is None:
                raise CheckpointError(path, f"{where} (at byte {start}) has an unknown storage shape")
        if rec.version != "pre-V1":
            shape = self._shape(cur, f"{where} shape", rec.version)
            if shape is None:
                rec.problem = "is an empty (none) NDArray with no shape or data"
                return rec
            rec.shape = shape
        cur.unpack("ii", f"{where} context")  # dev_type, dev_id: MXNet loads every array to CPU
        (flag,) = cur.unpack("i", f"{where} type flag")
        itemsize = self._itemsize(flag, f"{where} (at byte {start})")
        rec.flag = flag
        if nad:
            aux_shapes = []
            for i in range(nad):
                (aux_flag,) = cur.unpack("i", f"{where} aux type")
                aux_size = self._itemsize(aux_flag, f"{where} aux #{i}")
                aux_shape = self._shape(cur, f"{where} aux shape", rec.version)
                if aux_shape is None or not aux_shape:
                    raise CheckpointError(path, f"{where} has an invalid aux shape")
                aux_shapes.append((aux_shape, aux_size))
            # MXNet sizes the values by the index arrays (the storage shape may be stale)
            if stype == 2:  # csr: indptr, indices
                values = math.prod(aux_shapes[1][0])
            else:  # row_sparse: row indices
                values = aux_shapes[0][0][0] * math.prod(rec.shape[1:])
            nbytes = _check_nbytes(path, where, (values,), itemsize)
            nbytes += sum(_check_nbytes(path, where, s, n) for s, n in aux_shapes)
            cur.skip(nbytes, f"{where} sparse data")
            rec.problem = _sparse_problem(_STYPES[stype])
            return rec
        nbytes = _check_nbytes(path, where, rec.shape, itemsize)
        rec.offset = cur.pos
        cur.skip(nbytes, f"{where} data ({rec.shape}, {nbytes} bytes)")
        if flag == BF16_FLAG:
            rec.problem = ("is bfloat16 (MXNet type flag 12), which numpy cannot represent; "
                           "cast it to float32 in MXNet and save again")
        return rec

    def _itemsize(self, flag: int, where: str) -> int:
        if flag == BF16_FLAG:
            return 2
        if flag not in _LE_FLAGS:
            raise CheckpointError(self.path, f"{where} has unknown type flag {flag}")
        return _LE_FLAGS[flag].itemsize

    def _names(self, cur: _Cursor, count: int) -> list[str]:
        path = self.path
        (num_names,) = cur.unpack("Q", "names count")
        if num_names == 0:
            names = [str(i) for i in range(count)]
        elif num_names != count:
            raise CheckpointError(path, f"names list has {num_names} names for {count} arrays")
        else:
            if num_names > cur.remaining() // 8:
                raise CheckpointError(path, f"names list claims {num_names} names but only "
                                            f"{cur.remaining()} bytes remain")
            names = []
            for i in range(num_names):
                (length,) = cur.unpack("Q", f"name #{i} length")
                if length > MAX_NAME_BYTES:
                    raise CheckpointError(path, f"name #{i} is {length} bytes long "
                                                f"(limit {MAX_NAME_BYTES})")
                raw = cur.take(length, f"name #{i}")
                try:
                    names.append(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    raise CheckpointError(path, f"name #{i} is not valid UTF-8: {raw[:40]!r}") from None
        if cur.remaining():
            raise CheckpointError(path, f"{cur.remaining()} trailing bytes after the names list "
                                        f"(at byte {cur.pos})")
        return names

    # -- reading -------------------------------------------------------------------------------

    def read(self, key: str) -> np.ndarray:
        info = self.tensors.get(key)
        if info is None:
            raise KeyError(f"{self.path}: no tensor {key!r}")
        if self._handle is None:
            raise CheckpointError(self.path, "the file is closed")
        arr, buf = _fresh(info.dtype, info.shape)
        if len(buf):
            read_exact(self._handle.fileno(), self.path, buf, info.extra["offset"], f"tensor {key!r}")
        return _normalize_bool(arr)

    def extent(self, key: str) -> Extent | None:
        info = self.tensors.get(key)
        if info is None:
            raise KeyError(f"{self.path}: no tensor {key!r}")
        if info.dtype.kind == "b":
            return None  # any non-zero byte reads as True
        return Extent(self.path, info.extra["offset"], info.nbytes, info.dtype, self._file_id)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None




# --------------------------------------------------------------------------------------------
# The formats' descriptions: an export is the parameter file and its ``-symbol.json``

#: A ``-symbol.json`` larger than this is refused (real graphs are a few MB).
MAX_GRAPH_BYTES = 256 << 20


def sibling_graph_path(params_path: str) -> str | None:
    """``x-symbol.json`` beside ``x-0000.params`` (or ``x.params``), if it exists as a regular file."""
    candidate = symbol_path_for(params_path)
    return candidate if os.path.isfile(candidate) else None


def symbol_path_for(params_path: str) -> str:
    """Where the graph lies beside an MXNet parameter file: ``x-0000.params`` -> ``x-symbol.json``."""
    import re
    stem = re.sub(r"(-\d{4})?\.[^.]+$", "", os.path.basename(params_path))
    return os.path.join(os.path.dirname(params_path), f"{stem}-symbol.json")


def read_graph_document(path: str) -> dict[str, Any]:
    """A ``-symbol.json`` as parsed JSON (its structure is checked where a graph is built)."""
    import json
    with input_errors(path, "graph file"):
        with open(path, "rb") as handle:
            if not os.path.isfile(path):
                raise CheckpointError(path, "is not a regular file")
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_GRAPH_BYTES:
                raise CheckpointError(path, f"graph file is {size} bytes, more than {MAX_GRAPH_BYTES}")
            text = handle.read()
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(path, f"graph file is not valid JSON ({_short(exc)})") from None
    if not isinstance(document, dict):
        raise CheckpointError(path, "graph file is not a JSON object")
    return document


def _with_sibling_graph(reader: CheckpointReader) -> CheckpointReader:
    if reader.graph is None and reader.kind == NAMED:
        graph_path = sibling_graph_path(reader.path)
        if graph_path is not None:
            try:
                reader.graph = read_graph_document(graph_path)
            except BaseException:
                reader.close()
                raise
            reader.metadata = {**reader.metadata, "graph_file": graph_path}
            reader.companion_files = (*reader.companion_files, graph_path)
    return reader


def _companions(path: str, documents: Documents) -> list[str]:
    return [symbol_path_for(path)] if documents.graph is not None else []


def _writer(write: Callable[..., None]) -> Writer:
    def write_export(path: str, infos: Sequence[TensorInfo], fetch: Fetch, documents: Documents, *,
                     progress: Progress | None = None, overwrite: bool = True, locate: Locate | None = None,
                     later: Committer | None = None) -> list[str]:
        """The parameter file and, with a graph, its ``-symbol.json``: both in place, or neither."""
        notes: list[str] = []
        flat = without_aliases(infos, notes)
        if documents.architecture is not None:
            notes.append("the architecture is not carried over: MXNet parameter files have no place for it")
        if documents.metadata:
            notes.append(f"metadata not carried over ({', '.join(sorted(documents.metadata))}): "
                         "MXNet parameter files have no place for it")
        symbol_file = symbol_path_for(path) if documents.graph is not None else None
        if symbol_file is not None and not overwrite and os.path.exists(symbol_file):
            raise OutputExistsError(f"{symbol_file} already exists (use `overwrite` to overwrite it)")
        kwargs = {"locate": locate} if write is write_params else {}
        if symbol_file is None:
            write(path, flat, fetch, roles=documents.kind == NAMED, progress=progress, later=later, **kwargs)
            return notes
        import json
        # Both files are written to temporary names first and committed together, the graph last:
        # a failure on either leaves neither (and never a graph without its parameters).
        unit = CommitGroup()
        with unit:
            write(path, flat, fetch, roles=documents.kind == NAMED, progress=progress, later=unit, **kwargs)
            with atomic_output(symbol_file, overwrite=overwrite, later=unit) as tmp:
                with open(tmp, "w", encoding="utf-8") as handle:
                    handle.write(json.dumps(documents.graph, indent=2) + "\n")
        if later is not None:
            later.committed.extend(unit.committed)
        notes.append(f"graph written to {symbol_file}")
        return notes

    return write_export


def _sniff_params(probe: Probe) -> bool:
    return sniff(probe.head) == "mxnet-params"


def _sniff_npz(probe: Probe) -> bool:
    return sniff(probe.head) == "npz"


FORMAT = Format("mxnet", "MXNet .params", (".params",), _sniff_params,
                lambda path: _with_sibling_graph(MXNetParamsReader(path)), _writer(write_params), shards=True,
                companions=_companions, reports=("mxnet-params",))
NPZ_FORMAT = Format("npz", "MXNet 2 .npz", (".npz",), _sniff_npz,
                    lambda path: _with_sibling_graph(MXNetNpzReader(path)), _writer(write_npz), shards=True,
                    companions=_companions, reports=("mxnet-npz",))
