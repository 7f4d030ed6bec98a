"""Promise 1 of docs/reliability.md: damaged, truncated and random files give our documented error.

Every reader is fuzzed: our HDF5 checkpoints (structural and named), Keras HDF5 (Keras 3 and
legacy), MXNet ``.params``, ``-symbol.json`` (through ``read_graph_file`` and ``SymbolBlock``),
safetensors and MXNet/NumPy ``.npz``. Each input runs in a forked child (``tests/fuzz/harness.py``)
with a time limit and a memory budget, so a segfault in the HDF5 C library, a hang or an
allocation sized by an unchecked field fails the test, with the input that caused it, instead of
killing pytest. The only acceptable endings are success and a ``ModelSurgeonError``.

Budgets are fixed (seeded mutations, hypothesis with ``derandomize=True``), so every run tries
the same inputs; ``tests/fuzz_corpus/`` keeps the inputs that once broke something.
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import numpy as np
import pytest
from fuzz.harness import (
    CORPUS,
    FIXTURES,
    SAMPLES,
    architecture_text,
    graph_file,
    isolated,
    mutations,
    open_and_read,
    write,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=20, derandomize=True, deadline=None, database=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])


def _safetensors_sample(directory: Path) -> bytes:
    from modelsurgeon.core.formats.base import TensorInfo
    from modelsurgeon.core.formats.safetensors_io import write_safetensors
    arrays = {"conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
              "conv.bias": np.array([1, 2], np.float16), "steps": np.array([7], np.int64),
              "mask": np.array([True, False, True])}
    infos = [TensorInfo(key, a.shape, a.dtype) for key, a in arrays.items()]
    path = directory / "sample.safetensors"
    write_safetensors(str(path), infos, lambda info: arrays[info.key], metadata={"origin": "fuzz"})
    return path.read_bytes()


#: name -> (file extension, how to get the seed file's bytes, target, bytes kept intact at the start,
#:          seeded mutations tried)
def _targets(directory: Path) -> dict[str, tuple[str, bytes, object, int, int]]:
    def read(path: Path) -> bytes:
        return path.read_bytes()

    return {
        "h5-structural": (".h5", read(SAMPLES / "cnn.h5"), open_and_read, 8, 50),
        "h5-named": (".h5", read(SAMPLES / "cnn-named.h5"), open_and_read, 8, 40),
        "keras3": (".h5", read(FIXTURES / "peers" / "keras3_cnn.weights.h5"), open_and_read, 8, 40),
        "keras-legacy": (".h5", read(FIXTURES / "peers" / "keras3_cnn_legacy.h5"), open_and_read, 8, 25),
        "tf-keras": (".h5", read(FIXTURES / "peers" / "tf_keras_cnn_weights.h5"), open_and_read, 8, 20),
        "mxnet-params": (".params", read(FIXTURES / "mxnet" / "convbn" / "convbn-0000.params"), open_and_read, 8, 100),
        "npz": (".npz", read(FIXTURES / "mxnet" / "dtypes" / "names.npz"), open_and_read, 4, 100),
        "safetensors": (".safetensors", _safetensors_sample(directory), open_and_read, 0, 100),
        "symbol-json": ("-symbol.json", read(FIXTURES / "mxnet" / "convbn" / "convbn-symbol.json"), graph_file, 0, 100),
        "architecture": (".json", json.dumps(_architecture_sample()).encode(), architecture_text, 0, 100),
    }


def _architecture_sample() -> dict:
    from modelsurgeon.core.engine import architecture as arch
    from modelsurgeon.core.engine import nn
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3, in_channels=3), nn.BatchNorm(in_channels=4), nn.Activation("relu"),
            nn.MaxPool2D(2), nn.Flatten(), nn.Dense(10, in_units=36))
    return arch.describe(net)


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, bytes, object, int, int]]:
    directory = tmp_path_factory.mktemp("seeds")
    found = _targets(directory)
    for name, (ext, data, function, _, _) in found.items():
        # warm up in this process (the seeds are valid): every forked child then starts with the
        # modules imported and the code paths loaded, so a case costs milliseconds, not an import
        if function is architecture_text:
            function(data)
        else:
            function(write(directory, f"warm-{name}{ext}", data))
    return found


TARGETS = ["h5-structural", "h5-named", "keras3", "keras-legacy", "tf-keras", "mxnet-params", "npz",
           "safetensors", "symbol-json", "architecture"]


def _run(target, directory: Path, name: str, data: bytes):
    ext, _, function, _, _ = target
    if function is architecture_text:
        return isolated(function, data)
    return isolated(function, write(directory, f"input{ext}", data))


def _check(outcomes: list[tuple[str, object]], kind: str, directory: Path, target) -> None:
    bad = [(label, outcome) for label, outcome in outcomes if not outcome.acceptable]
    assert not bad, f"{kind}: {len(bad)} of {len(outcomes)} inputs ended badly, e.g. " + "; ".join(
        f"[{label}] {outcome}" for label, outcome in bad[:3])


@pytest.mark.parametrize("name", TARGETS)
def test_seed_file_reads(targets, name, tmp_path):
    """The undamaged seed of every fuzz target reads cleanly (else the fuzzing proves nothing)."""
    outcome = _run(targets[name], tmp_path, name, targets[name][1])
    assert outcome.kind == "ok", outcome


@pytest.mark.parametrize("name", TARGETS)
def test_seeded_mutations_give_only_documented_errors(targets, name, tmp_path):
    """Byte sets, bit flips, runs, truncations and splices: only success or a ModelSurgeonError."""
    target = targets[name]
    _, data, _, protect, count = target
    outcomes = [(label, _run(target, tmp_path, name, damaged))
                for label, damaged in mutations(data, seed=sum(map(ord, name)), count=count, protect=protect)]
    _check(outcomes, name, tmp_path, target)
    errors = sum(1 for _, o in outcomes if o.kind == "error")
    assert errors, f"{name}: no mutation was refused; the fuzzing does not reach the reader"


@pytest.mark.parametrize("name", TARGETS)
def test_truncation_at_many_offsets(targets, name, tmp_path):
    """A file cut anywhere (every 1/40th of its length, and its first and last bytes) is refused."""
    target = targets[name]
    data = target[1]
    cuts = sorted({0, 1, 7, 8, 9, 16, len(data) - 1, *range(0, len(data), max(1, len(data) // 40))})
    outcomes = [(f"cut {cut}", _run(target, tmp_path, name, data[:cut])) for cut in cuts if cut < len(data)]
    _check(outcomes, name, tmp_path, target)
    assert all(o.kind == "error" for label, o in outcomes if label != "cut 0" or name != "architecture"), \
        [(label, str(o)) for label, o in outcomes if o.kind != "error"][:5]


@pytest.mark.parametrize("name", TARGETS)
@FUZZ
@given(data=st.data())
def test_property_mutations(targets, name, tmp_path, data):
    """hypothesis chooses the edits (a fixed, derandomized set of examples per run)."""
    target = targets[name]
    seed = target[1]
    edits = data.draw(st.lists(st.tuples(st.integers(0, len(seed) - 1), st.integers(0, 255)), min_size=1,
                               max_size=12), label="edits")
    cut = data.draw(st.one_of(st.none(), st.integers(1, len(seed))), label="cut")
    damaged = bytearray(seed)
    for at, value in edits:
        damaged[at] = value
    outcome = _run(target, tmp_path, name, bytes(damaged[:cut]))
    assert outcome.acceptable, f"edits={edits} cut={cut}: {outcome}"


_MAGIC = {
    ".h5": b"\x89HDF\r\n\x1a\n",
    ".params": struct.pack("<QQ", 0x112, 0),
    ".npz": b"PK\x03\x04",
    ".safetensors": b"",
    "-symbol.json": b'{"nodes": [',
    ".json": b'{"format": "modelsurgeon-architecture", "version": 1, "root": ',
}


@pytest.mark.parametrize("ext", list(_MAGIC))
def test_random_bytes_behind_a_valid_magic(ext, tmp_path):
    """Random garbage after each format's magic number (so the right reader is chosen)."""
    rng = random.Random(ext)
    outcomes = []
    for number in range(30):
        size = rng.choice((1, 8, 64, 512, 4096))
        body = bytes(rng.randrange(256) for _ in range(size))
        if ext == ".safetensors":  # a plausible header length, then garbage
            body = struct.pack("<Q", rng.randrange(2, size + 2)) + b"{" + body
        data = _MAGIC[ext] + body
        if ext == ".json":
            outcomes.append((f"#{number}", isolated(architecture_text, data)))
        elif ext == "-symbol.json":
            outcomes.append((f"#{number}", isolated(graph_file, write(tmp_path, f"r{ext}", data))))
        else:
            outcomes.append((f"#{number}", isolated(open_and_read, write(tmp_path, f"r{ext}", data))))
    bad = [(label, str(o)) for label, o in outcomes if not o.acceptable]
    assert not bad, bad[:3]


