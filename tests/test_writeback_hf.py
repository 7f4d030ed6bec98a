"""Hugging Face model folders read and written back: a tiny sharded BERT gets a new classification head
(and a resized vocabulary) and loads in transformers with no missing, unexpected or mismatched keys and
no warning about labels. Nothing is downloaded: the model is made from a small BertConfig."""

from __future__ import annotations

import json
import logging
import os
import warnings

import numpy as np
import pytest

from modelsurgeon.core.errors import CheckpointError, OutputExistsError, SurgeryError, WriteError
from modelsurgeon.core.formats import hf
from modelsurgeon.core.formats.base import TensorInfo
from modelsurgeon.core.formats.safetensors_io import SafetensorsReader

transformers = pytest.importorskip("transformers")
pytest.importorskip("torch")

SHARD = 12_000  # bytes: the tiny BERT (about 28 KB) becomes three shards


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    """A tiny BertForSequenceClassification (3 labels) saved sharded, with a tokenizer file beside it."""
    from transformers import BertConfig, BertForSequenceClassification
    transformers.set_seed(0)
    config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, num_labels=3,
                        id2label={0: "cat", 1: "dog", 2: "bird"}, label2id={"cat": 0, "dog": 1, "bird": 2})
    model = BertForSequenceClassification(config)
    folder = tmp_path_factory.mktemp("hf") / "bert"
    model.save_pretrained(folder, max_shard_size=SHARD)
    (folder / "tokenizer_config.json").write_text('{"model_max_length": 32}\n')
    (folder / "vocab.txt").write_text("\n".join(f"tok{i}" for i in range(64)) + "\n")
    (folder / "tf_model.h5").write_bytes(b"stale weights of another framework")
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return folder, state


class _Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _load(folder, **options):
    """from_pretrained with its loading report, transformers' warnings and Python warnings."""
    from transformers import BertForSequenceClassification
    captured = _Captured()
    logger = logging.getLogger("transformers")
    logger.addHandler(captured)
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_warning()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model, info = BertForSequenceClassification.from_pretrained(folder, output_loading_info=True,
                                                                        **options)
    finally:
        transformers.logging.set_verbosity(level)
        logger.removeHandler(captured)
    return model, info, captured.messages + [str(w.message) for w in caught]


def test_folder_is_recognised_and_read(bert):
    folder, state = bert
    assert hf.is_model_dir(folder) and not hf.is_model_dir(folder / "config.json")
    with hf.HFFolderReader(folder) as reader:
        assert reader.format == "hf-folder"
        assert set(reader.keys()) == set(state)
        assert reader.layout.sharded and reader.layout.kind == "safetensors"
        assert reader.layout.shards == ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                                        "model-00003-of-00003.safetensors"]
        assert 0 < reader.layout.largest_shard <= SHARD
        assert reader.config["id2label"] == {"0": "cat", "1": "dog", "2": "bird"}
        for key, value in state.items():
            np.testing.assert_array_equal(reader.read(key), value)


def test_new_head_loads_in_transformers_without_key_or_label_complaints(bert, tmp_path):
    folder, state = bert
    rng = np.random.default_rng(0)
    new = {"classifier.weight": rng.normal(size=(5, 16)).astype(np.float32),
           "classifier.bias": np.arange(5, dtype=np.float32)}
    with hf.HFFolderReader(folder) as reader:
        infos = [TensorInfo(i.key, new[i.key].shape, i.dtype, extra=i.extra) if i.key in new else i
                 for i in reader.tensors.values()]
        config = hf.config_for_head(reader.config, 5, kept=[2, 0])
        result = hf.write_folder(tmp_path / "out", infos, lambda i: new[i.key] if i.key in new else reader.read(i.key),
                                 source=reader, config=config)
        layout = reader.layout
    out = tmp_path / "out"
    assert sorted(os.listdir(out)) == ["config.json", "model-00001-of-00003.safetensors",
                                       "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors",
                                       "model.safetensors.index.json", "tokenizer_config.json", "vocab.txt"]
    assert result.written[-1] == str(out / "model.safetensors.index.json")
    assert any(note.startswith("tf_model.h5: weights in another format, left out") for note in result.notes)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert index["weight_map"] == layout.shard_of  # every tensor stays in the shard it came from
    assert index["metadata"]["total_size"] == sum(v.nbytes for k, v in state.items() if k not in new) + \
        sum(v.nbytes for v in new.values())
    with SafetensorsReader(out / "model-00001-of-00003.safetensors") as shard:
        assert shard.metadata == {"format": "pt"}
    assert (out / "vocab.txt").read_bytes() == (folder / "vocab.txt").read_bytes()

    model, info, messages = _load(out)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()
    assert info["mismatched_keys"] == set() and info["error_msgs"] == []
    assert not [m for m in messages if "label" in m.lower()], messages
    # (the capture does see transformers' complaint when labels and config disagree)
    _, _, complaints = _load(folder, num_labels=5, ignore_mismatched_sizes=True)
    assert [m for m in complaints if "num_labels=5" in m and "id2label" in m]
    assert model.num_labels == 5
    assert model.config.id2label == {0: "bird", 1: "cat", 2: "LABEL_2", 3: "LABEL_3", 4: "LABEL_4"}
    assert model.config.label2id["bird"] == 0
    loaded = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    for key, value in state.items():
        np.testing.assert_array_equal(loaded[key], new.get(key, value), err_msg=key)


