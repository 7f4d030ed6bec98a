"""Keras HDF5 checkpoints: real Keras 3 files, a tf.keras-layout file, and hostile variants."""

from __future__ import annotations

import json
import os
import shutil

import h5py
import numpy as np
import pytest

from modelsurgeon.core.errors import CheckpointError, ModelSurgeonError
from modelsurgeon.core.formats.keras import KerasH5Reader, looks_like_keras

PEERS = os.path.join(os.path.dirname(__file__), "fixtures", "peers")
MANIFEST = json.load(open(os.path.join(PEERS, "keras_fixtures.json")))


def peer(name: str) -> str:
    return os.path.join(PEERS, name)


def copy(tmp_path, name: str) -> str:
    target = str(tmp_path / name)
    shutil.copy(peer(name), target)
    return target


def sums(reader) -> list[float]:
    return [float(reader.read(k).astype(np.float64).sum()) for k in reader.keys()]  # noqa: SIM118 - a reader, not a dict


# ---------------------------------------------------------------------------------------------
# Real files

def test_legacy_full_model_keys_order_values_and_metadata():
    with KerasH5Reader(peer("keras3_cnn_legacy.h5")) as reader:
        assert (reader.format, reader.variant, reader.kind) == ("keras-h5", "model", "structural")
        assert reader.keys() == ["conv.kernel", "conv.bias", "bn.gamma", "bn.beta", "bn.moving_mean",
                                 "bn.moving_variance", "logits.kernel", "logits.bias"]
        expected = MANIFEST["cnn"]
        assert [list(reader.tensors[k].shape) for k in reader.keys()] == [row["shape"] for row in expected]  # noqa: SIM118 - a reader, not a dict
        np.testing.assert_allclose(sums(reader), [row["sum"] for row in expected], rtol=1e-6, atol=1e-6)
        assert reader.read("conv.kernel").reshape(-1)[0] == pytest.approx(expected[0]["first"])
        assert reader.tensors["conv.kernel"].extra["h5_path"] == "/model_weights/conv/cnn/conv/kernel"
        config = json.loads(reader.metadata["model_config"])
        assert config["class_name"] == "Sequential" and config["config"]["name"] == "cnn"
        assert json.loads(reader.metadata["training_config"])["loss"] == "mse"
        assert reader.metadata["keras_version"] == MANIFEST["keras_version"]
        assert reader.metadata["backend"] == MANIFEST["backend"]
        assert reader.metadata["optimizer_tensors"] == "14"  # iteration, learning rate, 2 x 6 slots
        assert all(reader.read(k).dtype == np.float32 for k in reader.keys())  # noqa: SIM118 - a reader, not a dict


def test_legacy_nested_model_keys():
    with KerasH5Reader(peer("keras3_nested_legacy.h5")) as reader:
        assert reader.keys() == ["stem.kernel", "stem.bias", "inner.inner_dense.kernel", "inner.inner_dense.bias",
                                 "inner.dense.kernel", "inner.dense.bias", "head.kernel", "head.bias"]
        np.testing.assert_allclose(sums(reader), [row["sum"] for row in MANIFEST["nested"]], rtol=1e-6, atol=1e-6)


def test_tf_keras_weights_only_file():
    """Written with h5py in tf.keras 2's layout (root layer_names, ':0' names), same weights as the cnn."""
    with KerasH5Reader(peer("tf_keras_cnn_weights.h5")) as reader, \
            KerasH5Reader(peer("keras3_cnn_legacy.h5")) as legacy:
        assert (reader.format, reader.variant) == ("keras-h5", "weights")
        assert reader.keys() == legacy.keys()
        assert reader.metadata == {"keras_version": "2.15.0", "backend": "tensorflow"}
        assert reader.tensors["bn.gamma"].extra["weight_name"] == "bn/gamma:0"
        for key in reader.keys():  # noqa: SIM118 - a reader, not a dict
            np.testing.assert_array_equal(reader.read(key), legacy.read(key))


