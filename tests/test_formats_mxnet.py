"""MXNet parameter files: legacy binary ``.params`` and MXNet 2 ``.npz``, read and written.

Fixtures in ``fixtures/mxnet_formats`` were written (or, for layouts MXNet 1.9.1 no longer
writes, loaded) by real MXNet 1.9.1; see ``make.py`` there. The test that runs MXNet itself uses
conftest's ``mxnet_run``: the interpreter in ``MS_MXNET_PYTHON`` (default
``/work/mxnet-venv/bin/python``), skipped when missing unless ``CI`` is set, then it fails.
"""

from __future__ import annotations

import io
import json
import re
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from modelsurgeon.core.errors import CheckpointError, SurgeryError
from modelsurgeon.core.formats import mxnet
from modelsurgeon.core.formats.base import TensorInfo

FIX = Path(__file__).parent / "fixtures" / "mxnet_formats"
DOCS = {p.name[: -len(".expected.json")]: json.loads(p.read_text())
        for p in sorted(FIX.glob("*.expected.json"))}
READABLE = sorted(name for name, doc in DOCS.items() if "error" not in doc)
REFUSED = sorted(name for name, doc in DOCS.items() if "error" in doc)

V1, V2, V3 = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
ALL_DTYPES = ["float32", "float64", "float16", "uint8", "int32", "int8", "int64", "bool",
              "int16", "uint16", "uint32", "uint64"]
MXNET1_DTYPES = ALL_DTYPES[:8]


# ------------------------------------------------------------------------------------------
# helpers


def fixture_path(name: str) -> Path:
    return FIX / DOCS[name]["fixture"]


def open_reader(path: Path | str) -> mxnet.CheckpointReader:
    path = Path(path)
    return mxnet.MXNetNpzReader(path) if path.suffix == ".npz" else mxnet.MXNetParamsReader(path)


def rec(shape=(2,), flag=0, data=None, magic=V2, stype=0, ctx=(1, 0)) -> bytes:
    """One NDArray record built by hand (V1/V2/V3 layouts)."""
    head = struct.pack("<I", magic)
    if magic in (V2, V3):
        head += struct.pack("<i", stype)
    head += struct.pack(f"<i{len(shape)}q", len(shape), *shape)
    if data is None:
        itemsize = {0: 4, 1: 8, 2: 2, 3: 1, 4: 4, 5: 1, 6: 8, 7: 1, 12: 2}.get(flag, 4)
        data = b"\x01" * (int(np.prod(shape)) * itemsize)
    return head + struct.pack("<iii", *ctx, flag) + data


def container(records: list[bytes], names: list[str] | None, reserved: int = 0) -> bytes:
    out = struct.pack("<QQQ", 0x112, reserved, len(records)) + b"".join(records)
    names = names or []
    out += struct.pack("<Q", len(names))
    for name in names:
        raw = name.encode()
        out += struct.pack("<Q", len(raw)) + raw
    return out


def infos_of(arrays: dict[str, np.ndarray], roles: dict[str, str] | None = None) -> list[TensorInfo]:
    roles = roles or {}
    return [TensorInfo(key=k, shape=tuple(a.shape), dtype=a.dtype, role=roles.get(k))
            for k, a in arrays.items()]


def write_dict(path: Path, arrays: dict[str, np.ndarray], writer=None, roles=None, **kw) -> Path:
    writer = writer or mxnet.write_params
    writer(path, infos_of(arrays, roles), lambda info: arrays[info.key], **kw)
    return path


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    assert actual.flags.c_contiguous
    assert actual.tobytes() == np.ascontiguousarray(expected).tobytes()


def sample(dtype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.integers(0, 2, size=shape).astype(bool)
    if dt.kind == "f":
        return (rng.standard_normal(size=shape) * 100).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)


def opens_or_refuses(path: Path) -> None:
    """Opening and reading every tensor either works or raises CheckpointError, nothing else."""
    try:
        reader = open_reader(path)
    except CheckpointError:
        return
    with reader:
        for key in reader.keys():  # noqa: SIM118 - a reader, not a dict
            try:
                arr = reader.read(key)
            except CheckpointError:
                continue
            info = reader.tensors[key]
            assert arr.shape == info.shape and arr.dtype == info.dtype


# ------------------------------------------------------------------------------------------
# sniffing


def test_sniff() -> None:
    assert mxnet.sniff((FIX / "dtype_float32.params").read_bytes()[:64]) == "mxnet-params"
    assert mxnet.sniff((FIX / "mx2_export.npz").read_bytes()[:64]) == "npz"
    assert mxnet.sniff(b"PK\x05\x06" + b"\0" * 18) == "npz"  # empty zip
    assert mxnet.sniff(b"\x89HDF\r\n\x1a\n") is None
    assert mxnet.sniff(b"\x12\x01") is None
    assert mxnet.sniff(b"") is None
    assert mxnet.sniff(struct.pack("<Q", 0x113)) is None


# ------------------------------------------------------------------------------------------
# fixtures written by real MXNet


