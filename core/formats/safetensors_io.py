"""safetensors files, single and sharded: header-only reading and a streaming, atomic writer.

Layout (``safetensors`` README, "Format")::

    [u64 little-endian N][N bytes of UTF-8 JSON header, right-padded with spaces][tensor bytes]

The header maps each tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}``
(offsets relative to the byte buffer) and may hold ``"__metadata__": {str: str}``.

Reading. :class:`SafetensorsReader` validates the header through the ``safetensors`` package
(``safe_open``, which checks that the offsets are contiguous, the sizes agree and the file is
exactly covered) after its own checks (regular file, header length, UTF-8, JSON, duplicate
names), and reads nothing else until :meth:`~SafetensorsReader.read` is asked for one tensor.
Keys are listed in file (offset) order. Every problem is one :class:`CheckpointError`.
Tensor bytes are then read by us with plain positioned reads from the file we validated (never
through a memory map), so a file truncated after it was opened gives an error, not a crash.

Dtypes. ``F64 F32 F16 I64 U64 I32 U32 I16 U16 I8 U8 BOOL C64`` map to the numpy dtype of the
same name. numpy has no bfloat16 or 8-bit floats, so ``BF16`` and the 8-bit float types
``F8_E4M3 F8_E5M2 F8_E4M3FNUZ F8_E5M2FNUZ F8_E8M0`` are **read as float32** (an exact, lossless
upcast: every value of those types is a float32): their :class:`TensorInfo` says
``dtype=float32`` (what :meth:`read` returns) and ``extra["source_dtype"]`` holds the stored
code (``"BF16"``...), so ``inspect`` can show the truth and sizes can be computed from it.
The packed sub-byte types ``F4 F6_E2M3 F6_E3M2`` are refused when the file is opened.

Writing. :func:`write_safetensors` builds the header from the infos alone, then fetches and
writes one tensor at a time (never the whole checkpoint in memory), into a temporary file that
is renamed over the target. Its output is byte-identical to ``safetensors.numpy.save_file``
for the same tensors: tensors sorted by dtype (the package's dtype order, widest first) then
name, contiguous offsets, compact JSON, ``__metadata__`` first, header padded with spaces to a
multiple of 8. Three differences, all where the package (0.8) cannot be matched or is wrong:
it writes a metadata dict of several keys in Rust ``HashMap`` order, which changes from run to
run (we sort the keys, so our files are reproducible; one key or ``{}`` is byte-identical); with
no tensors and ``metadata={}`` it writes the invalid header ``{},"__metadata__":{}}``; and it
copies a non-C-contiguous array's memory as is (a Fortran-ordered array comes out transposed),
where we write C order.
A float32 tensor whose info carries ``extra["source_dtype"]`` is written back in that dtype
unless ``keep_source_dtype=False``: ``BF16`` by round-to-nearest-even (exact for values that
came from a BF16 file); the 8-bit float types only when every value is exactly representable,
otherwise the write is refused with a message saying so (nothing is written).

Sharded checkpoints (Hugging Face layout): ``model.safetensors.index.json`` =
``{"metadata": {"total_size": N, ...}, "weight_map": {tensor: shard file}}`` beside shards
``model-00001-of-00003.safetensors``... are read and written by :mod:`.sharded`, as any format's shards.
"""


from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import CheckpointError, ModelSurgeonError
from .atomic import Committer
from .base import MAX_TENSORS, STRUCTURAL, CheckpointReader, TensorInfo, without_aliases
from .extents import Extent, Locate, file_id
from .safetensors_dtypes import (
    _FLOAT32,
    BITS,
    MAX_DIMS,
    MAX_HEADER_SIZE,
    MAX_INDEX_SIZE,
    MAX_SPAN,
    NUMPY_DTYPES,
    REFUSED,
    UPCAST,
    bf16_to_f32,
    f8_to_f32,
)
from .safetensors_write import write_safetensors
from .spec import Documents, Format, Probe

Fetch = Callable[[TensorInfo], np.ndarray]
Progress = Callable[[int, int], None]


# ---------------------------------------------------------------------------------------------
# Reading

