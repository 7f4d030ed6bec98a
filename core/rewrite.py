"""Write a checkpoint in any output format, streaming one tensor at a time.

Every surgery command ends here: it hands over the output's tensor list, a ``fetch`` that
reads each tensor when it is written (from the input file, or from the plan's new tensors),
and the documents that go with them. What an output format cannot hold is returned as a list
of notes, never silently dropped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .errors import ModelSurgeonError
from .formats.base import NAMED, TensorInfo
from .formats.h5 import write_h5

OUTPUT_FORMATS = ("h5", "mxnet", "safetensors", "npz")
Fetch = Callable[[TensorInfo], np.ndarray]

#: keys in safetensors ``__metadata__`` that carry our documents losslessly
ST_ARCHITECTURE = "modelsurgeon.architecture"
ST_GRAPH = "modelsurgeon.graph"
ST_KIND = "modelsurgeon.kind"


def format_for_path(path: str, requested: str | None = None) -> str:
    """The output format: as requested, else from the extension (.safetensors, .params, .npz), else h5."""
    if requested is not None:
        if requested not in OUTPUT_FORMATS:
            raise ModelSurgeonError(f"unknown output format {requested!r}; choose from {', '.join(OUTPUT_FORMATS)}")
        return requested
    lowered = path.lower()
    if lowered.endswith(".safetensors"):
        return "safetensors"
    if lowered.endswith(".params"):
        return "mxnet"
    if lowered.endswith(".npz"):
        return "npz"
    return "h5"


def symbol_path_for(params_path: str) -> str:
    """Where the graph goes beside an MXNet parameter file: ``x-0000.params`` -> ``x-symbol.json``."""
    from .checkpoint import sibling_graph_path
    import re
    existing = sibling_graph_path(params_path)
    if existing is not None:
        return existing
    base = re.sub(r"(-\d{4})?\.[^.]+$", "", os.path.basename(params_path))
    return os.path.join(os.path.dirname(params_path), f"{base}-symbol.json")


def write_checkpoint(path: str, fmt: str, kind: str, infos: Sequence[TensorInfo], fetch: Fetch, *,
                     architecture: dict[str, Any] | None = None, graph: dict[str, Any] | None = None,
                     metadata: dict[str, str] | None = None, progress: Callable[[int, int], None] | None = None,
                     overwrite: bool = True) -> list[str]:
    """Write ``infos`` to ``path`` in format ``fmt``; returns notes on what was not carried over."""
    notes: list[str] = []
    metadata = dict(metadata or {})
    if fmt == "h5":
        write_h5(path, kind, infos, fetch, architecture=architecture, graph=graph, metadata=metadata,
                 progress=progress, overwrite=overwrite)
        return notes
    if not overwrite and os.path.exists(path):
        from .errors import OutputExistsError
        raise OutputExistsError(f"{path} already exists (use --force to overwrite it)")
    flat = _expand_aliases(infos, notes)
    if fmt == "safetensors":
        from .formats import safetensors_io
        if architecture is not None:
            metadata[ST_ARCHITECTURE] = json.dumps(architecture, separators=(",", ":"))
        if graph is not None:
            metadata[ST_GRAPH] = json.dumps(graph, separators=(",", ":"))
        metadata[ST_KIND] = kind
        if any(i.role for i in flat) or any(i.structural for i in flat):
            notes.append("safetensors has no per-tensor roles or structural names; kept only the keys")
        safetensors_io.write_safetensors(path, flat, fetch, metadata=metadata, progress=progress)
        return notes
    if fmt in ("mxnet", "npz"):
        from .formats import mxnet
        symbol_file = symbol_path_for(path) if graph is not None else None
        if symbol_file is not None and not overwrite and os.path.exists(symbol_file):
            from .errors import OutputExistsError
            raise OutputExistsError(f"{symbol_file} already exists (use --force to overwrite it)")
        writer = mxnet.write_params if fmt == "mxnet" else mxnet.write_npz
        writer(path, flat, fetch, roles=kind == NAMED, progress=progress)
        if architecture is not None:
            notes.append("the architecture is not carried over: MXNet parameter files have no place for it")
        if metadata:
            notes.append(f"metadata not carried over ({', '.join(sorted(metadata))}): MXNet parameter files have no place for it")
        if graph is not None:
            from .formats.atomic import atomic_output
            with atomic_output(symbol_file) as tmp:
                with open(tmp, "w", encoding="utf-8") as handle:
                    handle.write(json.dumps(graph, indent=2) + "\n")
            notes.append(f"graph written to {symbol_file}")
        return notes
    raise ModelSurgeonError(f"unknown output format {fmt!r}; choose from {', '.join(OUTPUT_FORMATS)}")


def _expand_aliases(infos: Sequence[TensorInfo], notes: list[str]) -> list[TensorInfo]:
    """Formats without links store shared tensors once per key."""
    flat = [TensorInfo(i.key, i.shape, i.dtype, i.role, i.structural) if i.alias_of else i for i in infos]
    shared = sum(1 for i in infos if i.alias_of)
    if shared:
        notes.append(f"{shared} shared tensor(s) stored as copies (the format has no links)")
    return flat