@pytest.mark.parametrize("name", READABLE)
def test_fixture_reads_exactly(name: str) -> None:
    doc = DOCS[name]
    with open_reader(fixture_path(name)) as reader:
        assert reader.format == doc["format"]
        assert reader.kind == doc["kind"]
        assert reader.architecture is None and reader.graph is None
        if "ndarray_version" in doc:
            assert reader.metadata == {"ndarray_version": doc["ndarray_version"]}
        listed = [(i.key, i.role, list(i.shape), i.dtype.name) for i in reader.tensors.values()]
        assert listed == [(t["key"], t["role"], t["shape"], t["dtype"]) for t in doc["tensors"]]
        for t in doc["tensors"]:
            arr = reader.read(t["key"])
            assert arr.flags.c_contiguous and arr.flags.writeable
            assert arr.dtype.byteorder in "=|<"
            assert arr.tobytes().hex() == t["data_hex"]
            assert arr.shape == tuple(t["shape"])


@pytest.mark.parametrize("name", REFUSED)
def test_fixture_refused_with_clear_message(name: str) -> None:
    with pytest.raises(CheckpointError, match=re.escape(DOCS[name]["error"])):
        open_reader(fixture_path(name))


def test_fixture_specifics() -> None:
    with mxnet.MXNetParamsReader(FIX / "export-0000.params") as r:
        roles = {k: i.role for k, i in r.tensors.items()}
        assert roles["hybridsequential0_batchnorm0_running_var"] == "aux"
        assert roles["hybridsequential0_conv0_weight"] == "arg"
        assert r.kind == "named"
    with mxnet.MXNetParamsReader(FIX / "list_nonames.params") as r:
        assert r.keys() == ["0", "1", "2"] and r.kind == "named"
    with mxnet.MXNetParamsReader(FIX / "npshape_v3.params") as r:
        assert r.tensors["scalar"].shape == () and r.read("scalar")[()] == np.float32(3.5)
        assert r.read("empty").shape == (0, 3)
    with mxnet.MXNetParamsReader(FIX / "save_parameters.params") as r:
        assert r.kind == "structural" and all(i.role is None for i in r.tensors.values())
        # offsets recorded for the engine, data read from exactly there
        info = r.tensors["2.bias"]
        raw = (FIX / "save_parameters.params").read_bytes()
        assert raw[info.extra["offset"]:info.extra["offset"] + info.nbytes] == r.read("2.bias").tobytes()
    with mxnet.MXNetNpzReader(FIX / "mx2_export.npz") as r:
        assert r.tensors["hybridsequential0_batchnorm0_running_mean"].role == "aux"


# ------------------------------------------------------------------------------------------
# writing: byte-identical to MXNet, loadable by MXNet

IDENTICAL = [n for n in READABLE if n.startswith("dtype_")] + ["export-0000", "save_parameters", "npshape_v3"]


@pytest.mark.parametrize("name", IDENTICAL)
def test_write_params_is_byte_identical_to_mxnet(name: str, tmp_path: Path) -> None:
    src = fixture_path(name)
    out = tmp_path / "out.params"
    with mxnet.MXNetParamsReader(src) as reader:
        np_shape = reader.metadata["ndarray_version"] == "V3"
        infos = list(reader.tensors.values())
        mxnet.write_params(out, infos, lambda i: reader.read(i.key), np_shape=np_shape)
    assert out.read_bytes() == src.read_bytes()


def test_write_params_matches_reference_notes_example(tmp_path: Path) -> None:
    out = write_dict(tmp_path / "one.params", {"w": np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)})
    expected = bytes.fromhex(
        "1201000000000000" "0000000000000000" "0100000000000000"
        "c9fa93f9" "00000000" "02000000" "0200000000000000" "0300000000000000"
        "01000000" "00000000" "00000000"
        + np.arange(1, 7, dtype="<f4").tobytes().hex() + "0100000000000000" "0100000000000000" "77")
    assert out.read_bytes() == expected and len(expected) == 105


_MXNET_LOADER = r"""
import json, sys
import mxnet as mx
out = {}
def dump(loaded):
    return {k: [list(v.shape), str(v.dtype.__name__ if hasattr(v.dtype, '__name__') else v.dtype),
                v.asnumpy().reshape(v.shape).tobytes().hex()] for k, v in loaded.items()}
files = json.loads(sys.argv[1])
for path in files["v2"]:
    out[path] = dump(mx.nd.load(path))
mx.npx.set_np()
for path in files["v3"]:
    out[path] = dump(mx.nd.load(path))
print(json.dumps(out))
"""


