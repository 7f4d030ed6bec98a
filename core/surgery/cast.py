"""Cast floating tensors to another dtype, streaming, with PyTorch's rounding.

numpy has no bfloat16 or 8-bit floats; the file layer carries them as float32 arrays whose
:class:`~..formats.base.TensorInfo` says ``extra["source_dtype"]`` (the safetensors code:
``BF16``, ``F8_E4M3``, ``F8_E5M2``), and the formats that can store them (safetensors, PyTorch,
Keras 3, Hugging Face folders) write them back in that dtype. A cast to one of them therefore
yields float32 arrays holding values already rounded to the narrow type (through ``ml_dtypes``),
so the writer's own conversion is exact.

Rounding is PyTorch's ``tensor.to(dtype)`` (checked against torch in tests): round to nearest,
ties to even; a float64 tensor is first rounded to float32 (as PyTorch's CPU kernels do, so a
double rounding where it does one); ``float8_e4m3fn`` saturates at +-448 (infinities included,
NaN stays NaN) and ``float8_e5m2`` overflows to infinity, as PyTorch does.

>>> import numpy as np
>>> cast_array(np.array([1.0, 1.00390625, 1e6], np.float32), "bfloat16").tolist()
[1.0, 1.0, 999424.0]
>>> cast_array(np.array([500.0, -np.inf], np.float32), "float8_e4m3fn").tolist()
[448.0, -448.0]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import SurgeryError, brief_list
from ..formats.base import TensorInfo
from ..formats.spec import Format
from .plan import Combine, Copy, New, Plan, Source, Transform


@dataclass(frozen=True)
class Target:
    """A dtype a cast can produce: the array dtype it travels as, its stored code, its width."""

    name: str
    array: np.dtype
    code: str | None  # the safetensors code carried in extra["source_dtype"] (None: numpy's own)
    itemsize: int


#: ``--dtype`` choices.
DTYPES: dict[str, Target] = {t.name: t for t in (
    Target("float16", np.dtype("float16"), None, 2),
    Target("bfloat16", np.dtype("float32"), "BF16", 2),
    Target("float32", np.dtype("float32"), None, 4),
    Target("float8_e4m3fn", np.dtype("float32"), "F8_E4M3", 1),
    Target("float8_e5m2", np.dtype("float32"), "F8_E5M2", 1),
)}
#: stored code -> dtype name, for the narrow types the file layer carries as float32
CODE_NAMES = {"BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
              "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz", "F8_E8M0": "float8_e8m0fnu"}
_CODE_BYTES = {"BF16": 2}
#: Formats whose writers keep bfloat16 and 8-bit floats (float32 infos with a ``source_dtype``).
NARROW_FORMATS = ("safetensors", "torch", "keras", "keras-archive", "hf")
#: The largest finite float8_e4m3fn; PyTorch saturates there.
E4M3_MAX = 448.0


def stored_dtype(info: TensorInfo) -> str:
    """The dtype a tensor is stored in (``'bfloat16'`` for a float32 info carrying ``BF16``)."""
    code = info.extra.get("source_dtype") if info.extra else None
    if code in CODE_NAMES and np.dtype(info.dtype) == np.float32:
        return CODE_NAMES[code]
    return np.dtype(info.dtype).name


def stored_nbytes(info: TensorInfo) -> int:
    """Bytes the tensor takes as stored (a bfloat16 tensor: 2 per element, though read as float32)."""
    code = info.extra.get("source_dtype") if info.extra else None
    if code in CODE_NAMES and np.dtype(info.dtype) == np.float32:
        return info.size * _CODE_BYTES.get(code, 1)
    return info.nbytes


def is_floating(info: TensorInfo) -> bool:
    return np.dtype(info.dtype).kind == "f"


def _ml_dtype(name: str) -> Any:
    import ml_dtypes
    return getattr(ml_dtypes, name)


def cast_array(array: np.ndarray, dtype: str) -> np.ndarray:
    """``array`` rounded to ``dtype`` as PyTorch's ``.to(dtype)`` rounds, as the array dtype the file
    layer carries it in (float32 for bfloat16 and float8)."""
    target = DTYPES[dtype]
    values = np.asarray(array)
    if values.dtype == target.array and target.code is None:
        return values
    if values.dtype == np.float64 and dtype != "float32":
        values = values.astype(np.float32)  # PyTorch rounds double -> float -> narrow type
    if target.code is None:
        with np.errstate(over="ignore"):
            return values.astype(target.array)
    if dtype == "float8_e4m3fn":
        values = np.clip(values, -E4M3_MAX, E4M3_MAX)  # NaN stays NaN
    with np.errstate(over="ignore", invalid="ignore"):
        return values.astype(_ml_dtype(dtype)).astype(np.float32)


def cast_info(info: TensorInfo, dtype: str) -> TensorInfo:
    """The info of ``info`` cast to ``dtype``."""
    target = DTYPES[dtype]
    extra = {k: v for k, v in (info.extra or {}).items() if k not in ("source_dtype", "data_offsets")}
    if target.code is not None:
        extra["source_dtype"] = target.code
    return TensorInfo(info.key, info.shape, target.array, info.role, info.structural, info.alias_of, extra)


def then(source: Source, function: Callable[[np.ndarray], np.ndarray]) -> Source:
    """``source`` followed by ``function``, still streaming (one tensor in memory at a time)."""
    if isinstance(source, Copy):
        return Transform(source.reader, source.key, function)
    if isinstance(source, Transform):
        first = source.function
        return Transform(source.reader, source.key, lambda array: function(first(array)))
    if isinstance(source, Combine):
        combine = source.function
        return Combine(source.inputs, lambda arrays: function(combine(arrays)))
    if isinstance(source, New):
        return New(function(source.array))
    return Then(source, function)


@dataclass(frozen=True)
class Then:
    """Any source followed by a function."""

    source: Source
    function: Callable[[np.ndarray], np.ndarray]

    def fetch(self) -> np.ndarray:
        return self.function(self.source.fetch())

    def extent(self) -> None:
        return None


def keep_patterns(patterns: Sequence[str]) -> list[re.Pattern[str]]:
    """``keep`` regular expressions compiled; a bad one is a SurgeryError naming it."""
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise SurgeryError(f"bad regular expression {pattern!r} in `keep_dtype`: {exc}") from None
    return compiled


def cast_plan(plan: Plan, dtype: str, keep: Sequence[str] = ()) -> Plan:
    """``plan`` with every floating tensor cast to ``dtype``, except keys matching a ``keep`` regex
    (searched anywhere in the key). Integer and boolean tensors are never cast. ``details["cast"]``
    says what was cast, kept, and how many stored bytes the output saves."""
    if dtype not in DTYPES:
        raise SurgeryError(f"unknown `dtype` {dtype!r}; choose from {', '.join(DTYPES)}")
    patterns = keep_patterns(keep)
    tensors: list[tuple[TensorInfo, Source]] = []
    cast, kept, skipped = [], [], 0
    before = after = 0
    function = lambda array: cast_array(array, dtype)
    for info, source in plan.tensors:
        counted = info.alias_of is None
        if counted:
            before += stored_nbytes(info)
        if not is_floating(info):
            skipped += 1
            new_info, new_source = info, source
        elif any(p.search(info.key) for p in patterns):
            kept.append(info.key)
            new_info, new_source = info, source
        elif stored_dtype(info) == dtype:
            new_info, new_source = info, source
        else:
            new_info = cast_info(info, dtype)
            new_source = source if info.alias_of is not None else then(source, function)
            cast.append({"key": info.key, "from": stored_dtype(info), "to": dtype})
        if counted:
            after += stored_nbytes(new_info)
        tensors.append((new_info, new_source))
    unused = [p.pattern for p in patterns if not any(p.search(k) for k in kept)]
    notes = list(plan.notes)
    if unused:
        notes.append(f"`keep_dtype` {brief_list(unused)} matched no floating tensor")
    documents = plan.documents
    config = documents.config
    if isinstance(config, dict) and ("torch_dtype" in config or "dtype" in config) and cast:
        config = {**config, **{k: dtype for k in ("torch_dtype", "dtype") if k in config}}
        documents = replace(documents, config=config)
    details = {**plan.details, "cast": {"dtype": dtype, "tensors": cast, "kept": kept, "not_floating": skipped,
                                        "bytes_before": before, "bytes_after": after, "bytes_saved": before - after}}
    return replace(plan, tensors=tensors, documents=documents, notes=notes, details=details)


def check_storable(plan: Plan, fmt: Format) -> None:
    """Refuse, before writing, tensors whose dtype ``fmt`` cannot store, naming formats that can."""
    if fmt.name in NARROW_FORMATS:
        return
    narrow = sorted({stored_dtype(i) for i in plan.infos if stored_dtype(i) in CODE_NAMES.values()})
    if narrow:
        from ..formats import registry
        can = [f"{f.name} ({', '.join(f.extensions) or 'a folder'})" for f in registry.writable()
               if f.name in NARROW_FORMATS]
        raise SurgeryError(f"{fmt.title} cannot store {' or '.join(narrow)}; write one of: {', '.join(can)} "
                           "(or choose another `dtype`)")


__all__ = [
    "DTYPES",
    "NARROW_FORMATS",
    "Then",
    "cast_array",
    "cast_info",
    "cast_plan",
    "check_storable",
    "is_floating",
    "stored_dtype",
    "stored_nbytes",
    "then",
]
