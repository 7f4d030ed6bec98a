"""Writing MXNet parameter files: the legacy binary ``.params`` and MXNet 2's ``.npz``, streaming."""


from __future__ import annotations

import os
import struct
import zipfile
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import SurgeryError
from .atomic import Committer, atomic_output
from .base import TensorInfo
from .extents import ExtentCopier, Locate, usable
from .mxnet_common import _FLAG_OF_LE, LIST_MAGIC, MAX_NAME_BYTES, MAX_NDIM, MXNET1_FLAGS, V2_MAGIC, V3_MAGIC

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
    return memoryview(arr.reshape(-1).view(np.uint8))  # type: ignore[arg-type]  # ndarray is a Buffer


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
    later: Committer | None = None,
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
    later: Committer | None = None,
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
