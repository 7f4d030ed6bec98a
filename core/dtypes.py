"""MXNet's dtype flags, shared by the engine (graph ``__dtype__`` attributes) and the file layer."""

from __future__ import annotations

import numpy as np

MX_DTYPE_FLAGS: dict[int, np.dtype] = {
    0: np.dtype("float32"), 1: np.dtype("float64"), 2: np.dtype("float16"), 3: np.dtype("uint8"),
    4: np.dtype("int32"), 5: np.dtype("int8"), 6: np.dtype("int64"), 7: np.dtype("bool"),
    8: np.dtype("int16"), 9: np.dtype("uint16"), 10: np.dtype("uint32"), 11: np.dtype("uint64"),
}
MX_FLAG_OF_DTYPE = {dtype: flag for flag, dtype in MX_DTYPE_FLAGS.items()}
