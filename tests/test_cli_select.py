"""`modelsurgeon select`: --keep/--drop in order, --root, the architecture and graph following or dropped."""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import (  # noqa: F401
    CNN_INPUT,
    CNN_KEYS,
    Workspace,
    assert_same_arrays,
    error_line,
    read_arrays,
    read_documents,
    ws,
)

from modelsurgeon.cli.errors import ExitCode
from modelsurgeon.core import binding
from modelsurgeon.core.surgery.select import selected


def test_rules_apply_in_order():
    keys = ["a.weight", "a.bias", "b.weight", "b.bias", "c.weight"]
    assert selected(keys, [("drop", "^b")]) == ["a.weight", "a.bias", "c.weight"]
    assert selected(keys, [("keep", "weight"), ("drop", "^a"), ("keep", "a.bias")]) == ["a.bias", "b.weight",
                                                                                      "c.weight"]
    assert selected(keys, [("keep", "a.bias"), ("keep", "weight"), ("drop", "^a")]) == ["b.weight", "c.weight"]


def test_interleaved_cli_options_keep_their_order(ws):
    out = ws.out("s.h5")
    document = ws.json("select", ws["cnn.h5"], "-o", out, "--keep", "weight", "--drop", "^features",
                       "--keep=features.0.bias", command="select")
    assert document["rules"] == [{"action": "keep", "pattern": "weight"}, {"action": "drop", "pattern": "^features"},
                                 {"action": "keep", "pattern": "features.0.bias"}]
    assert list(read_arrays(out)) == ["features.0.bias", "output.weight"]


def test_root_extracts_a_backbone_that_runs(ws):
    out = ws.out("backbone.h5")
    document = ws.json("select", ws["cnn.h5"], "-o", out, "--root", "features", command="select")
    before, after = read_arrays(ws["cnn.h5"]), read_arrays(out)
    assert list(after) == [k[len("features."):] for k in CNN_KEYS if k.startswith("features.")]
    assert_same_arrays({k[len("features."):]: v for k, v in before.items() if k.startswith("features.")}, after)
    assert document["architecture_kept"] is True and document["dropped"] == ["output.weight", "output.bias"]
    x = np.random.default_rng(0).standard_normal(CNN_INPUT).astype(np.float32)
    with binding.open_checkpoint(ws["cnn.h5"]) as reader:
        expected = binding.model_from_reader(reader)._children["features"](x)
    with binding.open_checkpoint(out) as reader:
        got = binding.model_from_reader(reader)(x)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


def test_dropping_whole_blocks_keeps_the_architecture(ws):
    out = ws.out("nohead.h5")
    document = ws.json("select", ws["cnn.h5"], "-o", out, "--drop", r"^output\.", command="select")
    assert document["architecture_kept"] is True and document["notes"] == []
    y = ws.forward(out, "1,3,32,32")
    assert y.shape == (1, 32)


def test_partial_block_drops_the_architecture_with_a_note(ws):
    out = ws.out("p.h5")
    document = ws.json("select", ws["cnn.h5"], "-o", out, "--drop", r"features\.0\.bias", command="select")
    assert document["architecture_kept"] is False
    assert any("architecture was left out" in n and "features.0.bias" in n for n in document["notes"])
    _, architecture, _, _ = read_documents(out)
    assert architecture is None


def test_named_file_graph_follows_or_is_dropped(ws):
    with binding.open_checkpoint(ws["cnn-named.h5"]) as reader:
        keys = list(reader.tensors)
    out = ws.out("all.h5")
    document = ws.json("select", ws["cnn-named.h5"], "-o", out, "--keep", ".", command="select")
    assert document["graph_kept"] is True
    assert ws.forward(out, "1,3,32,32").shape == (1, 10)
    out2 = ws.out("some.h5")
    document = ws.json("select", ws["cnn-named.h5"], "-o", out2, "--drop", keys[-1], command="select")
    assert document["graph_kept"] is False and any("graph was left out" in n for n in document["notes"])
    _, _, graph, _ = read_documents(out2)
    assert graph is None


def test_torch_checkpoint_root_loads_strictly(tmp_path):
    torch = pytest.importorskip("torch")
    from cli_helpers import invoke
    encoder = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    wrapper = torch.nn.Module()
    wrapper.encoder = encoder
    wrapper.head = torch.nn.Linear(2, 5)
    source = tmp_path / "m.pt"
    torch.save({"module." + k: v for k, v in wrapper.state_dict().items()}, source)
    out = tmp_path / "enc.pt"
    invoke("select", source, "-o", out, "--root", "module.encoder")
    fresh = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    fresh.load_state_dict(torch.load(out, weights_only=True), strict=True)
    x = torch.randn(2, 4)
    assert torch.equal(fresh(x), encoder(x))


def test_errors_and_dry_run(ws):
    out = ws.out("s.h5")
    result = ws.invoke("select", ws["cnn.h5"], "-o", out, "--keep", "nothing-matches", code=ExitCode.INVALID)
    assert "keeps no tensor" in error_line(result)
    result = ws.invoke("select", ws["cnn.h5"], "-o", out, "--root", "nowhere", code=ExitCode.INVALID)
    assert "no tensors under --root 'nowhere'" in error_line(result)
    result = ws.invoke("select", ws["cnn.h5"], "-o", out, "--keep", "(", code=2)
    assert "--keep" in error_line(result)
    ws.invoke("select", ws["cnn.h5"], "-o", out, code=2)
    document = ws.json("select", ws["cnn.h5"], "-o", out, "--drop", "output", "--dry-run", command="select")
    assert document["dry_run"] and document["output"] is None
    assert ws.output_files() == []