def sniff(head: bytes, file_size: int) -> bool:
    """Whether a file that starts with ``head`` (at least 9 bytes) looks like safetensors."""
    if len(head) < 9 or file_size < 10:
        return False
    length = int.from_bytes(head[:8], "little")
    return 2 <= length <= MAX_HEADER_SIZE and 8 + length <= file_size and head[8:9] == b"{"


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)  # in C: a header of 200,000 tensors calls this 200,001 times
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Duplicate(key)
            seen.add(key)
    return result


class _Duplicate(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _regular_file(path: str) -> os.stat_result:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise CheckpointError(path, "no such file") from None
    except PermissionError:
        raise CheckpointError(path, "permission denied") from None
    except OSError as exc:
        raise CheckpointError(path, f"cannot open: {_short(exc)}") from None
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(path, "not a regular file")
    return st


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_exact(handle: Any, count: int) -> bytes:
    """Up to ``count`` bytes: fewer only at the end of the file."""
    chunks, got = [], 0
    while got < count:
        chunk = handle.read(count - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_header(path: str, handle: Any, file_size: int) -> tuple[int, dict[str, Any]]:
    """Read and parse the header with our own checks; returns (header length N, header dict).

    These checks come before the package's, so the commonest damage gets a plain message.
    """
    if file_size < 8:
        raise CheckpointError(path, f"too small to be a safetensors file ({file_size} bytes)")
    head = _read_exact(handle, 8)
    if len(head) != 8:
        raise CheckpointError(path, "truncated file: cannot read the header length")
    length = int.from_bytes(head, "little")
    if length > MAX_HEADER_SIZE:
        raise CheckpointError(path, f"header length {length} is larger than the safetensors limit "
                                    f"of {MAX_HEADER_SIZE} bytes (not a safetensors file?)")
    if length < 2:
        raise CheckpointError(path, f"header length {length} is too small (not a safetensors file?)")
    if 8 + length > file_size:
        raise CheckpointError(path, f"header length {length} runs past the end of the file "
                                    f"({file_size} bytes): truncated, or not a safetensors file")
    raw = _read_exact(handle, length)
    if len(raw) != length:
        raise CheckpointError(path, "truncated file: the header is incomplete")
    if raw[:1] != b"{":
        raise CheckpointError(path, "the header does not start with '{' (not a safetensors file?)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(path, "the header is not UTF-8 text") from None
    if raw.count(b"data_offsets") > MAX_TENSORS:  # cheap, before parsing builds millions of objects
        raise CheckpointError(path, f"the header lists more than {MAX_TENSORS} tensors, more than "
                                    "modelsurgeon reads: refused")
    with no_gc():
        return length, _parse_header(path, text, file_size - 8 - length)


def _parse_header(path: str, text: str, data_size: int) -> dict[str, Any]:
    try:
        header = json.loads(text, object_pairs_hook=_reject_duplicates)
    except _Duplicate as dup:
        raise CheckpointError(path, f"the header lists {dup.key!r} twice") from None
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(path, f"the header is not valid JSON: {_short(exc)}") from None
    if not isinstance(header, dict):
        raise CheckpointError(path, "the header is not a JSON object")
    meta = header.get("__metadata__")
    if meta is not None and (not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values())):
        raise CheckpointError(path, "__metadata__ must map strings to strings")
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict):
            raise CheckpointError(path, f"header entry {name!r} is not an object")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in BITS:
            raise CheckpointError(path, f"tensor {name!r} has unknown dtype {dtype!r}")
        # (type() is int, not isinstance: True and False are not dimensions; map/min run in C)
        if type(shape) is not list or (shape and ({*map(type, shape)} != {int} or min(shape) < 0)):
            raise CheckpointError(path, f"tensor {name!r} has a malformed shape {shape!r}"[:300])
        if len(shape) > MAX_DIMS:
            raise CheckpointError(path, f"tensor {name!r} has {len(shape)} dimensions; numpy arrays have at "
                                        f"most {MAX_DIMS}"[:300])
        if 0 in shape and math.prod(d for d in shape if d) > MAX_SPAN:
            # no data to check it against: numpy (and every copy as float64) would fail on the shape
            raise CheckpointError(path, f"tensor {name!r} has shape {shape} (no elements, but its other "
                                        f"dimensions multiply to more than {MAX_SPAN}, which numpy cannot "
                                        "represent)"[:300])
        if (type(offsets) is not list or len(offsets) != 2 or type(offsets[0]) is not int
                or type(offsets[1]) is not int or not 0 <= offsets[0] <= offsets[1]):
            raise CheckpointError(path, f"tensor {name!r} has malformed data_offsets {offsets!r}"[:300])
    _check_coverage(path, header, data_size)
    return header


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Python's cycle collector off while a big header becomes objects: the JSON holds no cycles,
    and with it on, building 200,000 entries spent 40% of its time in collections."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _check_coverage(path: str, header: dict[str, Any], data_size: int) -> None:
    """Tensors must tile the data exactly, as the package requires; checked here in offset order so
    the message names the same tensor every time (the package's order is a hash map's)."""
    position = 0
    for begin, end, name in sorted((entry["data_offsets"][0], entry["data_offsets"][1], name)
                                   for name, entry in header.items() if name != "__metadata__"):
        if begin != position:
            raise CheckpointError(path, f"invalid data_offsets: tensor {name!r} starts at byte {begin} of the data, "
                                        f"where the previous tensor ends at byte {position} (tensors must cover the "
                                        "data exactly, without gaps or overlaps)"[:300])
        position = end
    if position != data_size:
        raise CheckpointError(path, f"invalid data_offsets: the tensors cover {position} bytes of data but the file "
                                    f"holds {data_size}")


def _open_package(path: str) -> Any:
    """``safe_open`` the file to validate it (header only; pread rather than mmap); errors wrapped."""
    from safetensors import safe_open  # imported here: keeps the module importable without it

    try:
        try:
            return safe_open(path, framework="numpy", backend="pread")
        except TypeError:  # safetensors < 0.7 has no backend argument
            return safe_open(path, framework="numpy")
    except Exception as exc:  # SafetensorError, OSError...: the package's own classes vary
        raise CheckpointError(path, f"invalid safetensors file: {_short(exc)}") from None


def _close_package(handle: Any) -> None:
    with contextlib.suppress(Exception):
        handle.__exit__(None, None, None)


class SafetensorsReader(CheckpointReader):
    """One ``.safetensors`` file: header read and validated on open, tensors read on demand.

    ``tensors`` is in file (offset) order. ``metadata`` is the header's ``__metadata__`` (or
    ``{}``). ``TensorInfo.extra`` holds ``data_offsets`` and, for upcast types,
    ``source_dtype``.
    """

    format = "safetensors"
    kind = STRUCTURAL

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._file: Any = None
        st = _regular_file(self.path)
        try:
            # unbuffered: reads see the file; kept open until close()
            self._file = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise CheckpointError(self.path, f"cannot open: {_short(exc)}") from None
        try:
            with no_gc():
                self._load(st)
        except BaseException:
            self.close()
            raise

    def _load(self, st: os.stat_result) -> None:
        path = self.path
        opened = os.fstat(self._file.fileno())
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            raise CheckpointError(path, "the file changed while it was being opened")
        length, header = read_header(path, self._file, opened.st_size)
        self._data_start = 8 + length
        self._file_id = file_id(opened)
        package = _open_package(path)  # the package's own validation of the whole layout
        try:
            metadata = package.metadata()
            # One call, not one per tensor (200,000 empty tensors took seconds per-tensor): the two
            # parsers must agree on the names; shapes and dtypes were checked by both already.
            names = set(package.keys())
        except Exception as exc:
            raise CheckpointError(path, f"invalid safetensors file: {_short(exc)}") from None
        finally:
            _close_package(package)
        if names != header.keys() - {"__metadata__"}:
            odd = sorted(names ^ (header.keys() - {"__metadata__"}))[:1]
            raise CheckpointError(path, f"tensor {odd[0]!r}: the header and the safetensors package disagree "
                                        "about the tensors it lists"[:300])
        after = os.stat(path)
        if (after.st_dev, after.st_ino) != (opened.st_dev, opened.st_ino):
            raise CheckpointError(path, "the file changed while it was being opened")
        self.metadata = dict(metadata or {})
        entries = [(name, entry) for name, entry in header.items() if name != "__metadata__"]
        # File order: by offsets (stable, so empty tensors at one offset keep header order).
        entries.sort(key=lambda item: item[1]["data_offsets"])
        self.tensors = {}
        self._codes: dict[str, str] = {}
        self._offsets: dict[str, tuple[int, int]] = {}
        for name, entry in entries:
            code, shape = entry["dtype"], tuple(entry["shape"])
            begin, end = entry["data_offsets"]
            if code in REFUSED:
                raise CheckpointError(path, f"tensor {name!r} has dtype {code} (packed sub-byte floats), "
                                            "which modelsurgeon cannot read")
            extra: dict[str, Any] = {"data_offsets": (begin, end)}
            if code in UPCAST:
                dtype = _FLOAT32
                extra["source_dtype"] = code
            else:
                dtype = NUMPY_DTYPES[code]
            if (end - begin) * 8 != math.prod(shape) * BITS[code]:
                raise CheckpointError(path, f"tensor {name!r}: data_offsets do not match its shape and dtype")
            self.tensors[name] = TensorInfo(name, shape, dtype, extra=extra)
            self._codes[name] = code
            self._offsets[name] = (begin, end)

    def read(self, key: str) -> np.ndarray:
        if key not in self.tensors:
            raise ModelSurgeonError(f"no tensor '{key}' in {self.path}")
        if self._file is None:
            raise ModelSurgeonError(f"{self.path} is closed")
        code = self._codes[key]
        info = self.tensors[key]
        if code == "BF16":
            values = bf16_to_f32(self._read_raw(key, np.dtype("<u2")))
        elif code in UPCAST:
            values = f8_to_f32(self._read_raw(key, np.dtype("u1")), code)
        elif code == "BOOL":
            values = self._read_raw(key, np.dtype("u1")) != 0  # any non-zero byte is True
        else:
            values = self._read_raw(key, NUMPY_DTYPES[code])
        return values.reshape(info.shape)

    def extent(self, key: str) -> Extent | None:
        if key not in self.tensors:
            raise ModelSurgeonError(f"no tensor '{key}' in {self.path}")
        code = self._codes[key]
        if code == "BF16" or code in UPCAST or code == "BOOL":
            return None  # widened or normalised on reading
        begin, end = self._offsets[key]
        return Extent(self.path, self._data_start + begin, end - begin, NUMPY_DTYPES[code], self._file_id)

    def _read_raw(self, key: str, dtype: np.dtype) -> np.ndarray:
        begin, end = self._offsets[key]
        out = np.empty((end - begin) // dtype.itemsize, dtype)
        view = memoryview(out).cast("B")  # type: ignore[arg-type]  # ndarray is a Buffer
        done = 0
        try:
            self._file.seek(self._data_start + begin)
            while done < len(view):
                count = self._file.readinto(view[done:])
                if not count:
                    break
                done += count
        except OSError as exc:
            raise CheckpointError(self.path, f"cannot read tensor {key!r}: {_short(exc)}") from None
        if done != len(view):
            raise CheckpointError(self.path, f"cannot read tensor {key!r}: the file is truncated "
                                             "(it changed after it was opened?)")
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _safe_member(index_path: str, directory: str, name: Any) -> str:
    """The path of shard ``name`` of an index, refusing anything that leaves ``directory``."""
    if not isinstance(name, str) or not name:
        raise CheckpointError(index_path, f"weight_map has a shard name that is not a file name: {name!r}")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in the JSON): no file can have that name
        raise CheckpointError(index_path, f"shard {name!r} is not a valid Unicode file name "
                                          "(it holds a lone surrogate)") from None
    if "\x00" in name or "\\" in name:
        raise CheckpointError(index_path, f"shard {name!r}: backslashes and NUL are refused in shard names")
    if os.path.isabs(name) or name.startswith("/"):
        raise CheckpointError(index_path, f"shard {name!r} is an absolute path; shards must lie "
                                          "beside the index")
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise CheckpointError(index_path, f"shard {name!r} leaves the index's directory "
                                          "(no '..', '.' or empty parts allowed)")
    full = os.path.join(directory, *parts)
    real_dir = os.path.realpath(directory)
    real = os.path.realpath(full)
    if os.path.commonpath([real_dir, real]) != real_dir:
        raise CheckpointError(index_path, f"shard {name!r} is a symbolic link out of the index's directory")
    if not os.path.exists(full):
        raise CheckpointError(index_path, f"shard {name!r} is missing")
    if not os.path.isfile(full):
        raise CheckpointError(index_path, f"shard {name!r} is not a regular file")
    return full


def read_index(path: str) -> dict[str, Any]:
    """Load and check the shape of a sharded checkpoint's index JSON."""
    st = _regular_file(path)
    if st.st_size > MAX_INDEX_SIZE:
        raise CheckpointError(path, f"index file is larger than {MAX_INDEX_SIZE} bytes")
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise CheckpointError(path, f"cannot read: {_short(exc)}") from None
    try:
        index = json.loads(raw.decode("utf-8"), object_pairs_hook=_reject_duplicates)
    except _Duplicate as dup:
        raise CheckpointError(path, f"the index lists {dup.key!r} twice") from None
    except UnicodeDecodeError:
        raise CheckpointError(path, "the index is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(path, f"the index is not valid JSON: {_short(exc)}") from None
    if not isinstance(index, dict) or not isinstance(index.get("weight_map"), dict):
        raise CheckpointError(path, "not a sharded checkpoint index: no 'weight_map' object")
    meta = index.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise CheckpointError(path, "the index's 'metadata' is not an object")
    return index


def looks_like_index(path: str | os.PathLike[str], shard_suffix: str | None = None) -> bool:
    """Whether ``path`` is a sharded-checkpoint index: a JSON object (at most :data:`MAX_INDEX_SIZE`
    bytes) with a non-empty ``weight_map`` of shard file names (ending in ``shard_suffix`` if given).

    The whole document is parsed, so a ``weight_map`` after 64 KiB of ``metadata`` is found; a file
    whose first non-blank byte is not ``{`` is rejected after reading one block.
    """
    path = os.fspath(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # (opening a FIFO would block)
            return False
        with open(path, "rb") as handle:
            if handle.read(4096).lstrip()[:1] != b"{":
                return False
        index = read_index(path)
    except (CheckpointError, OSError, ValueError):
        return False
    shards = set(index["weight_map"].values())
    return bool(shards) and all(isinstance(s, str) and (shard_suffix is None or s.endswith(shard_suffix))
                                for s in shards)




# ---------------------------------------------------------------------------------------------
# The format's description: our documents travel in ``__metadata__``

#: keys in safetensors ``__metadata__`` that carry our documents losslessly
ST_ARCHITECTURE = "modelsurgeon.architecture"
ST_GRAPH = "modelsurgeon.graph"
ST_KIND = "modelsurgeon.kind"


def _sniff(probe: Probe) -> bool:
    return sniff(probe.head, probe.size)


def open_checkpoint(path: str) -> SafetensorsReader:
    """A safetensors file, with our architecture, graph and key scheme restored from its metadata."""
    reader = SafetensorsReader(path)
    try:
        metadata = dict(reader.metadata)
        kind = metadata.pop(ST_KIND, None)
        if kind in ("structural", "named"):
            reader.kind = kind
        for key, attribute in ((ST_ARCHITECTURE, "architecture"), (ST_GRAPH, "graph")):
            if key in metadata:
                try:
                    setattr(reader, attribute, json.loads(metadata.pop(key)))
                except (ValueError, RecursionError):
                    raise CheckpointError(reader.path, f"metadata {key} is not valid JSON") from None
        reader.metadata = metadata
    except BaseException:
        reader.close()
        raise
    return reader


def write_checkpoint(path: str, infos: Sequence[TensorInfo], fetch: Fetch, documents: Documents, *,
                     progress: Progress | None = None, overwrite: bool = True, locate: Locate | None = None,
                     later: Committer | None = None) -> list[str]:
    notes: list[str] = []
    flat = without_aliases(infos, notes)
    metadata = dict(documents.metadata)
    if documents.architecture is not None:
        metadata[ST_ARCHITECTURE] = json.dumps(documents.architecture, separators=(",", ":"))
    if documents.graph is not None:
        metadata[ST_GRAPH] = json.dumps(documents.graph, separators=(",", ":"))
    metadata[ST_KIND] = documents.kind
    if any(i.role for i in flat) or any(i.structural for i in flat):
        notes.append("safetensors has no per-tensor roles or structural names; kept only the keys")
    write_safetensors(path, flat, fetch, metadata=metadata, progress=progress, overwrite=overwrite, locate=locate,
                      later=later)
    return notes


FORMAT = Format("safetensors", "safetensors", (".safetensors",), _sniff, open_checkpoint, write_checkpoint,
                shards=True, reports=("safetensors",))