def _graph_variants() -> list[tuple[str, object]]:
    """Structured JSON damage to a real MXNet graph: wrong types, huge numbers, deep nesting."""
    base = json.loads((FIXTURES / "mxnet" / "convbn" / "convbn-symbol.json").read_text())
    weight = next(i for i, n in enumerate(base["nodes"]) if n["op"] == "null" and n["name"] != "data")
    conv = next(i for i, n in enumerate(base["nodes"]) if n["op"] == "Convolution")
    out = []
    for value in ["(1e999,)", "(-1e999,)", "(nan,)", "(1+2j,)", "('a',)", "[" * 5000, "(" * 300 + ")" * 300,
                  "(" + "9" * 5000 + ",)", "(" + ",".join(["2"] * 100) + ")", "{1: 2}", "()", "", "None"]:
        doc = json.loads(json.dumps(base))
        doc["nodes"][weight].setdefault("attrs", {})["__shape__"] = value
        out.append((f"__shape__={value[:20]!r}", doc))
    for value in ["99", "-1", "x", "1e999", "12" * 50]:
        doc = json.loads(json.dumps(base))
        doc["nodes"][weight].setdefault("attrs", {})["__dtype__"] = value
        out.append((f"__dtype__={value[:20]!r}", doc))
    for key, value in [("kernel", "(1e999, 1e999)"), ("kernel", "(99999999999, 3)"), ("num_filter", "-3"),
                       ("num_filter", "1e30"), ("stride", "(0, 0)"), ("pad", "(-5, -5)"), ("kernel", "[" * 500),
                       ("dilate", "(" + "9" * 4000 + ", 1)"), ("num_group", "0"), ("no_bias", "maybe")]:
        doc = json.loads(json.dumps(base))
        doc["nodes"][conv].setdefault("attrs", {})[key] = value
        out.append((f"conv {key}={value[:20]!r}", doc))
    for mutate, label in [(lambda d: d["nodes"][conv].update(inputs=[[conv, 0, 0]]), "self input"),
                          (lambda d: d["nodes"][conv].update(inputs=[[2 ** 70, 0, 0]]), "huge input index"),
                          (lambda d: d["nodes"][conv].update(inputs=[[0, 2 ** 70, 0]]), "huge output index"),
                          (lambda d: d.update(heads=[[len(d["nodes"]) - 1, 0, 2 ** 70]]), "huge version"),
                          (lambda d: d["nodes"][conv].update(op="__import__"), "op __import__"),
                          (lambda d: d["nodes"][conv].update(op="eval"), "op eval"),
                          (lambda d: d["nodes"][conv].update(name="\x1b[31m" * 100), "escape name"),
                          (lambda d: d.update(nodes=d["nodes"] * 200), "repeated nodes"),
                          (lambda d: d.update(arg_nodes="x", node_row_ptr=None), "bad bookkeeping")]:
        doc = json.loads(json.dumps(base))
        mutate(doc)
        out.append((label, doc))
    return out


