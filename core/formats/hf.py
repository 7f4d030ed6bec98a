"""Hugging Face model folders, read and written back so ``from_pretrained`` loads them.

A model folder (``save_pretrained``'s output, or a hub snapshot) holds ``config.json`` and the
weights in one of these layouts, tried in this order (as transformers does):

* ``model.safetensors``, one file;
* ``model.safetensors.index.json`` = ``{"metadata": {"total_size": bytes, ...}, "weight_map":
  {key: shard}}`` beside shards ``model-00001-of-00003.safetensors``...;
* ``pytorch_model.bin`` (a ``torch.save`` state dict), or ``pytorch_model.bin.index.json`` and
  its ``pytorch_model-0000i-of-0000N.bin`` shards;

and beside them the files that are not weights: tokenizer files, ``generation_config.json``,
``special_tokens_map.json``, a README...

Reading (:class:`HFFolderReader`) delegates to the single-file or sharded readers; keys are the
state dict's (``bert.encoder.layer.0.attention.self.query.weight``). ``config`` is ``config.json``
as a dict and ``layout`` how the weights are stored (which shard holds each key, the shard count
and the largest shard's size).

Writing (:func:`write_folder`) always writes safetensors (with ``{"format": "pt"}`` metadata, as
transformers requires) and keeps the input's layout: a single file stays one
``model.safetensors``; a sharded input keeps each tensor in the shard it came from (new tensors
go to their predecessor's shard), numbered ``model-0000i-of-0000N.safetensors`` with an index
whose ``metadata`` has ``total_size`` (tensor bytes) and ``total_parameters``. With
``max_shard_size`` tensors are packed greedily into shards of at most that many bytes (one shard
is written as ``model.safetensors``, as ``save_pretrained`` does). ``config.json`` is written
from the given config (see :func:`config_for_head` and :func:`config_for_vocab`, which update what
a surgery changes), and every other top-level file of the input folder is copied, except weights
in other formats (``tf_model.h5``, ``flax_model.msgpack``...), which would no longer match: those
are left out and named in the result's notes. Each file is written atomically; the index (or,
unsharded, ``config.json``) comes last, and a failure removes the files this call wrote. Writing
into the input folder is refused.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import CheckpointError, ModelSurgeonError, OutputExistsError, SurgeryError, WriteError
from .atomic import TEMP_PREFIX, CommitQueue, Committer, atomic_output
from .base import STRUCTURAL, CheckpointReader, TensorInfo
from .extents import Locate
from .safetensors_dtypes import BITS
from .safetensors_write import _target_code, write_safetensors
from .spec import Documents, Format, Progress

Fetch = Callable[[TensorInfo], np.ndarray]
Opener = Callable[[str], CheckpointReader]

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_NAME = "pytorch_model.bin"
TORCH_INDEX = "pytorch_model.bin.index.json"
#: Weights layouts in the order transformers looks for them.
LAYOUTS = ((SAFETENSORS_NAME, "safetensors", False), (SAFETENSORS_INDEX, "safetensors", True),
           (TORCH_NAME, "torch", False), (TORCH_INDEX, "torch", True))
#: Weights of other frameworks: not copied to an output (they would no longer match its weights).
OTHER_WEIGHTS = re.compile(r"^(tf_model.*\.h5|flax_model.*\.msgpack|model\.ckpt.*|.*\.onnx(_data)?|"
                           r"model-\d{5}-of-\d{5}\.safetensors|pytorch_model.*\.bin(\.index\.json)?|"
                           r"model.*\.safetensors(\.index\.json)?|tf_model.*\.h5\.index\.json|"
                           r"flax_model.*\.msgpack\.index\.json)$")
#: The largest config.json read.
MAX_CONFIG = 64 << 20
_SHARD_NAME = re.compile(r"^model-(\d{5})-of-(\d{5})\.safetensors$")


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]


def find_weights(directory: str | os.PathLike[str]) -> tuple[str, str, bool] | None:
    """(weights file path, ``'safetensors'`` or ``'torch'``, sharded) of a model folder; None if it has none."""
    directory = os.fspath(directory)
    for name, kind, sharded in LAYOUTS:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path, kind, sharded
    return None


def is_model_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a directory with ``config.json`` and weights in a layout of :data:`LAYOUTS`."""
    path = os.fspath(path)
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, CONFIG_NAME)) and find_weights(path) is not None


