"""`modelsurgeon resize-embedding`: tiny GPT-2 and BERT made from configs, loaded back with transformers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import error_line, invoke, parse_json, read_arrays

from modelsurgeon.cli.errors import ExitCode
from modelsurgeon.core.surgery.embedding import resize_rows

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def _gpt2(vocab=100):
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=vocab, n_positions=32, n_embd=16, n_layer=1, n_head=2,
                                     bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(config).eval()


def _bert(vocab=90):
    torch.manual_seed(1)
    config = transformers.BertConfig(vocab_size=vocab, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=32)
    return transformers.BertForMaskedLM(config).eval()


def test_gpt2_folder_grows_and_loads_in_transformers(tmp_path):
    model = _gpt2()
    model.save_pretrained(tmp_path / "gpt2")
    out = tmp_path / "bigger"
    document = parse_json(invoke("resize-embedding", tmp_path / "gpt2", "-o", out, "--key", "transformer.wte.weight",
                                 "--rows", "110", "--json"), "resize-embedding")
    assert document["old_rows"] == 100 and document["rows"] == 110 and document["config_vocab_size"] == 110
    assert json.loads((out / "config.json").read_text())["vocab_size"] == 110
    loaded = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    old = model.transformer.wte.weight.detach()
    new = loaded.transformer.wte.weight.detach()
    assert new.shape == (110, 16)
    assert torch.equal(new[:100], old), "existing rows bit-identical"
    expected = old.double().mean(0).float()
    assert all(torch.equal(new[i], expected) for i in range(100, 110))
    assert loaded.lm_head.weight.data_ptr() == loaded.transformer.wte.weight.data_ptr(), "still tied"
    ids = torch.tensor([[1, 5, 99, 109]])
    with torch.no_grad():
        logits = loaded(ids).logits
    assert logits.shape == (1, 4, 110)
    with torch.no_grad():  # old tokens, old logits over the old vocabulary
        np.testing.assert_allclose(logits[0, :2, :100].numpy(), model(ids[:, :2]).logits[0].numpy(), atol=1e-5)


def test_bert_trim_resizes_the_prediction_bias(tmp_path):
    model = _bert()
    model.save_pretrained(tmp_path / "bert")
    out = tmp_path / "small"
    document = parse_json(invoke("resize-embedding", tmp_path / "bert", "-o", out, "--key",
                                 "bert.embeddings.word_embeddings.weight", "--rows", "80", "--json"),
                          "resize-embedding")
    assert document["heads"] == ["cls.predictions.bias"]
    loaded = transformers.BertForMaskedLM.from_pretrained(out).eval()
    assert loaded.config.vocab_size == 80
    assert torch.equal(loaded.bert.embeddings.word_embeddings.weight, model.bert.embeddings.word_embeddings.weight[:80])
    assert torch.equal(loaded.cls.predictions.bias, model.cls.predictions.bias[:80])
    with torch.no_grad():
        assert loaded(torch.tensor([[2, 79]])).logits.shape == (1, 2, 80)


def test_tied_torch_state_dict_keeps_the_tie(tmp_path):
    model = _gpt2()
    source = tmp_path / "gpt2.pt"
    torch.save(model.state_dict(), source)
    out = tmp_path / "grown.pt"
    document = parse_json(invoke("resize-embedding", source, "-o", out, "--key", "transformer.wte.weight",
                                 "--rows", "104", "--init", "normal", "--seed", "3", "--json"), "resize-embedding")
    assert document["tied"] == ["lm_head.weight"]
    state = torch.load(out, weights_only=True)
    assert state["lm_head.weight"].data_ptr() == state["transformer.wte.weight"].data_ptr()
    bigger = _gpt2(104)
    bigger.load_state_dict(state, strict=True)
    old = model.transformer.wte.weight.detach()
    assert torch.equal(state["transformer.wte.weight"][:100], old)
    new_rows = state["transformer.wte.weight"][100:]
    assert not torch.equal(new_rows[0], new_rows[1])
    again = tmp_path / "again.pt"
    invoke("resize-embedding", source, "-o", again, "--key", "transformer.wte.weight", "--rows", "104",
           "--init", "normal", "--seed", "3")
    assert torch.equal(torch.load(again, weights_only=True)["transformer.wte.weight"], state["transformer.wte.weight"])


def test_resize_rows_inits_and_bfloat16():
    rows = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert np.array_equal(resize_rows(rows, 6, "zeros")[4:], np.zeros((2, 3), np.float32))
    assert np.array_equal(resize_rows(rows, 2), rows[:2])
    grown = resize_rows(np.array([[1.0, 1.00390625]], np.float32), 2, "mean", stored="bfloat16")
    assert grown[1].tolist() == [1.0, 1.0]  # new rows rounded to the stored bfloat16


def test_errors_and_dry_run(tmp_path):
    model = _gpt2()
    source = tmp_path / "g.safetensors"
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}, str(source))
    out = tmp_path / "o.safetensors"
    result = invoke("resize-embedding", source, "-o", out, "--key", "nope", "--rows", "5", code=ExitCode.INVALID)
    assert "no tensor --key 'nope'" in error_line(result)
    invoke("resize-embedding", source, "-o", out, "--key", "transformer.wte.weight", "--rows", "0", code=2)
    invoke("resize-embedding", source, "-o", out, "--key", "transformer.wte.weight", "--rows", "5", "--init", "x",
           code=2)
    document = parse_json(invoke("resize-embedding", source, "-o", out, "--key", "transformer.wte.weight", "--rows",
                                 "120", "--dry-run", "--json"), "resize-embedding")
    assert document["dry_run"] and not out.exists()
    invoke("resize-embedding", source, "-o", out, "--key", "transformer.wte.weight", "--rows", "120")
    assert read_arrays(out)["transformer.wte.weight"].shape == (120, 16)