def test_keras3_weights_file_keys_and_values():
    with KerasH5Reader(peer("keras3_cnn.weights.h5")) as reader, \
            KerasH5Reader(peer("keras3_cnn_legacy.h5")) as legacy:
        assert (reader.format, reader.kind) == ("keras3-weights-h5", "structural")
        assert reader.keys() == [f"layers.batch_normalization.vars.{i}" for i in range(4)] + \
            ["layers.conv2d.vars.0", "layers.conv2d.vars.1", "layers.dense.vars.0", "layers.dense.vars.1"]
        assert reader.tensors["layers.conv2d.vars.0"].extra == {"layer_name": "conv",
                                                                 "h5_path": "/layers/conv2d/vars/0"}
        assert reader.metadata == {"optimizer_tensors": "14", "model_name": "cnn"}
        # the same model saved both ways: match by layer name and variable index
        for key, info in reader.tensors.items():
            layer, index = info.extra["layer_name"], int(key.rsplit(".", 1)[1])
            legacy_key = [k for k in legacy.keys() if k.startswith(layer + ".")][index]  # noqa: SIM118 - a reader, not a dict
            np.testing.assert_array_equal(reader.read(key), legacy.read(legacy_key))


def test_keras3_nested_weights_file():
    with KerasH5Reader(peer("keras3_nested.weights.h5")) as reader:
        assert reader.keys() == ["layers.dense.vars.0", "layers.dense.vars.1", "layers.dense_1.vars.0",
                                 "layers.dense_1.vars.1", "layers.sequential.layers.dense.vars.0",
                                 "layers.sequential.layers.dense.vars.1", "layers.sequential.layers.dense_1.vars.0",
                                 "layers.sequential.layers.dense_1.vars.1"]
        names = [reader.tensors[k].extra["layer_name"] for k in reader.keys()]  # noqa: SIM118 - a reader, not a dict
        assert names == ["stem", "stem", "head", "head", "inner_dense", "inner_dense", "dense", "dense"]
        assert reader.metadata["model_name"] == "outer"


@pytest.mark.parametrize("name, keys", [
    ("keras3_bf16.weights.h5", ["layers.dense.vars.0", "layers.dense.vars.1"]),
    ("keras3_bf16_legacy.h5", ["half.kernel", "half.bias"]),
])
def test_bfloat16_weights_read_as_float32(name, keys):
    with KerasH5Reader(peer(name)) as reader:
        assert reader.keys() == keys
        for key, row in zip(keys, MANIFEST["bf16"], strict=True):
            info = reader.tensors[key]
            assert info.dtype == np.float32 and info.extra["source_dtype"] == "BF16"
            value = reader.read(key)
            assert value.dtype == np.float32 and list(value.shape) == row["shape"]
            assert value.reshape(-1)[0] == row["first"] and float(value.sum()) == pytest.approx(row["sum"])


@pytest.mark.parametrize("name", sorted(n for n in os.listdir(PEERS) if n.endswith(".h5")))
def test_every_fixture_is_recognised(name):
    with h5py.File(peer(name), "r") as f:
        assert looks_like_keras(f)


def test_fixtures_are_small():
    assert sum(os.path.getsize(peer(n)) for n in os.listdir(PEERS)) < 500_000


def test_looks_like_keras_says_no_to_other_hdf5(tmp_path):
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["data"] = np.zeros(3)
    with h5py.File(tmp_path / "ours.h5", "w") as f:
        f.attrs["format"] = "modelsurgeon"
        f.create_group("layers")
    for name in ("plain.h5", "ours.h5"):
        with h5py.File(tmp_path / name, "r") as f:
            assert not looks_like_keras(f)
    with pytest.raises(CheckpointError, match="not a Keras checkpoint"):
        KerasH5Reader(tmp_path / "plain.h5")


