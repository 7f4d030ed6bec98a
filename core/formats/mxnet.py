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
import zipfile
import zlib
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

import numpy as np

from ..errors import CheckpointError, OutputExistsError, SurgeryError, brief_list
from ..dtypes import MX_DTYPE_FLAGS
from .atomic import CommitGroup, CommitQueue, atomic_output
from .base import MAX_TENSORS, NAMED, STRUCTURAL, CheckpointReader, TensorInfo, input_errors, without_aliases
from .extents import Extent, ExtentCopier, Locate, file_id, read_exact, usable
from .spec import Documents, Fetch, Format, Probe, Progress, Writer

__all__ = [
    "MXNetNpzReader",
    "MXNetParamsReader",
    "sniff",
    "write_npz",
    "write_params",
]

LIST_MAGIC = 0x112
V1_MAGIC = 0xF993FAC8
V2_MAGIC = 0xF993FAC9
V3_MAGIC = 0xF993FACA
_VERSION_NAMES = {V1_MAGIC: "V1", V2_MAGIC: "V2", V3_MAGIC: "V3"}
BF16_FLAG = 12
#: Type flags MXNet 1.x knows (0..7, plus bf16 which we refuse); 8..11 need MXNet 2.
MXNET1_FLAGS = frozenset(range(8))
#: Most dimensions a tensor may have (numpy's limit before 2.0).
MAX_NDIM = 32
#: Longest key accepted in a ``.params`` names list, in bytes.
MAX_NAME_BYTES = 1 << 16
#: Largest tensor accepted at all (elements x itemsize), so shapes never overflow numpy's intp.
_MAX_NBYTES = (1 << 63) - 1
#: A deflate stream expands at most ~1032:1; larger declared sizes are lies.
_MAX_DEFLATE_RATIO = 1032

_STYPES = {-1: "undefined", 0: "dense", 1: "row_sparse", 2: "csr"}
_NUM_AUX = {1: 1, 2: 2}
_LE_FLAGS: dict[int, np.dtype] = {flag: dt.newbyteorder("<") for flag, dt in MX_DTYPE_FLAGS.items()}
_FLAG_OF_LE = {dt: flag for flag, dt in _LE_FLAGS.items()}
_PREFIXES = ("arg:", "aux:")
_CHUNK = 1 << 16
_ZIP_HEAD = struct.Struct("<4s22xHH")  # local file header: signature ... name length, extra length


def sniff(head: bytes) -> str | None:
    """``'mxnet-params'`` for the legacy list magic, ``'npz'`` for any zip archive, else None.

    ``head`` is the first bytes (up to 64) of a file. A zip may also be a PyTorch checkpoint:
    :class:`MXNetNpzReader` raises :class:`CheckpointError` for a zip without ``.npy`` members.

    >>> sniff(struct.pack("<QQQ", 0x112, 0, 0)), sniff(b"PK\\x03\\x04..."), sniff(b"\\x89HDF")
    ('mxnet-params', 'npz', None)
    """
    head = bytes(head[:64])
    if len(head) >= 8 and struct.unpack_from("<Q", head)[0] == LIST_MAGIC:
        return "mxnet-params"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "npz"
    return None


# --------------------------------------------------------------------------------------------
# shared helpers


def _split_role(name: str) -> tuple[str, str | None]:
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):], prefix[:3]
    return name, None


def _kind(names: Sequence[str]) -> str:
    """``named`` if any key had an ``arg:``/``aux:`` prefix, ``structural`` if every key has a dot."""
    if any(name.startswith(_PREFIXES) for name in names):
        return NAMED
    if names and all("." in name for name in names):
        return STRUCTURAL
    return NAMED


def _open(path: str) -> BinaryIO:
    with input_errors(path, "parameter file"):
        return open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the reader


def _pread(handle: BinaryIO, path: str, n: int, offset: int) -> bytes:
    try:
        if hasattr(os, "pread"):
            return os.pread(handle.fileno(), n, offset)
        handle.seek(offset)
        return handle.read(n)
    except OSError as exc:
        raise CheckpointError(path, f"read error at byte {offset}: {exc.strerror or exc}") from None


