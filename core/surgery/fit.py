"""Fit a checkpoint to a target model's keys, shapes and dtypes, so that it loads strictly.

The target is a checkpoint (its keys, shapes and dtypes), a zoo model, or a list of
``[key, shape]`` (or ``[key, shape, dtype]``) pairs. Each target tensor gets a source, tried in
this order, and every choice is recorded with the rule that made it:

1. ``same name``: the input has the key itself;
2. ``prefix``: the keys agree once wrapper prefixes (``module.``, ``_orig_mod.``, ``model.``,
   ``backbone.``, any combination) are stripped from both sides;
3. ``gluon name``: the layer agrees and the tensor's role does (Gluon's ``gamma``/``beta``/
   ``running_mean``/``running_var`` are PyTorch's ``weight``/``bias``/``running_mean``/
   ``running_var``; ``moving_mean``/``moving_variance`` are Keras');
4. ``order, role and shape``: the rest is aligned unit by unit, where a unit is a layer with a
   weight of two or more dimensions and the per-channel layers after it (a convolution and its
   BatchNorm): each target unit takes the earliest unused input unit with the same layers,
   roles and shapes. (Matching whole units, not single tensors, keeps a ResNet's downsample
   branch, which MXNet's graph lists before the block's body, apart from the body.)
5. ``added buffer``: a buffer the target has and the input lacks, whose value is defined
   (``num_batches_tracked`` = 0).

Nothing is written when a target tensor stays unmatched or a shape differs; the error names the
command that would fix it (``replace-head``, ``resize-embedding``, ``adapt-input``). Input
tensors no target tensor takes are left out, and a note says which.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import MismatchError, ModelSurgeonError, SurgeryError, brief_list
from ..formats.base import STRUCTURAL, CheckpointReader, TensorInfo
from ..lazy import lazy_module
from .cast import DTYPES, cast_array, stored_dtype
from .plan import Copy, New, Plan, Source, Transform, carried_metadata

arch = lazy_module("modelsurgeon.core.engine.architecture")

#: Prefixes wrappers put before a model's own keys (DataParallel, torch.compile, Lightning, timm...).
WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.", "backbone.", "net.", "network.", "encoder.")
#: Leaves made of several words (split before the generic separator rule).
_LONG_LEAVES = ("num_batches_tracked", "running_mean", "running_var", "moving_mean", "moving_var",
                "moving_variance")
#: What a leaf means in a normalisation layer.
_NORM_ROLES = {"gamma": "scale", "weight": "scale", "beta": "shift", "bias": "shift", "running_mean": "mean",
               "moving_mean": "mean", "running_var": "var", "moving_var": "var", "moving_variance": "var",
               "num_batches_tracked": "count"}
#: What a leaf means in any other layer.
_ROLES = {"weight": "weight", "kernel": "weight", "bias": "bias"}
#: Leaves that make a layer a normalisation layer.
_NORM_MARKS = {"gamma", "beta", "running_mean", "running_var", "moving_mean", "moving_var", "moving_variance",
               "num_batches_tracked"}


@dataclass(frozen=True)
class Spec:
    """One target tensor: key, shape, dtype (stored dtype name)."""

    key: str
    shape: tuple[int, ...]
    dtype: str


@dataclass
class TargetModel:
    """What the input must fit: the tensors, and documents the output can carry."""

    name: str
    specs: list[Spec]
    kind: str = STRUCTURAL
    architecture: dict[str, Any] | None = None
    graph: dict[str, Any] | None = None
    reader: CheckpointReader | None = None


@dataclass
class Fitting:
    """The mapping (target key -> input key and rule), and what keeps it from being written."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    shape_mismatches: list[dict[str, Any]] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.unmatched or self.shape_mismatches)


# -- keys --------------------------------------------------------------------------------------

def split_key(key: str) -> tuple[str, str]:
    """(layer stem, leaf): ``'layer1.0.bn1.running_var'`` -> (``'layer1.0.bn1'``, ``'running_var'``);
    ``'resnetv10_batchnorm0_gamma'`` -> (``'resnetv10_batchnorm0'``, ``'gamma'``)."""
    key = re.sub(r":\d+$", "", key)  # TensorFlow's output index (dense/kernel:0)
    for leaf in _LONG_LEAVES:
        for sep in "._/:":
            if key.endswith(sep + leaf):
                return key[: -len(leaf) - 1], leaf
        if key == leaf:
            return "", leaf
    match = re.match(r"^(.*?)[._/:]([^._/:]+)$", key)
    if match is None:
        return "", key
    stem, leaf = match.groups()
    return stem, leaf


