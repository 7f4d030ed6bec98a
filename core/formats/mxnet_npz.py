"""MXNet 2's ``.npz`` parameter files (zip archives of ``.npy`` members), read one member at a time."""


from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from ..errors import CheckpointError, brief_list
from .base import MAX_TENSORS, CheckpointReader, TensorInfo
from .extents import read_exact
from .mxnet_common import (
    _FLAG_OF_LE,
    _MAX_DEFLATE_RATIO,
    _ZIP_HEAD,
    INFLATE_CHUNK,
    MAX_NDIM,
    _check_nbytes,
    _fresh,
    _kind,
    _normalize_bool,
    _open,
    _pread,
    _short,
    _split_role,
)

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
        if self._handle is None:
            raise CheckpointError(path, "the file is closed")
        size = os.fstat(self._handle.fileno()).st_size
        try:
            self._zip = zipfile.ZipFile(self._handle)
            infos = self._zip.infolist()
        except Exception as exc:
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
        if self._handle is None or self._zip is None:
            raise CheckpointError(path, "the file is closed")
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
        except Exception as exc:
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
                        # bounded pieces: zipfile's readinto reads into a temporary bytes object of the
                        # size asked for, which for the whole tensor doubled the memory of a read
                        got = fp.readinto(buf[done:done + INFLATE_CHUNK])  # type: ignore[attr-defined]  # a ZipExtFile
                        if not got:
                            raise CheckpointError(self.path, f"{where} ended after {done} of "
                                                             f"{len(buf)} bytes")
                        done += got
                    fp.read(1)  # reaching the end checks the CRC
            except CheckpointError:
                raise
            except Exception as exc:
                raise CheckpointError(self.path, f"cannot read {where} (corrupt?): {_short(exc)}") from None
        if fortran:
            arr = arr.T
        if stored_dtype.byteorder == ">" or not arr.flags.c_contiguous:
            arr = arr.astype(info_t.dtype, order="C")
        return _normalize_bool(arr)

    def read_chunks(self, key: str, chunk_bytes: int) -> Iterator[np.ndarray]:
        """Tensor ``key`` as consecutive flat pieces (C order) of about ``chunk_bytes``, inflated as they
        are needed: a deflated member is never whole in memory. Members stored in Fortran order
        are read whole and then cut."""
        info_t = self.tensors.get(key)
        if info_t is None:
            raise KeyError(f"{self.path}: no tensor {key!r}")
        if self._handle is None or self._zip is None:
            raise CheckpointError(self.path, "the file is closed")
        info, header_len, data_at, fortran, stored_dtype = self._members[key]
        if fortran or data_at >= 0:
            flat = self.read(key).reshape(-1)
            step = max(1, chunk_bytes // max(flat.itemsize, 1))
            for start in range(0, flat.size, step):
                yield flat[start:start + step]
            return
        where = f"member {info.filename!r}"
        itemsize = stored_dtype.itemsize
        step = max(1, chunk_bytes // itemsize) * itemsize
        remaining = info_t.nbytes
        try:
            with self._zip.open(info) as fp:
                fp.read(header_len)
                while remaining:
                    piece, buf = _fresh(stored_dtype, (min(step, remaining) // itemsize,))
                    done = 0
                    while done < len(buf):
                        got = fp.readinto(buf[done:done + INFLATE_CHUNK])  # type: ignore[attr-defined]  # a ZipExtFile
                        if not got:
                            raise CheckpointError(self.path, f"{where} ended early")
                        done += got
                    remaining -= len(buf)
                    if not remaining:
                        fp.read(1)  # reaching the end checks the CRC
                    if stored_dtype.byteorder == ">":
                        piece = piece.astype(info_t.dtype)
                    yield _normalize_bool(piece)
        except CheckpointError:
            raise
        except Exception as exc:
            raise CheckpointError(self.path, f"cannot read {where} (corrupt?): {_short(exc)}") from None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None
