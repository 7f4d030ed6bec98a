"""The format registry: every checkpoint format, described once.

Each format module exports one :class:`Format` (name, extensions, how to recognise its bytes, how to
open a reader, how to write, whether it shards); :data:`FORMATS` lists them in detection order.
Detection, opening, choosing a writer from an output path or a ``format`` name, the help texts and
the lists of formats in errors all come from that list, so adding a format means one module and one
line here.

>>> [f.name for f in writable()]
['h5', 'mxnet', 'npz', 'safetensors']
>>> output_format("model.safetensors").name
'safetensors'
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import CheckpointError, OutputFormatError, ParameterError
from . import h5, hf, keras3, mxnet, onnx_edit, safetensors_io, sharded, torch_io
from .base import CheckpointReader, input_errors
from .spec import Format, Probe

#: Bytes read from every file for detection.
HEAD_BYTES = 64
#: Index files end so; ``x.safetensors.index.json`` is a sharded safetensors checkpoint.
INDEX_SUFFIX = ".index.json"


#: Every format, in detection order (the first whose ``sniff`` accepts a file reads it).
FORMATS: list[Format] = [h5.FORMAT, keras3.FORMAT, mxnet.FORMAT, torch_io.FORMAT, keras3.ARCHIVE_FORMAT,
                         mxnet.NPZ_FORMAT, safetensors_io.FORMAT, sharded.FORMAT, hf.FORMAT, onnx_edit.FORMAT]


def formats() -> list[Format]:
    """Every registered format, in detection order."""
    return FORMATS


def get(name: str) -> Format:
    """The format called ``name``; an error listing the names otherwise."""
    for fmt in formats():
        if fmt.name == name:
            return fmt
    raise OutputFormatError(f"unknown format {name!r}; formats: {', '.join(f.name for f in formats())}")


def format_of(reader: CheckpointReader) -> Format | None:
    """The registered format an open reader's file is in (a sharded checkpoint: its shards')."""
    name = reader.format.removesuffix("-sharded")
    return next((f for f in formats() if name in f.reports), None)


def writable() -> list[Format]:
    """The formats that can be written, in registry order."""
    return [f for f in formats() if f.write is not None]


def writable_names() -> str:
    return ", ".join(f"{f.name} ({', '.join(f.extensions) or 'a folder'})" for f in writable())


def detect(path: str) -> Format:
    """The format of the file at ``path``, from its bytes (never its name alone); a folder is a
    Hugging Face model folder when it holds a ``config.json`` and weights."""
    if os.path.isdir(path):
        if hf.is_model_dir(path):
            return hf.FORMAT
        raise CheckpointError(path, "is a directory, not a checkpoint file (a model folder holds config.json and "
                                    "model.safetensors, or an index of shards)" + _files_inside(path))
    with input_errors(path):
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
            size = os.fstat(handle.fileno()).st_size
    probe = Probe(path, head, size)
    for fmt in formats():
        if fmt.sniff is not None and fmt.sniff(probe):
            return fmt
    if size == 0:
        raise CheckpointError(path, "file is empty")
    readable = ", ".join(f.title for f in formats() if f.sniff is not None)
    raise CheckpointError(path, f"not a checkpoint format modelsurgeon reads ({readable})")


def _files_inside(folder: str) -> str:
    """``; name the file to read: folder/model.safetensors`` for a folder holding checkpoints; else ''."""
    suffixes = tuple({ext for f in formats() for ext in f.extensions} | {INDEX_SUFFIX})
    try:
        names = sorted(entry.name for entry in os.scandir(folder)
                       if entry.name.lower().endswith(suffixes) and entry.is_file())
    except OSError:
        return ""
    indexes = [name for name in names if name.endswith(INDEX_SUFFIX)]
    chosen = indexes or names  # a folder of shards: the index reads them all
    if not chosen:
        return ""
    shown = ", ".join(os.path.join(folder, name) for name in chosen[:3]) + (", ..." if len(chosen) > 3 else "")
    return f"; name the file to read: {shown}"


def open_file(path: str | os.PathLike[str], options: Mapping[str, Any] | None = None) -> CheckpointReader:
    """Open the checkpoint at ``path`` with the reader of its detected format.

    ``options`` go to that reader (``{"member": "model"}`` chooses an entry of a PyTorch
    checkpoint); a format whose reader does not take one is a :class:`ParameterError` naming it.
    """
    path = os.fspath(path)
    fmt = detect(path)
    options = {k: v for k, v in (options or {}).items() if v is not None}
    reader = fmt.open if fmt.open_members is None else None
    accepted = _options_of(reader) if reader is not None else set()
    for name in options:
        if name not in accepted:
            takers = [f.title for f in formats() if f.open is not None and f.open_members is None
                      and name in _options_of(f.open)]
            raise ParameterError(name, f"{path} is a {fmt.title}; `{name}` applies to "
                                       f"{' and '.join(takers) or 'no format'} files only")
    if fmt.open_members is not None:
        return fmt.open_members(path, _open_member)
    assert reader is not None  # a format that sniffs can open
    return reader(path, **options)


def _options_of(reader: Callable[..., CheckpointReader]) -> set[str]:
    """The options a reader takes: its parameters after the path."""
    return set(list(inspect.signature(reader).parameters)[1:])


def _open_member(path: str) -> CheckpointReader:
    fmt = detect(path)
    if fmt.open_members is not None or fmt.open is None:
        raise CheckpointError(path, f"a shard cannot itself be a {fmt.title}")
    return fmt.open(path)


@dataclass(frozen=True)
class OutputChoice:
    """Where and how to write: the format, and whether the path names a sharded index."""

    format: Format
    sharded: bool


def output_format(path: str, requested: str | None = None, default: str | None = None) -> Format:
    """The format to write ``path`` in (see :func:`choose_output`)."""
    return choose_output(path, requested, default).format


def choose_output(path: str, requested: str | None = None, default: str | None = None,
                  sharded: bool = False) -> OutputChoice:
    """The writable format for an output: ``requested`` by name, else from ``path``'s extension, else
    ``default`` (the input's format) where that can be written; a directory or a ``.index.json``
    path is a sharded output. Anything else is an :class:`OutputFormatError` naming the formats
    that can be written, raised before any work.
    """
    lowered = path.lower()
    is_dir = path.endswith(("/", os.sep)) or os.path.isdir(path)
    if lowered.endswith(INDEX_SUFFIX):
        lowered, sharded = lowered[: -len(INDEX_SUFFIX)], True
    elif is_dir and (get(requested) if requested else get(default) if default else None) is hf.FORMAT:
        return OutputChoice(hf.FORMAT, False)  # a folder in the input folder's layout
    elif is_dir:
        sharded = True
    fmt: Format | None
    if requested is not None:
        fmt = get(requested)
    else:
        fmt = _by_extension(lowered) if not is_dir else None
        if fmt is None and (is_dir or lowered.endswith(".json")) and default is not None:
            fmt = get(default)
        if fmt is None and default is not None and not os.path.splitext(lowered)[1]:
            fmt = get(default)
        if fmt is None:
            raise OutputFormatError(f"cannot tell the output format of {path!r} from its extension; "
                                    f"use one of: {writable_names()} (or `format`)")
    if fmt.write is None:
        raise OutputFormatError(f"cannot write {fmt.title} ({fmt.cannot_write}); writable formats: {writable_names()}")
    if sharded and not fmt.shards:
        raise OutputFormatError(f"{fmt.title} cannot be sharded; formats that shard: "
                                f"{', '.join(f.name for f in writable() if f.shards)}")
    return OutputChoice(fmt, sharded)


def _by_extension(lowered: str) -> Format | None:
    """The format whose longest extension ends ``lowered`` (``.weights.h5`` before ``.h5``)."""
    best: tuple[int, Format] | None = None
    for fmt in formats():
        for ext in fmt.extensions:
            if lowered.endswith(ext) and (best is None or len(ext) > best[0]):
                best = (len(ext), fmt)
    return best[1] if best else None
