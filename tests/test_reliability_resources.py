"""Promise 6 of docs/reliability.md: many tensors, long names and deep nesting are handled or refused.

* Listing (what ``inspect`` does) grows linearly: for each format the peak memory of ``inspect --json``
  on 4N tensors is compared with N tensors measured in the same run; duplicate searches finish on
  inputs where a quadratic search would take minutes. No test asserts a time (that is bench/'s).
* A million tiny tensors (an MXNet ``.params`` file, built directly) open and list within a fixed
  memory budget, in a forked child.
* Counts past ``MAX_TENSORS`` are refused before anything is allocated for them.
* 64 KiB keys work in every writable format; longer ones are refused where the format caps them.
* Deeply nested architecture and graph JSON is refused with a clear error, never a crash.
"""

from __future__ import annotations

import gc
import json
import struct
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import error_line, invoke
from fuzz.harness import isolated

from modelsurgeon.cli.errors import ExitCode
from modelsurgeon.core.binding import open_checkpoint, read_graph_file
from modelsurgeon.core.errors import CheckpointError, ModelSurgeonError
from modelsurgeon.core.formats.base import MAX_TENSORS, TensorInfo

RATIO = 6.0


# -- building many-tensor files fast ----------------------------------------------------------------

def params_file(path: Path, count: int, name_length: int = 10) -> Path:
    """An MXNet .params file of ``count`` one-element float32 tensors, laid out with numpy (fast)."""
    record = np.dtype([("magic", "<u4"), ("stype", "<i4"), ("ndim", "<i4"), ("dim", "<i8"), ("dev_type", "<i4"),
                       ("dev_id", "<i4"), ("flag", "<i4"), ("data", "<f4")])
    records = np.zeros(count, record)
    records["magic"], records["ndim"], records["dim"], records["dev_type"] = 0xF993FAC9, 1, 1, 1
    records["data"] = np.arange(count, dtype=np.float32)
    width = max(name_length, len(f"p{count}.w"))
    names = np.zeros(count, np.dtype([("length", "<u8"), ("name", f"S{width}")]))
    names["length"] = width
    names["name"] = [f"p{i}.w".rjust(width, "0").encode() for i in range(count)]
    with open(path, "wb") as handle:
        handle.write(struct.pack("<QQQ", 0x112, 0, count))
        handle.write(records.tobytes())
        handle.write(struct.pack("<Q", count))
        handle.write(names.tobytes())
    return path


def safetensors_file(path: Path, count: int) -> Path:
    parts = [f'"p{i:07d}.w":{{"dtype":"F32","shape":[1],"data_offsets":[{4 * i},{4 * i + 4}]}}' for i in range(count)]
    header = ("{" + ",".join(parts) + "}").encode()
    header += b" " * (-len(header) % 8)
    path.write_bytes(struct.pack("<Q", len(header)) + header + np.arange(count, dtype="<f4").tobytes())
    return path


def h5_file(path: Path, count: int) -> Path:
    from modelsurgeon.core.formats.h5 import write_h5
    one = np.zeros(1, np.float32)
    write_h5(str(path), "structural", [TensorInfo(f"p{i:07d}.w", (1,), np.dtype(np.float32)) for i in range(count)],
             lambda info: one)
    return path