@pytest.mark.parametrize("label,document", _graph_variants(), ids=lambda x: x if isinstance(x, str) else "")
def test_structured_graph_damage(label, document, tmp_path):
    """A graph that is valid JSON but lies: only documented errors from read_graph_file and SymbolBlock."""
    path = write(tmp_path, "g-symbol.json", json.dumps(document).encode())
    outcome = isolated(graph_file, path)
    assert outcome.acceptable, f"{label}: {outcome}"


# -- the regression corpus ---------------------------------------------------------------------------

def _corpus() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.is_file() and p.name not in ("README.md", "expected.json"))


def test_corpus_is_documented():
    expected = json.loads((CORPUS / "expected.json").read_text())
    names = {p.name for p in _corpus()}
    assert names == set(expected), (sorted(names - set(expected)), sorted(set(expected) - names))
    readme = (CORPUS / "README.md").read_text()
    assert all(name in readme for name in names), sorted(n for n in names if n not in readme)


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: p.name)
def test_corpus_inputs_end_as_documented(path):
    """Each file that once broke a reader now ends as ``expected.json`` says (a message fragment or ok)."""
    import re
    expected = json.loads((CORPUS / "expected.json").read_text())[path.name]
    function = graph_file if path.name.endswith("-symbol.json") else open_and_read
    if path.suffix == ".json" and not path.name.endswith("-symbol.json"):
        outcome = isolated(architecture_text, path.read_bytes())
    else:
        # the HDF5 validator's no-progress watchdog: short where the stall is the documented outcome (it
        # always fires), generous elsewhere so that a busy machine cannot turn a slow walk into a refusal
        stall = "no progress" in expected
        outcome = isolated(function, str(path), validate_timeout=1.0 if stall else 15.0)
    assert outcome.acceptable, outcome
    if expected == "ok":
        assert outcome.kind == "ok", outcome
    else:
        assert outcome.kind == "error" and re.search(expected, outcome.detail), (expected, str(outcome))