def read_config(path: str) -> dict[str, Any]:
    """A ``config.json`` as a dict, bounded in size; CheckpointError when it is not a JSON object."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise CheckpointError(path, "not a regular file")
        if st.st_size > MAX_CONFIG:
            raise CheckpointError(path, f"larger than {MAX_CONFIG} bytes")
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG + 1)
    except FileNotFoundError:
        raise CheckpointError(path, "no such file (a model folder needs config.json)") from None
    except OSError as exc:
        raise CheckpointError(path, f"cannot read: {_short(exc)}") from None
    try:
        config = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise CheckpointError(path, "not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(path, f"not valid JSON: {_short(exc)}") from None
    if not isinstance(config, dict):
        raise CheckpointError(path, "not a JSON object")
    return config


@dataclass
class Layout:
    """How a model folder stores its weights."""

    kind: str  #: 'safetensors' or 'torch'
    weights: str  #: the weights file or index, relative to the folder
    sharded: bool
    shard_of: dict[str, str] = field(default_factory=dict)  #: key -> shard file name (sharded only)
    shards: list[str] = field(default_factory=list)  #: shard file names, in order
    largest_shard: int = 0  #: tensor bytes of the largest shard (0 unsharded)
    index_metadata: dict[str, Any] = field(default_factory=dict)

    def files(self) -> set[str]:
        """The folder's weight files (index and shards, or the single file)."""
        return {self.weights, *self.shards}


def _open_default(kind: str) -> Opener:
    def opener(path: str) -> CheckpointReader:
        if kind == "safetensors":
            from .safetensors_io import SafetensorsReader
            return SafetensorsReader(path)
        from .torch_io import TorchReader
        return TorchReader(path)
    return opener


class HFFolderReader(CheckpointReader):
    """A Hugging Face model folder as one checkpoint (format ``hf-folder``; see the module docstring).

    ``opener`` opens one weights file (default: the safetensors or PyTorch reader); ``config``,
    ``layout`` and ``directory`` describe the folder. ``metadata`` is the weights' own (the first
    shard's) metadata.
    """

    format = "hf-folder"
    kind = STRUCTURAL

    def __init__(self, directory: str | os.PathLike[str], opener: Opener | None = None) -> None:
        self.directory = os.fspath(directory)
        self.path = self.directory
        self._inner: CheckpointReader | None = None
        if not os.path.isdir(self.directory):
            raise CheckpointError(self.directory, "not a directory")
        self.config = read_config(os.path.join(self.directory, CONFIG_NAME))
        found = find_weights(self.directory)
        if found is None:
            raise CheckpointError(self.directory, "a model folder without weights: no "
                                                  f"{', '.join(name for name, _, _ in LAYOUTS)}")
        weights, kind, sharded = found
        open_one = opener or _open_default(kind)
        if sharded:
            from .sharded import ShardedReader
            inner: CheckpointReader = ShardedReader(weights, open_one)
        else:
            inner = open_one(weights)
        self._inner = inner
        self.tensors = dict(inner.tensors)
        self.metadata = dict(inner.metadata)
        self.layout = Layout(kind, os.path.basename(weights), sharded)
        if sharded:
            sizes: dict[str, int] = {}
            for key, info in self.tensors.items():
                shard = info.extra.get("shard")
                if isinstance(shard, str):
                    self.layout.shard_of[key] = shard
                    sizes[shard] = sizes.get(shard, 0) + info.nbytes
            self.layout.shards = sorted(sizes)
            self.layout.largest_shard = max(sizes.values(), default=0)
            self.layout.index_metadata = dict(getattr(inner, "index_metadata", {}) or {})

    def source_files(self) -> list[str]:
        inner = self._inner.source_files() if self._inner is not None else []
        return [self.directory, os.path.join(self.directory, CONFIG_NAME), *inner]

    def read(self, key: str) -> np.ndarray:
        if self._inner is None:
            raise ModelSurgeonError(f"{self.path} is closed")
        return self._inner.read(key)

    def extent(self, key: str) -> Any:
        if self._inner is None:
            raise ModelSurgeonError(f"{self.path} is closed")
        return self._inner.extent(key)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None


# ---------------------------------------------------------------------------------------------
# config.json updates

