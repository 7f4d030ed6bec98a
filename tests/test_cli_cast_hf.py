"""`convert --dtype` on a Hugging Face folder: the config names the new dtype; transformers loads it."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def test_hugging_face_folder_config_names_the_new_dtype(tmp_path):
    transformers = pytest.importorskip("transformers")
    from cli_helpers import invoke
    from safetensors.torch import load_file
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=50, n_positions=16, n_embd=8, n_layer=1, n_head=2,
                                     bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(config)
    model.save_pretrained(tmp_path / "gpt2")
    out = tmp_path / "bf16"
    invoke("convert", tmp_path / "gpt2", "-o", out, "--dtype", "bfloat16", "--keep-dtype", r"\.ln_")
    import json
    written = json.loads((out / "config.json").read_text())
    assert written.get("torch_dtype", written.get("dtype")) == "bfloat16"
    tensors = load_file(str(out / "model.safetensors"))
    assert tensors["transformer.h.0.ln_1.weight"].dtype == torch.float32
    assert tensors["transformer.wte.weight"].dtype == torch.bfloat16
    loaded = transformers.GPT2LMHeadModel.from_pretrained(out, dtype="auto")
    assert loaded.dtype == torch.bfloat16
    assert torch.equal(loaded.transformer.wte.weight, model.transformer.wte.weight.detach().to(torch.bfloat16))
