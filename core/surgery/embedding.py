"""Resize an embedding or vocabulary matrix (and the output head tied to it or matching it).

Rows that exist stay bit-identical; a trim keeps the first ``rows``; new rows are the mean of the
old rows (``mean``, the default, as transformers' ``mean_resizing``), drawn from a normal with
the old rows' per-column mean and standard deviation (``normal``, reproducible with ``seed``), or
zeros. A tensor tied to the embedding (stored once under both keys) and output heads of the same
vocabulary (a weight of the same shape, a bias with one value per row, named like a head:
``lm_head``, ``decoder``, ``predictions``, ``output``...) are resized the same way and reported.
A Hugging Face folder's ``config.json`` gets the new ``vocab_size``.

>>> import numpy as np
>>> resize_rows(np.arange(6, dtype=np.float32).reshape(3, 2), 4, "mean").tolist()
[[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [2.0, 3.0]]
"""

from __future__ import annotations

import copy
import re
from typing import Any

import numpy as np

from ..errors import ModelSurgeonError, SurgeryError, brief_list
from ..formats import hf
from ..formats.base import STRUCTURAL, CheckpointReader, TensorInfo
from ..lazy import lazy_module
from .cast import DTYPES, stored_dtype
from .cast import cast_array as _round
from .plan import Copy, Plan, Source, Transform, carried_metadata

arch = lazy_module("modelsurgeon.core.engine.architecture")
symbol = lazy_module("modelsurgeon.core.engine.symbol")

#: ``init`` choices for the new rows.
EMBEDDING_INITS = {
    "mean": "the mean of the old rows",
    "normal": "a normal with the old rows' per-column mean and standard deviation (use --seed)",
    "zeros": "zeros",
}
#: Names of output heads that share the vocabulary axis.
HEAD_NAMES = re.compile(r"(^|[._/])(lm_head|decoder|embed_out|predictions|output|logits|cls|head)([._/]|$)")


def resize_rows(array: np.ndarray, rows: int, init: str = "mean", rng: np.random.Generator | None = None,
                stored: str | None = None) -> np.ndarray:
    """``array`` with ``rows`` rows along axis 0: the first ones unchanged, new ones from ``init``."""
    old = np.asarray(array)
    if rows <= old.shape[0]:
        return np.ascontiguousarray(old[:rows])
    count = rows - old.shape[0]
    shape = (count, *old.shape[1:])
    if init == "zeros" or old.shape[0] == 0:
        new = np.zeros(shape, np.float64)
    else:
        wide = old.astype(np.float64)
        mean = wide.mean(axis=0)
        if init == "mean":
            new = np.broadcast_to(mean, shape)
        else:
            rng = rng if rng is not None else np.random.default_rng()
            new = rng.normal(mean, wide.std(axis=0), size=shape)
        del wide
    new = _round(new, stored) if stored in DTYPES else new.astype(old.dtype)
    return np.concatenate([old, new.astype(old.dtype)], axis=0)


def _tied(reader: CheckpointReader, key: str) -> list[str]:
    """Keys stored once together with ``key`` (tied weights)."""
    group = reader.tensors[key].alias_of or key
    return [k for k, i in reader.tensors.items() if k != key and (k == group or i.alias_of == group)]


def _heads(reader: CheckpointReader, key: str) -> list[str]:
    info = reader.tensors[key]
    vocab = info.shape[0]
    found = []
    for other in reader.tensors.values():
        if other.key == key or other.alias_of is not None or not HEAD_NAMES.search(other.key):
            continue
        same = tuple(other.shape) == tuple(info.shape) or (len(other.shape) == 1 and other.shape[0] == vocab)
        if same and np.dtype(other.dtype).kind == "f":
            found.append(other.key)
    return found