def config_for_head(config: dict[str, Any], classes: int, kept: Sequence[int] = (),
                    labels: Sequence[str] | None = None) -> dict[str, Any]:
    """A copy of ``config`` describing a classification head of ``classes`` outputs.

    ``id2label``/``label2id`` are rebuilt: ``labels`` when given (one per class), else new class
    ``i`` keeps the old label of class ``kept[i]`` (``replace-head --keep-classes``) and the others
    are ``LABEL_i``, as transformers names them. ``num_labels`` (and ``_num_labels``) are updated
    where the config has them (transformers 5 derives the count from ``id2label``).

    >>> config = {"id2label": {"0": "cat", "1": "dog"}, "label2id": {"cat": 0, "dog": 1}}
    >>> config_for_head(config, 3, kept=[1])["id2label"]
    {'0': 'dog', '1': 'LABEL_1', '2': 'LABEL_2'}
    """
    if not isinstance(classes, int) or isinstance(classes, bool) or classes <= 0:
        raise SurgeryError(f"the number of classes must be a positive integer, not {classes!r}")
    old = config.get("id2label") if isinstance(config.get("id2label"), dict) else {}
    if labels is not None:
        names = [str(label) for label in labels]
        if len(names) != classes:
            raise SurgeryError(f"{len(names)} labels given for {classes} classes")
    else:
        kept_names: dict[int, str] = {}
        for new, source in enumerate(list(kept)[:classes]):
            label = old.get(str(source), old.get(source)) if old else None
            kept_names[new] = label if isinstance(label, str) else f"LABEL_{source}"
        taken = set(kept_names.values())
        names = []
        for i in range(classes):
            name = kept_names.get(i)
            if name is None:  # a new class: transformers' default name, made unique against kept ones
                name, suffix = f"LABEL_{i}", 1
                while name in taken:
                    name, suffix = f"LABEL_{i}_{suffix}", suffix + 1
                taken.add(name)
            names.append(name)
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise SurgeryError(f"the labels must be distinct; repeated: {', '.join(repeated[:5])}")
    result = json.loads(json.dumps(config))  # a deep copy of plain JSON data
    result["id2label"] = {str(i): name for i, name in enumerate(names)}
    result["label2id"] = {name: i for i, name in enumerate(names)}
    for key in ("num_labels", "_num_labels"):
        if key in result:
            result[key] = classes
    return result


def config_for_vocab(config: dict[str, Any], vocab_size: int) -> dict[str, Any]:
    """A copy of ``config`` with ``vocab_size`` (and a nested ``text_config``'s, where present) set."""
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size <= 0:
        raise SurgeryError(f"the vocabulary size must be a positive integer, not {vocab_size!r}")
    result = json.loads(json.dumps(config))
    result["vocab_size"] = vocab_size
    text = result.get("text_config")
    if isinstance(text, dict) and "vocab_size" in text:
        text["vocab_size"] = vocab_size
    return result


# ---------------------------------------------------------------------------------------------
# Writing

@dataclass
class FolderWrite:
    """What :func:`write_folder` wrote (paths, index or config last) and what it left out, and why."""

    written: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _size(info: TensorInfo) -> int:
    return math.prod(info.shape) * BITS[_target_code(info, True)] // 8


def _groups(infos: Sequence[TensorInfo], source: HFFolderReader | None, max_shard_size: int | None,
            sharded: bool | None) -> tuple[list[list[TensorInfo]], bool]:
    """Tensors per output file, and whether the output is sharded (see the module docstring)."""
    if max_shard_size is not None:
        groups: list[list[TensorInfo]] = []
        current: list[TensorInfo] = []
        used = 0
        for info in infos:
            size = _size(info)
            if current and used + size > max_shard_size:
                groups.append(current)
                current, used = [], 0
            current.append(info)
            used += size
        if current or not groups:
            groups.append(current)
        return groups, bool(sharded) or len(groups) > 1
    layout = source.layout if source is not None else None
    if layout is None or not layout.sharded or sharded is False:
        return [list(infos)], bool(sharded)
    order = {name: i for i, name in enumerate(layout.shards)}
    by_shard: dict[str, list[TensorInfo]] = {}
    previous = layout.shards[0] if layout.shards else "model"
    for info in infos:
        shard = info.extra.get("shard") if info.extra else None
        if not isinstance(shard, str) or shard not in order:
            shard = layout.shard_of.get(info.key, previous)
        by_shard.setdefault(shard, []).append(info)
        previous = shard
    return [by_shard[name] for name in sorted(by_shard, key=lambda n: order.get(n, len(order)))], True


