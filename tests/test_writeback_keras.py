"""Keras 3 written back: .keras archives that keras.saving.load_model loads (also with a new head) and
.weights.h5 files that model.load_weights loads. Runs Keras 3 on the torch backend."""

from __future__ import annotations

import json
import os
import types
import zipfile

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from modelsurgeon.core.errors import ModelSurgeonError, SurgeryError
from modelsurgeon.core.formats import keras3
from modelsurgeon.core.formats.base import TensorInfo
from modelsurgeon.core.formats.keras import KerasH5Reader

PEERS = os.path.join(os.path.dirname(__file__), "fixtures", "peers")


def _cnn(classes: int = 5) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="conv"),
                              keras.layers.BatchNormalization(name="bn"), keras.layers.Flatten(name="flat"),
                              keras.layers.Dense(6, activation="relu", name="hidden"),
                              keras.layers.Dense(classes, name="head")], name="cnn")
    model.layers[1].moving_mean.assign(np.linspace(0, 1, 4).astype(np.float32))  # not the initial zeros
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras")
    model = _cnn()
    model.save(folder / "cnn.keras")
    model.save_weights(folder / "cnn.weights.h5")
    return folder, _weights(model)


def _weights(model) -> dict[str, np.ndarray]:
    """Every variable by layer name and position (variable paths depend on how the model was made)."""
    return {f"{layer.name}/{i}": np.asarray(v.numpy()) for layer in model.layers for i, v in enumerate(layer.weights)}


def test_keras_archive_is_read(saved):
    folder, _ = saved
    with keras3.KerasArchiveReader(folder / "cnn.keras") as reader, \
            KerasH5Reader(folder / "cnn.weights.h5") as plain:
        assert reader.format == "keras3" and reader.kind == "structural"
        assert reader.keys() == plain.keys()  # the same keys as the .weights.h5 reader gives
        assert "layers.dense_1.vars.0" in reader.keys()  # noqa: SIM118 - a reader, not a dict
        assert reader.config["config"]["name"] == "cnn"
        assert json.loads(reader.metadata["model_config"]) == reader.config
        assert reader.metadata["keras_version"] == keras.__version__
        assert reader.tensors["layers.dense_1.vars.0"].extra["layer_name"] == "head"
        for key in reader.keys():  # noqa: SIM118 - a reader, not a dict
            np.testing.assert_array_equal(reader.read(key), plain.read(key))
        probe = types.SimpleNamespace(path=str(folder / "cnn.keras"), head=(folder / "cnn.keras").read_bytes()[:64])
        assert keras3.sniff(probe)
        assert not keras3.sniff(types.SimpleNamespace(path=str(folder / "cnn.weights.h5"), head=b"\x89HDF\r\n\x1a\n"))
        temp = reader._temp
        assert temp is not None and os.path.exists(temp)
    assert not os.path.exists(temp)  # the extracted weights go with the reader


def test_new_head_in_a_keras_archive_loads_in_keras(saved, tmp_path):
    folder, original = saved
    with keras3.KerasArchiveReader(folder / "cnn.keras") as reader:
        head = keras3.find_dense_head(reader.tensors.values(), reader.config)
        assert (head.layer_name, head.kernel, head.bias, head.in_units, head.units) == \
            ("head", "layers.dense_1.vars.0", "layers.dense_1.vars.1", 6, 5)
        config = keras3.set_layer_outputs(reader.config, head.layer_name, 3)
        new = {head.kernel: np.arange(18, dtype=np.float32).reshape(6, 3) / 10,
               head.bias: np.array([1.0, -2.0, 0.5], np.float32)}
        infos = [TensorInfo(i.key, new[i.key].shape, i.dtype, extra=i.extra) if i.key in new else i
                 for i in reader.tensors.values()]
        keras3.write_keras(tmp_path / "new.keras", infos, lambda i: new[i.key] if i.key in new else reader.read(i.key),
                           metadata=reader.metadata, config=config, copy_from=str(folder / "cnn.keras"))
    model = keras.saving.load_model(tmp_path / "new.keras")
    assert model.layers[-1].units == 3
    np.testing.assert_array_equal(model.layers[-1].kernel.numpy(), new[head.kernel])
    np.testing.assert_array_equal(model.layers[-1].bias.numpy(), new[head.bias])
    loaded = _weights(model)
    for path, value in original.items():
        if not path.startswith("head/"):
            np.testing.assert_array_equal(loaded[path], value, err_msg=path)
    assert model.predict(np.ones((2, 8, 8, 3), np.float32), verbose=0).shape == (2, 3)
    names = [i.filename for i in zipfile.ZipFile(tmp_path / "new.keras").infolist()]
    assert names == ["metadata.json", "config.json", "model.weights.h5"]


def test_unchanged_archive_round_trip_is_reproducible(saved, tmp_path):
    folder, original = saved
    with keras3.KerasArchiveReader(folder / "cnn.keras") as reader:
        for name in ("a.keras", "b.keras"):
            keras3.write_keras(tmp_path / name, list(reader.tensors.values()), lambda i: reader.read(i.key),
                               metadata=reader.metadata)
    assert (tmp_path / "a.keras").read_bytes() == (tmp_path / "b.keras").read_bytes()
    model = keras.saving.load_model(tmp_path / "a.keras")
    for path, value in _weights(model).items():
        np.testing.assert_array_equal(value, original[path], err_msg=path)


