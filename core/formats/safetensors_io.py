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
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import CheckpointError, ModelSurgeonError
from .atomic import CommitQueue, atomic_output
from .base import MAX_TENSORS, STRUCTURAL, CheckpointReader, TensorInfo, without_aliases
from .extents import Extent, ExtentCopier, Locate, file_id, usable
from .spec import Documents, Format, Probe

Fetch = Callable[[TensorInfo], np.ndarray]
Progress = Callable[[int, int], None]

#: The safetensors format's limit on the header length (and ours).
MAX_HEADER_SIZE = 100_000_000
#: numpy's limit on the number of dimensions (NPY_MAXDIMS); the largest product of a zero-element
#: tensor's other dimensions (numpy refuses a shape whose bytes, as 8-byte values, overflow an index).
MAX_DIMS = 64
MAX_SPAN = (2**63 - 1) // 8
#: The index file of a sharded checkpoint, by Hugging Face's convention.
INDEX_NAME = "model.safetensors.index.json"
#: An index file larger than this is refused (a real one is a few MB).
MAX_INDEX_SIZE = 256 << 20

#: The package's dtype enum, in its order: the writer sorts tensors by this, descending.
DTYPE_ORDER = ("BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
               "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32",
               "C64", "F64", "I64", "U64")
_RANK = {code: rank for rank, code in enumerate(DTYPE_ORDER)}
#: Bits per element of every dtype code.
BITS = {"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8,
        "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
        "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64}
#: Codes read as the numpy dtype of the same meaning (stored little-endian).
NUMPY_DTYPES = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
                "I64": np.dtype("<i8"), "U64": np.dtype("<u8"), "I32": np.dtype("<i4"),
                "U32": np.dtype("<u4"), "I16": np.dtype("<i2"), "U16": np.dtype("<u2"),
                "I8": np.dtype("i1"), "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
                "C64": np.dtype("<c8")}
_CODE_OF = {(dt.kind, dt.itemsize): code for code, dt in NUMPY_DTYPES.items()}
#: Codes read as float32 (exact upcast); kept in ``TensorInfo.extra["source_dtype"]``.
UPCAST = ("BF16", "F8_E4M3", "F8_E5M2", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "F8_E8M0")
#: Codes refused outright.
REFUSED = ("F4", "F6_E2M3", "F6_E3M2")
_FLOAT32 = np.dtype("<f4")


# ---------------------------------------------------------------------------------------------
# bfloat16 and 8-bit floats <-> float32

def bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) to float32: exact (bf16 is float32's top half)."""
    return (raw.astype("<u4") << 16).view(_FLOAT32)


def f32_to_bf16(values: np.ndarray) -> np.ndarray:
    """float32 to bfloat16 bit patterns (uint16), rounding to nearest even; NaN stays NaN."""
    bits = np.ascontiguousarray(values, dtype=_FLOAT32).view("<u4")
    # in place, in uint32 (one temporary the size of the input): only NaNs can wrap around, and they
    # are set below
    work = bits >> 16
    work &= 1
    work += bits
    work += np.uint32(0x7FFF)
    work >>= 16
    rounded = work.astype("<u2")
    del work
    nan = np.isnan(values)
    if nan.any():
        rounded[nan] = ((bits[nan] >> 16) | 0x40).astype("<u2")
    return rounded


def _f8_table(code: str) -> np.ndarray:
    """The float32 value of each of the 256 bit patterns of an 8-bit float type."""
    if code == "F8_E8M0":  # unsigned power of two, 0xFF is NaN
        table = np.ldexp(np.float64(1.0), np.arange(256) - 127)
        table[255] = np.nan
        return table.astype(_FLOAT32)
    exp_bits, man_bits, bias = {"F8_E4M3": (4, 3, 7), "F8_E5M2": (5, 2, 15),
                                "F8_E4M3FNUZ": (4, 3, 8), "F8_E5M2FNUZ": (5, 2, 16)}[code]
    out = np.empty(256, np.float64)
    top = (1 << exp_bits) - 1
    for byte in range(256):
        sign = -1.0 if byte & 0x80 else 1.0
        exponent = (byte >> man_bits) & top
        mantissa = byte & ((1 << man_bits) - 1)
        if exponent == 0:
            value = math.ldexp(mantissa, 1 - bias - man_bits)
        else:
            value = math.ldexp((1 << man_bits) + mantissa, exponent - bias - man_bits)
        value *= sign
        if code == "F8_E4M3" and exponent == top and mantissa == (1 << man_bits) - 1:
            value = math.nan  # e4m3fn: no infinities, S.1111.111 is NaN
        elif code == "F8_E5M2" and exponent == top:
            value = sign * math.inf if mantissa == 0 else math.nan  # IEEE-like
        elif code.endswith("FNUZ") and byte == 0x80:
            value = math.nan  # no negative zero: its pattern is the only NaN
        out[byte] = value
    return out.astype(_FLOAT32)


_F8_TABLES: dict[str, np.ndarray] = {}
_F8_NAN = {"F8_E4M3": 0x7F, "F8_E5M2": 0x7E, "F8_E4M3FNUZ": 0x80, "F8_E5M2FNUZ": 0x80, "F8_E8M0": 0xFF}


def f8_table(code: str) -> np.ndarray:
    if code not in _F8_TABLES:
        _F8_TABLES[code] = _f8_table(code)
    return _F8_TABLES[code]


def f8_to_f32(raw: np.ndarray, code: str) -> np.ndarray:
    """8-bit float bit patterns (uint8) to float32 (exact)."""
    return f8_table(code)[raw]


def f32_to_f8(values: np.ndarray, code: str) -> np.ndarray | None:
    """float32 to 8-bit float bit patterns, or None when a value is not exactly representable."""
    table = f8_table(code)
    finite = ~np.isnan(table)
    keys = table[finite].view("<u4")
    codes = np.arange(256, dtype=np.uint8)[finite]
    order = np.argsort(keys, kind="stable")
    keys, codes = keys[order], codes[order]
    bits = np.ascontiguousarray(values, dtype=_FLOAT32).view("<u4").copy()
    if code in ("F8_E4M3FNUZ", "F8_E5M2FNUZ"):
        bits[bits == 0x80000000] = 0  # -0.0 has no pattern of its own: store +0.0
    where = np.minimum(np.searchsorted(keys, bits), len(keys) - 1)
    found = keys[where] == bits
    nan = np.isnan(values)
    if not np.all(found | nan):
        return None
    out = codes[where]
    out[nan] = _F8_NAN[code]
    return out.astype(np.uint8)


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
    if meta is not None:
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
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
            self._file = open(self.path, "rb", buffering=0)  # unbuffered: reads see the file
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
        view = memoryview(out).cast("B")
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
# Writing

def _target_code(info: TensorInfo, keep_source_dtype: bool) -> str:
    dtype = np.dtype(info.dtype)
    source = info.extra.get("source_dtype") if info.extra else None
    if keep_source_dtype and source in UPCAST and dtype == _FLOAT32:
        return source
    code = _CODE_OF.get((dtype.kind, dtype.itemsize))
    if code is None:
        raise ModelSurgeonError(f"tensor '{info.key}' has dtype {dtype}, which safetensors cannot store")
    return code


def _json_string(text: str, what: str) -> str:
    if not isinstance(text, str):
        raise ModelSurgeonError(f"{what} must be a string, not {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ModelSurgeonError(f"{what} {text!r} is not valid Unicode (lone surrogate)") from None
    return json.dumps(text, ensure_ascii=False)


def _plan(infos: Sequence[TensorInfo], metadata: dict[str, str] | None,
          keep_source_dtype: bool) -> tuple[bytes, list[tuple[TensorInfo, str, int]]]:
    """The padded header (with its length prefix) and the tensors in write order."""
    seen: set[str] = set()
    rows = []
    for info in infos:
        if info.key in seen:
            raise ModelSurgeonError(f"duplicate tensor key '{info.key}'")
        if info.key == "__metadata__":
            raise ModelSurgeonError("'__metadata__' cannot be a tensor name in safetensors")
        seen.add(info.key)
        code = _target_code(info, keep_source_dtype)
        size = math.prod(info.shape) * BITS[code] // 8
        rows.append((info, code, size))
    rows.sort(key=lambda row: (-_RANK[row[1]], row[0].key))
    parts = []
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise ModelSurgeonError("safetensors metadata must be a dict of strings")
        for key, value in metadata.items():
            _json_string(key, "metadata key")
            _json_string(value, f"metadata value of {key!r}")
        items = ",".join(f"{_json_string(k, 'metadata key')}:{_json_string(v, f'metadata value of {k!r}')}"
                         for k, v in sorted(metadata.items()))
        parts.append(f'"__metadata__":{{{items}}}')
    offset = 0
    for info, code, size in rows:
        shape = ",".join(str(int(d)) for d in info.shape)
        parts.append(f'{_json_string(info.key, "tensor key")}:{{"dtype":"{code}","shape":[{shape}],'
                     f'"data_offsets":[{offset},{offset + size}]}}')
        offset += size
    header = ("{" + ",".join(parts) + "}").encode("utf-8")
    header += b" " * (-len(header) % 8)
    if len(header) > MAX_HEADER_SIZE:
        raise ModelSurgeonError(f"the safetensors header would be {len(header)} bytes, over the "
                                f"format's limit of {MAX_HEADER_SIZE}")
    return len(header).to_bytes(8, "little") + header, rows


#: Elements converted at a time when writing BF16/F8 (bounds the temporary memory).
CONVERT_CHUNK = 1 << 20


def _encode(info: TensorInfo, code: str, array: Any) -> Iterator[memoryview]:
    """The array's stored bytes, in pieces, after checking that it matches ``info``."""
    array = np.asarray(array)
    if array.shape != tuple(info.shape):
        raise ModelSurgeonError(f"tensor '{info.key}' is {array.shape}, expected {tuple(info.shape)}")
    expected = np.dtype(info.dtype)
    if (array.dtype.kind, array.dtype.itemsize) != (expected.kind, expected.itemsize):
        raise ModelSurgeonError(f"tensor '{info.key}' is {array.dtype}, expected {expected}")
    if code not in UPCAST:
        yield np.ascontiguousarray(array, dtype=NUMPY_DTYPES[code]).reshape(-1).view(np.uint8).data
        return
    flat = np.ascontiguousarray(array).reshape(-1)
    for start in range(0, flat.size, CONVERT_CHUNK):
        piece = flat[start:start + CONVERT_CHUNK]
        stored = f32_to_bf16(piece) if code == "BF16" else f32_to_f8(piece, code)
        if stored is None:
            raise ModelSurgeonError(
                f"tensor '{info.key}' was {code} in its source but now holds values {code} cannot "
                "represent exactly; write it as float32 instead (keep_source_dtype=False)")
        yield stored.view(np.uint8).data


def _write_tensors(handle: Any, rows: list[tuple[TensorInfo, str, int]], fetch: Fetch,
                   by_key: dict[str, TensorInfo], progress: Progress | None, done: int, total: int,
                   locate: Locate | None = None) -> int:
    with ExtentCopier(handle.fileno()) as copier:
        for info, code, size in rows:
            source = by_key.get(info.alias_of, info) if info.alias_of is not None else info
            stored = NUMPY_DTYPES.get(code)  # None for BF16 and F8, converted on writing
            extent = locate(source) if locate is not None and stored is not None else None
            if usable(extent, stored, size):
                copier.append(handle, extent)
            else:
                written = 0
                for piece in _encode(info, code, fetch(source)):
                    handle.write(piece)
                    written += piece.nbytes
                    del piece
                copier.wrote(written)
                if written != size:  # cannot happen once shape and dtype match; kept as a guard
                    raise ModelSurgeonError(f"tensor '{info.key}' encoded to {written} bytes, expected {size}")
            done += size
            if progress is not None:
                progress(done, total)
    return done


def write_safetensors(path: str | os.PathLike[str], infos: Iterable[TensorInfo], fetch: Fetch, *,
                      metadata: dict[str, str] | None = None, progress: Progress | None = None,
                      overwrite: bool = True, keep_source_dtype: bool = True,
                      locate: Locate | None = None, later: CommitQueue | None = None) -> None:
    """Write a safetensors file atomically, fetching and writing one tensor at a time.

    ``fetch(info)`` returns the tensor's array (for an info with ``alias_of``, the info of the
    key it aliases is fetched: safetensors stores each key's own copy). The array must have the
    info's shape and dtype. ``progress(done_bytes, total_bytes)`` is called after each tensor.
    Where ``locate(info)`` gives the tensor's bytes in another file, the kernel copies them
    (extents.py). See the module docstring for ordering, byte identity and ``keep_source_dtype``.
    With ``later`` the file's commit is queued there (atomic.CommitQueue).
    """
    infos = list(infos)
    header, rows = _plan(infos, metadata, keep_source_dtype)
    total = sum(size for _, _, size in rows)
    by_key = {info.key: info for info in infos}
    with atomic_output(path, overwrite=overwrite, later=later) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(header)
            _write_tensors(handle, rows, fetch, by_key, progress, 0, total, locate)


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
                     later: CommitQueue | None = None) -> list[str]:
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