def test_real_mxnet_loads_our_files(tmp_path: Path, mxnet_run) -> None:
    written: dict[str, dict[str, np.ndarray]] = {}
    for i, dtype in enumerate(MXNET1_DTYPES):
        arrays = {"layer.weight": sample(dtype, (3, 4), i), "layer.empty": sample(dtype, (0, 2), i),
                  "layer.bias": sample(dtype, (5,), i + 100)}
        written[str(write_dict(tmp_path / f"{dtype}.params", arrays))] = arrays
    named = {"conv_weight": sample("float32", (2, 1, 3, 3)), "bn_running_var": sample("float32", (2,))}
    path = write_dict(tmp_path / "roles.params", named, roles={"conv_weight": "arg", "bn_running_var": "aux"})
    written[str(path)] = {"arg:conv_weight": named["conv_weight"],
                          "aux:bn_running_var": named["bn_running_var"]}
    v3 = {"scalar": np.array(2.5, dtype=np.float64), "w": sample("int64", (2, 2))}
    v3_path = str(write_dict(tmp_path / "v3.params", v3, np_shape=True))
    files = {"v2": list(written), "v3": [v3_path]}
    written[v3_path] = v3
    proc = mxnet_run(_MXNET_LOADER, json.dumps(files))
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    for path, arrays in written.items():
        assert list(loaded[path]) == list(arrays), path
        for key, arr in arrays.items():
            shape, dtype, data = loaded[path][key]
            assert tuple(shape) == arr.shape and data == arr.tobytes().hex(), (path, key)
            assert np.dtype(dtype) == arr.dtype, (path, key, dtype)


# ------------------------------------------------------------------------------------------
# round trips

SHAPES = [(2, 3), (0,), (4, 0, 2), (1, 2, 1, 3), (7,)]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("fmt", ["params", "params-v3", "npz"])
def test_round_trip_every_dtype(dtype: str, fmt: str, tmp_path: Path) -> None:
    arrays = {f"t{i}.x": sample(dtype, shape, i) for i, shape in enumerate(SHAPES)}
    if fmt != "params":
        arrays["scalar"] = sample(dtype, (), 99)
    if dtype == "float32":
        arrays["nan"] = np.array([np.nan, -np.inf, np.inf, -0.0], dtype=np.float32)
    path = tmp_path / ("out.npz" if fmt == "npz" else "out.params")
    if fmt == "npz":
        write_dict(path, arrays, writer=mxnet.write_npz)
    else:
        write_dict(path, arrays, np_shape=fmt == "params-v3", allow_mxnet2_dtypes=True)
    with open_reader(path) as reader:
        assert reader.keys() == list(arrays)
        for key, arr in arrays.items():
            assert_same(reader.read(key), arr)
    if fmt == "npz":  # and numpy itself reads our npz
        with np.load(path, allow_pickle=False) as z:
            for key, arr in arrays.items():
                assert_same(z[key], arr)


@settings(max_examples=40, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(hnp.arrays(st.sampled_from([np.dtype(d) for d in ALL_DTYPES]),
                           hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=4)),
                min_size=0, max_size=5),
       st.lists(st.sampled_from([None, "arg", "aux"]), min_size=5, max_size=5))
def test_round_trip_property(tmp_path: Path, arrays: list[np.ndarray], roles: list[str | None]) -> None:
    named = {f"p{i}.w": a for i, a in enumerate(arrays)}
    role_of = {k: r for k, r in zip(named, roles) if r}
    for writer, name in ((mxnet.write_params, "x.params"), (mxnet.write_npz, "x.npz")):
        kw = {"allow_mxnet2_dtypes": True} if writer is mxnet.write_params else {}
        path = write_dict(tmp_path / name, named, writer=writer, roles=role_of, **kw)
        with open_reader(path) as reader:
            assert reader.keys() == list(named)
            assert {k: i.role for k, i in reader.tensors.items()} == {k: role_of.get(k) for k in named}
            expected_kind = "named" if role_of or not named else "structural"
            assert reader.kind == expected_kind
            for key, arr in named.items():
                assert_same(reader.read(key), arr)


def test_writer_roles_flag_and_progress(tmp_path: Path) -> None:
    arrays = {"w": sample("float32", (3, 3)), "m": sample("float64", (4,))}
    calls: list[tuple[int, int]] = []
    path = write_dict(tmp_path / "a.params", arrays, roles={"w": "arg", "m": "aux"},
                      progress=lambda d, t: calls.append((d, t)))
    assert calls == [(36, 68), (68, 68)]
    raw = path.read_bytes()
    assert b"arg:w" in raw and b"aux:m" in raw
    with mxnet.MXNetParamsReader(path) as r:
        assert r.kind == "named" and [i.role for i in r.tensors.values()] == ["arg", "aux"]
    path = tmp_path / "b.params"
    mxnet.write_params(path, infos_of(arrays, {"w": "arg"}), lambda i: arrays[i.key], roles=False)
    with mxnet.MXNetParamsReader(path) as r:
        assert r.keys() == ["w", "m"] and all(i.role is None for i in r.tensors.values())
    calls.clear()
    path = write_dict(tmp_path / "c.npz", arrays, writer=mxnet.write_npz, roles={"m": "aux"},
                      progress=lambda d, t: calls.append((d, t)))
    assert calls == [(36, 68), (68, 68)]
    assert sorted(zipfile.ZipFile(path).namelist()) == ["aux:m.npy", "w.npy"]