def test_read_unknown_key_and_closed():
    reader = KerasH5Reader(peer("keras3_cnn.weights.h5"))
    with pytest.raises(ModelSurgeonError, match="no tensor 'nope'"):
        reader.read("nope")
    reader.close()
    reader.close()
    with pytest.raises(ModelSurgeonError, match="closed"):
        reader.read("layers.dense.vars.0")


# ---------------------------------------------------------------------------------------------
# Hand-made layouts

def legacy_weights(path, layers: dict[str, dict[str, np.ndarray]], *, chunk_layer_names=False,
                   chunk_weight_names=False):
    """A tf.keras-style weights-only file."""
    with h5py.File(path, "w") as f:
        names = np.array([n.encode() for n in layers])
        if chunk_layer_names:
            for i, part in enumerate(np.array_split(names, 3)):
                f.attrs[f"layer_names{i}"] = part
        else:
            f.attrs["layer_names"] = names
        for layer, weights in layers.items():
            group = f.create_group(layer)
            wnames = np.array([n.encode() for n in weights]) if weights else np.array([])
            if chunk_weight_names and len(weights) > 1:
                for i, part in enumerate(np.array_split(wnames, 2)):
                    group.attrs[f"weight_names{i}"] = part
            else:
                group.attrs["weight_names"] = wnames
            for name, value in weights.items():
                group.create_dataset(name, data=value)
    return str(path)


def test_chunked_name_attributes(tmp_path):
    layers = {f"dense_{i}": {f"dense_{i}/kernel:0": np.full((2, 2), i, np.float32),
                             f"dense_{i}/bias:0": np.full(2, i, np.float32)} for i in range(5)}
    layers["flatten"] = {}
    path = legacy_weights(tmp_path / "w.h5", layers, chunk_layer_names=True, chunk_weight_names=True)
    with h5py.File(path) as f:
        assert "layer_names" not in f.attrs and "layer_names2" in f.attrs
        assert looks_like_keras(f)
    with KerasH5Reader(path) as reader:
        assert reader.keys() == [f"dense_{i}.{w}" for i in range(5) for w in ("kernel", "bias")]
        assert reader.read("dense_3.bias").tolist() == [3, 3]


def test_weight_key_rules(tmp_path):
    layers = {
        "dense": {"dense/kernel:0": np.zeros(1, np.float32), "x/dense/kernel:0": np.ones(1, np.float32)},
        "sequential": {"dense_1/kernel:0": np.zeros(2, np.float32), "sequential/dense_2/bias": np.zeros(3, np.float32)},
        "block": {"model/block/sub/w:12": np.zeros(1, np.int64)},
    }
    with KerasH5Reader(legacy_weights(tmp_path / "w.h5", layers)) as reader:
        assert reader.keys() == ["dense.kernel", "dense.x.dense.kernel:0",  # collision: full path for the later
                                 "sequential.dense_1.kernel", "sequential.dense_2.bias", "block.sub.w"]
        assert reader.read("dense.x.dense.kernel:0").tolist() == [1]


def test_top_level_model_weights_come_last(tmp_path):
    path = legacy_weights(tmp_path / "w.h5", {"dense": {"dense/kernel": np.zeros(1, np.float32)}})
    with h5py.File(path, "a") as f:
        group = f.create_group("top_level_model_weights")
        group.attrs["weight_names"] = np.array([b"model/scale"])
        group["model/scale"] = np.float32(2.0)
    with KerasH5Reader(path) as reader:
        assert reader.keys() == ["dense.kernel", "top_level_model_weights.model.scale"]
        assert reader.read("top_level_model_weights.model.scale").shape == ()