def _fresh(dtype: np.dtype, shape: tuple[int, ...]) -> tuple[np.ndarray, memoryview]:
    arr = np.empty(shape, dtype=dtype)
    return arr, memoryview(arr.reshape(-1).view(np.uint8))


def _normalize_bool(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.bool_ and arr.size:
        raw = arr.reshape(-1).view(np.uint8)
        np.not_equal(raw, 0, out=raw, casting="unsafe")
    return arr


def _check_nbytes(path: str, where: str, shape: Sequence[int], itemsize: int) -> int:
    """Bytes of a tensor; refuses shapes whose element count overflows int64 even when a dim is 0."""
    if math.prod(max(d, 1) for d in shape) * max(itemsize, 1) > _MAX_NBYTES:
        raise CheckpointError(path, f"{where} has shape {tuple(shape)}, whose size overflows 64 bits")
    return math.prod(shape) * itemsize


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
    __slots__ = ("index", "version", "shape", "flag", "offset", "problem")

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
# MXNet 2 / numpy .npz


class MXNetNpzReader(CheckpointReader):
    """Reads MXNet 2 ``npx.savez`` files: a zip of ``<key>.npy`` members (stored or deflated).

    Shapes and dtypes come from each member's ``.npy`` header (never unpickled); data is read
    on :meth:`read`, straight from the archive for stored members, with the CRC checked.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        self.format = "mxnet-npz"
        self.architecture = None
        self.graph = None
        self.metadata = {}
        self.tensors = {}
        self._members: dict[str, tuple[zipfile.ZipInfo, int, int, bool, np.dtype]] = {}
        self._handle: BinaryIO | None = _open(self.path)
        self._zip: zipfile.ZipFile | None = None
        try:
            self._index()
        except BaseException:
            self.close()
            raise

    def _index(self) -> None:
        path = self.path
        size = os.fstat(self._handle.fileno()).st_size
        try:
            self._zip = zipfile.ZipFile(self._handle)  # type: ignore[arg-type]
            infos = self._zip.infolist()
        except Exception as exc:  # noqa: BLE001 - hostile input: any parse failure is corruption
            raise CheckpointError(path, f"not a readable zip archive: {_short(exc)}") from None
        if len(infos) > MAX_TENSORS:
            raise CheckpointError(path, f"zip archive has {len(infos)} members, more than the {MAX_TENSORS} "
                                        "modelsurgeon reads: refused")
        names = [info.filename for info in infos]
        if len(set(names)) != len(names):
            counts: dict[str, int] = {}
            for name in names:  # linear: counting each name with list.count would be quadratic
                counts[name] = counts.get(name, 0) + 1
            dups = sorted(n for n, c in counts.items() if c > 1)
            raise CheckpointError(path, f"zip archive has duplicate members {brief_list(dups)}")
        members = [info for info in infos if not info.filename.endswith("/")]
        if infos and not any(info.filename.endswith(".npy") for info in members):
            # (an empty archive is an empty .npz: numpy's savez() with no arrays writes one)
            raise CheckpointError(path, "zip archive is not an MXNet/NumPy .npz parameter file")
        others = [info.filename for info in members if not info.filename.endswith(".npy")]
        if others:
            raise CheckpointError(path, f"zip member {others[0]!r} is not a .npy array; "
                                        "not an MXNet/NumPy .npz parameter file")
        raw_keys = [info.filename[:-4] for info in members]
        key_set = set(raw_keys)
        for raw in raw_keys:
            if raw.endswith("/format"):
                base = raw[: -len("/format")]
                if f"{base}/data" in key_set and f"{base}/shape" in key_set:
                    raise CheckpointError(path, f"array {base!r} is stored sparse (data/indices/format "
                                                "members); only dense arrays are supported")
        stripped: dict[str, str] = {}
        for info, raw in zip(members, raw_keys):
            shape, dtype, fortran, header_len, data_at = self._member(info, size)
            key, role = _split_role(raw)
            if key in stripped:
                raise CheckpointError(path, f"duplicate key {key!r} (from {stripped[key]!r} and {raw!r})")
            stripped[key] = raw
            self._members[key] = (info, header_len, data_at, fortran, dtype)
            self.tensors[key] = TensorInfo(key=key, shape=shape, dtype=dtype.newbyteorder("<"), role=role,
                                           extra={"member": info.filename, "offset": data_at,
                                                  "compressed": info.compress_type != zipfile.ZIP_STORED})
        self.kind = _kind(raw_keys)

    def _member(self, info: zipfile.ZipInfo, size: int) -> tuple[tuple[int, ...], np.dtype, bool, int, int]:
        path, name = self.path, info.filename
        where = f"member {name!r}"
        if info.flag_bits & 0x1:
            raise CheckpointError(path, f"{where} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CheckpointError(path, f"{where} uses unsupported compression method {info.compress_type}")
        try:
            with self._zip.open(info) as fp:
                version = np.lib.format.read_magic(fp)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
                else:
                    raise CheckpointError(path, f"{where} has unsupported .npy version {version}")
                header_len = fp.tell()
        except CheckpointError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure parsing hostile bytes
            raise CheckpointError(path, f"{where} has no valid .npy header: {_short(exc)}") from None
        dtype = np.dtype(dtype)
        if dtype.hasobject:
            raise CheckpointError(path, f"{where} holds Python objects (dtype {dtype}); refused")
        if dtype.kind not in "biuf" or dtype.newbyteorder("<") not in _FLAG_OF_LE:
            raise CheckpointError(path, f"{where} has dtype {dtype.str!r}, which MXNet parameters "
                                        "cannot hold")
        shape = tuple(int(d) for d in shape)
        if len(shape) > MAX_NDIM or any(d < 0 for d in shape):
            raise CheckpointError(path, f"{where} has invalid shape {shape}")
        nbytes = _check_nbytes(path, where, shape, dtype.itemsize)
        if info.file_size != header_len + nbytes:
            raise CheckpointError(path, f"{where} declares {info.file_size} bytes but its header "
                                        f"({shape}, {dtype.str}) needs {header_len + nbytes}")
        data_at = -1
        if info.compress_type == zipfile.ZIP_STORED:
            if info.compress_size != info.file_size:
                raise CheckpointError(path, f"{where} is stored uncompressed but its sizes differ")
            local = _pread(self._handle, path, _ZIP_HEAD.size, info.header_offset)
            if len(local) < _ZIP_HEAD.size:
                raise CheckpointError(path, f"{where}: local header past the end of the file")
            sig, name_len, extra_len = _ZIP_HEAD.unpack(local)
            if sig != b"PK\x03\x04":
                raise CheckpointError(path, f"{where}: bad local header signature")
            data_at = info.header_offset + _ZIP_HEAD.size + name_len + extra_len + header_len
            if data_at + nbytes > size:
                raise CheckpointError(path, f"{where}: data ends at byte {data_at + nbytes}, past the "
                                            f"end of the file ({size} bytes)")
        elif info.file_size > max(info.compress_size, 1) * _MAX_DEFLATE_RATIO + 1024:
            raise CheckpointError(path, f"{where} claims {info.file_size} bytes from {info.compress_size} "
                                        "compressed bytes, more than deflate can produce")
        return shape, dtype, fortran, header_len, data_at

    def read(self, key: str) -> np.ndarray:
        info_t = self.tensors.get(key)
        if info_t is None:
            raise KeyError(f"{self.path}: no tensor {key!r}")
        if self._handle is None or self._zip is None:
            raise CheckpointError(self.path, "the file is closed")
        info, header_len, data_at, fortran, stored_dtype = self._members[key]
        shape = info_t.shape[::-1] if fortran else info_t.shape
        arr, buf = _fresh(stored_dtype, shape)
        where = f"member {info.filename!r}"
        if data_at >= 0:
            read_exact(self._handle.fileno(), self.path, buf, data_at, where)
            head = _pread(self._handle, self.path, header_len, data_at - header_len)
            if (zlib.crc32(buf, zlib.crc32(head)) & 0xFFFFFFFF) != info.CRC:
                raise CheckpointError(self.path, f"{where} fails its CRC check (corrupt)")
        else:
            try:
                with self._zip.open(info) as fp:
                    fp.read(header_len)
                    done = 0
                    while done < len(buf):
                        got = fp.readinto(buf[done:])
                        if not got:
                            raise CheckpointError(self.path, f"{where} ended after {done} of "
                                                             f"{len(buf)} bytes")
                        done += got
                    fp.read(1)  # reaching the end checks the CRC
            except CheckpointError:
                raise
            except Exception as exc:  # noqa: BLE001 - corrupt deflate stream, bad CRC...
                raise CheckpointError(self.path, f"cannot read {where} (corrupt?): {_short(exc)}") from None
        if fortran:
            arr = arr.T
        if stored_dtype.byteorder == ">" or not arr.flags.c_contiguous:
            arr = arr.astype(info_t.dtype, order="C")
        return _normalize_bool(arr)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


# --------------------------------------------------------------------------------------------
# writing


def _out_name(info: TensorInfo, roles: bool) -> str:
    if roles and info.role:
        if info.role not in ("arg", "aux"):
            raise SurgeryError(f"tensor {info.key!r} has role {info.role!r}; MXNet knows only "
                               "'arg' and 'aux'")
        return f"{info.role}:{info.key}"
    return info.key


def _plan(infos: Sequence[TensorInfo], roles: bool, limit: int = MAX_NAME_BYTES, what: str = ".params") -> list[str]:
    """The stored names, checked up front: unique, UTF-8, and no longer than readers accept."""
    names = [_out_name(info, roles) for info in infos]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SurgeryError(f"two tensors would be written under the same name {name!r}")
        seen.add(name)
        try:
            size = len(name.encode("utf-8"))
        except UnicodeEncodeError:
            raise SurgeryError(f"tensor name {name!r} cannot be encoded as UTF-8") from None
        if size > limit:
            raise SurgeryError(f"tensor name {name[:40]!r}... is {size} bytes long; {what} files hold names of "
                               f"at most {limit} bytes here (rename it first)")
    return names


def _fetched(info: TensorInfo, fetch: Callable[[TensorInfo], np.ndarray]) -> np.ndarray:
    arr = np.asarray(fetch(info))
    want = np.dtype(info.dtype).newbyteorder("<")
    if arr.dtype.newbyteorder("<") != want or tuple(arr.shape) != tuple(info.shape):
        raise SurgeryError(f"tensor {info.key!r}: fetched {arr.dtype} {tuple(arr.shape)} but the plan "
                           f"says {np.dtype(info.dtype)} {tuple(info.shape)}")
    if arr.dtype.byteorder == ">" or not arr.flags.c_contiguous:
        arr = arr.astype(want, order="C")
    return arr


def _raw(arr: np.ndarray) -> memoryview:
    return memoryview(arr.reshape(-1).view(np.uint8))


def write_params(
    path: str | os.PathLike[str],
    infos: Sequence[TensorInfo],
    fetch: Callable[[TensorInfo], np.ndarray],
    *,
    roles: bool = True,
    progress: Callable[[int, int], None] | None = None,
    np_shape: bool = False,
    allow_mxnet2_dtypes: bool = False,
    locate: Locate | None = None,
    later: CommitQueue | None = None,
) -> None:
    """Write MXNet's legacy binary ``.params`` (dict form), streaming one tensor at a time.

    The bytes equal ``mx.nd.save(path, {name: array, ...})`` with names in ``infos`` order:
    V2 dense records on cpu(0), or V3 records with ``np_shape=True`` (``mx.nd.save`` under
    ``mx.npx.set_np()``; MXNet then loads the file only in numpy-shape mode). A name is
    ``'<role>:<key>'`` when ``roles`` and the tensor has a role. 0-d tensors need ``np_shape``
    (ndim 0 means "no array" in V2). int16/uint16/uint32/uint64 (type flags 8-11) load only in
    MXNet 2 and are refused unless ``allow_mxnet2_dtypes``. ``fetch(info)`` must return exactly
    ``info.shape``/``info.dtype``; where ``locate(info)`` gives the tensor's bytes in another file,
    the kernel copies them instead (extents.py). The file appears atomically; on any error nothing
    is written. With ``later`` its commit is queued there (atomic.CommitQueue).
    """
    names = _plan(infos, roles)
    flags = []
    for info in infos:
        dtype = np.dtype(info.dtype).newbyteorder("<")
        flag = _FLAG_OF_LE.get(dtype)
        if flag is None:
            raise SurgeryError(f"tensor {info.key!r} has dtype {np.dtype(info.dtype)}, which MXNet .params "
                               "cannot store")
        if flag not in MXNET1_FLAGS and not allow_mxnet2_dtypes:
            raise SurgeryError(f"tensor {info.key!r} is {dtype.name}, which MXNet 1.x cannot load; cast it "
                               "or pass allow_mxnet2_dtypes=True")
        if not info.shape and not np_shape:
            raise SurgeryError(f"tensor {info.key!r} is 0-dimensional, which MXNet's legacy format stores "
                               "only in numpy-shape mode (np_shape=True) ; or reshape it to (1,)")
        if len(info.shape) > MAX_NDIM:
            raise SurgeryError(f"tensor {info.key!r} has {len(info.shape)} dimensions")
        flags.append(flag)
    magic = V3_MAGIC if np_shape else V2_MAGIC
    total = sum(info.nbytes for info in infos)
    done = 0
    with atomic_output(path, later=later) as tmp, open(tmp, "wb") as out, ExtentCopier(out.fileno()) as copier:
        out.write(struct.pack("<QQQ", LIST_MAGIC, 0, len(infos)))
        for info, flag in zip(infos, flags):
            ndim = len(info.shape)
            extent = locate(info) if locate is not None else None
            out.write(struct.pack(f"<IIi{ndim}qiii", magic, 0, ndim, *info.shape, 1, 0, flag))
            if usable(extent, info.dtype, info.nbytes):
                copier.append(out, extent)
            else:
                arr = _fetched(info, fetch)
                out.write(_raw(arr))
                copier.wrote(arr.nbytes)
                del arr
            done += info.nbytes
            if progress is not None:
                progress(done, total)
        out.write(struct.pack("<Q", len(names)))
        for name in names:
            raw = name.encode("utf-8")
            out.write(struct.pack("<Q", len(raw)))
            out.write(raw)


def write_npz(
    path: str | os.PathLike[str],
    infos: Sequence[TensorInfo],
    fetch: Callable[[TensorInfo], np.ndarray],
    *,
    roles: bool = True,
    progress: Callable[[int, int], None] | None = None,
    later: CommitQueue | None = None,
) -> None:
    """Write an MXNet 2-style ``.npz``: an uncompressed zip of ``<name>.npy``, one member at a time.

    Names and ``later`` as in :func:`write_params`. Member timestamps are fixed (1980-01-01), so equal inputs give
    equal files. ZIP64 records are used only for members near 4 GiB.
    """
    names = _plan(infos, roles, limit=0xFFFF - len(".npy"), what=".npz (zip)")  # zip names are at most 64 KiB - 1
    for info in infos:
        if np.dtype(info.dtype).newbyteorder("<") not in _FLAG_OF_LE:
            raise SurgeryError(f"tensor {info.key!r} has dtype {np.dtype(info.dtype)}, which MXNet "
                               "parameters cannot hold")
    total = sum(info.nbytes for info in infos)
    done = 0
    with atomic_output(path, later=later) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for info, name in zip(infos, names):
            arr = _fetched(info, fetch)
            member = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_STORED
            member.external_attr = 0o644 << 16
            header = np.lib.format.header_data_from_array_1_0(arr)
            big = arr.nbytes + 65536 > zipfile.ZIP64_LIMIT
            with zf.open(member, "w", force_zip64=big) as fp:
                try:
                    np.lib.format.write_array_header_1_0(fp, header)
                except ValueError:  # header longer than 64 KiB
                    np.lib.format.write_array_header_2_0(fp, header)
                fp.write(_raw(arr))
            done += arr.nbytes
            del arr
            if progress is not None:
                progress(done, total)


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
                     later: CommitQueue | None = None) -> list[str]:
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
