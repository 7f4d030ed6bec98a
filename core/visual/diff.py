"""A picture coloured by a comparison: every tensor added, removed, renamed, reshaped or changed."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..formats.base import CheckpointReader
from .picture import DIFF_STATES, Layer, Picture, shape_text, tensor_row
from .sources import build_picture


def _layer_state(layer: Layer) -> str | None:
    states = {t.state for t in layer.tensors if t.state}
    for state in DIFF_STATES:
        if state in states:
            return state
    return None


def diff_picture(a: CheckpointReader, b: CheckpointReader, result: Any, input_shape: tuple[int, ...] | None = None,
                 detect_renames: bool = True) -> Picture:
    """B's picture with every tensor coloured by what :func:`~modelsurgeon.core.surgery.diff` found.

    Layers whose tensors exist only in A are drawn apart as removed ("ghost") layers. With
    ``detect_renames``, tensors only in A and only in B with identical bytes are "renamed".
    ``picture.diff`` holds the summary: counts by state and every tensor that is not unchanged.
    """
    from ..surgery.diff import comparable_keys
    keys_a, keys_b, _ = comparable_keys(a, b)
    renames = [tuple(pair) for pair in result.renames] if detect_renames else []
    renamed_from = {new: old for old, new in renames}
    renamed_a = {old for old, _ in renames}
    changed = {c["key"]: c for c in result.changed}
    values = {v["key"]: v for v in result.values}
    picture = build_picture(b, input_shape, title=f"{a.path} → {b.path}")
    row_of = {t.key: t for layer in picture.layers for t in layer.tensors}
    records: list[dict[str, Any]] = []
    for key, file_key in keys_b.items():
        row = row_of.get(file_key)
        if row is None:
            continue
        if key in renamed_from:
            row.state, row.detail = "renamed", f"was {renamed_from[key]}"
        elif key not in keys_a:
            row.state = "added"
        elif key in changed:
            c = changed[key]
            row.state = "reshaped"
            row.detail = (f"{shape_text(c['a']['shape'])} {c['a']['dtype']} → "
                          f"{shape_text(c['b']['shape'])} {c['b']['dtype']}")
        elif key in values and not values[key]["equal"]:
            row.state, row.detail = "changed", f"max |a−b| = {values[key]['max_abs_diff']:.4g}"
        else:
            row.state = "same"
        if row.state != "same":
            records.append({"state": row.state, "a": keys_a.get(key) or renamed_from.get(key), "b": file_key,
                            "detail": row.detail})
    removed = [key for key in result.only_a if key not in renamed_a]
    if removed:
        _add_removed(picture, a, [keys_a[k] for k in removed], input_shape)
        records += [{"state": "removed", "a": keys_a[k], "b": None, "detail": ""} for k in removed]
    for layer in picture.layers:
        layer.state = _layer_state(layer)
    counts = dict.fromkeys(DIFF_STATES, 0)
    for layer in picture.layers:
        for row in layer.tensors:
            if row.state:
                counts[row.state] += 1
    touched = [layer.name for layer in picture.layers if layer.state not in (None, "same")]
    order = {state: i for i, state in enumerate(DIFF_STATES)}
    records.sort(key=lambda r: (order[r["state"]], r["b"] or r["a"] or ""))
    picture.diff = {"a": str(a.path), "b": str(b.path), "scheme": result.scheme, "equal": bool(result.equal),
                    "values_compared": bool(result.values) or not (set(keys_a) & set(keys_b)),
                    "renames_detected": detect_renames, "counts": counts, "layers_touched": touched,
                    "layers": sum(1 for layer in picture.layers if layer.kind != "input"),
                    "tensors": records}
    if not result.values and set(keys_a) & set(keys_b):
        picture.notes.append("values were not compared: tensors with the same key and shape count as unchanged")
    return picture


def _add_removed(picture: Picture, a: CheckpointReader, file_keys: list[str],
                 input_shape: tuple[int, ...] | None) -> None:
    """Removed tensors join B's layer of the same id, else a ghost copy of A's layer."""
    before = build_picture(a, input_shape, head=False)
    by_id = {layer.id: layer for layer in picture.layers}
    for key in file_keys:
        source = before.layer_of(key)
        row = dataclasses.replace(tensor_row(a.tensors[key]), state="removed")
        if source is not None and source.id in by_id and not by_id[source.id].ghost:
            by_id[source.id].tensors.append(row)
            continue
        ghost_id = f"removed:{source.id if source is not None else key}"
        ghost = by_id.get(ghost_id)
        if ghost is None:
            ghost = Layer(ghost_id, source.name if source is not None else key, source.op if source is not None else "",
                          source.summary if source is not None else "", source.shape if source is not None else None,
                          path=source.path if source is not None else "", detached=True, ghost=True)
            picture.layers.append(ghost)
            by_id[ghost_id] = ghost
        ghost.tensors.append(row)