def test_keras3_natural_order_and_old_dependency_name(tmp_path):
    path = tmp_path / "m.weights.h5"
    with h5py.File(path, "w") as f:
        for i in range(12):
            f[f"_layer_checkpoint_dependencies/dense_{i % 3 * 5}/vars/{i}"] = np.full(1, i, np.float32)
        f.create_group("vars").attrs["name"] = "m"
    with KerasH5Reader(path) as reader:
        assert reader.format == "keras3-weights-h5"
        order = [(k.split(".")[1], int(k.split(".")[3])) for k in reader.keys()]  # noqa: SIM118 - a reader, not a dict
        assert order == sorted(order, key=lambda t: (int(t[0].split("_")[1]), t[1]))
        assert reader.keys()[0] == "_layer_checkpoint_dependencies.dense_0.vars.0"
        assert [int(k.rsplit(".", 1)[1]) for k in reader.keys() if ".dense_0." in k] == [0, 3, 6, 9]  # noqa: SIM118 - a reader, not a dict


def test_big_endian_and_scalar_datasets(tmp_path):
    path = legacy_weights(tmp_path / "w.h5", {"d": {"d/k": np.arange(3, dtype=">f8"), "d/s": np.int16(7)}})
    with KerasH5Reader(path) as reader:
        value = reader.read("d.k")
        assert value.dtype == np.float64 and value.dtype.isnative and value.tolist() == [0, 1, 2]
        assert reader.tensors["d.k"].dtype == np.float64
        assert reader.read("d.s").shape == () and reader.read("d.s") == 7


# ---------------------------------------------------------------------------------------------
# Hostile and broken files

@pytest.mark.parametrize("where", ["/model_weights/conv/cnn/conv/kernel", "/model_weights/conv/cnn",
                                   "/model_weights/bn", "/optimizer_weights/adam/iteration"])
def test_soft_links_are_refused(tmp_path, where):
    path = copy(tmp_path, "keras3_cnn_legacy.h5")
    with h5py.File(path, "a") as f:
        del f[where]
        f[where] = h5py.SoftLink("/model_weights/logits/cnn/logits/bias")
    with pytest.raises(CheckpointError, match="is a soft link to '/model_weights/logits/cnn/logits/bias'; "
                                              "soft links are refused"):
        KerasH5Reader(path)


@pytest.mark.parametrize("name, where", [("keras3_cnn.weights.h5", "/layers/dense/vars/0"),
                                         ("keras3_cnn.weights.h5", "/layers/conv2d"),
                                         ("tf_keras_cnn_weights.h5", "/conv/conv/kernel:0"),
                                         ("keras3_cnn_legacy.h5", "/model_weights")])
def test_external_links_are_refused(tmp_path, name, where):
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as f:
        f["x"] = np.zeros((144, 3), np.float32)
    path = copy(tmp_path, name)
    with h5py.File(path, "a") as f:
        del f[where]
        f[where] = h5py.ExternalLink(str(secret), "/x")
    with pytest.raises(CheckpointError, match="external link to .*secret.h5'; links out of the file are refused"):
        KerasH5Reader(path)