def write_folder(directory: str | os.PathLike[str], infos: Sequence[TensorInfo], fetch: Fetch, *,
                 config: dict[str, Any] | None = None, source: HFFolderReader | None = None,
                 metadata: dict[str, str] | None = None, max_shard_size: int | None = None,
                 sharded: bool | None = None, progress: Progress | None = None, overwrite: bool = True,
                 locate: Locate | None = None) -> FolderWrite:
    """Write a Hugging Face model folder that ``from_pretrained`` loads (see the module docstring).

    ``config`` is written as ``config.json`` (default: ``source.config``; one of them is
    required). ``source`` is the input folder: its layout is kept and its other files copied.
    ``max_shard_size`` (bytes) packs tensors greedily instead; ``sharded=True`` writes an index even
    for one shard, ``False`` one file whatever the input. ``metadata`` goes into every
    safetensors file's header with ``format`` set to ``pt``. The folder is created if missing (its
    parent must exist). Without ``overwrite`` any existing target file is refused before writing.
    """
    target_dir = os.path.abspath(os.fspath(directory))
    if config is None:
        if source is None:
            raise ModelSurgeonError("a model folder needs a config.json: pass config or source")
        config = source.config
    if not isinstance(config, dict):
        raise ModelSurgeonError("config must be a dict (the model's config.json)")
    if max_shard_size is not None and (not isinstance(max_shard_size, int) or max_shard_size <= 0):
        raise ModelSurgeonError(f"max_shard_size must be a positive number of bytes, not {max_shard_size!r}")
    if source is not None and os.path.isdir(target_dir) and os.path.samefile(target_dir, source.directory):
        raise WriteError(f"{target_dir}: the output folder is the input folder; nothing was written "
                         "(choose another folder)")
    infos = list(infos)
    header_metadata = {**(metadata or {}), "format": "pt"}
    groups, is_sharded = _groups(infos, source, max_shard_size, sharded)
    count = len(groups)
    if is_sharded:
        names = [f"model-{i + 1:05d}-of-{count:05d}.safetensors" for i in range(count)]
    else:
        names = [SAFETENSORS_NAME]
    notes: list[str] = []
    copies = _side_files(source, notes) if source is not None else []
    targets = [*names, *(name for _, name in copies), CONFIG_NAME] + ([SAFETENSORS_INDEX] if is_sharded else [])
    created = _make_folder(target_dir)
    if not overwrite:
        for name in targets:
            if os.path.lexists(os.path.join(target_dir, name)):
                raise OutputExistsError(f"{os.path.join(target_dir, name)} already exists "
                                        "(use `overwrite` to overwrite it)")
    stale = _stale_weights(target_dir, set(targets)) if overwrite else []
    written = _write_files(target_dir, names, groups, fetch, config, copies, is_sharded, header_metadata, progress,
                           locate, created)
    for path in stale:  # the output is complete: weights of an earlier write would only mislead loaders
        with contextlib.suppress(OSError):
            os.unlink(path)
        notes.append(f"{os.path.basename(path)}: removed (weights of an earlier write to this folder)")
    return FolderWrite(written, notes)