def plan_resize_embedding(reader: CheckpointReader, key: str, rows: int, init: str = "mean",
                          seed: int | None = None, heads: bool = True) -> Plan:
    """A plan with ``key`` (and its tied or matching heads, unless ``heads`` is false) resized to
    ``rows`` rows; every other tensor copied. See the module docstring."""
    if init not in EMBEDDING_INITS:
        raise SurgeryError(f"unknown `init` {init!r}; choose from {', '.join(EMBEDDING_INITS)}")
    if key not in reader.tensors:
        shaped = [k for k, i in reader.tensors.items() if len(i.shape) == 2]
        raise SurgeryError(f"no tensor `key` '{key}' (2-D tensors: {brief_list(shaped)})")
    info = reader.tensors[key]
    if len(info.shape) < 1 or np.dtype(info.dtype).kind != "f":
        raise SurgeryError(f"'{key}' is {stored_dtype(info)} of shape {tuple(info.shape)}; an embedding is a "
                           "floating matrix with one row per token")
    if rows <= 0:
        raise SurgeryError(f"`rows` must be positive, not {rows}")
    old_rows = info.shape[0]
    primary = info.alias_of or key  # the key that holds a tied tensor's data
    resized = [primary, *list(_tied(reader, primary))]
    if heads:
        resized += [k for k in _heads(reader, primary) if k not in resized]
    tied = [k for k in resized if k != primary and reader.tensors[k].alias_of is not None]
    matching = [k for k in resized if k != primary and k not in tied]
    planned: list[tuple[TensorInfo, Source]] = []
    for index, (name, current) in enumerate(reader.tensors.items()):
        if name not in resized:
            planned.append((current, Copy(reader, name)))
            continue
        shape = (rows, *current.shape[1:])
        new_info = TensorInfo(name, shape, current.dtype, current.role, current.structural, current.alias_of,
                              {k: v for k, v in (current.extra or {}).items() if k != "data_offsets"})
        if current.alias_of is not None:
            planned.append((new_info, Copy(reader, name)))  # written as a link to the resized tensor
            continue
        rng = np.random.default_rng(None if seed is None else [seed, index])
        stored = stored_dtype(current)
        planned.append((new_info, Transform(reader, name, _resizer(rows, init, rng, stored))))
    shapes = {info.key: info.shape for info, _ in planned if info.key in resized}
    notes = []
    architecture = reader.architecture
    if architecture is not None:
        architecture = _architecture(reader, shapes, rows)
        if architecture is None:
            notes.append("the architecture could not follow the new vocabulary size and was left out")
    graph = reader.graph
    if graph is not None:
        graph = _graph(graph, shapes, rows)
    config = reader.config
    if reader.format == "hf-folder" and config is not None:
        config = hf.config_for_vocab(config, rows)
    elif config is not None and reader.format.startswith("keras"):
        notes.append("the Keras model config still names the old vocabulary size")
    metadata = {**carried_metadata(reader), "modelsurgeon.resize_embedding": f"{key} {old_rows}->{rows} {init}"}
    details = {"key": key, "old_rows": old_rows, "rows": rows, "init": init, "seed": seed,
               "tied": tied, "heads": matching,
               "resized": [{"key": k, "old_shape": list(reader.tensors[k].shape), "new_shape": list(shapes[k])}
                           for k in resized],
               "config_vocab_size": rows if reader.format == "hf-folder" and config is not None else None}
    return Plan.of(planned, reader.kind, architecture=architecture, graph=graph, metadata=metadata,
                   readers=[reader], notes=notes, details=details, config=config)


def _resizer(rows: int, init: str, rng: np.random.Generator, stored: str) -> Any:
    return lambda array: resize_rows(array, rows, init, rng, stored)


def _architecture(reader: CheckpointReader, shapes: dict[str, tuple[int, ...]], rows: int) -> dict[str, Any] | None:
    assert reader.architecture is not None
    if reader.kind != STRUCTURAL:
        return None
    document = copy.deepcopy(reader.architecture)
    for key in shapes:
        path = key.rpartition(".")[0]
        node = document["root"]
        for part in path.split(".") if path else []:
            node = dict(node.get("children") or []).get(part, {})
        name = {"Dense": "units", "Conv2D": "channels"}.get(node.get("type", ""))
        if name is not None:
            node["config"][name] = rows
    try:
        built = dict(arch.build(document).named_parameters())
    except ModelSurgeonError:
        return None
    for key, shape in shapes.items():
        param = built.get(key)
        if param is None or param.shape is None or tuple(param.shape) != tuple(shape):
            return None
    return document


def _graph(document: dict[str, Any], shapes: dict[str, tuple[int, ...]], rows: int) -> dict[str, Any]:
    graph = symbol.Graph.from_json(document)
    index = {node.name: i for i, node in enumerate(graph.nodes)}
    for name, shape in shapes.items():
        if name not in index:
            continue
        node = graph.nodes[index[name]]
        if "__shape__" in node.attrs:
            node.attrs["__shape__"] = str(tuple(shape))
        for op in graph.op_nodes():
            if any(source == index[name] for source, _, _ in op.inputs):
                if op.op == "FullyConnected":
                    op.attrs["num_hidden"] = str(rows)
                elif op.op == "Embedding":
                    op.attrs["input_dim"] = str(rows)
    return graph.to_dict()


__all__ = ["EMBEDDING_INITS", "plan_resize_embedding", "resize_rows"]
