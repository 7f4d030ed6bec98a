"""Small text pictures of a tensor's values: a histogram and its sparkline.

>>> counts = histogram(np.array([0.0, 0.1, 0.2, 0.9, 1.0]), bins=4)
>>> counts
[3, 0, 0, 2]
>>> sparkline(counts)
'█  ▆'
"""

from __future__ import annotations

import numpy as np

#: Eighth blocks, lowest to highest; an empty bin is a space so gaps show.
BLOCKS = "▁▂▃▄▅▆▇█"


def histogram(values: np.ndarray, bins: int = 8) -> list[int]:
    """Counts of the finite values in ``bins`` equal-width bins from their min to their max.

    Integer and boolean arrays count as numbers; an array without finite values gives ``[]``.
    """
    array = np.asarray(values)
    if array.dtype.kind not in "fiub":
        return []
    data = array.astype(np.float64, copy=False).ravel()
    if data.dtype.kind == "f":
        data = data[np.isfinite(data)]
    if data.size == 0:
        return []
    low, high = float(data.min()), float(data.max())
    if low == high:
        counts = [0] * bins
        counts[bins // 2] = int(data.size)
        return counts
    found, _ = np.histogram(data, bins=bins, range=(low, high))
    return [int(c) for c in found]


def sparkline(counts: list[int]) -> str:
    """One character per bin, its height proportional to the count (non-empty bins never vanish)."""
    top = max(counts, default=0)
    if top <= 0:
        return ""
    return "".join(" " if c == 0 else BLOCKS[max(0, int(np.ceil(c / top * len(BLOCKS))) - 1)] for c in counts)