def _write_files(target_dir: str, names: list[str], groups: list[list[TensorInfo]], fetch: Fetch,
                 config: dict[str, Any], copies: list[tuple[str, str]], is_sharded: bool,
                 header_metadata: dict[str, str], progress: Progress | None, locate: Locate | None,
                 created: bool) -> list[str]:
    """The weights (committed shard by shard), the copied side files, config.json and the index last;
    on any failure, everything this write put in place is removed again."""
    infos = [info for group in groups for info in group]
    total = sum(_size(info) for info in infos)
    done = [0]

    def step(shard_done: int, _: int) -> None:
        if progress is not None:
            progress(done[0] + shard_done, total)

    written: list[str] = []
    commits = CommitQueue()
    try:
        with commits:
            weight_map: dict[str, str] = {}
            for name, group in zip(names, groups, strict=True):
                path = os.path.join(target_dir, name)
                write_safetensors(path, group, fetch, metadata=header_metadata, progress=step,
                                  overwrite=True, locate=locate, later=commits)
                done[0] += sum(_size(info) for info in group)
                for info in group:
                    weight_map[info.key] = name
        written.extend(commits.committed)
        for source_path, name in copies:
            target = os.path.join(target_dir, name)
            with atomic_output(target) as tmp:
                shutil.copyfile(source_path, tmp)
            written.append(target)
        target = os.path.join(target_dir, CONFIG_NAME)
        with atomic_output(target) as tmp, open(tmp, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(config, indent=2, sort_keys=True) + "\n")
        written.append(target)
        if is_sharded:
            meta: dict[str, Any] = {"total_size": total,
                                    "total_parameters": sum(math.prod(i.shape) for i in infos)}
            index = {"metadata": meta, "weight_map": dict(sorted(weight_map.items()))}
            target = os.path.join(target_dir, SAFETENSORS_INDEX)
            with atomic_output(target) as tmp, open(tmp, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
            written.append(target)
    except BaseException:
        for path in [*commits.committed, *written]:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if created:
            with contextlib.suppress(OSError):
                os.rmdir(target_dir)
        raise
    return written


def _side_files(source: HFFolderReader, notes: list[str]) -> list[tuple[str, str]]:
    """(path, name) of the files beside the input's weights that the output folder gets a copy of."""
    copies: list[tuple[str, str]] = []
    skip = source.layout.files() | {CONFIG_NAME}
    for entry in sorted(os.scandir(source.directory), key=lambda e: e.name):
        if entry.name in skip or entry.name.startswith(TEMP_PREFIX):
            continue
        if not entry.is_file():  # follows symbolic links (hub snapshots link into blobs)
            if entry.is_dir():
                notes.append(f"{entry.name}/: folders beside the weights are not copied")
            continue
        if OTHER_WEIGHTS.match(entry.name):
            notes.append(f"{entry.name}: weights in another format, left out (they would no longer "
                         "match the written weights)")
            continue
        copies.append((entry.path, entry.name))
    return copies


def _make_folder(target_dir: str) -> bool:
    """Create the output folder if it is missing (its parent must exist); whether it was created."""
    if os.path.isdir(target_dir):
        return False
    parent = os.path.dirname(target_dir)
    if not os.path.isdir(parent):
        raise WriteError(f"{target_dir}: the directory {parent} does not exist")
    try:
        os.mkdir(target_dir)
    except OSError as exc:
        raise WriteError(f"{target_dir}: cannot create the folder: {_short(exc)}") from None
    return True


def _stale_weights(directory: str, keep: set[str]) -> list[str]:
    """Weight files of an earlier write in ``directory`` that this write does not replace."""
    stale: list[str] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if entry.name in keep or not entry.is_file(follow_symlinks=False):
                continue
            if entry.name in (SAFETENSORS_NAME, SAFETENSORS_INDEX) or _SHARD_NAME.match(entry.name):
                stale.append(entry.path)
    return sorted(stale)


# -- the format's description -------------------------------------------------------------------------

def write_folder_file(path: str, infos: Sequence[TensorInfo], fetch: Fetch, documents: Documents, *,
                      progress: Progress | None = None, overwrite: bool = True, locate: Locate | None = None,
                      later: Committer | None = None, max_shard_size: int | None = None) -> list[str]:
    """:func:`write_folder` for the registry: the input folder (``documents.origin``) gives the layout
    and the side files, ``documents.config`` the ``config.json``."""
    source = HFFolderReader(documents.origin) if documents.origin and is_model_dir(documents.origin) else None
    try:
        config = documents.config if documents.config is not None else (source.config if source else None)
        if config is None:
            raise SurgeryError(f"{path}: a Hugging Face model folder needs a config.json, and the input has none; "
                               "write a .safetensors file instead")
        result = write_folder(path, infos, fetch, config=config, source=source, max_shard_size=max_shard_size,
                              progress=progress, overwrite=overwrite, locate=locate)
    finally:
        if source is not None:
            source.close()
    return result.notes


FORMAT = Format("hf", "Hugging Face model folder", (), None, HFFolderReader, write_folder_file,
                reports=("hf-folder",), directory=True)