def test_resized_vocabulary_updates_vocab_size(bert, tmp_path):
    folder, state = bert
    key = "bert.embeddings.word_embeddings.weight"
    grown = np.concatenate([state[key], np.full((8, 16), 0.25, np.float32)])
    with hf.HFFolderReader(folder) as reader:
        infos = [TensorInfo(i.key, grown.shape, i.dtype, extra=i.extra) if i.key == key else i
                 for i in reader.tensors.values()]
        hf.write_folder(tmp_path / "grown", infos, lambda i: grown if i.key == key else reader.read(i.key),
                        source=reader, config=hf.config_for_vocab(reader.config, 72))
    model, info, _ = _load(tmp_path / "grown")
    assert model.config.vocab_size == 72
    assert info["missing_keys"] == info["unexpected_keys"] == info["mismatched_keys"] == set()
    np.testing.assert_array_equal(model.bert.embeddings.word_embeddings.weight.detach().numpy(), grown)


def test_max_shard_size_and_single_file_layouts(bert, tmp_path):
    folder, state = bert
    with hf.HFFolderReader(folder) as reader:
        fetch = lambda i: reader.read(i.key)
        infos = list(reader.tensors.values())
        hf.write_folder(tmp_path / "one", infos, fetch, source=reader, max_shard_size=1 << 30)
        hf.write_folder(tmp_path / "many", infos, fetch, source=reader, max_shard_size=6000)
    assert "model.safetensors" in os.listdir(tmp_path / "one")  # one shard: no index, as save_pretrained does
    assert "model.safetensors.index.json" not in os.listdir(tmp_path / "one")
    many = json.loads((tmp_path / "many" / "model.safetensors.index.json").read_text())
    shards = sorted(set(many["weight_map"].values()))
    assert len(shards) > 3 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    for name in ("one", "many"):
        with hf.HFFolderReader(tmp_path / name) as again:
            assert set(again.keys()) == set(state)
        _, info, _ = _load(tmp_path / name)
        assert info["missing_keys"] == info["unexpected_keys"] == info["mismatched_keys"] == set()
    # an unsharded input stays one file; rewriting a folder replaces its earlier weights
    with hf.HFFolderReader(tmp_path / "one") as single:
        result = hf.write_folder(tmp_path / "many", list(single.tensors.values()), lambda i: single.read(i.key),
                                 source=single)
    assert sorted(f for f in os.listdir(tmp_path / "many") if "safetensors" in f) == ["model.safetensors"]
    assert any("removed (weights of an earlier write" in note for note in result.notes)


def test_refusals(bert, tmp_path):
    folder, _ = bert
    before = {name: (folder / name).read_bytes() for name in os.listdir(folder)}
    with hf.HFFolderReader(folder) as reader:
        infos = list(reader.tensors.values())
        with pytest.raises(WriteError, match="the output folder is the input folder; nothing was written"):
            hf.write_folder(folder, infos, lambda i: reader.read(i.key), source=reader)
        hf.write_folder(tmp_path / "out", infos, lambda i: reader.read(i.key), source=reader)
        with pytest.raises(OutputExistsError, match="model-00001-of-00003.safetensors already exists"):
            hf.write_folder(tmp_path / "out", infos, lambda i: reader.read(i.key), source=reader, overwrite=False)

        def failing(info):
            if info.key == infos[-1].key:
                raise OSError(28, "No space left on device")
            return reader.read(info.key)

        with pytest.raises(Exception, match="no space left on device"):
            hf.write_folder(tmp_path / "failed", infos, failing, source=reader)
    assert not (tmp_path / "failed").exists()  # nothing of a failed write stays, not even the folder
    assert {name: (folder / name).read_bytes() for name in os.listdir(folder)} == before
    with pytest.raises(SurgeryError, match="labels must be distinct"):
        hf.config_for_head({}, 2, labels=["a", "a"])
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="a model folder without weights"):
        hf.HFFolderReader(tmp_path / "bare")


def test_pytorch_bin_folder_is_read_and_written_as_safetensors(bert, tmp_path):
    import torch
    folder, state = bert
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    (bin_folder / "config.json").write_bytes((folder / "config.json").read_bytes())
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, bin_folder / "pytorch_model.bin")
    with hf.HFFolderReader(bin_folder) as reader:
        assert reader.layout.kind == "torch" and not reader.layout.sharded
        hf.write_folder(tmp_path / "st", list(reader.tensors.values()), lambda i: reader.read(i.key), source=reader)
    assert sorted(os.listdir(tmp_path / "st")) == ["config.json", "model.safetensors"]
    _, info, _ = _load(tmp_path / "st")
    assert info["missing_keys"] == info["unexpected_keys"] == info["mismatched_keys"] == set()
    # sharded .bin (pytorch_model-0000i-of-0000N.bin + index): shards opened in threads, each loaded safely
    sharded = tmp_path / "bin_sharded"
    sharded.mkdir()
    (sharded / "config.json").write_bytes((folder / "config.json").read_bytes())
    keys = list(state)
    weight_map = {}
    for number, part in enumerate((keys[: len(keys) // 2], keys[len(keys) // 2:]), start=1):
        name = f"pytorch_model-{number:05d}-of-00002.bin"
        torch.save({k: torch.from_numpy(state[k]) for k in part}, sharded / name)
        weight_map.update(dict.fromkeys(part, name))
    (sharded / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    with hf.HFFolderReader(sharded) as reader:
        assert reader.layout.kind == "torch" and reader.layout.sharded and len(reader.layout.shards) == 2
        hf.write_folder(tmp_path / "st2", list(reader.tensors.values()), lambda i: reader.read(i.key), source=reader)
    assert sorted(os.listdir(tmp_path / "st2")) == ["config.json", "model-00001-of-00002.safetensors",
                                                     "model-00002-of-00002.safetensors", "model.safetensors.index.json"]
    _, info, _ = _load(tmp_path / "st2")
    assert info["missing_keys"] == info["unexpected_keys"] == info["mismatched_keys"] == set()
