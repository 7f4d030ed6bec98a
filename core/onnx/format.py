"""ONNX as a registered checkpoint format (:data:`FORMAT`, for ``core/formats/registry.py``).

Reading lists the initializers (:class:`.reader.OnnxReader`). Writing makes a whole model, so it
needs to know what the tensors compute:

* documents with an MXNet graph (``convert`` from an MXNet export, or from a structural file
  traced to a graph): the graph is exported, its input shape taken from the architecture's
  recorded inputs;
* an ONNX input (``documents.origin``) whose initializers keep their names: the input model with
  the new tensor values (a cast, an average...), checked again.

Renaming initializers and replacing the head of an ONNX model are :mod:`.edit`'s functions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import OutputFormatError, SurgeryError, brief_list
from ..formats.base import STRUCTURAL, TensorInfo
from ..formats.spec import Documents, Fetch, Format, Probe, Progress
from . import require_onnx
from .reader import OnnxReader, is_onnx, sniff


def _sniff(probe: Probe) -> bool:
    if not sniff(probe.head):
        return False
    return probe.path.lower().endswith(".onnx") or is_onnx(probe.path)


def write(path: str, infos: Sequence[TensorInfo], fetch: Fetch, documents: Documents, *,
          progress: Progress | None = None, overwrite: bool = True, **_: Any) -> list[str]:
    """Write an ONNX model of ``infos`` (see the module docstring); returns notes (none)."""
    from .edit import save_model
    from .export import export_graph
    if documents.origin is not None and os.path.isfile(documents.origin) and is_onnx(documents.origin):
        _write_back(path, infos, fetch, documents.origin, progress, overwrite)
        return []
    if documents.graph is None and documents.architecture is not None and documents.kind == STRUCTURAL:
        _write_from_architecture(path, infos, fetch, documents, overwrite)
        return []
    if documents.graph is None:
        raise OutputFormatError("an ONNX output needs a graph to export: convert from a file with an MXNet graph "
                                "or with its architecture (or a zoo model)")
    from ..engine import architecture as arch
    from ..engine.symbol import Graph
    graph = Graph.from_json(documents.graph)
    by_key = {info.key: info for info in infos}
    labels = set(graph.label_variables()) if hasattr(graph, "label_variables") else set()
    inputs = [name for name in graph.variables() if name not in by_key and name not in labels]
    specs = arch.input_specs(documents.architecture) if documents.architecture is not None else []
    if len(specs) != len(inputs):
        raise OutputFormatError("the model's input shape is unknown here; export it with "
                                "modelsurgeon.core.onnx.export.export_file(..., input_shape=...)")
    tensors = {}
    for done, info in enumerate(infos):
        tensors[info.key] = fetch(info)
        if progress is not None:
            progress(done + 1, len(infos))
    names = {info.key: info.structural[0] for info in infos if info.structural}
    model = export_graph(graph, tensors, {v: s[1] for v, s in zip(inputs, specs)},
                         input_dtypes={v: s[2] for v, s in zip(inputs, specs)}, names=names)
    save_model(model, path, overwrite=overwrite, check=True)
    return []


def _write_from_architecture(path: str, infos: Sequence[TensorInfo], fetch: Fetch, documents: Documents,
                             overwrite: bool) -> None:
    """A structural checkpoint with its architecture: build the model, load the tensors, trace and export."""
    from ..binding import load_arrays
    from ..engine import architecture as arch
    from .edit import save_model
    from .export import export_block
    architecture = documents.architecture or {}
    specs = arch.input_specs(architecture)
    if len(specs) != 1:
        raise OutputFormatError("the model's input shape is unknown here; export it with "
                                "modelsurgeon.core.onnx.export.export_file(..., input_shape=...)")
    block = arch.build(architecture)
    load_arrays(block, {info.key: fetch(info) for info in infos}, source="the checkpoint")
    save_model(export_block(block, specs[0][1]), path, overwrite=overwrite, check=True)


def _write_back(path: str, infos: Sequence[TensorInfo], fetch: Fetch, origin: str, progress: Progress | None,
                overwrite: bool) -> None:
    """The ONNX input with the plan's tensors: renamed initializers (the plan keeps their order), a
    replaced head (through :func:`.edit.replace_head`, so the graph's shapes follow), new values."""
    from .edit import find_head, load, rename_initializers, replace_head, save_model
    onnx = require_onnx()
    model, external = load(origin)
    names = [t.name for t in model.graph.initializer]
    keys = [info.key for info in infos]
    if set(keys) <= set(names) and len(keys) == len(names):
        mapping: dict[str, str] = {}
    elif len(keys) == len(names):  # a rename keeps every tensor in its place
        mapping = {old: new for old, new in zip(names, keys) if old != new}
        model, _ = rename_initializers(model, mapping)
    else:
        missing = sorted(set(names) - set(keys)) or sorted(set(keys) - set(names))
        raise SurgeryError(f"an ONNX model keeps its initializers: {brief_list(missing)} "
                           f"{'would be missing from' if set(names) - set(keys) else 'are not in'} {origin}")
    stored = {t.name: t for t in model.graph.initializer}
    arrays = {}
    for done, info in enumerate(infos):
        arrays[info.key] = np.asarray(fetch(info))
        if progress is not None:
            progress(done + 1, len(infos))
    reshaped = {k for k, a in arrays.items() if tuple(a.shape) != tuple(stored[k].dims)}
    if reshaped:
        head = find_head(model)
        if not reshaped <= {head.weight, head.bias}:
            raise SurgeryError(f"the shapes of {brief_list(sorted(reshaped))} change, and only the head's "
                               f"({head.weight}) may change in an ONNX model")
        weight = arrays[head.weight]
        weight = weight.T if head.transposed else weight
        bias = arrays.get(head.bias) if head.bias is not None else None
        model, _ = replace_head(model, int(weight.shape[0]), weight, bias)
        stored = {t.name: t for t in model.graph.initializer}
    for key, array in arrays.items():
        if key not in reshaped:
            stored[key].CopyFrom(onnx.numpy_helper.from_array(np.ascontiguousarray(array), key))
    save_model(model, path, external_data=external or None, overwrite=overwrite, check=True)


FORMAT = Format("onnx", "ONNX model", (".onnx",), _sniff, OnnxReader, write, reports=("onnx",))

__all__ = ["FORMAT", "write"]
