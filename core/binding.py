"""Checkpoints bound to Blocks: open a file with its graph checked, save and load parameters, export.

The file layer (:mod:`.formats`) reads and writes tensors; this module is where they meet the engine:
matching a checkpoint's keys to a model's Parameters, ``save_parameters``/``load_parameters``,
``export``, and building a runnable Block from a file's architecture or graph.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import CheckpointError, MismatchError, ModelSurgeonError, brief_list
from .formats import mxnet, registry
from .formats.atomic import CommitGroup, atomic_output
from .formats.base import NAMED, STRUCTURAL, CheckpointReader, TensorInfo
from .formats.h5 import write_h5
from .lazy import lazy_module

# The engine, loaded when a file carries an architecture or a graph, or a model is saved or loaded.
arch = lazy_module(f"{__package__}.engine.architecture")
parameter = lazy_module(f"{__package__}.engine.parameter")
symbol = lazy_module(f"{__package__}.engine.symbol")

if TYPE_CHECKING:
    from .engine.block import Block, HybridBlock
    from .engine.parameter import Parameter
    from .engine.symbol import Graph

ROLE_PREFIX = re.compile(r"^(arg|aux):")


# -- opening ------------------------------------------------------------------------------------

def detect_format(path: str) -> str:
    """The registry name of the file's format, from its bytes (``'h5'``, ``'mxnet'``, ``'index'``...)."""
    return registry.detect(os.fspath(path)).name


def open_checkpoint(path: str | os.PathLike[str], options: Mapping[str, Any] | None = None) -> CheckpointReader:
    """Open a checkpoint of any supported format for lazy reading, its graph checked.

    ``options`` go to the format's reader (:func:`registry.open_file`), such as
    ``{"member": "model"}`` for the state dict inside a PyTorch training checkpoint.

    The format's own reader (:func:`registry.open_file`); a graph it carries (embedded, or an MXNet
    export's ``-symbol.json``) is validated by the engine, and formats that store tensors sorted by
    name list them in model order.

    >>> import tempfile, os
    >>> from modelsurgeon.core.engine import nn
    >>> net = nn.Dense(2, in_units=3); _ = net.initialize()
    >>> path = os.path.join(tempfile.mkdtemp(), "d.h5"); net.save_parameters(path)
    >>> with open_checkpoint(path) as ckpt:
    ...     ckpt.kind, [(i.key, i.shape) for i in ckpt.tensors.values()]
    ('structural', [('weight', (2, 3)), ('bias', (2,))])
    """
    reader = registry.open_file(path, options)
    try:
        if reader.graph is not None:
            graph_file = reader.metadata.get("graph_file") or reader.path
            try:
                symbol.Graph.from_json(reader.graph)
            except CheckpointError:
                raise
            except ModelSurgeonError as exc:
                if "graph_file" in reader.metadata:  # an MXNet export's -symbol.json: the graph is the point
                    raise CheckpointError(graph_file, str(exc)) from None
                # a graph carried in metadata that is not a usable graph: the tensors are still readable
                reader.graph = None
                reader.notes = [*reader.notes, f"the embedded graph is not a usable graph ({exc}); ignored"]
        if reader.format.startswith("safetensors") or reader.format.endswith("-sharded"):
            _reorder_by_model(reader)
    except BaseException:
        reader.close()
        raise
    return reader


def _reorder_by_model(reader: CheckpointReader) -> None:
    """List tensors in model order (formats like safetensors store them sorted by dtype and name)."""
    order: list[str] = []
    if reader.kind == STRUCTURAL and reader.architecture is not None:
        try:
            order = [key for key, _ in arch.build(reader.architecture).named_parameters()]
        except ModelSurgeonError:
            return
    elif reader.graph is not None:
        try:
            order = symbol.Graph.from_json(reader.graph).variables()
        except ModelSurgeonError:
            return
    rank = {key: i for i, key in enumerate(order)}
    if rank and set(reader.tensors) <= set(rank):
        reader.tensors = dict(sorted(reader.tensors.items(), key=lambda item: rank[item[0]]))


