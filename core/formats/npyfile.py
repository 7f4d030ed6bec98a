"""One NumPy ``.npy`` array given as a model input (``run --input``), read defensively.

``np.load`` trusts the header: a 200-byte file claiming ``(100000, 3, 1000, 1000)`` float32 makes
it allocate 1.2 TB before noticing the data is missing, and a FIFO makes it block forever. Here
the path must be a regular file, the header is parsed with numpy's own header reader (a literal,
never evaluated code), object dtypes are refused, and the bytes the header declares must be in
the file before anything is allocated.
"""

from __future__ import annotations

import math
import os

import numpy as np

from ..errors import CheckpointError
from .base import input_errors

#: Longest header numpy writes for version 1/2/3 files is far below this.
MAX_HEADER = 1 << 20


def read_npy(path: str | os.PathLike[str], what: str = ".npy array") -> np.ndarray:
    """The array stored in ``path``; CheckpointError (InputNotFoundError if missing) when it is
    not a regular file holding one whole, non-object ``.npy`` array."""
    path = os.fspath(path)
    with input_errors(path, what), open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        try:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle, max_header_size=MAX_HEADER)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle, max_header_size=MAX_HEADER)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except (ValueError, SyntaxError, TypeError, OverflowError) as exc:
            raise CheckpointError(path, f"not a .npy array: {exc}") from None
        if dtype.hasobject:
            raise CheckpointError(path, "holds Python objects (dtype object); refused")
        if any(not isinstance(d, int) or d < 0 for d in shape):
            raise CheckpointError(path, f"malformed shape {shape!r} in the .npy header")
        nbytes = math.prod(shape) * dtype.itemsize
        have = size - handle.tell()
        if nbytes > have:
            raise CheckpointError(path, f"the header declares {shape} {dtype} ({nbytes} bytes) but the file holds "
                                        f"{max(have, 0)} bytes of data: refused")
        array = np.empty(shape, dtype, order="F" if fortran else "C")
        view = memoryview(b"")
        if nbytes:
            view = memoryview(array.reshape(-1, order="A")).cast("B")  # type: ignore[arg-type]  # ndarray is a Buffer
        got = handle.readinto(view) if nbytes else 0
        if got != nbytes:
            raise CheckpointError(path, f"truncated: {got} of {nbytes} bytes of data")
    return array