def _architecture_variants() -> list[tuple[str, dict]]:
    """Layer configs that are valid JSON but nonsense: zero, negative, huge, wrong types."""
    cases = [("Conv2D", {"channels": 8, "kernel_size": 3, "groups": 0, "in_channels": 3}),
             ("Conv2D", {"channels": 0, "kernel_size": 3, "in_channels": 3}),
             ("Conv2D", {"channels": 8, "kernel_size": -3, "in_channels": 3}),
             ("Conv2D", {"channels": 8, "kernel_size": [3, 3, 3, 3], "in_channels": 3}),
             ("Conv2D", {"channels": 8, "kernel_size": 3, "strides": 0, "in_channels": 3}),
             ("Conv2D", {"channels": 8, "kernel_size": 3, "dilation": -1, "in_channels": 3}),
             ("Conv2D", {"channels": 2 ** 70, "kernel_size": 3, "in_channels": 3}),
             ("Dense", {"units": -4, "in_units": 3}), ("Dense", {"units": 0, "in_units": 3}),
             ("Dense", {"units": 1e30, "in_units": 3}), ("Dense", {"units": "4", "in_units": 3}),
             ("Dense", {"units": 4, "in_units": 2 ** 70}), ("Dense", {"units": True, "in_units": 3}),
             ("Dense", {"units": 4, "activation": {"x": 1}}), ("Dense", {"units": 4, "dtype": "float128"}),
             ("Dense", {"units": 4, "in_units": 3, "dtype": "01f4"}),  # numpy parses this with literal_eval
             ("Dense", {"units": 4, "in_units": 3, "dtype": "(4000,4000)f4"}),
             ("Dense", {"units": 4, "in_units": 3, "dtype": "f4,f4"}),
             ("BatchNorm", {"axis": 99, "in_channels": 4}), ("BatchNorm", {"momentum": "fast", "in_channels": 4}),
             ("MaxPool2D", {"pool_size": 0}), ("MaxPool2D", {"pool_size": [2, 2], "strides": [0, 0]}),
             ("AvgPool2D", {"pool_size": -2, "padding": -1}), ("Dropout", {"rate": 7}),
             ("Activation", {"activation": None}), ("Flatten", {"extra": 1}),
             ("VGG", {"layers": [1, 1], "filters": [64]}), ("ResNetV1", {"block": "os.system", "layers": [2]}),
             ("SqueezeNet", {"version": "9.9"}), ("MobileNet", {"multiplier": -1.0}),
             ("HybridSequential", {"prefix": "x", "params": None})]
    doc = {"format": "modelsurgeon-architecture", "version": 1, "inputs": []}
    return [(f"{kind} {json.dumps(config)[:50]}", {**doc, "root": {"type": kind, "config": config}})
            for kind, config in cases]


@pytest.mark.parametrize("label,document", _architecture_variants(), ids=lambda x: x if isinstance(x, str) else "")
def test_structured_architecture_damage(label, document):
    """Layer configs that parse but make no sense: only documented errors (or a built model)."""
    outcome = isolated(architecture_text, json.dumps(document).encode())
    assert outcome.acceptable, f"{label}: {outcome}"
