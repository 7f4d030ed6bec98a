"""Issue 19 (reliability, second round), items 8 and 10: work and memory bounded by what was asked.

* Item 8: ``graph`` and graph tracing compute shapes only (core/engine/shapes.py), and a forward
  pass is checked against a memory budget before it runs.
* Item 10: deflated members are inflated piecewise, and values are compared piece by piece
  (core/compare.py).

Memory is the growth of ``ru_maxrss`` in a fresh interpreter, after its imports; nothing is timed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from modelsurgeon.core.errors import CheckpointError

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"


# -- item 10: decompression bombs and value comparison in bounded memory -----------------------------

MIB = 1 << 20

#: Runs in a fresh interpreter: everything imported first, then the peak resident memory grown by the
#: work, in bytes (ru_maxrss is in KiB on Linux), printed last.
_MEASURE = """
import resource, sys, json
from modelsurgeon.cli.main import cli
from modelsurgeon.core import binding as checkpoint, compare
from modelsurgeon.core.formats import h5, mxnet, safetensors_io
import h5py, numpy
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
{work}
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * 1024)
"""


def _peak_growth(work: str) -> int:
    done = subprocess.run([sys.executable, "-c", _MEASURE.format(work=textwrap.dedent(work))],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def _deflated_zeros_npz(path: Path, key: str, nbytes: int) -> Path:
    """An .npz whose one float32 member inflates to ``nbytes`` of zeros, written without holding them."""
    import zipfile
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (nbytes // 4,)})
            block = bytes(16 * MIB)
            for _ in range(nbytes // len(block)):
                member.write(block)
    return path


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    where = tmp_path_factory.mktemp("bombs")
    a = _deflated_zeros_npz(where / "a.npz", "arg:w", 192 * MIB)
    b = _deflated_zeros_npz(where / "b.npz", "arg:w", 192 * MIB)
    return where, a, b


def test_a_deflated_npz_member_is_converted_without_a_second_copy(bombs, tmp_path):
    """Item 10: 192 MiB of zeros in a ~200 KB .npz; convert used to hold it twice."""
    _, a, _ = bombs
    assert a.stat().st_size < 2 * MIB
    out = tmp_path / "out.h5"
    grown = _peak_growth(f"""
        from click.testing import CliRunner
        result = CliRunner().invoke(cli, ['convert', {str(a)!r}, '-o', {str(out)!r}])
        assert result.exit_code == 0, result.output
    """)
    assert grown < 192 * MIB + 100 * MIB, grown / MIB
    from modelsurgeon.core.binding import open_checkpoint
    with open_checkpoint(str(out)) as reader:
        assert reader.tensors["w"].shape == (192 * MIB // 4,)


def test_compare_streams_deflated_npz_members(bombs):
    """Item 10: two deflated members compared piece by piece: far less than one tensor in memory."""
    _, a, b = bombs
    grown = _peak_growth(f"""
        ra, rb = checkpoint.open_checkpoint({str(a)!r}), checkpoint.open_checkpoint({str(b)!r})
        result = compare.compare_tensors(ra, "w", rb, "w")
        assert result.equal and result.size == {192 * MIB // 4}, result
    """)
    assert grown < 100 * MIB, grown / MIB


def test_compare_reads_compressed_hdf5_by_hyperslab(tmp_path):
    """Item 10: a gzip-compressed 128 MiB tensor in our HDF5 format against a plain copy: memory stays
    far below the tensor (it took five times the tensor as float64 copies)."""
    import h5py
    n = 128 * MIB // 4
    values = (np.arange(n, dtype=np.int64) % 7 == 0).astype(np.float32)
    packed = tmp_path / "packed.h5"
    with h5py.File(packed, "w", track_order=True) as f:
        f.attrs["format"], f.attrs["kind"], f.attrs["format_version"] = "modelsurgeon", "structural", np.int64(1)
        group = f.create_group("tensors", track_order=True)
        group.create_dataset("w", data=values, chunks=(MIB,), compression="gzip", compression_opts=1)
    values[12345] = 3.5
    from safetensors.numpy import save_file
    save_file({"w": values}, str(tmp_path / "plain.safetensors"))
    del values
    assert packed.stat().st_size < 16 * MIB
    grown = _peak_growth(f"""
        ra = checkpoint.open_checkpoint({str(packed)!r})
        rb = checkpoint.open_checkpoint({str(tmp_path / "plain.safetensors")!r})
        result = compare.compare_tensors(ra, "w", rb, "w")
        assert not result.equal and result.differing == 1 and result.max_abs_diff == 3.5, result
    """)
    assert grown < 100 * MIB, grown / MIB


class _Arrays:
    """A minimal reader over arrays (no extent, no read_chunks: the read-whole path)."""

    def __init__(self, **arrays):
        from modelsurgeon.core.formats.base import TensorInfo
        self.path, self.arrays = "memory", arrays
        self.tensors = {k: TensorInfo(k, v.shape, v.dtype) for k, v in arrays.items()}

    def read(self, key):
        return self.arrays[key]

    def extent(self, key):
        return None


@pytest.mark.parametrize("a, b, equal, worst, differing", [
    ([1.0, np.nan, 3.0], [1.0, np.nan, 3.0], True, 0.0, 0),
    ([1.0, np.nan, 3.0], [1.0, np.nan, 5.0], False, 2.0, 1),  # NaN facing NaN is equal
    ([1.0, np.nan, 3.0], [1.0, 2.0, 3.0], False, float("nan"), 1),
    ([np.inf, 1.0], [np.inf, 1.0], True, 0.0, 0),
])
def test_compare_semantics(a, b, equal, worst, differing):
    from modelsurgeon.core.compare import compare_tensors
    result = compare_tensors(_Arrays(w=np.array(a)), "w", _Arrays(w=np.array(b)), "w", chunk_bytes=8)
    assert result.equal is equal and result.differing == differing
    assert (np.isnan(worst) and np.isnan(result.max_abs_diff)) or result.max_abs_diff == worst


def test_compare_agrees_across_readers_and_piece_sizes(tmp_path):
    """Every piece size and every reader path (extent, hyperslab, inflating, read whole) gives the same
    answer as a whole-array comparison."""
    from modelsurgeon.core.binding import open_checkpoint
    from modelsurgeon.core.compare import compare_tensors
    rng = np.random.default_rng(10)
    x = rng.standard_normal((7, 5, 3)).astype(np.float32)
    y = x.copy()
    y[3, 2, 1] += 0.25
    y[6, 4, 2] -= 1.5
    from cli_helpers import invoke
    from safetensors.numpy import save_file
    save_file({"w": x}, str(tmp_path / "x.safetensors"))
    np.savez_compressed(tmp_path / "y.npz", **{"arg:w": y})
    invoke("convert", tmp_path / "x.safetensors", "-o", tmp_path / "x.h5")
    save_file({"w": y, "pad": np.zeros(300, np.float32)}, str(tmp_path / "y.safetensors"))
    invoke("convert", tmp_path / "y.safetensors", "-o", f"{tmp_path / 'shards'}/", "--format", "h5",
           "--max-shard-size", "1KB")
    expected = float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64))))
    with open_checkpoint(str(tmp_path / "x.h5")) as h, open_checkpoint(str(tmp_path / "y.npz")) as z, \
            open_checkpoint(str(tmp_path / "x.safetensors")) as s, \
            open_checkpoint(str(tmp_path / "shards" / "model.h5.index.json")) as sharded:
        assert sharded.format.endswith("-sharded")
        for chunk in (4, 12, 60, 64, 1000, 1 << 20):
            for ra, rb in ((h, z), (z, s), (s, _Arrays(w=y)), (_Arrays(w=y), h), (sharded, h)):
                result = compare_tensors(ra, "w", rb, "w", chunk_bytes=chunk)
                assert result.size == x.size
                assert (result.equal, result.differing, result.max_abs_diff) == (False, 2, expected), (chunk, ra, rb)
        assert compare_tensors(h, "w", z, "w", chunk_bytes=12).differing == 2
        assert compare_tensors(h, "w", s, "w", chunk_bytes=12).equal


# -- item 8: work bounded by declared shapes ---------------------------------------------------------

def _cnn_with(tmp_path: Path, name: str, input_shape=None, edit=None) -> Path:
    """sample_models/cnn.h5 with its recorded input shape or its architecture changed."""
    import copy

    from modelsurgeon.core.binding import open_checkpoint
    from modelsurgeon.core.formats.h5 import write_h5
    with open_checkpoint(str(SAMPLES / "cnn.h5")) as reader:
        document = copy.deepcopy(reader.architecture)
        if input_shape is not None:
            document["inputs"][0]["shape"] = list(input_shape)
        if edit is not None:
            edit(document)
        path = tmp_path / name
        write_h5(str(path), reader.kind, list(reader.tensors.values()), lambda info: reader.read(info.key),
                 architecture=document)
    return path


def _first_conv(document) -> dict:
    return document["root"]["children"][0][1]["children"][0][1]["config"]


def _graph_with(tmp_path: Path, name: str, data_shape, edit=None) -> Path:
    graph = json.loads((SAMPLES / "cnn-symbol.json").read_text())
    for node in graph["nodes"]:
        if node["name"] == "data":
            node.setdefault("attrs", {})["__shape__"] = str(tuple(data_shape))
        if edit is not None:
            edit(node)
    path = tmp_path / name
    path.write_text(json.dumps(graph))
    return path


def test_graph_of_a_huge_declared_input_allocates_nothing_large(tmp_path):
    """Item 8: an architecture recording input [2000, 3, 224, 224] took 6.2 GB in `graph`."""
    path = _cnn_with(tmp_path, "big.h5", (2000, 3, 224, 224))
    out = tmp_path / "big.html"
    grown = _peak_growth(f"""
        from click.testing import CliRunner
        result = CliRunner().invoke(cli, ['graph', {str(path)!r}, '-o', {str(out)!r}, '--json'])
        assert result.exit_code == 0, result.output
    """)
    assert grown < 100 * MIB, grown / MIB
    assert "2000" in out.read_text() and "224" in out.read_text()


@pytest.mark.parametrize("case", ["symbol input (64,3,1024,1024)", "pooling padding 100000"])
def test_graph_of_a_huge_symbol_allocates_nothing_large(tmp_path, case):
    """Item 8: a 9 KB -symbol.json with input (64, 3, 1024, 1024) took 4.1 GB in `graph`; pooling
    padding 100000 never finished."""
    def pad(node):
        if node["op"] == "Pooling":
            node["attrs"]["pad"] = "(100000, 100000)"
    shape = (64, 3, 1024, 1024) if case.startswith("symbol") else (1, 3, 32, 32)
    path = _graph_with(tmp_path, "big-symbol.json", shape, pad if "pooling" in case else None)
    out = tmp_path / "big.html"
    grown = _peak_growth(f"""
        from click.testing import CliRunner
        result = CliRunner().invoke(cli, ['graph', {str(path)!r}, '-o', {str(out)!r}])
        assert result.exit_code == 0, result.output
    """)
    assert grown < 100 * MIB, grown / MIB
    assert ("1024" if case.startswith("symbol") else "100016") in out.read_text()


def test_shapes_only_tracing_matches_real_execution():
    """Every operator's shape function gives the shape its kernel produces (sample models and zoo)."""
    from modelsurgeon.core.binding import model_from_reader, open_checkpoint
    from modelsurgeon.core.engine import budget, shapes  # noqa: F401
    from modelsurgeon.core.engine.symbol import tracing
    models = []
    for name, shape in (("cnn.h5", (2, 3, 32, 32)), ("cnn-named.h5", (2, 3, 32, 32)), ("mlp.h5", None)):
        with open_checkpoint(str(SAMPLES / name)) as reader:
            model = model_from_reader(reader)
            recorded = getattr(model, "_input_specs", None)
            models.append((model, shape or tuple(recorded[0][0])))
    from modelsurgeon.core.engine.model_zoo.vision import get_model
    for zoo, shape in (("resnet18_v1", (1, 3, 64, 64)), ("squeezenet1.1", (1, 3, 224, 224)),
                       ("mobilenet0.25", (1, 3, 64, 64))):
        net = get_model(zoo, classes=7)
        net.initialize()
        net(np.zeros(shape, np.float32))
        models.append((net, shape))
    for model, shape in models:
        executed = []  # every operator's real result, computed by its kernel
        with tracing() as tracer:
            record = tracer.apply
            # called only inside this `with`, in this iteration
            tracer.apply = lambda *a, **k: executed.append(record(*a, **k)) or executed[-1]  # noqa: B023
            out = model(tracer.input("data", np.zeros(shape, np.float32)))
            real, _ = tracer.graph([out])
        graph, _ = budget.trace_shapes(model, shape)
        assert [n.op for n in graph.nodes] == [n.op for n in real.nodes]
        estimate = budget.check_forward(model, shape, max_memory=1 << 40)
        traced = [estimate.shapes[n.name] for n in graph.nodes if not n.is_variable]
        assert traced == [tuple(s.shape) for s in executed if s.node in {i for i, n in enumerate(tracer.nodes)
                                                                          if n.name in estimate.shapes}], model
        assert len(traced) == len([n for n in real.nodes if not n.is_variable]) > 3


@pytest.mark.parametrize("case", ["input 2000", "conv padding 4000", "pooling padding 9000"])
def test_a_forward_pass_over_the_budget_is_refused_naming_the_layer(tmp_path, case):
    """Item 8: `run` took 7.3 GB (input [2000,3,224,224]) and 4 GB (conv padding 4000); check_forward
    computes the peak from the shapes first and refuses above max_memory (exit 4)."""
    from modelsurgeon.core.binding import model_from_reader, open_checkpoint
    from modelsurgeon.core.engine import budget, shapes  # noqa: F401
    from modelsurgeon.core.errors import ResourceLimitError
    if case == "input 2000":
        path, shape = _cnn_with(tmp_path, "m.h5", (2000, 3, 224, 224)), (2000, 3, 224, 224)
    elif case == "conv padding 4000":
        path = _cnn_with(tmp_path, "m.h5", edit=lambda d: _first_conv(d).update(padding=[4000, 4000]))
        shape = (1, 3, 32, 32)
    else:
        path = _cnn_with(tmp_path, "m.h5", edit=lambda d: d["root"]["children"][0][1]["children"][2][1]["config"]
                         .update(padding=[9000, 9000]))
        shape = (1, 3, 32, 32)
    with open_checkpoint(str(path)) as reader:
        model = model_from_reader(reader)
    # the layer named is the block whose output makes the peak: features.0 (conv + relu), or the
    # convolution after the padded pooling
    layer = "features.3" if "pooling" in case else "features.0"
    with pytest.raises(ResourceLimitError, match=rf"m\.h5: a forward pass on input .* needs about .* \(layer "
                                                 rf"'{layer}(\.\w+)?' \(operator \w+\) outputs .*\), more than the "
                                                 r"memory budget of 2\.0 GiB"):
        budget.check_forward(model, shape, max_memory=2 << 30, source=str(path))
    assert issubclass(ResourceLimitError, CheckpointError)  # exit 4
    if case == "input 2000":  # the same model on a modest input passes
        assert budget.check_forward(model, (1, 3, 32, 32), max_memory=1 << 30).peak < 1 << 20


def test_an_input_alone_over_the_budget_is_refused_before_tracing():
    from modelsurgeon.core.engine import budget, shapes  # noqa: F401
    from modelsurgeon.core.errors import ResourceLimitError
    with pytest.raises(ResourceLimitError, match=r"the input \(100000, 3, 1000, 1000\) float32 alone takes 1\.1 TiB"):
        budget.check_forward(object(), (100000, 3, 1000, 1000), max_memory=1 << 30, source="x.npy")
    assert budget.default_budget() > 0


def test_convert_to_named_traces_a_huge_declared_input_without_computing(tmp_path):
    """Item 8: `convert --to named` traces the model to record its graph; the trace is shapes-only,
    so an architecture recording input [2000, 3, 224, 224] costs no memory for it."""
    path = _cnn_with(tmp_path, "big.h5", (2000, 3, 224, 224))
    out = tmp_path / "named.h5"
    grown = _peak_growth(f"""
        from click.testing import CliRunner
        result = CliRunner().invoke(cli, ['convert', {str(path)!r}, '-o', {str(out)!r}, '--to', 'named'])
        assert result.exit_code == 0, result.output
    """)
    assert grown < 100 * MIB, grown / MIB
    from cli_helpers import invoke
    invoke("run", out, "--random-input", "2,3,32,32")  # the recorded graph runs


@pytest.mark.parametrize("as_block", [True, False])
def test_a_graph_with_huge_pooling_padding_is_refused_before_running(tmp_path, as_block):
    """Item 8 for graphs: `run --symbol` of pooling padded by 100000 never finished; the budget check
    refuses it from the shapes, for the SymbolBlock `run` builds and for a bare Graph."""
    from modelsurgeon.core.binding import model_from_reader, open_checkpoint, read_graph_file
    from modelsurgeon.core.engine import budget, shapes  # noqa: F401
    from modelsurgeon.core.errors import ResourceLimitError

    def pad(node):
        if node["op"] == "Pooling":
            node["attrs"]["pad"] = "(100000, 100000)"
    graph_path = _graph_with(tmp_path, "pad-symbol.json", (1, 3, 32, 32), pad)
    graph = read_graph_file(str(graph_path))
    if as_block:
        with open_checkpoint(str(SAMPLES / "cnn-named.h5")) as reader:
            reader.graph = graph.to_dict()
            model = model_from_reader(reader)
        name = r"operator '\w+'|layer '[\w.]*' \(operator \w+\)"
    else:
        model, name = graph, r"operator '\w+'"
    with pytest.raises(ResourceLimitError, match=rf"pad: a forward pass on input \(1, 3, 32, 32\) needs about "
                                                 rf"[\d.]+ TiB of memory \(({name}) outputs \(1, \d+, \d{{6}}, "
                                                 r"\d{6}\) float32\)"):
        budget.check_forward(model, (1, 3, 32, 32), max_memory=1 << 30, source="pad")
    plain = _graph_with(tmp_path, "plain-symbol.json", (1, 3, 32, 32))
    if as_block:
        with _named_with(plain) as reader:
            small = model_from_reader(reader)
    else:
        small = read_graph_file(str(plain))
    assert budget.check_forward(small, (1, 3, 32, 32), max_memory=1 << 30).peak < 1 << 20


def _named_with(graph_path: Path):
    from modelsurgeon.core.binding import open_checkpoint, read_graph_file
    reader = open_checkpoint(str(SAMPLES / "cnn-named.h5"))
    reader.graph = read_graph_file(str(graph_path)).to_dict()
    return reader