def test_weights_file_written_loads_with_load_weights(saved, tmp_path):
    folder, original = saved
    with KerasH5Reader(folder / "cnn.weights.h5") as reader:
        assert reader.metadata["model_name"] == "cnn"
        keras3.write_keras_weights(tmp_path / "out.weights.h5", list(reader.tensors.values()),
                                   lambda i: reader.read(i.key), metadata=reader.metadata)
    fresh = _cnn()
    keras.utils.set_random_seed(1)
    fresh = keras.Sequential.from_config(fresh.get_config())  # new random weights
    fresh.build((None, 8, 8, 3))
    fresh.load_weights(tmp_path / "out.weights.h5")
    for path, value in _weights(fresh).items():
        np.testing.assert_array_equal(value, original[path], err_msg=path)
    with KerasH5Reader(tmp_path / "out.weights.h5") as again:
        assert again.format == "keras3-weights-h5"
        assert again.tensors["layers.conv2d.vars.0"].extra["layer_name"] == "conv"
        assert again.metadata["model_name"] == "cnn"


def test_head_of_a_weights_file_without_config(saved):
    folder, _ = saved
    with KerasH5Reader(folder / "cnn.weights.h5") as reader:
        head = keras3.find_dense_head(reader.tensors.values())
        assert (head.path, head.kernel, head.bias, head.units) == ("layers.dense_1", "layers.dense_1.vars.0",
                                                                   "layers.dense_1.vars.1", 5)
        assert keras3.find_dense_head(reader.tensors.values(), layer="hidden").kernel == "layers.dense.vars.0"
        with pytest.raises(SurgeryError, match="no Dense layer 'conv'; Dense layers: head, hidden"):
            keras3.find_dense_head(reader.tensors.values(), layer="conv")


def test_bfloat16_weights_written_back_as_keras_stores_them(tmp_path):
    with KerasH5Reader(os.path.join(PEERS, "keras3_bf16.weights.h5")) as reader:
        values = {key: reader.read(key) for key in reader.keys()}  # noqa: SIM118 - a reader, not a dict
        keras3.write_keras_weights(tmp_path / "bf16.weights.h5", list(reader.tensors.values()), lambda i: values[i.key],
                                   metadata=reader.metadata)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, dtype="bfloat16", name="half")], name="bf16")
    model.load_weights(tmp_path / "bf16.weights.h5")
    np.testing.assert_array_equal(np.asarray(model.layers[0].kernel.numpy(), np.float32), values["layers.dense.vars.0"])
    with KerasH5Reader(tmp_path / "bf16.weights.h5") as again:
        assert again.tensors["layers.dense.vars.0"].extra["source_dtype"] == "BF16"


def test_keys_that_are_not_keras_paths_are_refused_at_once(tmp_path):
    infos = [TensorInfo("fc.weight", (2, 2), np.dtype(np.float32)),
             TensorInfo("layers.dense.vars.1", (2,), np.dtype(np.float32)),
             TensorInfo("layers.ok.vars.0", (2,), np.dtype(np.float32))]
    with pytest.raises(ModelSurgeonError, match=r"'fc.weight' is not a Keras 3 variable path .*; "
                                                r"/layers/dense/vars numbers its variables \[1\]; Keras wants 0..0"):
        keras3.write_keras_weights(tmp_path / "x.weights.h5", infos, lambda i: np.zeros(i.shape, np.float32))
    with pytest.raises(ModelSurgeonError, match="needs the model's config"):
        keras3.write_keras(tmp_path / "x.keras", infos[2:], lambda i: np.zeros(i.shape, np.float32))
    assert os.listdir(tmp_path) == []


def test_set_layer_outputs(saved):
    folder, _ = saved
    with keras3.KerasArchiveReader(folder / "cnn.keras") as reader:
        config = reader.config
    changed = keras3.set_layer_outputs(config, "conv", 8)
    assert [e["config"].get("filters") for e in changed["config"]["layers"] if e["class_name"] == "Conv2D"] == [8]
    assert [e["config"].get("filters") for e in config["config"]["layers"] if e["class_name"] == "Conv2D"] == [4]
    with pytest.raises(SurgeryError, match="layer 'bn' is a BatchNormalization"):
        keras3.set_layer_outputs(config, "bn", 3)
    with pytest.raises(SurgeryError, match="the model config has no layer 'nope'"):
        keras3.set_layer_outputs(config, "nope", 3)


def test_archive_problems_are_checkpoint_errors(tmp_path, monkeypatch):
    from modelsurgeon.core.errors import CheckpointError
    with zipfile.ZipFile(tmp_path / "no_weights.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(CheckpointError, match="the Keras archive has no model.weights.h5"):
        keras3.KerasArchiveReader(tmp_path / "no_weights.keras")
    with zipfile.ZipFile(tmp_path / "bad_config.keras", "w") as archive:
        archive.writestr("config.json", "[1")
        archive.writestr("model.weights.h5", b"")
    with pytest.raises(CheckpointError, match="config.json is not valid JSON"):
        keras3.KerasArchiveReader(tmp_path / "bad_config.keras")
    monkeypatch.setattr(keras3, "BOMB_FLOOR", 1 << 20)
    monkeypatch.setattr(keras3, "BOMB_RATIO", 100)
    with zipfile.ZipFile(tmp_path / "bomb.keras", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"\0" * (4 << 20))
    with pytest.raises(CheckpointError, match="refused as a decompression bomb"):
        keras3.KerasArchiveReader(tmp_path / "bomb.keras")
    assert keras3.sniff_keras_zip(tmp_path / "bomb.keras") and not keras3.sniff_keras_zip(tmp_path / "none.keras")