def read_graph_file(path: str) -> Graph:
    """Read and validate an MXNet ``-symbol.json`` file."""
    document = mxnet.read_graph_document(path)
    try:
        return symbol.Graph.from_json(document)
    except CheckpointError:
        raise
    except ModelSurgeonError as exc:
        raise CheckpointError(path, str(exc)) from None


# -- matching -----------------------------------------------------------------------------------

@dataclass
class MatchReport:
    """How a checkpoint's keys line up with a model's."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    dtype_mismatched: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched or self.dtype_mismatched)


def strip_role(key: str) -> str:
    return ROLE_PREFIX.sub("", key)


def _fits(model_shape: tuple[int, ...] | None, file_shape: tuple[int, ...]) -> bool:
    if model_shape is None:
        return True
    return len(model_shape) == len(file_shape) and all(
        m in (parameter.UNKNOWN, f) for m, f in zip(model_shape, file_shape))


def match(params: dict[str, Parameter], available: dict[str, tuple[tuple[int, ...], np.dtype]],
          cast_dtype: bool = True) -> MatchReport:
    """Compare model Parameters (by key) with file tensors (key -> (shape, dtype))."""
    report = MatchReport()
    keys_of: dict[int, list[str]] = {}
    for key, param in params.items():
        keys_of.setdefault(id(param), []).append(key)
    for key, param in params.items():
        if key not in available:
            if not any(alias in available for alias in keys_of[id(param)]):
                report.missing.append(key)
            continue
        shape, dtype = available[key]
        if not _fits(param.shape, shape):
            report.mismatched.append((key, tuple(shape), tuple(param.shape or ())))
        elif not cast_dtype and np.dtype(dtype) != param.dtype:
            report.dtype_mismatched.append((key, str(np.dtype(dtype)), str(param.dtype)))
    report.unexpected = [key for key in available if key not in params]
    for items in (report.missing, report.unexpected, report.mismatched, report.dtype_mismatched):
        items.sort()
    return report


def mismatch_error(report: MatchReport, source: str, model: str, allow_missing: bool,
                   ignore_extra: bool) -> MismatchError | None:
    """One MismatchError describing every problem the options do not relax (None if none)."""
    parts = []
    if report.missing and not allow_missing:
        parts.append(f"{len(report.missing)} missing: {brief_list(report.missing)} "
                     "(set allow_missing=True to ignore missing parameters)")
    if report.unexpected and not ignore_extra:
        parts.append(f"{len(report.unexpected)} unexpected: {brief_list(report.unexpected)} "
                     "(set ignore_extra=True to ignore extra parameters)")
    if report.mismatched:
        shown = [f"{k} file {f} vs model {m}" for k, f, m in report.mismatched]
        parts.append(f"{len(report.mismatched)} shape mismatch(es): {brief_list(shown)} "
                     "(no option relaxes this: replace the layer, e.g. with replace-head)")
    if report.dtype_mismatched:
        shown = [f"{k} file {f} vs model {m}" for k, f, m in report.dtype_mismatched]
        parts.append(f"{len(report.dtype_mismatched)} dtype mismatch(es): {brief_list(shown)} "
                     "(set cast_dtype=True to cast)")
    if not parts:
        return None
    error = MismatchError(f"cannot load {source} into {model}: " + "; ".join(parts))
    error.report = report  # type: ignore[attr-defined]
    return error


def _load(block: Block, available: dict[str, tuple[tuple[int, ...], np.dtype]],
          read: Callable[[str], np.ndarray], source: str, allow_missing: bool, ignore_extra: bool,
          cast_dtype: bool, dtype_source: str) -> None:
    params = block.collect_params()
    report = match(params, available, cast_dtype)
    error = mismatch_error(report, source, type(block).__name__, allow_missing, ignore_extra)
    if error is not None:
        raise error
    done: set[int] = set()
    for key, param in params.items():
        if key not in available or id(param) in done:
            continue
        param._load_init(read(key), cast_dtype=cast_dtype, dtype_source=dtype_source)
        done.add(id(param))


def load_arrays(block: Block, arrays: dict[str, Any], allow_missing: bool = False,
                ignore_extra: bool = False, cast_dtype: bool = False, dtype_source: str = "current",
                source: str = "param_dict") -> None:
    """Load in-memory arrays keyed by structural name (``arg:``/``aux:`` prefixes stripped)."""
    loaded = {strip_role(k): np.asarray(v) for k, v in arrays.items()}
    available = {k: (v.shape, v.dtype) for k, v in loaded.items()}
    _load(block, available, loaded.__getitem__, source, allow_missing, ignore_extra, cast_dtype, dtype_source)


def structural_view(reader: CheckpointReader) -> dict[str, str]:
    """structural key -> file key, from the structural names a named file records."""
    view: dict[str, str] = {}
    for info in reader.tensors.values():
        for name in info.structural:
            view.setdefault(name, info.key)
    return view


def load_parameters(block: Block, filename: str, allow_missing: bool = False, ignore_extra: bool = False,
                    cast_dtype: bool = False, dtype_source: str = "current") -> None:
    """Load any supported checkpoint into ``block`` by structural name, reading one tensor at a time.

    Name-keyed files load through the structural names they record; a SymbolBlock loads by
    its graph's variable names.
    """
    from .engine.symbol_block import SymbolBlock
    with open_checkpoint(filename) as reader:
        keys = {info.key: info.key for info in reader.tensors.values()}
        if reader.kind == NAMED and not isinstance(block, SymbolBlock):
            view = structural_view(reader)
            if view:
                keys = view
        available = {k: (reader.tensors[src].shape, reader.tensors[src].dtype) for k, src in keys.items()}
        _load(block, available, lambda k: reader.read(keys[k]), f"'{filename}'", allow_missing,
              ignore_extra, cast_dtype, dtype_source)


# -- saving -------------------------------------------------------------------------------------

def parameter_infos(block: Block, deduplicate: bool = False) -> tuple[list[TensorInfo], dict[str, Parameter]]:
    """TensorInfos for a structural checkpoint of ``block``; shared Parameters become aliases."""
    infos: list[TensorInfo] = []
    params: dict[str, Parameter] = {}
    first: dict[int, str] = {}
    for key, param in block.named_parameters():
        data = param._require_data()
        if id(param) in first:
            if not deduplicate:
                infos.append(TensorInfo(key, data.shape, data.dtype, alias_of=first[id(param)]))
            continue
        first[id(param)] = key
        params[key] = param
        infos.append(TensorInfo(key, data.shape, data.dtype))
    return infos, params


def save_parameters(block: Block, filename: str, deduplicate: bool = False,
                    metadata: dict[str, str] | None = None) -> None:
    """Write a structural checkpoint (and the architecture, when every layer is registered)."""
    infos, params = parameter_infos(block, deduplicate)
    write_h5(filename, STRUCTURAL, infos, lambda info: params[info.key].data(),
             architecture=arch.describe(block), metadata=metadata)


def named_infos(block: HybridBlock, graph: Graph, params: dict[str, Parameter]) -> list[TensorInfo]:
    """TensorInfos keyed by unique name, with role and the structural names of each tensor."""
    structural: dict[int, list[str]] = {}
    for key, param in block.named_parameters():
        structural.setdefault(id(param), []).append(key)
    aux = set(graph.aux_variables())
    infos = []
    for name in graph.variables():
        found = params.get(name)
        if found is None:
            continue
        param = found
        data = param._require_data()
        infos.append(TensorInfo(name, data.shape, data.dtype, "aux" if name in aux else "arg",
                                tuple(structural.get(id(param), ()))))
    return infos


def export_block(block: HybridBlock, path: str, epoch: int = 0, format: str = "h5") -> tuple[str, str | None]:
    """Trace ``block`` and write ``{path}-symbol.json`` plus name-keyed parameters.

    ``format='h5'`` writes ``{path}-{epoch:04d}.h5`` (embedding the graph);
    ``format='mxnet'`` writes MXNet's binary ``{path}-{epoch:04d}.params`` with ``arg:``/``aux:`` keys.
    """
    if format not in ("h5", "mxnet"):
        raise ModelSurgeonError(f"export format must be 'h5' or 'mxnet', not {format!r}")
    graph, params = block.trace()
    infos = named_infos(block, graph, params)
    fetch = lambda info: params[info.key].data()
    symbol_file = f"{path}-symbol.json"
    params_file = f"{path}-{epoch:04d}.params" if format == "mxnet" else f"{path}-{epoch:04d}.h5"
    with CommitGroup() as unit:  # the graph and its parameters appear together or not at all
        with atomic_output(symbol_file, later=unit) as tmp:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(graph.to_json())
        if infos and format == "mxnet":
            mxnet.write_params(params_file, infos, fetch, later=unit)
        elif infos:
            write_h5(params_file, NAMED, infos, fetch, graph=graph.to_dict(), architecture=arch.describe(block),
                     later=unit)
    return symbol_file, params_file if infos else None


# -- models from files --------------------------------------------------------------------------

def model_from_reader(reader: CheckpointReader) -> Block:
    """A runnable block from a checkpoint's embedded architecture or graph, weights loaded.

    Raises ModelSurgeonError when the file has neither (keys-only files cannot run).
    """
    from .engine.symbol_block import SymbolBlock
    if reader.kind == STRUCTURAL and reader.architecture is not None:
        block = arch.build(reader.architecture)
        params = block.collect_params()
        shared = {info.key: params[info.alias_of] for info in reader.tensors.values()
                  if info.alias_of is not None and info.alias_of in params}
        if shared:  # keys stored as one tensor are one Parameter again
            block.share_parameters(shared)
        specs = arch.input_specs(reader.architecture)
        if specs:
            object.__setattr__(block, "_input_specs", [(s, np.dtype(d)) for _, s, d in specs])
        keys = {info.key: info.key for info in reader.tensors.values()}
    elif reader.graph is not None:
        graph = symbol.Graph.from_json(reader.graph)
        variables = set(graph.variables())
        keys = {info.key: info.key for info in reader.tensors.values()}
        inputs = [name for name in graph.variables() if name not in keys]
        block = SymbolBlock(graph, inputs)
        specs = arch.input_specs(reader.architecture) if reader.architecture is not None else []
        if len(specs) == len(inputs) and specs:
            object.__setattr__(block, "_input_specs", [(s, np.dtype(d)) for _, s, d in specs])
        if not set(keys) <= variables:
            extra = sorted(set(keys) - variables)
            raise ModelSurgeonError(f"{reader.path}: tensors {brief_list(extra)} are not in the graph")
    else:
        hint = ("a Hugging Face model folder's architecture is transformers code, which modelsurgeon does not run: "
                "load it with transformers" if reader.format == "hf-folder" else
                "for an MXNet file give its -symbol.json (`symbol`)")
        raise ModelSurgeonError(f"{reader.path} holds only weights, no architecture or graph to run; {hint}")
    available = {k: (reader.tensors[v].shape, reader.tensors[v].dtype) for k, v in keys.items()}
    _load(block, available, lambda k: reader.read(keys[k]), f"'{reader.path}'", False, False, True, "saved")
    return block


def iter_arrays(reader: CheckpointReader, keys: Iterable[str] | None = None) -> Iterable[tuple[TensorInfo, np.ndarray]]:
    """Yield (info, array) one tensor at a time."""
    for key in keys if keys is not None else list(reader.tensors):
        yield reader.tensors[key], reader.read(key)


__all__ = ["MatchReport", "detect_format", "export_block", "iter_arrays", "load_arrays", "load_parameters",
           "match", "mismatch_error", "model_from_reader", "named_infos", "open_checkpoint",
           "parameter_infos", "read_graph_file", "save_parameters", "strip_role", "structural_view"]
