"""Surgery plans on files from other frameworks (core.surgery, no CLI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelsurgeon.core import binding as checkpoint
from modelsurgeon.core import surgery

PEERS = Path(__file__).resolve().parent / "fixtures" / "peers"


def test_keras_kernel_head_counts_classes_on_its_last_axis():
    with checkpoint.open_checkpoint(str(PEERS / "keras3_cnn_legacy.h5")) as reader:
        old = reader.read("logits.kernel")
        plan = surgery.plan_replace_head(reader, 5, init="keras", seed=0, keep_classes=[2, 0])
    head = surgery.find_head(reader)
    assert head.weight == "logits.kernel" and head.out_axis == -1
    assert plan.details["old_classes"] == 3
    kernel = new_tensors(plan)["logits.kernel"]
    assert kernel.shape == (old.shape[0], 5) and new_tensors(plan)["logits.bias"].shape == (5,)
    np.testing.assert_array_equal(kernel[:, 0], old[:, 2])
    np.testing.assert_array_equal(kernel[:, 1], old[:, 0])
    limit = np.sqrt(6.0 / (old.shape[0] + 5))  # glorot_uniform over (fan_in=144, fan_out=5)
    assert np.abs(kernel[:, 2:]).max() <= limit


def test_torch_style_head_named_with_head_option():
    with checkpoint.open_checkpoint(str(PEERS / "torch_bf16.safetensors")) as reader:
        plan = surgery.plan_replace_head(reader, 3, head="head", init="torch", seed=1)
    assert surgery.find_head(reader, "head").out_axis == 0 and new_tensors(plan)["head.weight"].shape == (3, 4)
    bound = 1 / np.sqrt(4)
    assert np.abs(new_tensors(plan)["head.weight"]).max() <= bound
    assert np.abs(new_tensors(plan)["head.bias"]).max() <= bound


def new_tensors(plan):
    """The arrays a plan makes anew, by output key."""
    return {info.key: source.array for info, source in plan.tensors if isinstance(source, surgery.New)}
