"""Hardened HDF5 access shared by every HDF5-based reader (ours and Keras's).

Checkpoints arrive from strangers. A file is refused, with one :class:`CheckpointError`, when
it is not HDF5, is truncated or corrupt, links out of itself (soft or external links), holds
external or virtual datasets, or declares a dataset far larger than the file could hold
(a "shape bomb").
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import h5py
import numpy as np

from ..errors import CheckpointError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: A dataset may declare this many bytes more than it stores (compression) before it is a bomb.
BOMB_RATIO = 1000
BOMB_FLOOR = 64 << 20


def is_hdf5(head: bytes) -> bool:
    return head.startswith(HDF5_MAGIC)


def open_h5(path: str, mode: str = "r") -> h5py.File:
    """Open an HDF5 file, turning every h5py/OS failure into a CheckpointError."""
    try:
        return h5py.File(path, mode)
    except FileNotFoundError:
        raise CheckpointError(path, "no such file") from None
    except PermissionError:
        raise CheckpointError(path, "permission denied") from None
    except OSError as exc:
        raise CheckpointError(path, f"not a readable HDF5 file (truncated or corrupt?): {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def children(group: h5py.Group, path: str) -> Iterator[tuple[str, h5py.Group | h5py.Dataset]]:
    """Yield (name, object) for each member of ``group``, refusing links out of the file."""
    try:
        names = list(group.keys())
    except (OSError, RuntimeError, KeyError) as exc:
        raise CheckpointError(path, f"cannot list {group.name} (corrupt?): {_short(exc)}") from None
    for name in names:
        try:
            link = group.get(name, getlink=True)
        except (OSError, RuntimeError, KeyError) as exc:
            raise CheckpointError(path, f"cannot read link {group.name}/{name!r}: {_short(exc)}") from None
        if isinstance(link, h5py.ExternalLink):
            raise CheckpointError(path, f"{group.name}/{name!r} is an external link to "
                                        f"{link.filename!r}; links out of the file are refused")
        if isinstance(link, h5py.SoftLink):
            raise CheckpointError(path, f"{group.name}/{name!r} is a soft link to {link.path!r}; "
                                        "soft links are refused")
        try:
            obj = group[name]
        except (OSError, RuntimeError, KeyError) as exc:
            raise CheckpointError(path, f"cannot open {group.name}/{name!r} (corrupt?): {_short(exc)}") from None
        yield name, obj


def check_dataset(ds: h5py.Dataset, path: str, file_size: int | None = None) -> None:
    """Refuse external, virtual and shape-bomb datasets (metadata only; reads no data)."""
    where = ds.name
    try:
        if ds.is_virtual:
            raise CheckpointError(path, f"{where} is a virtual dataset; virtual datasets are refused")
        if ds.external:
            raise CheckpointError(path, f"{where} stores its data in external files; refused")
        declared = int(np.prod(ds.shape, dtype=np.float64) * ds.dtype.itemsize) if ds.shape else ds.dtype.itemsize
        stored = ds.id.get_storage_size()
    except CheckpointError:
        raise
    except (OSError, RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(path, f"cannot read dataset {where} (corrupt?): {_short(exc)}") from None
    if file_size is None:
        file_size = os.path.getsize(path)
    limit = max(BOMB_FLOOR, BOMB_RATIO * max(stored, 1))
    if declared > limit or (ds.compression is None and declared > max(file_size, 1) and declared > 0):
        raise CheckpointError(path, f"{where} declares {declared} bytes of data but the file holds "
                                    f"{stored} for it ({file_size} in all): refused as a shape bomb")


def read_dataset(ds: h5py.Dataset, path: str) -> np.ndarray:
    """Read a whole dataset, reporting corruption as a CheckpointError."""
    try:
        return ds[()]
    except (OSError, RuntimeError, ValueError) as exc:
        raise CheckpointError(path, f"cannot read {ds.name} (corrupt?): {_short(exc)}") from None


def read_text(ds: h5py.Dataset, path: str, limit: int = 256 << 20) -> str:
    """Read a scalar string dataset (our JSON documents), bounded in size."""
    if ds.shape != () or ds.dtype.kind not in ("O", "S", "U"):
        raise CheckpointError(path, f"{ds.name} should be a text dataset")
    check_dataset(ds, path)
    value = read_dataset(ds, path)
    if isinstance(value, bytes):
        if len(value) > limit:
            raise CheckpointError(path, f"{ds.name} is larger than {limit} bytes")
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise CheckpointError(path, f"{ds.name} is not UTF-8 text") from None
    return str(value)