def strip_wrappers(key: str) -> tuple[str, str]:
    """(key without leading wrapper prefixes, the prefix removed)."""
    removed = ""
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix) and len(key) > len(prefix):
                key, removed, changed = key[len(prefix):], removed + prefix, True
    return key, removed


def _layers(keys: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Keys grouped by layer stem, in order of first appearance."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(split_key(key)[0], []).append(key)
    return list(groups.items())


def _is_norm(keys: Sequence[str]) -> bool:
    return any(split_key(k)[1] in _NORM_MARKS for k in keys)


def role(key: str, norm: bool) -> str:
    leaf = split_key(key)[1]
    return (_NORM_ROLES if norm else _ROLES).get(leaf, leaf)


# -- targets -----------------------------------------------------------------------------------

def target_from_reader(reader: CheckpointReader) -> TargetModel:
    specs = [Spec(i.key, tuple(i.shape), stored_dtype(i)) for i in reader.tensors.values()]
    return TargetModel(reader.path, specs, reader.kind, reader.architecture, reader.graph, reader)


def target_from_zoo(name: str, classes: int = 1000) -> TargetModel:
    from ..engine.model_zoo import vision
    model = vision.get_model(name, classes=classes)
    shape = (1, *vision.INPUT_SHAPE)
    model.trace(np.zeros(shape, np.float32), placeholders=True)
    specs = [Spec(key, tuple(param.shape or ()), np.dtype(param.dtype).name) for key, param in model.named_parameters()]
    architecture = arch.describe(model, [{"name": "data", "shape": list(shape), "dtype": "float32"}])
    return TargetModel(f"zoo model {name} ({classes} classes)", specs, STRUCTURAL, architecture)


def target_from_json(text: str, source: str = "the target list") -> TargetModel:
    """``[[key, shape], ...]`` or ``[[key, shape, dtype], ...]`` (dtype default float32)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SurgeryError(f"{source} is not valid JSON: {exc}") from None
    if isinstance(data, dict):
        data = list(data.items())
    specs = []
    if not isinstance(data, list) or not data:
        raise SurgeryError(f"{source} must be a non-empty list of [key, shape] pairs")
    for item in data:
        if not (isinstance(item, (list, tuple)) and len(item) in (2, 3) and isinstance(item[0], str)
                and isinstance(item[1], list) and all(isinstance(d, int) and d >= 0 for d in item[1])):
            raise SurgeryError(f"{source}: each entry must be [key, [dims...]] or [key, [dims...], dtype], "
                               f"not {json.dumps(item)[:80]}")
        default = "int64" if split_key(item[0])[1] == "num_batches_tracked" else "float32"
        dtype = item[2] if len(item) == 3 else default
        if dtype not in DTYPES and not _numpy_dtype(dtype):
            raise SurgeryError(f"{source}: unknown dtype {dtype!r} for '{item[0]}'")
        specs.append(Spec(item[0], tuple(item[1]), dtype))
    keys = [s.key for s in specs]
    if len(set(keys)) != len(keys):
        raise SurgeryError(f"{source} names a key twice")
    return TargetModel(source, specs)


def _numpy_dtype(name: str) -> bool:
    try:
        np.dtype(name)
    except TypeError:
        return False
    return True


def zoo_names() -> list[str]:
    from ..engine.model_zoo import vision
    return vision.model_names()


# -- matching ----------------------------------------------------------------------------------

def fit_mapping(reader: CheckpointReader, target: TargetModel) -> Fitting:
    """Find a source for every target tensor (see the module docstring); nothing is read."""
    tensors = dict(reader.tensors.items())
    specs = {s.key: s for s in target.specs}
    source_of: dict[str, tuple[str | None, str]] = {}
    used: set[str] = set()

    def take(target_key: str, source_key: str | None, rule: str) -> None:
        source_of[target_key] = (source_key, rule)
        if source_key is not None:
            used.add(source_key)

    for key in specs:  # 1. the same name
        if key in tensors:
            take(key, key, "same name")
    # 2. wrapper prefixes stripped on both sides (only where that is unambiguous)
    ours = _unique({strip_wrappers(k)[0]: k for k in tensors if k not in used}, tensors, used)
    for key in specs:
        if key in source_of:
            continue
        bare, _ = strip_wrappers(key)
        found = ours.get(bare)
        if found is not None and found not in used:
            take(key, found, f"prefix ({_prefix_change(found, key)})")
    # 3. Gluon/Keras leaf names: the same layer, the same role
    layer_index: dict[tuple[str, str], str] = {}
    for stem, keys in _layers([k for k in tensors if k not in used]):
        norm = _is_norm(keys)
        for k in keys:
            layer_index.setdefault((strip_wrappers(stem)[0], role(k, norm)), k)
    for stem, keys in _layers([k for k in specs if k not in source_of]):
        norm = _is_norm(keys)
        for k in keys:
            found = layer_index.get((strip_wrappers(stem)[0], role(k, norm)))
            if found is not None and found not in used:
                take(k, found, f"gluon name ({split_key(found)[1]} -> {split_key(k)[1]})")
    # 4. the rest, unit by unit, by order, role and shape
    left_targets = [k for k in specs if k not in source_of and split_key(k)[1] != "num_batches_tracked"]
    left_sources = [k for k in tensors if k not in used]
    for target_key, aligned in _align_units(left_targets, specs, left_sources, tensors):
        take(target_key, aligned, "order, role and shape")
    # 5. buffers with a defined value
    for key in specs:
        if key not in source_of and split_key(key)[1] == "num_batches_tracked":
            take(key, None, "added buffer (num_batches_tracked = 0)")
    fitting = Fitting()
    for key, spec in specs.items():
        if key not in source_of:
            fitting.unmatched.append(key)
            fitting.rows.append({"old": None, "new": key, "rule": "unmatched", "shape": list(spec.shape)})
            continue
        source_key, rule_name = source_of[key]
        row: dict[str, Any] = {"old": source_key, "new": key, "rule": rule_name, "shape": list(spec.shape)}
        if source_key is not None:
            have = tuple(tensors[source_key].shape)
            if have != spec.shape:
                row["old_shape"] = list(have)
                fitting.shape_mismatches.append({"key": key, "input": source_key, "input_shape": list(have),
                                                 "target_shape": list(spec.shape)})
            if stored_dtype(tensors[source_key]) != spec.dtype:
                row["old_dtype"], row["dtype"] = stored_dtype(tensors[source_key]), spec.dtype
        fitting.rows.append(row)
    fitting.unused = [k for k in tensors if k not in used]
    fitting.fixes = _fixes(fitting, reader, target)
    return fitting


def _unique(mapping: dict[str, str], tensors: dict[str, TensorInfo], used: set[str]) -> dict[str, str]:
    """The stripped -> key map, without stripped keys that two input keys share."""
    counts: dict[str, int] = {}
    for k in tensors:
        if k not in used:
            bare = strip_wrappers(k)[0]
            counts[bare] = counts.get(bare, 0) + 1
    return {bare: k for bare, k in mapping.items() if counts.get(bare) == 1}


def _prefix_change(old: str, new: str) -> str:
    a, b = strip_wrappers(old)[1], strip_wrappers(new)[1]
    return f"{a or '(none)'} -> {b or '(none)'}"


def _signature(keys: Sequence[str], shapes: dict[str, tuple[int, ...]]) -> tuple[Any, ...]:
    norm = _is_norm(keys)
    return (norm, tuple(sorted((role(k, norm), shapes[k]) for k in keys if role(k, norm) != "count")))


def _units(keys: Sequence[str], shapes: dict[str, tuple[int, ...]]) -> list[list[list[str]]]:
    """Layers grouped into units: a layer with a weight of 2+ dimensions and the per-channel layers after it."""
    units: list[list[list[str]]] = []
    for _, layer in _layers(keys):
        layer = [k for k in layer if not (_is_norm(layer) and role(k, True) == "count")]
        if not layer:
            continue
        starts = any(len(shapes[k]) >= 2 for k in layer)
        if starts or not units:
            units.append([layer])
        else:
            units[-1].append(layer)
    return units


def _align_units(targets: list[str], specs: dict[str, Spec], sources: list[str],
                 tensors: dict[str, TensorInfo]) -> list[tuple[str, str]]:
    target_shapes = {k: specs[k].shape for k in targets}
    source_shapes = {k: tuple(tensors[k].shape) for k in sources}
    target_units = _units(targets, target_shapes)
    source_units = _units(sources, source_shapes)
    source_signatures = [tuple(_signature(layer, source_shapes) for layer in unit) for unit in source_units]
    taken = [False] * len(source_units)
    pairs = []
    for unit in target_units:
        signature = tuple(_signature(layer, target_shapes) for layer in unit)
        for index, candidate in enumerate(source_signatures):
            if taken[index] or candidate != signature:
                continue
            taken[index] = True
            for ours, theirs in zip(unit, source_units[index]):
                norm_a, norm_b = _is_norm(ours), _is_norm(theirs)
                by_role = {role(k, norm_b): k for k in theirs}
                pairs += [(k, by_role[role(k, norm_a)]) for k in ours if role(k, norm_a) in by_role]
            break
    return pairs


def _fixes(fitting: Fitting, reader: CheckpointReader, target: TargetModel) -> list[str]:
    """The commands that would fix what keeps the input from fitting."""
    fixes: list[str] = []
    specs = {s.key: s for s in target.specs}
    problems = [(m["key"], tuple(m["input_shape"]), tuple(m["target_shape"])) for m in fitting.shape_mismatches]
    # unmatched target tensors against unused input tensors of the same rank, in order
    unused = list(fitting.unused)
    for key in fitting.unmatched:
        spec = specs[key]
        for candidate in unused:
            shape = tuple(reader.tensors[candidate].shape)
            if len(shape) == len(spec.shape) and role(candidate, False) == role(key, False):
                problems.append((key, shape, spec.shape))
                unused.remove(candidate)
                break
    order = [s.key for s in target.specs]
    for key, have, want in problems:
        position = order.index(key)
        if len(want) == 4 and have[0] == want[0] and have[2:] == want[2:] and have[1] != want[1]:
            fix = f"adapt-input --channels {want[1]} (the input's '{key}' takes {have[1]} channels)"
        elif "embed" in key or "wte" in key or "tok" in key:
            fix = f"resize-embedding --rows {want[0]} (vocabulary {have[0]} vs {want[0]})"
        elif position >= len(order) - 2 and have[0] != want[0] and have[1:] == want[1:]:
            fix = f"replace-head --classes {want[0]} (the input has {have[0]} classes)"
        else:
            continue
        if f"modelsurgeon {fix}" not in fixes:
            fixes.append(f"modelsurgeon {fix}")
    return fixes


# -- the plan ----------------------------------------------------------------------------------

def plan_fit(reader: CheckpointReader, target: TargetModel, cast: bool = False,
             fitting: Fitting | None = None) -> Plan:
    """The plan writing the input under the target's keys, in the target's order (with ``cast``, in
    the target's dtypes). Raises MismatchError, naming the commands that would fix it, when a target
    tensor is unmatched or a shape differs."""
    fitting = fitting or fit_mapping(reader, target)
    if not fitting.ok:
        parts = []
        if fitting.unmatched:
            parts.append(f"{len(fitting.unmatched)} target tensor(s) unmatched: {brief_list(fitting.unmatched)}")
        if fitting.shape_mismatches:
            shown = [f"{m['key']} input {tuple(m['input_shape'])} vs target {tuple(m['target_shape'])}"
                     for m in fitting.shape_mismatches]
            parts.append(f"{len(shown)} shape mismatch(es): {brief_list(shown)}")
        fix = f"; fix with: {'; '.join(fitting.fixes)}" if fitting.fixes else ""
        raise MismatchError(f"cannot fit {reader.path} to {target.name}: " + "; ".join(parts) + fix
                            + "; nothing was written")
    specs = {s.key: s for s in target.specs}
    planned: list[tuple[TensorInfo, Source]] = []
    notes = []
    cast_count = differing = 0
    for row in fitting.rows:
        spec = specs[row["new"]]
        if row["old"] is None:
            dtype = np.dtype(DTYPES[spec.dtype].array if spec.dtype in DTYPES else spec.dtype)
            planned.append((TensorInfo(spec.key, spec.shape, dtype), New(np.zeros(spec.shape, dtype))))
            continue
        info = reader.tensors[row["old"]]
        extra = {k: v for k, v in (info.extra or {}).items() if k != "data_offsets"}
        if "dtype" in row and cast:
            cast_count += 1
            new_info, source = _cast_to(reader, info, spec, extra)
            planned.append((new_info, source))
            continue
        if "dtype" in row:
            differing += 1
        planned.append((TensorInfo(spec.key, spec.shape, info.dtype, info.role, info.structural, None, extra),
                        Copy(reader, info.key)))
    added = [r["new"] for r in fitting.rows if r["old"] is None]
    if added:
        notes.append(f"added {len(added)} buffer(s) the input lacks: {brief_list(added)} (num_batches_tracked = 0)")
    if fitting.unused:
        notes.append(f"{len(fitting.unused)} input tensor(s) the target does not have were left out: "
                     f"{brief_list(fitting.unused)}")
    if differing:
        notes.append(f"{differing} tensor(s) keep a dtype other than the target's (`cast` to convert them)")
    if cast_count:
        notes.append(f"cast {cast_count} tensor(s) to the target's dtype")
    architecture = target.architecture if target.kind == STRUCTURAL else None
    graph = target.graph if target.kind != STRUCTURAL else None
    counts: dict[str, int] = {}
    for row in fitting.rows:
        rule = row["rule"].split(" (")[0]
        counts[rule] = counts.get(rule, 0) + 1
    details = {"target": target.name, "mapping": fitting.rows, "rules": counts, "unused": fitting.unused}
    readers = [reader] + ([target.reader] if target.reader is not None else [])
    return Plan.of(planned, target.kind, architecture=architecture, graph=graph, metadata=carried_metadata(reader),
                   readers=readers, notes=notes, details=details)


def _cast_to(reader: CheckpointReader, info: TensorInfo, spec: Spec,
             extra: dict[str, Any]) -> tuple[TensorInfo, Source]:
    if spec.dtype in DTYPES and np.dtype(info.dtype).kind == "f":
        target = DTYPES[spec.dtype]
        extra = {k: v for k, v in extra.items() if k != "source_dtype"}
        if target.code is not None:
            extra["source_dtype"] = target.code
        name = spec.dtype
        return (TensorInfo(spec.key, spec.shape, target.array, info.role, info.structural, None, extra),
                Transform(reader, info.key, lambda array: cast_array(array, name)))
    dtype = np.dtype(spec.dtype if spec.dtype not in DTYPES else DTYPES[spec.dtype].array)
    return (TensorInfo(spec.key, spec.shape, dtype, info.role, info.structural, None, {}),
            Transform(reader, info.key, lambda array: np.asarray(array).astype(dtype)))


def resolve_target(text: str, reader: CheckpointReader) -> tuple[TargetModel, CheckpointReader | None]:
    """A target from ``text``: inline JSON, a .json list file, a checkpoint, or a zoo model name. A
    checkpoint target comes with its open reader (the caller closes it)."""
    stripped = text.strip()
    if stripped.startswith(("[", "{")):
        return target_from_json(stripped), None
    if os.path.exists(text):
        if os.path.isfile(text) and text.lower().endswith(".json") and not text.lower().endswith(".index.json"):
            with open(text, encoding="utf-8") as handle:
                content = handle.read()
            if content.lstrip().startswith("["):
                return target_from_json(content, text), None
        from ..binding import open_checkpoint
        target_reader = open_checkpoint(text)
        return target_from_reader(target_reader), target_reader
    if text.lower() in zoo_names():
        return target_from_zoo(text.lower(), _classes(reader)), None
    raise SurgeryError(f"`to` {text!r} is not a file, a JSON list of [key, shape] pairs, or a zoo model "
                       f"({', '.join(zoo_names())})")


def _classes(reader: CheckpointReader) -> int:
    from .head import find_head
    try:
        return int(reader.tensors[find_head(reader).weight].shape[0])
    except (ModelSurgeonError, IndexError):
        return 1000


__all__ = [
    "WRAPPER_PREFIXES",
    "Fitting",
    "Spec",
    "TargetModel",
    "fit_mapping",
    "plan_fit",
    "resolve_target",
    "split_key",
    "strip_wrappers",
    "target_from_json",
    "target_from_reader",
    "target_from_zoo",
]
