"""Our HDF5 checkpoints: round trips, reproducible bytes, sharing, mismatches, hostile files."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest

from modelsurgeon import core
from modelsurgeon.core import binding as checkpoint
from modelsurgeon.core.engine import nn
from modelsurgeon.core.errors import CheckpointError, MismatchError, ModelSurgeonError
from modelsurgeon.core.formats import atomic, h5, h5safe
from modelsurgeon.core.formats.base import NAMED, STRUCTURAL, TensorInfo

ZOO = ("alexnet", "resnet18_v1", "resnet34_v1", "resnet18_v2", "vgg11", "squeezenet1.1",
       "mobilenet0.25", "mobilenet1.0")
TUTORIAL_KEYS = ["dense0.weight", "dense0.bias", "dense1.weight", "dense1.bias", "mydense.weight", "mydense.bias"]


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _small_net():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3, padding=1, in_channels=2), nn.BatchNorm(in_channels=4), nn.Activation("relu"),
            nn.GlobalAvgPool2D(), nn.Flatten(), nn.Dense(3, in_units=4))
    net.initialize(core.init.Xavier())
    net(_x(1, 2, 5, 5))
    return net


@pytest.fixture
def saved(tmp_path):
    """A valid structural checkpoint of a small conv net, and its path."""
    path = tmp_path / "net.h5"
    _small_net().save_parameters(str(path))
    return path


def _open_all(path):
    """Open a checkpoint and read every tensor and document (what inspect/load would do)."""
    with checkpoint.open_checkpoint(str(path)) as reader:
        for key in reader.keys():  # noqa: SIM118 - a reader, not a dict
            reader.read(key)
        return reader.kind


def _tree_files(directory):
    return sorted(p.name for p in directory.iterdir())


# -- round trips ------------------------------------------------------------------------------

def test_tutorial_model_round_trip(tmp_path, tutorial_model, tutorial_model_cls, assert_same_params):
    model = tutorial_model()
    path = tmp_path / "model.h5"
    model.save_parameters(str(path))
    fresh = tutorial_model_cls()
    fresh.load_parameters(str(path))
    assert_same_params(model, fresh)
    x = _x(4, 20)
    np.testing.assert_array_equal(fresh(x), model(x))
    with h5py.File(path, "r") as f:
        assert list(f["tensors"]) == TUTORIAL_KEYS


def test_sequential_round_trip(tmp_path, assert_same_params):
    net = _small_net()
    path = tmp_path / "seq.h5"
    net.save_parameters(str(path))
    fresh = nn.HybridSequential()
    fresh.add(nn.Conv2D(4, 3, padding=1), nn.BatchNorm(), nn.Activation("relu"), nn.GlobalAvgPool2D(),
              nn.Flatten(), nn.Dense(3))
    fresh.load_parameters(str(path))  # deferred shapes are filled from the file
    assert_same_params(net, fresh)
    x = _x(2, 2, 5, 5)
    np.testing.assert_array_equal(fresh(x), net(x))


@pytest.mark.parametrize("name", ZOO)
def test_zoo_round_trip(name, tmp_path, small_zoo_model, small_input, assert_same_params):
    net = small_zoo_model(name)
    path = tmp_path / f"{name}.h5"
    net.save_parameters(str(path))
    fresh = core.model_zoo.vision.get_model(name, classes=7)
    fresh.load_parameters(str(path))
    assert_same_params(net, fresh)
    x = small_input(name)
    np.testing.assert_array_equal(fresh(x), net(x))


@pytest.mark.parametrize("name", ["resnet18_v2", "squeezenet1.1", "mobilenet0.25"])
def test_zoo_model_rebuilt_from_its_file(name, tmp_path, small_zoo_model, small_input, assert_same_params):
    net = small_zoo_model(name)
    path = tmp_path / f"{name}.h5"
    net.save_parameters(str(path))
    with checkpoint.open_checkpoint(str(path)) as reader:
        rebuilt = checkpoint.model_from_reader(reader)  # from the embedded architecture
    assert type(rebuilt) is type(net)
    assert_same_params(net, rebuilt)
    x = small_input(name)
    np.testing.assert_array_equal(rebuilt(x), net(x))


def test_deferred_shapes_are_filled_from_the_file(tmp_path, tutorial_model, tutorial_model_cls):
    path = tmp_path / "m.h5"
    tutorial_model().save_parameters(str(path))
    fresh = tutorial_model_cls()
    assert fresh.dense0.weight.shape == (20, -1)
    fresh.load_parameters(str(path))
    assert fresh.dense0.weight.shape == (20, 20)
    assert fresh(_x(1, 20)).shape == (1, 20)  # no initialize() needed


def test_load_dict_accepts_role_prefixes(tutorial_model, tutorial_model_cls):
    model = tutorial_model()
    arrays = {("aux:" if i % 2 else "arg:") + k: p.data() for i, (k, p) in enumerate(model.collect_params().items())}
    fresh = tutorial_model_cls()
    fresh.load_dict(arrays)
    x = _x(2, 20)
    np.testing.assert_array_equal(fresh(x), model(x))


# -- reproducible bytes ------------------------------------------------------------------------

def test_saving_twice_gives_identical_bytes(tmp_path, tutorial_model):
    model = tutorial_model()
    model.save_parameters(str(tmp_path / "a.h5"))
    model.save_parameters(str(tmp_path / "b.h5"))
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()


def test_same_weights_in_another_instance_give_identical_bytes(tmp_path, tutorial_model, tutorial_model_cls):
    model = tutorial_model()
    model.save_parameters(str(tmp_path / "a.h5"))
    other = tutorial_model_cls()
    other.load_parameters(str(tmp_path / "a.h5"))
    other(np.zeros((1, 20), np.float32))  # same recorded input
    other.save_parameters(str(tmp_path / "b.h5"))
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()


def test_exporting_twice_gives_identical_bytes(tmp_path, tutorial_model):
    model = tutorial_model()
    first = model.export(str(tmp_path / "a"))
    second = model.export(str(tmp_path / "b"))
    for a, b in zip(first, second):
        assert open(a, "rb").read() == open(b, "rb").read()


# -- shared parameters ---------------------------------------------------------------------------

def _shared_net():
    net = nn.HybridSequential()
    net.add(nn.Dense(4, in_units=4), nn.Dense(4, in_units=4), nn.Dense(2, in_units=4))
    net[1].share_parameters(net[0].collect_params())
    net.initialize(core.init.Xavier())
    return net


def test_shared_parameters_are_stored_once_as_hard_links(tmp_path):
    path = tmp_path / "shared.h5"
    _shared_net().save_parameters(str(path))
    with h5py.File(path, "r") as f:
        tensors = f["tensors"]
        assert list(tensors) == ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"]
        assert isinstance(tensors.get("1.weight", getlink=True), h5py.HardLink)
        assert tensors["1.weight"].id == tensors["0.weight"].id
        assert h5py.h5o.get_info(tensors["1.weight"].id).rc == 2
        assert tensors["2.weight"].id != tensors["0.weight"].id
    with checkpoint.open_checkpoint(str(path)) as reader:
        assert [(i.key, i.alias_of) for i in reader.tensors.values()] == [
            ("0.weight", None), ("0.bias", None), ("1.weight", "0.weight"), ("1.bias", "0.bias"),
            ("2.weight", None), ("2.bias", None)]
        assert reader.total_bytes() == (16 + 4 + 8 + 2) * 4


def test_shared_parameters_file_is_smaller(tmp_path):
    separate = nn.HybridSequential()
    separate.add(nn.Dense(64, in_units=64), nn.Dense(64, in_units=64), nn.Dense(2, in_units=64))
    separate.initialize()
    shared_big = nn.HybridSequential()
    shared_big.add(nn.Dense(64, in_units=64), nn.Dense(64, in_units=64), nn.Dense(2, in_units=64))
    shared_big[1].share_parameters(shared_big[0].collect_params())
    shared_big.initialize()
    separate.save_parameters(str(tmp_path / "separate.h5"))
    shared_big.save_parameters(str(tmp_path / "shared.h5"))
    saved_bytes = os.path.getsize(tmp_path / "separate.h5") - os.path.getsize(tmp_path / "shared.h5")
    assert saved_bytes >= 64 * 64 * 4


def test_shared_parameters_come_back_shared(tmp_path):
    net = _shared_net()
    path = tmp_path / "shared.h5"
    net.save_parameters(str(path))
    fresh = nn.HybridSequential()
    fresh.add(nn.Dense(4), nn.Dense(4), nn.Dense(2))
    fresh[1].share_parameters(fresh[0].collect_params())
    fresh.load_parameters(str(path))
    assert fresh[1].weight is fresh[0].weight
    np.testing.assert_array_equal(fresh[0].weight.data(), net[0].weight.data())
    x = _x(3, 4)
    np.testing.assert_array_equal(fresh(x), net(x))


def test_model_rebuilt_from_file_keeps_sharing(tmp_path):
    net = _shared_net()
    net(_x(1, 4))
    path = tmp_path / "shared.h5"
    net.save_parameters(str(path))
    with checkpoint.open_checkpoint(str(path)) as reader:
        rebuilt = checkpoint.model_from_reader(reader)
    params = rebuilt.collect_params()
    assert params["1.weight"] is params["0.weight"]
    assert params["1.bias"] is params["0.bias"]


def test_deduplicate_writes_one_key_per_parameter(tmp_path):
    path = tmp_path / "dedup.h5"
    _shared_net().save_parameters(str(path), deduplicate=True)
    with checkpoint.open_checkpoint(str(path)) as reader:
        assert reader.keys() == ["0.weight", "0.bias", "2.weight", "2.bias"]
    fresh = nn.HybridSequential()
    fresh.add(nn.Dense(4), nn.Dense(4), nn.Dense(2))
    fresh[1].share_parameters(fresh[0].collect_params())
    fresh.load_parameters(str(path))  # a shared Parameter is satisfied by any of its keys
    assert fresh[1].weight.data().shape == (4, 4)


def test_export_stores_shared_tensor_once_with_both_structural_names(tmp_path):
    net = _shared_net()
    net(_x(1, 4))
    _, params_file = net.export(str(tmp_path / "shared"))
    with checkpoint.open_checkpoint(params_file) as reader:
        assert reader.kind == NAMED
        info = reader.tensors[net[0].weight.name]
        assert info.structural == ("0.weight", "1.weight")
        assert len(reader.tensors) == 4


# -- mismatches ------------------------------------------------------------------------------

class Other(core.HybridBlock):
    def __init__(self, extra=1):
        super().__init__()
        self.dense0 = nn.Dense(20, in_units=20)
        self.dense1 = nn.Dense(30, in_units=20)
        for i in range(extra):
            setattr(self, f"extra{i}", nn.Dense(3))

    def forward(self, x):
        return self.dense1(self.dense0(x))


def test_mismatch_reports_every_problem_at_once(tmp_path, tutorial_model):
    path = tmp_path / "model.h5"
    tutorial_model().save_parameters(str(path))
    with pytest.raises(MismatchError) as info:
        Other().load_parameters(str(path))
    message = str(info.value)
    assert message.startswith(f"cannot load '{path}' into Other: ")
    assert ("2 missing: 'extra0.bias', 'extra0.weight' (set allow_missing=True to ignore missing parameters)"
            in message)
    assert ("2 unexpected: 'mydense.bias', 'mydense.weight' (set ignore_extra=True to ignore extra parameters)"
            in message)
    assert ("2 shape mismatch(es): 'dense1.bias file (20,) vs model (30,)', "
            "'dense1.weight file (20, 20) vs model (30, 20)'") in message
    report = info.value.report
    assert report.missing == ["extra0.bias", "extra0.weight"]
    assert report.unexpected == ["mydense.bias", "mydense.weight"]
    assert report.mismatched == [("dense1.bias", (20,), (30,)), ("dense1.weight", (20, 20), (30, 20))]


def test_mismatch_elides_long_lists(tmp_path, tutorial_model):
    path = tmp_path / "model.h5"
    tutorial_model().save_parameters(str(path))
    with pytest.raises(MismatchError, match=r"20 missing: 'extra0\.bias', 'extra0\.weight', 'extra1\.bias', \.\.\., "
                                            r"'extra8\.bias', 'extra8\.weight', 'extra9\.bias', 'extra9\.weight' "
                                            r"\(set allow_missing=True"):
        Other(extra=10).load_parameters(str(path))


def test_a_failed_load_changes_nothing(tmp_path, tutorial_model):
    path = tmp_path / "model.h5"
    tutorial_model().save_parameters(str(path))
    target = Other()
    target.initialize()
    before = target.dense0.weight.data().copy()
    with pytest.raises(MismatchError):
        target.load_parameters(str(path))
    np.testing.assert_array_equal(target.dense0.weight.data(), before)


def test_allow_missing_and_ignore_extra_relax(tmp_path, tutorial_model):
    model = tutorial_model()
    path = tmp_path / "model.h5"
    model.save_parameters(str(path))

    class Partial(core.HybridBlock):
        def __init__(self):
            super().__init__()
            self.dense0 = nn.Dense(20)
            self.new = nn.Dense(5)

    with pytest.raises(MismatchError, match="ignore_extra=True") as info:
        Partial().load_parameters(str(path), allow_missing=True)
    assert "missing:" not in str(info.value) and "allow_missing=True" not in str(info.value)
    with pytest.raises(MismatchError, match="allow_missing=True") as info:
        Partial().load_parameters(str(path), ignore_extra=True)
    assert "unexpected:" not in str(info.value) and "ignore_extra=True" not in str(info.value)
    partial = Partial()
    partial.load_parameters(str(path), allow_missing=True, ignore_extra=True)
    np.testing.assert_array_equal(partial.dense0.weight.data(), model.dense0.weight.data())
    assert not partial.new.weight.is_initialized


def test_shape_mismatch_is_never_relaxed(tmp_path, tutorial_model):
    path = tmp_path / "model.h5"
    tutorial_model().save_parameters(str(path))
    with pytest.raises(MismatchError, match="no option relaxes this"):
        Other(extra=0).load_parameters(str(path), allow_missing=True, ignore_extra=True)


def test_dtype_mismatch_and_cast_dtype(tmp_path, tutorial_model, tutorial_model_cls):
    model = tutorial_model()
    model.cast("float16")
    path = tmp_path / "half.h5"
    model.save_parameters(str(path))
    with pytest.raises(MismatchError, match=r"6 dtype mismatch\(es\): 'dense0\.bias file float16 vs model float32'.*"
                                            r"\(set cast_dtype=True to cast\)"):
        tutorial_model_cls().load_parameters(str(path))
    current = tutorial_model_cls()
    current.load_parameters(str(path), cast_dtype=True)
    assert current.dense0.weight.dtype == np.float32 == current.dense0.weight.data().dtype
    np.testing.assert_array_equal(current.dense0.weight.data(), model.dense0.weight.data().astype(np.float32))
    saved_dtype = tutorial_model_cls()
    saved_dtype.load_parameters(str(path), cast_dtype=True, dtype_source="saved")
    assert saved_dtype.dense0.weight.dtype == np.float16 == saved_dtype.dense0.weight.data().dtype
    with pytest.raises(ModelSurgeonError, match="dtype_source must be 'current' or 'saved'"):
        tutorial_model_cls().load_parameters(str(path), cast_dtype=True, dtype_source="file")


# -- structural <-> named ---------------------------------------------------------------------

def test_named_file_layout(tmp_path):
    net = _small_net()
    _, params_file = net.export(str(tmp_path / "net"))
    with h5py.File(params_file, "r") as f:
        assert f.attrs["kind"] == "named"
        for key, param in net.collect_params().items():
            ds = f["tensors"][param.name]
            assert json.loads(ds.attrs["structural"]) == [key]
            assert ds.attrs["role"] == ("aux" if key.endswith(("running_mean", "running_var")) else "arg")
        assert json.loads(f["meta/graph"][()])["nodes"][0]["name"] == "data"


@pytest.mark.parametrize("name", ["squeezenet1.1", "mobilenet0.25"])
def test_structural_named_structural_is_lossless(name, tmp_path, small_zoo_model, small_input, assert_same_params):
    net = small_zoo_model(name)
    net(small_input(name))  # the architecture records the last input shape
    net.save_parameters(str(tmp_path / "before.h5"))
    _, named = net.export(str(tmp_path / "net"))
    fresh = core.model_zoo.vision.get_model(name, classes=7)
    fresh.load_parameters(named)  # by the structural names recorded in the named file
    assert_same_params(net, fresh)
    fresh(small_input(name))
    fresh.save_parameters(str(tmp_path / "after.h5"))
    assert (tmp_path / "before.h5").read_bytes() == (tmp_path / "after.h5").read_bytes()


def test_named_file_imports_as_symbolblock(tmp_path):
    net = _small_net()
    symbol_file, params_file = net.export(str(tmp_path / "net"))
    block = core.SymbolBlock.imports(symbol_file, ["data"], params_file)
    x = _x(2, 2, 5, 5)
    np.testing.assert_array_equal(block(x), net(x))
    with checkpoint.open_checkpoint(params_file) as reader:
        rebuilt = checkpoint.model_from_reader(reader)  # from the graph embedded in the file
    np.testing.assert_array_equal(rebuilt(x), net(x))


# -- lazy reading ---------------------------------------------------------------------------------

def test_open_checkpoint_lists_without_reading_data(saved, monkeypatch):
    real_read = h5safe.read_dataset

    def read_documents_only(ds, path):
        if ds.name.startswith("/tensors"):
            raise AssertionError(f"tensor data of {ds.name} was read")
        return real_read(ds, path)

    monkeypatch.setattr(h5safe, "read_dataset", read_documents_only)
    with checkpoint.open_checkpoint(str(saved)) as reader:
        assert reader.format == "modelsurgeon-h5"
        assert reader.kind == STRUCTURAL
        assert [(i.key, i.shape, str(i.dtype)) for i in reader.tensors.values()] == [
            ("0.weight", (4, 2, 3, 3), "float32"), ("0.bias", (4,), "float32"), ("1.gamma", (4,), "float32"),
            ("1.beta", (4,), "float32"), ("1.running_mean", (4,), "float32"), ("1.running_var", (4,), "float32"),
            ("5.weight", (3, 4), "float32"), ("5.bias", (3,), "float32")]
        assert reader.architecture["root"]["type"] == "HybridSequential"
        assert reader.architecture["inputs"] == [{"name": "data", "shape": [1, 2, 5, 5], "dtype": "float32"}]
        assert reader.graph is None
        assert reader.metadata == {}
        assert "5.weight" in reader and len(reader) == 8
        assert reader.total_bytes() == (72 + 4 * 5 + 12 + 3) * 4
        bias = reader.read("0.bias")  # stored as plain bytes: one pread, no HDF5 read
    with h5py.File(saved, "r") as f:
        np.testing.assert_array_equal(bias, f["tensors/0.bias"][()])


def test_the_validating_child_lists_the_file_and_this_process_never_parses_it(saved, monkeypatch):
    """The child that validates an input also lists it (h5.survey): here HDF5 never opens the file."""
    h5safe._validated.clear()
    here, real_file = os.getpid(), h5py.File

    def refuse(*args, **kwargs):
        if os.getpid() != here:  # the forked child opens the file, of course
            return real_file(*args, **kwargs)
        raise AssertionError("HDF5 opened the input in the calling process")

    with h5py.File(saved, "r") as f:
        expected = {name: f["tensors"][name][()] for name in f["tensors"]}
    monkeypatch.setattr(h5py, "File", refuse)
    with checkpoint.open_checkpoint(str(saved)) as reader:
        assert list(reader.tensors) == list(expected)
        assert reader.architecture["root"]["type"] == "HybridSequential"
        for key, value in expected.items():
            array = reader.read(key)
            np.testing.assert_array_equal(array, value)
            array += 1  # a fresh, writable array


def test_reading_plain_bytes_survives_short_reads(saved, monkeypatch):
    """One ``preadv`` returns at most ~2 GiB on Linux: the reader keeps reading until the tensor is whole."""
    real = os.preadv

    def stingy(fd, buffers, offset):
        return real(fd, [memoryview(buffers[0])[:7]], offset)

    with h5py.File(saved, "r") as f:
        expected = f["tensors/0.weight"][()]
    with checkpoint.open_checkpoint(str(saved)) as reader:
        monkeypatch.setattr(os, "preadv", stingy)
        np.testing.assert_array_equal(reader.read("0.weight"), expected)


def test_read_unknown_key(saved):
    with checkpoint.open_checkpoint(str(saved)) as reader:
        with pytest.raises(ModelSurgeonError, match="no tensor 'nope' in"):
            reader.read("nope")


def test_detect_format_uses_bytes_not_names(saved, tmp_path):
    renamed = tmp_path / "weights.params"
    renamed.write_bytes(saved.read_bytes())
    assert checkpoint.detect_format(str(renamed)) == "h5"
    assert _open_all(renamed) == STRUCTURAL


# -- key escaping ------------------------------------------------------------------------------

ODD_KEYS = ["features.0.weight", "a/b", "dense/kernel:0", "50%", "%2F", "%", "%%", "a%2", "%zz", ".", "..",
            "./x", "tab\there", "new\nline", "nul\x00byte", "del\x7f", "unicode é ✓", " lead space", "arg:x"]


def test_odd_keys_round_trip(tmp_path):
    arrays = {key: np.full((2,), i, np.float32) for i, key in enumerate(ODD_KEYS)}
    infos = [TensorInfo(key, (2,), np.dtype(np.float32)) for key in ODD_KEYS]
    path = tmp_path / "odd.h5"
    h5.write_h5(str(path), STRUCTURAL, infos, lambda info: arrays[info.key])
    with h5py.File(path, "r") as f:
        names = list(f["tensors"])
    assert all("/" not in n and n != "." and not any(ord(c) < 0x20 for c in n) for n in names)
    assert len(set(names)) == len(names)
    with checkpoint.open_checkpoint(str(path)) as reader:
        assert reader.keys() == ODD_KEYS
        for key in ODD_KEYS:
            np.testing.assert_array_equal(reader.read(key), arrays[key])


def test_escape_examples_from_the_format_doc():
    assert h5.escape_key("features.0.weight") == "features.0.weight"
    assert h5.escape_key("dense/kernel:0") == "dense%2Fkernel:0"
    assert h5.escape_key("50%") == "50%25"
    assert h5.escape_key(".") == "%2E"
    for key in ODD_KEYS:
        assert h5.unescape_key(h5.escape_key(key)) == key


def test_writer_refuses_bad_keys(tmp_path):
    info = TensorInfo("a", (1,), np.dtype(np.float32))
    with pytest.raises(ModelSurgeonError, match="duplicate tensor key 'a'"):
        h5.write_h5(str(tmp_path / "x.h5"), STRUCTURAL, [info, info], lambda i: np.zeros(1, np.float32))
    with pytest.raises(ModelSurgeonError, match="tensor keys must be non-empty strings"):
        h5.write_h5(str(tmp_path / "x.h5"), STRUCTURAL, [TensorInfo("", (1,), np.dtype(np.float32))],
                    lambda i: np.zeros(1, np.float32))
    with pytest.raises(ModelSurgeonError, match="kind must be 'structural' or 'named'"):
        h5.write_h5(str(tmp_path / "x.h5"), "other", [info], lambda i: np.zeros(1, np.float32))
    assert _tree_files(tmp_path) == []


def test_writer_refuses_unsupported_dtypes(tmp_path):
    info = TensorInfo("c", (2,), np.dtype(np.complex64))
    with pytest.raises(ModelSurgeonError, match="complex64"):
        h5.write_h5(str(tmp_path / "x.h5"), STRUCTURAL, [info], lambda i: np.zeros(2, np.complex64))
    assert _tree_files(tmp_path) == []


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int8", "int16", "int32", "int64",
                                   "uint8", "uint16", "uint32", "uint64", "bool"])
def test_every_documented_dtype_round_trips(dtype, tmp_path):
    value = (np.arange(6) % 2 == 1) if dtype == "bool" else np.arange(6).astype(dtype)
    value = value.reshape(2, 3)
    path = tmp_path / "d.h5"
    h5.write_h5(str(path), STRUCTURAL, [TensorInfo("t", (2, 3), value.dtype)], lambda i: value)
    with checkpoint.open_checkpoint(str(path)) as reader:
        assert reader.tensors["t"].dtype == np.dtype(dtype)
        out = reader.read("t")
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, value)


# -- atomic writes ---------------------------------------------------------------------------------

def test_failed_write_leaves_nothing(tmp_path):
    infos = [TensorInfo(k, (3,), np.dtype(np.float32)) for k in ("a", "b", "c")]
    calls = []

    def fetch(info):
        calls.append(info.key)
        if info.key == "b":
            raise RuntimeError("disk on fire")
        return np.zeros(3, np.float32)

    with pytest.raises(RuntimeError, match="disk on fire"):
        h5.write_h5(str(tmp_path / "out.h5"), STRUCTURAL, infos, fetch)
    assert calls == ["a", "b"]
    assert _tree_files(tmp_path) == []


def test_failed_save_keeps_the_old_file(tmp_path, tutorial_model, monkeypatch):
    model = tutorial_model()
    path = tmp_path / "model.h5"
    model.save_parameters(str(path))
    before = path.read_bytes()
    real_data = core.Parameter.data
    calls = []

    def flaky(self):
        calls.append(self.name)
        if len(calls) == 3:
            raise KeyboardInterrupt  # even an interrupt leaves no half-written file
        return real_data(self)

    monkeypatch.setattr(core.Parameter, "data", flaky)
    model.dense0.weight.set_data(np.ones((20, 20), np.float32))
    with pytest.raises(KeyboardInterrupt):
        model.save_parameters(str(path))
    assert path.read_bytes() == before
    assert _tree_files(tmp_path) == ["model.h5"]
    assert not any(name.startswith(atomic.TEMP_PREFIX) for name in os.listdir(tmp_path))


def test_save_into_missing_directory(tmp_path, tutorial_model):
    with pytest.raises(ModelSurgeonError, match="does not exist"):
        tutorial_model().save_parameters(str(tmp_path / "no" / "such" / "m.h5"))


# -- hostile and broken files ----------------------------------------------------------------------

def _refused(path, match):
    with pytest.raises(CheckpointError, match=match) as info:
        _open_all(path)
    assert str(path) in str(info.value)
    assert info.value.path == str(path)
    return info.value


def test_not_hdf5(tmp_path):
    path = tmp_path / "junk.h5"
    path.write_bytes(b"this is not a checkpoint at all" * 10)
    _refused(path, "not a checkpoint format modelsurgeon reads")
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    _refused(empty, "file is empty")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        _open_all(tmp_path / "missing.h5")
    with pytest.raises(CheckpointError, match="is a directory"):
        _open_all(tmp_path)


def test_truncated_files_are_refused(saved, tmp_path):
    data = saved.read_bytes()
    for cut in sorted({1, 8, 64, 96, 512, 1024, 2048, len(data) // 2, len(data) - 64, len(data) - 1}):
        path = tmp_path / f"cut{cut}.h5"
        path.write_bytes(data[:cut])
        _refused(path, "truncated|corrupt|not a checkpoint format")


def test_corrupt_files_fail_with_checkpoint_errors_only(saved, tmp_path):
    """Overwrite 8 bytes at many offsets: every failure must be a CheckpointError naming the file."""
    data = saved.read_bytes()
    path = tmp_path / "corrupt.h5"
    wrong = []
    for offset in range(0, len(data), 64):
        damaged = bytearray(data)
        damaged[offset:offset + 8] = b"\xff" * 8
        path.write_bytes(bytes(damaged))
        try:
            with checkpoint.open_checkpoint(str(path)) as reader:
                for key in reader.keys():  # noqa: SIM118 - a reader, not a dict
                    reader.read(key)
                if reader.architecture is not None:
                    checkpoint.model_from_reader(reader)
        except CheckpointError as exc:
            if str(path) not in str(exc):
                wrong.append((offset, "CheckpointError without the path"))
        except ModelSurgeonError:
            pass  # e.g. a damaged architecture document that is still valid JSON
        except Exception as exc:
            wrong.append((offset, f"{type(exc).__name__}: {str(exc)[:80]}"))
    assert not wrong, f"{len(wrong)} damaged files raised something else: {wrong[:6]}"


def _edit(path, change):
    with h5py.File(path, "r+") as f:
        change(f)


@pytest.mark.parametrize("change,match", [
    (lambda f: f.attrs.__setitem__("kind", "weird"), "unknown checkpoint kind 'weird'"),
    (lambda f: f.attrs.__delitem__("kind"), "root attribute 'kind' is missing or not text"),
    (lambda f: f.attrs.__setitem__("format_version", np.int64(2)),
     "written in format version 2 by a newer modelsurgeon; this version reads up to 1"),
    (lambda f: f.attrs.__setitem__("format_version", "1"), "'format_version' is missing or not an integer"),
    (lambda f: f.attrs.__delitem__("format"), "neither a modelsurgeon checkpoint nor a Keras"),
    (lambda f: f.__delitem__("tensors"), "no /tensors group"),
    (lambda f: f["tensors"].create_group("evil"), "/tensors/evil is a group; tensors must be datasets"),
    (lambda f: f["tensors"].create_dataset("cplx", data=np.zeros(3, np.complex64)),
     "tensor 'cplx' has unsupported dtype complex64"),
    (lambda f: f["tensors"].create_dataset("text", data=np.array([b"abc", b"def"])),
     "tensor 'text' has unsupported dtype"),
    (lambda f: f["tensors"].create_dataset("vlen", data="hello", dtype=h5py.string_dtype()),
     "tensor 'vlen' has unsupported dtype"),
    (lambda f: f["tensors"]["0.bias"].attrs.__setitem__("role", "boss"), "tensor '0.bias' has unknown role 'boss'"),
    (lambda f: f["tensors"]["0.bias"].attrs.__setitem__("structural", "not json"),
     "tensor '0.bias' has a malformed 'structural' attribute"),
    (lambda f: f["tensors"]["0.bias"].attrs.__setitem__("structural", "[1, 2]"),
     "tensor '0.bias' has a malformed 'structural' attribute"),
    (lambda f: f["tensors"].__setitem__("soft", h5py.SoftLink("/tensors/0.bias")),
     r"/tensors/'soft' is a soft link to '/tensors/0.bias'; soft links are refused"),
    (lambda f: f["tensors"].__setitem__("ext", h5py.ExternalLink("other.h5", "/data")),
     r"/tensors/'ext' is an external link to 'other.h5'; links out of the file are refused"),
    (lambda f: f["meta"].__setitem__("graph", h5py.SoftLink("/meta/architecture")), "soft link"),
    (lambda f: f["meta"].__delitem__("architecture") or f["meta"].create_dataset(
        "architecture", data="{not json", dtype=h5py.string_dtype()), "/meta/architecture is not valid JSON"),
    (lambda f: f["meta"].__delitem__("architecture") or f["meta"].create_group("architecture"),
     "/meta/architecture should be a dataset"),
    (lambda f: f["meta"].__delitem__("architecture") or f["meta"].create_dataset("architecture", data=np.zeros(3)),
     "/meta/architecture should be a text dataset"),
    (lambda f: f.__delitem__("meta") or f.create_dataset("meta", data=1), "/meta should be a group"),
    (lambda f: f["meta"].create_dataset("metadata", data='["a"]', dtype=h5py.string_dtype()),
     "/meta/metadata must be a JSON object"),
    (lambda f: f["meta"].create_dataset("metadata", data='{"a": 1}', dtype=h5py.string_dtype()),
     "/meta/metadata must map strings to strings"),
])
def test_broken_layouts_are_refused(saved, change, match):
    _edit(saved, change)
    _refused(saved, match)


def test_two_datasets_decoding_to_one_key_are_refused(saved):
    # '0%2Ebias' decodes to '0.bias': a second tensor under an existing key must not silently
    # shadow (or be shadowed by) the first one
    _edit(saved, lambda f: f["tensors"].create_dataset("0%2Ebias", data=np.full(4, 7.0, np.float32)))
    _refused(saved, r"0\.bias.*(twice|duplicate|more than once)|(twice|duplicate|more than once).*0\.bias")


def test_external_dataset_is_refused(saved, tmp_path):
    (tmp_path / "outside.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    _edit(saved, lambda f: f["tensors"].create_dataset("ext", shape=(4,), dtype="f4",
                                                       external=[(str(tmp_path / "outside.bin"), 0, 16)]))
    _refused(saved, "/tensors/ext stores its data in external files; refused")


def test_virtual_dataset_is_refused(saved, tmp_path):
    other = tmp_path / "source.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("data", data=np.arange(4, dtype=np.float32))
    layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
    layout[:] = h5py.VirtualSource(str(other), "data", shape=(4,))
    _edit(saved, lambda f: f["tensors"].create_virtual_dataset("virt", layout))
    _refused(saved, "/tensors/virt is a virtual dataset; virtual datasets are refused")


def test_shape_bomb_is_refused(saved):
    _edit(saved, lambda f: f["tensors"].create_dataset("bomb", shape=(10 ** 6, 10 ** 6), dtype="f4",
                                                       chunks=(1000, 1000)))
    size = os.path.getsize(saved)
    assert size < 1 << 20  # the file is tiny: nothing was allocated
    _refused(saved, r"/tensors/bomb declares 4000000000000 bytes of data but the file holds 0 for it.*shape bomb")


def test_compressed_bomb_is_refused(saved):
    def add_bomb(f):
        ds = f["tensors"].create_dataset("zeros", shape=(20000, 20000), dtype="f4", chunks=(1000, 1000),
                                         compression="gzip")
        ds[:1000, :1000] = 0.0  # one real, highly compressible chunk; 1.6 GB declared

    _edit(saved, add_bomb)
    assert os.path.getsize(saved) < 1 << 20
    _refused(saved, "/tensors/zeros declares 1600000000 bytes.*shape bomb")


def test_uncompressed_dataset_larger_than_file_is_refused(saved):
    _edit(saved, lambda f: f["tensors"].create_dataset("big", shape=(1000, 1000), dtype="f8"))
    _refused(saved, "/tensors/big declares 8000000 bytes.*shape bomb")


def test_legitimate_compressed_data_is_accepted(tmp_path):
    path = tmp_path / "small.h5"
    _small_net().save_parameters(str(path))
    value = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    _edit(path, lambda f: f["tensors"].create_dataset("extra", data=value, compression="gzip"))
    with checkpoint.open_checkpoint(str(path)) as reader:
        assert reader.extent("extra") is None  # compressed: read through HDF5, opened on demand
        np.testing.assert_array_equal(reader.read("extra"), value)