def test_writer_fetches_each_tensor_once_in_order(tmp_path: Path) -> None:
    arrays = {f"k{i}": sample("float32", (i + 1,)) for i in range(6)}
    for writer, name in ((mxnet.write_params, "o.params"), (mxnet.write_npz, "o.npz")):
        seen: list[str] = []

        def fetch(info: TensorInfo, seen: list[str] = seen) -> np.ndarray:
            seen.append(info.key)
            return arrays[info.key]

        writer(tmp_path / name, infos_of(arrays), fetch)
        assert seen == list(arrays)


def test_writer_accepts_big_endian_and_strided_arrays(tmp_path: Path) -> None:
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    fetched = {"t": base.T, "be": base.astype(">f4")}
    infos = [TensorInfo("t", (4, 3), np.dtype("float32")), TensorInfo("be", (3, 4), np.dtype("float32"))]
    for writer, name in ((mxnet.write_params, "s.params"), (mxnet.write_npz, "s.npz")):
        writer(tmp_path / name, infos, lambda i: fetched[i.key])
        with open_reader(tmp_path / name) as r:
            assert_same(r.read("t"), np.ascontiguousarray(base.T))
            assert_same(r.read("be"), base)


def test_writer_refusals(tmp_path: Path) -> None:
    out = tmp_path / "o.params"
    with pytest.raises(SurgeryError, match="0-dimensional"):
        write_dict(out, {"s": np.array(1.0, dtype=np.float32)})
    with pytest.raises(SurgeryError, match="MXNet 1.x cannot load"):
        write_dict(out, {"i": np.zeros(2, dtype=np.int16)})
    with pytest.raises(SurgeryError, match="complex64.*cannot store"):
        write_dict(out, {"c": np.zeros(2, dtype=np.complex64)})
    with pytest.raises(SurgeryError, match="cannot hold"):
        write_dict(tmp_path / "o.npz", {"c": np.zeros(2, dtype="U3")}, writer=mxnet.write_npz)
    info = TensorInfo("w", (2, 2), np.dtype("float32"))
    with pytest.raises(SurgeryError, match=r"fetched float64 \(2, 2\)"):
        mxnet.write_params(out, [info], lambda i: np.zeros((2, 2)))
    with pytest.raises(SurgeryError, match=r"fetched float32 \(4,\)"):
        mxnet.write_npz(tmp_path / "o.npz", [info], lambda i: np.zeros(4, np.float32))
    dup = [TensorInfo("w", (1,), np.dtype("float32"), role="arg"),
           TensorInfo("w", (1,), np.dtype("float32"), role="aux")]
    with pytest.raises(SurgeryError, match="same name 'w'"):
        mxnet.write_params(out, dup, lambda i: np.zeros(1, np.float32), roles=False)
    mxnet.write_params(out, dup, lambda i: np.zeros(1, np.float32))  # arg:w and aux:w differ on disk...
    with pytest.raises(CheckpointError, match="duplicate key 'w'"):  # ...but collide once stripped
        mxnet.MXNetParamsReader(out)
    with pytest.raises(SurgeryError, match="role 'buffer'"):
        mxnet.write_params(out, [TensorInfo("w", (1,), np.dtype("float32"), role="buffer")], lambda i: None)
    assert not any(p.name.startswith(".modelsurgeon-tmp-") for p in tmp_path.iterdir())


@pytest.mark.parametrize("writer", [mxnet.write_params, mxnet.write_npz])
def test_writer_is_atomic(writer, tmp_path: Path) -> None:
    target = tmp_path / "model.out"
    target.write_bytes(b"previous")
    arrays = {"a": sample("float32", (100,)), "b": sample("float32", (3,))}

    def fetch(info: TensorInfo) -> np.ndarray:
        if info.key == "b":
            raise RuntimeError("source vanished")
        return arrays[info.key]

    with pytest.raises(RuntimeError, match="source vanished"):
        writer(target, infos_of(arrays), fetch)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["model.out"]


def test_write_npz_is_deterministic_and_uncompressed(tmp_path: Path) -> None:
    arrays = {"arg:w": sample("float16", (3, 2)), "b": sample("int64", (2,))}
    a = write_dict(tmp_path / "a.npz", arrays, writer=mxnet.write_npz)
    b = write_dict(tmp_path / "b.npz", arrays, writer=mxnet.write_npz)
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
        assert zf.namelist() == ["arg:w.npy", "b.npy"]
        assert zf.read("b.npy")[:6] == b"\x93NUMPY"


# ------------------------------------------------------------------------------------------
# kind and role rules


@pytest.mark.parametrize("names, kind", [
    (["arg:a", "b"], "named"),
    (["features.0.weight", "aux:x.running_mean"], "named"),
    (["features.0.weight", "output.bias"], "structural"),
    (["features.0.weight", "dense0_bias"], "named"),
    ([], "named"),
])
def test_kind_rule(names: list[str], kind: str, tmp_path: Path) -> None:
    path = tmp_path / "k.params"
    path.write_bytes(container([rec((1,)) for _ in names], names))
    with mxnet.MXNetParamsReader(path) as r:
        assert r.kind == kind
        assert r.keys() == [n[4:] if n.startswith(("arg:", "aux:")) else n for n in names]
    arrays = {n: np.zeros(1, np.float32) for n in names}
    npz = write_dict(tmp_path / "k.npz", arrays, writer=mxnet.write_npz)
    if names:
        with mxnet.MXNetNpzReader(npz) as r:
            assert r.kind == kind