def npz_file(path: Path, count: int, duplicate: bool = False) -> Path:
    one = np.zeros(1, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the deliberate duplicate
        with zipfile.ZipFile(path, "w") as archive:
            for i in range(count):
                with archive.open(f"p{i:07d}.w.npy", "w") as handle:
                    np.lib.format.write_array(handle, one)
            if duplicate:
                archive.writestr("p0000000.w.npy", b"")
    return path


def _inspect_exit_code(path: Path) -> int:
    result = invoke("inspect", path, "--json")
    assert json.loads(result.stdout)["summary"]["tensors"] > 0
    return result.exit_code


def _listing_peak(path: Path) -> int:
    """Peak traced bytes of opening and listing ``path`` (tracemalloc is slow: used on small files)."""
    gc.collect()
    tracemalloc.start()
    with open_checkpoint(str(path)) as reader:
        assert reader.tensors
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


@pytest.mark.parametrize("fmt,build,small", [
    ("mxnet-params", params_file, 6_000),
    ("safetensors", safetensors_file, 6_000),
    ("npz", npz_file, 1_500),
    ("modelsurgeon-h5", h5_file, 600),
])
def test_listing_memory_grows_linearly(fmt, build, small, tmp_path):
    """Listing memory for 4N tensors against N (time is a benchmark's business: bench/, not tests)."""
    sizes = {"tiny": small // 4, "tiny4": small}
    paths = {label: build(tmp_path / f"{label}.{fmt}", count) for label, count in sizes.items()}
    assert _inspect_exit_code(paths["tiny4"]) == 0
    memory_small, memory_big = _listing_peak(paths["tiny"]), _listing_peak(paths["tiny4"])
    assert memory_big / memory_small <= RATIO, f"{fmt}: 4x the tensors took {memory_big / memory_small:.1f}x memory"
    assert memory_big / small < 4096, f"{fmt}: {memory_big / small:.0f} bytes per listed tensor"


def _open_and_count(path: str) -> str:
    import resource
    with open_checkpoint(path) as reader:
        count = len(reader.tensors)
        first = reader.read(next(iter(reader.tensors)))
        last = reader.read(list(reader.tensors)[-1])
    return f"{count} {float(first[0])} {float(last[0])} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}"


def test_a_million_tiny_tensors_are_listed_within_a_memory_budget(tmp_path):
    """1,000,000 tensors: opened, listed and read in a child allowed 2 GiB more than this process."""
    path = params_file(tmp_path / "million.params", 1_000_000)
    outcome = isolated(_open_and_count, str(path), time_limit=120, memory=2 << 30)
    assert outcome.kind == "ok", outcome
    count, first, last, _ = outcome.detail.split()
    assert (int(count), float(first), float(last)) == (1_000_000, 0.0, 999_999.0)


def test_counts_past_the_limit_are_refused_before_allocating(tmp_path):
    claim = MAX_TENSORS + 1
    params = tmp_path / "claims.params"
    with open(params, "wb") as handle:  # enough bytes that the claim is not refused as truncation
        handle.write(struct.pack("<QQQ", 0x112, 0, claim))
        handle.truncate(24 + 4 * claim + 8)
    tracemalloc.start()
    with pytest.raises(CheckpointError, match=f"claims {claim} arrays, more than the {MAX_TENSORS}"):
        open_checkpoint(str(params))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 16 << 20
    header = ("{" + ",".join(['"a":{"data_offsets":[0,0]}'] * (MAX_TENSORS + 1)) + "}").encode()
    sft = tmp_path / "claims.safetensors"
    sft.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(CheckpointError, match=f"more than {MAX_TENSORS} tensors"):
        open_checkpoint(str(sft))
    assert invoke("inspect", params, code=ExitCode.BAD_CHECKPOINT)


def test_duplicate_members_are_found_in_linear_time(tmp_path):
    """A zip with one duplicate among many members (checking it with list.count was quadratic)."""
    def refused(path):
        with pytest.raises(CheckpointError, match="duplicate members 'p0000000.w.npy'"):
            open_checkpoint(str(path))

    small = npz_file(tmp_path / "small.npz", 4_000, duplicate=True)
    big = npz_file(tmp_path / "big.npz", 16_000, duplicate=True)
    refused(small)
    refused(big)  # 16,000 members: a quadratic search (list.count per member) would take minutes


def test_duplicate_keras_layer_names_are_found_in_linear_time(tmp_path):
    """A Keras file listing a layer twice, last (the search for it was quadratic)."""
    import h5py

    def refused(path):
        with pytest.raises(CheckpointError, match="lists 'layer0' twice"):
            open_checkpoint(str(path))

    paths = []
    for count in (40_000, 160_000):
        path = tmp_path / f"layers{count}.h5"
        with h5py.File(path, "w", libver="latest") as f:  # attributes over 64 KiB need the newer format
            f.attrs["layer_names"] = np.array([f"layer{i}".encode() for i in range(count)] + [b"layer0"])
        paths.append(path)
    refused(paths[0])
    refused(paths[1])  # 160,000 names: a quadratic search would take minutes


# -- long names -------------------------------------------------------------------------------------

KIB64 = 64 << 10


def _long_key_file(path: Path, key: str) -> Path:
    from modelsurgeon.core.formats.h5 import write_h5
    write_h5(str(path), "structural", [TensorInfo(k, (2,), np.dtype(np.float32)) for k in (key, "short.bias")],
             lambda info: np.full(2, len(info.key), np.float32))
    return path


@pytest.mark.parametrize("suffix", [".h5", ".safetensors", ".params"])
def test_64_kib_keys_round_trip_through_the_cli(suffix, tmp_path):
    """A 65,536-byte key converts to every format that can hold it, and reads back."""
    key = "k" * (KIB64 - len(".weight")) + ".weight"
    source = _long_key_file(tmp_path / "long.h5", key)
    output = tmp_path / f"out{suffix}"
    invoke("convert", source, "-o", output)
    with open_checkpoint(str(output)) as reader:
        assert sorted(reader.keys()) == sorted([key, "short.bias"])
        assert float(reader.read(key)[0]) == len(key)
    document = json.loads(invoke("inspect", output, "--json").stdout)
    assert sorted(t["key"] for t in document["tensors"]) == sorted([key, "short.bias"])


@pytest.mark.parametrize("suffix,length,limit", [(".params", KIB64 + 1, "at most 65536 bytes"),
                                                 (".npz", KIB64, "at most 65531 bytes")])
def test_keys_too_long_for_a_format_are_refused_before_writing(suffix, length, limit, tmp_path):
    """MXNet's names (our reader's cap) and zip member names (65,535 bytes) have limits: exit 6, nothing written."""
    source = _long_key_file(tmp_path / "long.h5", "k" * (length - len(".weight")) + ".weight")
    output = tmp_path / "out" / f"out{suffix}"
    output.parent.mkdir()
    message = error_line(invoke("convert", source, "-o", output, code=ExitCode.INVALID))
    assert f"is {length} bytes long" in message and limit in message, message
    assert list(output.parent.iterdir()) == []


def test_names_past_the_mxnet_limit_are_refused_clearly(tmp_path):
    from modelsurgeon.core.formats.mxnet import MAX_NAME_BYTES
    path = tmp_path / "long.params"
    name = b"n" * (MAX_NAME_BYTES + 1)
    record = struct.pack("<IIiqiiif", 0xF993FAC9, 0, 1, 1, 1, 0, 0, 1.0)
    path.write_bytes(struct.pack("<QQQ", 0x112, 0, 1) + record + struct.pack("<QQ", 1, len(name)) + name)
    with pytest.raises(CheckpointError, match=f"name #0 is {MAX_NAME_BYTES + 1} bytes long"):
        open_checkpoint(str(path))
    assert "bytes long" in error_line(invoke("inspect", path, code=ExitCode.BAD_CHECKPOINT))


# -- deep nesting -----------------------------------------------------------------------------------

def _nested_architecture(depth: int) -> dict:
    node = {"type": "Dense", "config": {"units": 2, "in_units": 2}}
    for _ in range(depth):
        node = {"type": "HybridSequential", "config": {}, "children": [["0", node]]}
    return {"format": "modelsurgeon-architecture", "version": 1, "root": node, "inputs": []}


def _deep_json(depth: int) -> str:
    return '{"format": "modelsurgeon-architecture", "version": 1, "root": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("depth", [100, 10_000])
def test_deeply_nested_architectures_are_refused(depth, tmp_path):
    """Too deep to build (100 levels > 64) or too deep to parse (10,000): exit 4/6, one line, no crash."""
    import h5py

    from modelsurgeon.core.formats.h5 import write_h5
    path = tmp_path / "deep.h5"
    write_h5(str(path), "structural", [TensorInfo("0.weight", (2, 2), np.dtype(np.float32))],
             lambda info: np.zeros((2, 2), np.float32))
    text = json.dumps(_nested_architecture(depth)) if depth < 500 else _deep_json(depth)
    with h5py.File(path, "a") as f:
        f.create_group("meta").create_dataset("architecture", data=text, dtype=h5py.string_dtype())
    run = invoke("run", path, "--random-input", "1,2", "-o", tmp_path / "y.npy", code=None)
    assert run.exit_code in (ExitCode.BAD_CHECKPOINT, ExitCode.INVALID)
    message = error_line(run)
    assert "deeper than 64 levels" in message or "nested too deeply" in message, message
    for args in (["inspect", path], ["inspect", path, "--tree"], ["convert", path, "-o", tmp_path / "c.safetensors"]):
        result = invoke(*args, code=None)
        assert result.exit_code in (0, ExitCode.BAD_CHECKPOINT, ExitCode.INVALID), result.stderr
        if result.exit_code:
            error_line(result)


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_graph_json_is_refused(depth, tmp_path):
    path = tmp_path / "deep-symbol.json"
    path.write_text('{"nodes": [' + "[" * depth + "]" * depth + '], "heads": [[0, 0, 0]]}')
    with pytest.raises(ModelSurgeonError):
        read_graph_file(str(path))
    nodes = tmp_path / "deep2-symbol.json"
    nodes.write_text('{"nodes": [{"op": "null", "name": "data", "attrs": ' + '{"a":' * depth + "1" + "}" * depth
                     + '}], "heads": [[0, 0, 0]]}')
    with pytest.raises(ModelSurgeonError):
        read_graph_file(str(nodes))


def test_deeply_nested_safetensors_metadata_is_refused(tmp_path):
    from modelsurgeon.core.formats.safetensors_io import ST_ARCHITECTURE, write_safetensors
    path = tmp_path / "deep.safetensors"
    write_safetensors(str(path), [TensorInfo("w", (1,), np.dtype(np.float32))], lambda i: np.zeros(1, np.float32),
                      metadata={ST_ARCHITECTURE: _deep_json(50_000)})
    with pytest.raises(CheckpointError, match="not valid JSON|too deeply"):
        open_checkpoint(str(path))
    error_line(invoke("inspect", path, code=ExitCode.BAD_CHECKPOINT))