def test_external_and_virtual_datasets_are_refused(tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(b"\0" * 16)
    path = copy(tmp_path, "keras3_cnn.weights.h5")
    with h5py.File(path, "a") as f:
        del f["layers/dense/vars/1"]
        f.create_dataset("layers/dense/vars/1", shape=(3,), dtype="f4", external=[(str(raw), 0, 12)])
    with pytest.raises(CheckpointError, match="stores its data in external files; refused"):
        KerasH5Reader(path)
    path = copy(tmp_path, "keras3_cnn.weights.h5")
    with h5py.File(path, "a") as f:
        layout = h5py.VirtualLayout(shape=(3,), dtype="f4")
        layout[:] = h5py.VirtualSource(str(tmp_path / "secret.h5"), "x", shape=(3,))
        del f["layers/dense/vars/1"]
        f.create_virtual_dataset("layers/dense/vars/1", layout)
    with pytest.raises(CheckpointError, match="virtual dataset"):
        KerasH5Reader(path)


def test_shape_bomb_is_refused(tmp_path):
    path = copy(tmp_path, "keras3_cnn.weights.h5")
    with h5py.File(path, "a") as f:
        del f["layers/dense/vars/0"]
        f.create_dataset("layers/dense/vars/0", shape=(1 << 20, 1 << 12), dtype="f4", chunks=(64, 64),
                         compression="gzip")
    with pytest.raises(CheckpointError, match="refused as a shape bomb"):
        KerasH5Reader(path)


def test_hard_link_cycle_is_refused(tmp_path):
    path = copy(tmp_path, "keras3_cnn.weights.h5")
    with h5py.File(path, "a") as f:
        f["layers/dense/vars/loop"] = f["layers"]
    with pytest.raises(CheckpointError, match="reachable by two paths"):
        KerasH5Reader(path)


def _conv_weights(*names: bytes):
    return lambda f: f["conv"].attrs.__setitem__("weight_names", np.array(list(names)))


def _layer_names(*names):
    return lambda f: f.attrs.__setitem__("layer_names", np.array(list(names)))


def _extra_weight(name, data):
    def mutate(f):
        f["conv/conv"].create_dataset(name, data=data)
        f["conv"].attrs["weight_names"] = np.array([f"conv/{name}".encode()])
    return mutate


@pytest.mark.parametrize("mutate, message", [
    (_conv_weights(b"../bn/bn/gamma:0"), "malformed weight name '../bn/bn/gamma:0'"),
    (_conv_weights(b"/bn/bn/gamma:0"), "malformed weight name"),
    (_conv_weights(b"conv/nothere:0"), "weight 'conv/nothere:0' of layer 'conv' is missing"),
    (_conv_weights(b"conv"), "is missing"),  # a group, not a dataset
    (_layer_names(b"conv", b"ghost"), "layer 'ghost' is listed in layer_names"),
    (_layer_names(b"conv", b"conv"), "lists 'conv' twice"),
    (_layer_names(1, 2), "should list names, found int64"),
    (_layer_names(b"\xff\xfe"), "is not UTF-8"),
    (_extra_weight("text", "hello"), "has dtype object, which modelsurgeon cannot read"),
    (_extra_weight("odd", np.zeros(2, "V3")), "opaque 3-byte dtype"),
])
def test_malformed_legacy_files(tmp_path, mutate, message):
    path = copy(tmp_path, "tf_keras_cnn_weights.h5")
    with h5py.File(path, "a") as f:
        mutate(f)
    with pytest.raises(CheckpointError, match=message):
        KerasH5Reader(path)


@pytest.mark.parametrize("name", ["keras3_cnn.weights.h5", "keras3_cnn_legacy.h5"])
def test_truncated_files_are_refused(tmp_path, name):
    data = open(peer(name), "rb").read()
    path = tmp_path / "cut.h5"
    for size in [0, 7, 100, 512, 2048, len(data) // 3, len(data) // 2, len(data) - 2048, len(data) - 1]:
        path.write_bytes(data[:size])
        try:
            with KerasH5Reader(path) as reader:
                for key in reader.keys():  # noqa: SIM118 - a reader, not a dict
                    reader.read(key)
        except CheckpointError:
            continue
        pytest.fail(f"a file cut at {size} of {len(data)} bytes was read without error")


def test_not_hdf5(tmp_path):
    (tmp_path / "x.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(CheckpointError, match="not a readable HDF5 file"):
        KerasH5Reader(tmp_path / "x.h5")
    with pytest.raises(CheckpointError, match="no such file"):
        KerasH5Reader(tmp_path / "missing.h5")


def test_invalid_model_config_is_noted_not_fatal(tmp_path):
    path = copy(tmp_path, "keras3_cnn_legacy.h5")
    with h5py.File(path, "a") as f:
        f.attrs["model_config"] = "{not json"
    with KerasH5Reader(path) as reader:
        assert "model_config" not in reader.metadata
        assert "not valid JSON" in reader.metadata["model_config_error"]
        assert len(reader) == 8