# ------------------------------------------------------------------------------------------
# hostile and corrupt .params


def small_params(tmp_path: Path) -> bytes:
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "i": np.array([1, -2, 3], np.int8),
              "m": np.array([0.5, 1.5], np.float64)}
    return write_dict(tmp_path / "small.params", arrays, roles={"w": "arg", "m": "aux"}).read_bytes()


TRUNCATED = ["legacy_v1", "legacy_prev1", "npshape_v3", "dtype_bool", "list_nonames", "sparse_csr", "bf16"]


def test_truncation_at_every_offset(tmp_path: Path) -> None:
    blobs = [small_params(tmp_path)] + [fixture_path(n).read_bytes() for n in TRUNCATED]
    path = tmp_path / "cut.params"
    for blob in blobs:
        for n in range(len(blob)):
            path.write_bytes(blob[:n])
            with pytest.raises(CheckpointError):
                mxnet.MXNetParamsReader(path)


def test_truncation_messages(tmp_path: Path) -> None:
    blob = small_params(tmp_path)
    path = tmp_path / "cut.params"
    path.write_bytes(blob[:20])
    with pytest.raises(CheckpointError, match="truncated: array count at byte 16 needs 8 bytes but only 4 "):
        mxnet.MXNetParamsReader(path)
    path.write_bytes(blob[:70])
    with pytest.raises(CheckpointError, match=r"truncated: array #0 data \(\(2, 3\), 24 bytes\)"):
        mxnet.MXNetParamsReader(path)
    path.write_bytes(blob[:-1])
    with pytest.raises(CheckpointError, match="truncated: name #2"):
        mxnet.MXNetParamsReader(path)
    path.write_bytes(blob + b"\0")
    with pytest.raises(CheckpointError, match="1 trailing bytes after the names list"):
        mxnet.MXNetParamsReader(path)
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="not an MXNet .params file: only 0 bytes"):
        mxnet.MXNetParamsReader(path)


@settings(max_examples=200, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4))
def test_random_byte_flips_params(tmp_path: Path, flips: list[tuple[int, int]]) -> None:
    blob = bytearray(small_params(tmp_path))
    for pos, value in flips:
        blob[pos % len(blob)] = value
    path = tmp_path / "flipped.params"
    path.write_bytes(bytes(blob))
    opens_or_refuses(path)


