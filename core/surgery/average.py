"""Average checkpoints: the weighted mean of every floating tensor (model soups, checkpoint averaging).

Every input must hold the same keys with the same shapes and stored dtypes; the mean is computed
in float64 (or float32) and written in the input dtype (rounded as PyTorch's ``.to(dtype)``).
Integer and boolean tensors (``num_batches_tracked``, masks) are taken from the first input; where
the inputs disagree on them, the plan says so. Inputs may be in different formats.

Memory: one input tensor and one accumulator at a time (the accumulator is float64, twice a
float32 tensor), whatever the number of inputs.

>>> import numpy as np
>>> mean = Average((), [0.25, 0.75], "float64", np.dtype("float32"), "float32")
>>> mean.combine([np.array([0.0, 4.0], np.float32), np.array([4.0, 8.0], np.float32)]).tolist()
[3.0, 7.0]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import MismatchError, SurgeryError, brief_list
from ..formats.base import CheckpointReader, TensorInfo
from .cast import DTYPES, cast_array, stored_dtype
from .plan import Copy, Plan, Source, carried_metadata

#: ``precision`` choices: the accumulator's dtype.
PRECISIONS = ("float64", "float32")
#: Elements converted at a time (bounds the temporary memory to a few MiB).
CHUNK = 1 << 20
#: How many differences an error lists before it counts the rest.
MAX_LISTED = 50


@dataclass(frozen=True)
class Average:
    """The weighted mean of one tensor read from each input, one input in memory at a time."""

    inputs: tuple[tuple[CheckpointReader, str], ...]
    weights: Sequence[float]
    precision: str
    dtype: np.dtype
    stored: str

    def fetch(self) -> np.ndarray:
        return self._mean(reader.read(key) for reader, key in self.inputs)

    def combine(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """The mean of arrays already read (for tests and callers holding them)."""
        return self._mean(iter(arrays))

    def _mean(self, arrays: Iterable[np.ndarray]) -> np.ndarray:
        accumulator: np.ndarray | None = None
        for weight, array in zip(self.weights, arrays):
            flat = np.asarray(array).reshape(-1)
            if accumulator is None:
                accumulator = np.zeros(flat.size, self.precision)
                shape = np.shape(array)
            for start in range(0, flat.size, CHUNK):
                piece = flat[start:start + CHUNK].astype(self.precision)
                piece *= weight
                accumulator[start:start + CHUNK] += piece
            del flat, array
        assert accumulator is not None
        mean = accumulator.reshape(shape)
        if self.stored in DTYPES:
            return cast_array(mean, self.stored)
        return mean.astype(self.dtype)

    def extent(self) -> None:
        return None


def normalized(weights: Sequence[float] | None, count: int) -> list[float]:
    """Weights that sum to one (equal weights by default)."""
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count:
        raise SurgeryError(f"`weights` has {len(weights)} value(s) for {count} inputs")
    if not all(np.isfinite(w) for w in weights):
        raise SurgeryError("`weights` must be finite numbers")
    total = float(sum(weights))
    if total == 0:
        raise SurgeryError("`weights` sum to zero")
    return [float(w) / total for w in weights]


def plan_average(readers: Sequence[CheckpointReader], weights: Sequence[float] | None = None,
                 precision: str = "float64") -> Plan:
    """A plan whose floating tensors are the weighted mean of ``readers``' (see the module docstring).

    Raises MismatchError listing every difference in keys, shapes and dtypes between the inputs."""
    if len(readers) < 2:
        raise SurgeryError("give at least two checkpoints to average")
    if precision not in PRECISIONS:
        raise SurgeryError(f"unknown `precision` {precision!r}; choose from {', '.join(PRECISIONS)}")
    share = normalized(weights, len(readers))
    first = readers[0]
    differences, parts = 0, []
    for reader in readers[1:]:
        missing = [k for k in first.tensors if k not in reader.tensors]
        extra = [k for k in reader.tensors if k not in first.tensors]
        shapes, dtypes = [], []
        for key, info in first.tensors.items():
            other = reader.tensors.get(key)
            if other is None:
                continue
            if tuple(other.shape) != tuple(info.shape):
                shapes.append(f"{key} {tuple(info.shape)} vs {tuple(other.shape)}")
            elif stored_dtype(other) != stored_dtype(info):
                dtypes.append(f"{key} {stored_dtype(info)} vs {stored_dtype(other)}")
        found = [(f"{len(missing)} missing", missing), (f"{len(extra)} not in the first", extra),
                 (f"{len(shapes)} shape(s) differ", shapes), (f"{len(dtypes)} dtype(s) differ", dtypes)]
        listed = [f"{what}: {_listed(items)}" for what, items in found if items]
        if listed:
            differences += sum(len(items) for _, items in found)
            parts.append(f"{reader.path} ({'; '.join(listed)})")
    if differences:
        raise MismatchError(f"cannot average: {differences} difference(s) from the first input {first.path}: "
                            + "; ".join(parts))
    tensors: list[tuple[TensorInfo, Source]] = []
    averaged, unequal = [], []
    for key, info in first.tensors.items():
        if info.alias_of is not None or np.dtype(info.dtype).kind != "f":
            if info.alias_of is None and _differ(readers, key):
                unequal.append(key)
            tensors.append((info, Copy(first, key)))
            continue
        source = Average(tuple((reader, key) for reader in readers), share, precision, np.dtype(info.dtype),
                         stored_dtype(info))
        tensors.append((info, source))
        averaged.append(key)
    notes = []
    if unequal:
        notes.append(f"{len(unequal)} integer or boolean tensor(s) differ between the inputs and were taken from "
                     f"the first: {brief_list(unequal)}")
    details = {"inputs": [r.path for r in readers], "weights": share, "precision": precision,
               "averaged": len(averaged),
               "taken_from_first": [i.key for i, _ in tensors if i.key not in set(averaged)], "unequal": unequal}
    return Plan.of(tensors, first.kind, architecture=first.architecture, graph=first.graph,
                   metadata=carried_metadata(first), readers=list(readers), notes=notes, details=details)


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f", and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _differ(readers: Sequence[CheckpointReader], key: str) -> bool:
    """Whether an integer tensor differs between the inputs (read one pair at a time)."""
    reference = readers[0].read(key)
    return any(not np.array_equal(reference, reader.read(key)) for reader in readers[1:])


__all__ = ["PRECISIONS", "Average", "normalized", "plan_average"]