def _quick_refusal(path: Path, blob: bytes, match: str) -> None:
    path.write_bytes(blob)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=match):
            mxnet.MXNetParamsReader(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20, f"allocated {peak} bytes for a {len(blob)}-byte file"


HUGE = 2**63 - 1
P = pytest.param


def one(record: bytes, name: str = "x") -> bytes:
    return container([record], [name])


@pytest.mark.parametrize("blob, match", [
    P(struct.pack("<QQQ", 0x112, 0, 2**64 - 1) + b"\0" * 40,
      r"claims 18446744073709551615 arrays but only 40 bytes", id="count-2^64"),
    P(struct.pack("<QQQ", 0x112, 0, 2**40) + b"\0" * 40, "claims 1099511627776 arrays", id="count-2^40"),
    P(one(struct.pack("<Iii", V2, 0, 2**31 - 1)), r"ndim 2147483647 \(must be 0..32\)", id="ndim-2^31"),
    P(one(struct.pack("<Iii", V2, 0, -5)), r"ndim -5", id="ndim-negative"),
    P(one(rec((2**40,), data=b"")),
      r"truncated: array #0 data \(\(1099511627776,\), 4398046511104 bytes\)", id="dim-2^40"),
    P(one(rec((HUGE, HUGE), data=b"")), "overflows 64 bits", id="dims-overflow"),
    P(one(rec((0, HUGE, HUGE), data=b"")), "overflows 64 bits", id="dims-overflow-with-zero"),
    P(one(rec((2, -3), data=b"")), r"negative dimension in shape \(2, -3\)", id="dim-negative"),
    P(container([rec((2,))], [])[:-8] + struct.pack("<Q", 2**63),
      "names list has 9223372036854775808 names for 1 arrays", id="names-count-2^63"),
    P(one(rec((2,)))[:-9] + struct.pack("<Q", 2**64 - 1) + b"x",
      "name #0 is 18446744073709551615 bytes long", id="name-length-2^64"),
    P(one(rec((2,)))[:-9] + struct.pack("<Q", 60000) + b"x", "truncated: name #0 at byte",
      id="name-past-eof"),
    P(one(struct.pack("<I", 0x7FFFFFFF) + b"\0" * 32), "neither an NDArray magic nor a plausible ndim",
      id="record-magic-garbage"),
])
def test_huge_claims_refused_quickly_without_allocating(tmp_path: Path, blob: bytes, match: str) -> None:
    _quick_refusal(tmp_path / "huge.params", blob, match)


NONE = r"'none.w' is an empty \(none\) NDArray"


@pytest.mark.parametrize("blob, match", [
    P(b"\x13\x01" + b"\0" * 40, r"not an MXNet .params file \(list magic 0x113, expected 0x112\)",
      id="list-magic"),
    P(one(rec((2,), flag=13)), "array #0 .* has unknown type flag 13", id="flag-13"),
    P(one(rec((2,), flag=-1)), "unknown type flag -1", id="flag-negative"),
    P(container([rec((2,)), rec((2,), flag=99, magic=V1)], ["a", "b"]), "array #1 .* unknown type flag 99",
      id="flag-99-v1"),
    P(one(rec((2,), stype=7)), "array #0 .* unknown storage type 7", id="stype-7"),
    P(one(rec((2,), stype=-1)), "unknown storage type -1", id="stype-undefined"),
    P(one(rec((2,), stype=1, data=b"")), "array #0 uses row_sparse storage", id="stype-row-sparse"),
    P(one(rec((2,), stype=2, data=b"")), "array #0 uses csr storage", id="stype-csr"),
    P(one(rec((2,), flag=12), "h.w"), "'h.w' is bfloat16", id="bf16"),
    P(one(struct.pack("<Iii", V2, 0, 0), "none.w"), NONE, id="none-v2-ndim0"),
    P(one(struct.pack("<Iii", V3, 0, -1), "none.w"), NONE, id="none-v3-ndim-1"),
    P(one(struct.pack("<Iiiqq", V3, 0, 2, 3, -1), "none.w"), NONE, id="none-v3-dim-1"),
    P(one(struct.pack("<Ii", V1, 0), "none.w"), NONE, id="none-v1-ndim0"),
    P(one(struct.pack("<I", 0), "none.w"), NONE, id="none-pre-v1"),
    P(container([rec((2,)), rec((2,))], ["x"]), "names list has 1 names for 2 arrays", id="names-count"),
    P(container([rec((2,)), rec((2,))], ["arg:x", "aux:x"]),
      r"duplicate key 'x' \(from 'arg:x' and 'aux:x'\)", id="duplicate-after-strip"),
    P(container([rec((2,)), rec((2,))], ["x", "x"]), "duplicate key 'x'", id="duplicate"),
    P(one(rec((2,)))[:-1] + b"\xff", "name #0 is not valid UTF-8", id="name-utf8"),
    P(one(rec((2,))) + b"junk", "4 trailing bytes after the names list", id="trailing"),
])
def test_corrupt_params_messages(tmp_path: Path, blob: bytes, match: str) -> None:
    _quick_refusal(tmp_path / "bad.params", blob, match)


def test_sparse_then_garbage_still_reports_sparse(tmp_path: Path) -> None:
    # a sparse record whose sizes cannot be followed: the sparse storage is still the reported cause
    blob = container([rec((2,), stype=2, data=b"")], ["x"])[:-30]
    _quick_refusal(tmp_path / "s.params", blob, "array #0 uses csr storage")


def test_tolerated_quirks(tmp_path: Path) -> None:
    """MXNet ignores the reserved word and the saving device; so do we."""
    arrays = [np.arange(3, dtype=np.float32), np.arange(2, dtype=np.int64)]
    blob = container([rec((3,), data=arrays[0].tobytes(), ctx=(2, 3)),
                      rec((2,), flag=6, data=arrays[1].tobytes(), ctx=(5, 0))], ["a.b", "c.d"], reserved=77)
    path = tmp_path / "q.params"
    path.write_bytes(blob)
    with mxnet.MXNetParamsReader(path) as r:
        assert_same(r.read("a.b"), arrays[0])
        assert_same(r.read("c.d"), arrays[1])


def test_bool_bytes_are_normalized(tmp_path: Path) -> None:
    path = tmp_path / "b.params"
    path.write_bytes(container([rec((3,), flag=7, data=b"\x00\x02\xff")], ["m"]))
    with mxnet.MXNetParamsReader(path) as r:
        arr = r.read("m")
    assert arr.tolist() == [False, True, True] and arr.view(np.uint8).tolist() == [0, 1, 1]


def test_file_problems(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such file"):
        mxnet.MXNetParamsReader(tmp_path / "missing.params")
    with pytest.raises(CheckpointError, match="is a directory"):
        mxnet.MXNetParamsReader(tmp_path)
    with pytest.raises(CheckpointError, match="not an MXNet .params file"):
        mxnet.MXNetParamsReader(FIX / "mx2_export.npz")
    with pytest.raises(CheckpointError, match="not a readable zip archive"):
        mxnet.MXNetNpzReader(FIX / "dtype_int8.params")


def test_read_after_truncation_close_and_unknown_key(tmp_path: Path) -> None:
    path = tmp_path / "t.params"
    path.write_bytes((FIX / "save_parameters.params").read_bytes())
    reader = mxnet.MXNetParamsReader(path)
    with pytest.raises(KeyError):
        reader.read("nope")
    with open(path, "r+b") as fh:
        fh.truncate(200)
    with pytest.raises(CheckpointError, match="truncated since it was opened"):
        reader.read("2.weight")
    reader.close()
    reader.close()
    with pytest.raises(CheckpointError, match="closed"):
        reader.read("0.bias")


def test_index_does_not_read_data(tmp_path: Path) -> None:
    """An alexnet-sized file (244 MB, mostly holes) indexes in milliseconds."""
    sizes = [(64, 3, 11, 11), (64,), (192, 64, 5, 5), (192,), (384, 192, 3, 3), (384,),
             (256, 384, 3, 3), (256,), (256, 256, 3, 3), (256,), (4096, 9216), (4096,),
             (4096, 4096), (4096,), (1000, 4096), (1000,)]
    path = tmp_path / "alexnet.params"
    names = [f"features.{i}.w" for i in range(len(sizes))]
    with open(path, "wb") as fh:
        fh.write(struct.pack("<QQQ", 0x112, 0, len(sizes)))
        for shape in sizes:
            fh.write(struct.pack(f"<Iii{len(shape)}qiii", V2, 0, len(shape), *shape, 1, 0, 0))
            fh.seek(int(np.prod(shape)) * 4, io.SEEK_CUR)
        fh.write(struct.pack("<Q", len(names)))
        for name in names:
            fh.write(struct.pack("<Q", len(name)) + name.encode())
    assert path.stat().st_size > 240_000_000
    before = _bytes_read()
    with mxnet.MXNetParamsReader(path) as r:
        listed = _bytes_read() - before
        assert r.total_bytes() == sum(int(np.prod(s)) * 4 for s in sizes)
        assert r.read("features.15.w").shape == (1000,)
    assert listed < 1 << 20, f"listing read {listed} bytes of a {path.stat().st_size}-byte file"


def _bytes_read() -> int:
    """Bytes this process has read through system calls so far (Linux /proc/self/io ``rchar``)."""
    with open("/proc/self/io") as handle:
        fields = dict(line.split(": ") for line in handle.read().splitlines())
    return int(fields["rchar"])


# ------------------------------------------------------------------------------------------
# .npz


def make_zip(path: Path, members: dict[str, bytes], compress=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compress) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=compress)
    return path


def npy_bytes(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, **kw)
    return buf.getvalue()


def test_npz_torch_zip_is_not_npz_but_empty_zip_is(tmp_path: Path) -> None:
    torch_like = make_zip(tmp_path / "model.pt", {"archive/data.pkl": b"\x80\x02}q\x00.",
                                                  "archive/data/0": b"\0" * 16, "archive/version": b"3\n"})
    with pytest.raises(CheckpointError, match=r"zip archive is not an MXNet/NumPy \.npz parameter file$"):
        mxnet.MXNetNpzReader(torch_like)
    empty = make_zip(tmp_path / "empty.npz", {})  # what np.savez() with no arrays writes
    assert mxnet.sniff(empty.read_bytes()[:64]) == "npz"
    with mxnet.MXNetNpzReader(empty) as r:
        assert r.keys() == [] and r.kind == "named"
    dirs_only = make_zip(tmp_path / "dirs.zip", {"archive/": b""})
    with pytest.raises(CheckpointError, match="zip archive is not an MXNet/NumPy .npz parameter file"):
        mxnet.MXNetNpzReader(dirs_only)


def test_npz_compressed_fortran_and_big_endian(tmp_path: Path) -> None:
    arrays = {"arg:w": sample("float32", (3, 4)), "aux:m": sample("int16", (5,)), "s": np.array(7, np.uint64)}
    path = tmp_path / "c.npz"
    np.savez_compressed(path, **arrays)
    with mxnet.MXNetNpzReader(path) as r:
        assert r.keys() == ["w", "m", "s"] and r.tensors["w"].extra["compressed"]
        assert_same(r.read("w"), arrays["arg:w"])
        assert_same(r.read("m"), arrays["aux:m"])
        assert_same(r.read("s"), arrays["s"])
    odd = {"f.npy": npy_bytes(np.asfortranarray(arrays["arg:w"])),
           "b.npy": npy_bytes(arrays["arg:w"].astype(">f4"))}
    for compress in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        with mxnet.MXNetNpzReader(make_zip(tmp_path / "o.npz", odd, compress)) as r:
            assert r.tensors["b"].dtype == np.dtype("<f4")
            assert_same(r.read("f"), arrays["arg:w"])
            assert_same(r.read("b"), arrays["arg:w"])


def npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    text += " " * (63 - (10 + len(text)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


F32 = npy_bytes(np.zeros(1, np.float32))


@pytest.mark.parametrize("members, match", [
    P({"w.npy": npy_bytes(np.array([1, "a"], dtype=object), allow_pickle=True)}, "holds Python objects",
      id="object"),
    P({"w.npy": npy_bytes(np.zeros(2, np.complex64))}, "dtype '<c8', which MXNet parameters cannot hold",
      id="complex"),
    P({"w.npy": npy_bytes(np.zeros(2, "U2"))}, "cannot hold", id="unicode"),
    P({"w.npy": npy_bytes(np.zeros(2, [("a", "<f4")]))}, "cannot hold", id="structured"),
    P({"w.npy": npy_header("<b2", (3,)) + b"\0" * 6}, "no valid .npy header: .*'<b2'", id="bf16-descr"),
    P({"w.npy": npy_bytes(np.zeros(4, np.float32))[:-4]},
      r"declares 140 bytes but its header \(\(4,\), <f4\) needs 144", id="short-data"),
    P({"w.npy": npy_bytes(np.zeros(4, np.float32)) + b"\0"}, "declares 145 bytes", id="long-data"),
    P({"w.npy": npy_header("<f4", (2**62, 8))}, "overflows 64 bits", id="shape-overflow"),
    P({"w.npy": b"not an npy file at all"}, "no valid .npy header", id="not-npy"),
    P({"w.npy": b"\x93NUMPY\x03\x00" + b"\0" * 20}, r"unsupported .npy version \(3, 0\)", id="npy-v3"),
    P({"w.npy": F32, "README.txt": b"hi"}, "member 'README.txt' is not a .npy array", id="other-member"),
    P({"arg:w.npy": F32, "aux:w.npy": F32}, "duplicate key 'w'", id="duplicate-after-strip"),
    P({"e/data.npy": npy_bytes(np.zeros(2)), "e/indices.npy": npy_bytes(np.zeros(2, np.int64)),
       "e/indptr.npy": npy_bytes(np.zeros(3, np.int64)), "e/shape.npy": npy_bytes(np.array([2, 2])),
       "e/format.npy": npy_bytes(np.array(b"csr"))}, "array 'e' is stored sparse", id="sparse-folder"),
])
def test_npz_refusals(tmp_path: Path, members: dict[str, bytes], match: str) -> None:
    path = make_zip(tmp_path / "bad.npz", members)
    with pytest.raises(CheckpointError, match=match):
        mxnet.MXNetNpzReader(path)


def _patch_central(blob: bytes, field_offset: int, fmt: str, value: int) -> bytes:
    at = blob.rindex(b"PK\x01\x02")
    out = bytearray(blob)
    struct.pack_into(fmt, out, at + field_offset, value)
    return bytes(out)


def test_npz_zip_level_attacks(tmp_path: Path) -> None:
    path = tmp_path / "z.npz"
    good = write_dict(path, {"w": np.zeros(1000, np.float32)}, writer=mxnet.write_npz).read_bytes()
    # encrypted flag
    path.write_bytes(_patch_central(good, 8, "<H", 1))
    with pytest.raises(CheckpointError, match="is encrypted"):
        mxnet.MXNetNpzReader(path)
    # an unknown compression method
    path.write_bytes(_patch_central(good, 10, "<H", 99))
    with pytest.raises(CheckpointError, match="unsupported compression method 99|not a readable zip"):
        mxnet.MXNetNpzReader(path)
    # a flipped data byte fails the CRC on read
    corrupt = bytearray(good)
    corrupt[good.index(b"\x93NUMPY") + 200] ^= 0xFF
    path.write_bytes(bytes(corrupt))
    with mxnet.MXNetNpzReader(path) as r, pytest.raises(CheckpointError, match="fails its CRC check"):
        r.read("w")
    # a deflated member claiming more bytes than deflate can produce (a zip bomb's lie)
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False, "shape": (10**9,)})
    header = head.getvalue()
    bomb = make_zip(tmp_path / "bomb.npz", {"w.npy": header + b"\0" * 64}, zipfile.ZIP_DEFLATED).read_bytes()
    path.write_bytes(_patch_central(bomb, 24, "<I", 4_000_000_000 + len(header)))
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="more than deflate can produce"):
            mxnet.MXNetNpzReader(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20, "the claimed size was believed"
    # duplicate member names
    with zipfile.ZipFile(tmp_path / "dup.npz", "w") as zf, pytest.warns(UserWarning):
        zf.writestr("w.npy", npy_bytes(np.zeros(1)))
        zf.writestr("w.npy", npy_bytes(np.zeros(2)))
    with pytest.raises(CheckpointError, match="duplicate members 'w.npy'"):
        mxnet.MXNetNpzReader(tmp_path / "dup.npz")


def test_npz_truncation_at_every_offset(tmp_path: Path) -> None:
    blob = write_dict(tmp_path / "s.npz", {"arg:w": np.arange(3, dtype=np.float32), "b": np.ones(2, np.int8)},
                      writer=mxnet.write_npz).read_bytes()
    path = tmp_path / "cut.npz"
    for n in range(len(blob)):
        path.write_bytes(blob[:n])
        with pytest.raises(CheckpointError):
            mxnet.MXNetNpzReader(path)


@settings(max_examples=150, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4))
def test_random_byte_flips_npz(tmp_path: Path, flips: list[tuple[int, int]]) -> None:
    blob = bytearray((FIX / "mx2_structural.npz").read_bytes())
    for pos, value in flips:
        blob[pos % len(blob)] = value
    path = tmp_path / "flipped.npz"
    path.write_bytes(bytes(blob))
    opens_or_refuses(path)
