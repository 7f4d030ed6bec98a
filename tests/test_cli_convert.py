"""`modelsurgeon convert`: key schemes (structural <-> named, --model alignment) and file formats."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import (  # noqa: F401
    CNN_KEYS,
    TUTORIAL_KEYS,
    Workspace,
    digest,
    error_line,
    invoke,
    read_arrays,
    read_documents,
    require_format,
    shared_file,
    squeezenet,
    table,
    write_variant,
    ws,
)

from modelsurgeon.cli.errors import ExitCode


@pytest.fixture(scope="module")
def resnet18(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``modelsurgeon zoo resnet18_v1 --classes 10`` written once per module."""
    path = tmp_path_factory.mktemp("zoo") / "resnet18.h5"
    invoke("zoo", "resnet18_v1", "-o", path, "--classes", 10, "--seed", 0)
    return path


def _convert(ws: Workspace, source, out, *args) -> dict:
    return ws.json("convert", source, "-o", out, *args, command="convert")


# -- structural <-> named -----------------------------------------------------------------------


def test_structural_to_named_to_structural_is_lossless(ws):
    named, back = ws.out("named.h5"), ws.out("back.h5")
    document = _convert(ws, ws["cnn.h5"], named, "--to", "named")
    assert document["from"] == {"format": "modelsurgeon-h5", "kind": "structural"}
    assert document["to"] == {"format": "h5", "kind": "named"}
    assert document["tensors"] == 16
    assert [m["from"] for m in document["mapping"]] == CNN_KEYS
    inspected = ws.json("inspect", named, command="inspect")
    assert inspected["kind"] == "named"
    assert [t["structural"] for t in inspected["tensors"]] == [[k] for k in CNN_KEYS]
    assert [t["key"] for t in inspected["tensors"]] == [m["to"] for m in document["mapping"]]
    assert inspected["graph"]["operators"]["Convolution"] == 3 and inspected["graph"]["inputs"] == ["data"]
    roles = {t["structural"][0]: t["role"] for t in inspected["tensors"]}
    assert roles["features.1.running_mean"] == "aux" and roles["features.0.weight"] == "arg"

    _convert(ws, named, back, "--to", "structural")
    ws.invoke("diff", ws["cnn.h5"], named, "--values", code=0)
    ws.invoke("diff", named, back, "--values", code=0)
    ws.invoke("diff", ws["cnn.h5"], back, "--values", code=0)
    assert list(read_arrays(back)) == CNN_KEYS
    assert read_documents(back)[1] == read_documents(ws["cnn.h5"])[1], "architecture carried through"
    # all three compute the same thing
    y = ws.forward(ws["cnn.h5"], "2,3,32,32")
    np.testing.assert_allclose(ws.forward(named, "2,3,32,32"), y, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ws.forward(back, "2,3,32,32"), y)


def test_round_trip_keeps_shared_parameters(ws, tmp_path):
    """A structural file with links (shared Parameters) keeps them through named and back."""
    path = shared_file(tmp_path / "shared.h5")
    ws.guard(path)
    named, back = ws.out("named.h5"), ws.out("back.h5")
    ws.invoke("convert", path, "-o", named, "--to", "named")
    assert ws.json("inspect", named, command="inspect")["summary"]["parameters"] == 20, "one tensor per Parameter"
    ws.invoke("convert", named, "-o", back, "--to", "structural")
    ws.invoke("diff", path, back, "--values", code=0)
    assert ws.json("inspect", back, command="inspect")["summary"]["shared"] == 2


def test_plain_text_shows_from_and_to(ws):
    result = ws.invoke("convert", ws["cnn-named.h5"], "-o", ws.out("s.h5"), "--to", "structural")
    header, rows = table(result)
    assert header == ["from", "to"]
    assert [r[1] for r in rows] == CNN_KEYS and all(r[0].startswith("param_") for r in rows)
    assert f"wrote {ws.out('s.h5')}" in result.stderr


@pytest.mark.parametrize("named, structural, keys", [("cnn-named.h5", "cnn.h5", CNN_KEYS),
                                                     ("tutorial-named.h5", "tutorial.h5", TUTORIAL_KEYS)])
def test_named_to_structural_uses_recorded_names(ws, named, structural, keys):
    out = ws.out("s.h5")
    document = _convert(ws, ws[named], out, "--to", "structural")
    assert document["to"]["kind"] == "structural"
    assert list(read_arrays(out)) == keys
    ws.invoke("diff", ws[structural], out, "--values", code=0)
    kind, _, graph, _ = read_documents(out)
    assert kind == "structural" and graph is None


def test_named_sample_to_structural_runs(ws):
    out = ws.out("s.h5")
    ws.invoke("convert", ws["cnn-named.h5"], "-o", out, "--to", "structural")
    np.testing.assert_array_equal(ws.forward(out), ws.forward(ws["cnn.h5"]))


def test_same_scheme_is_a_copy(ws):
    out = ws.out("copy.h5")
    document = _convert(ws, ws["cnn.h5"], out)
    assert document["to"] == {"format": "h5", "kind": "structural"}
    ws.invoke("diff", ws["cnn.h5"], out, "--values", code=0)
    assert read_documents(out)[1] == read_documents(ws["cnn.h5"])[1]


def test_to_named_without_architecture_needs_model(ws):
    result = ws.invoke("convert", ws["tutorial.h5"], "-o", ws.out("n.h5"), "--to", "named", code=ExitCode.INVALID)
    assert "--model" in error_line(result)
    assert ws.output_files() == []


def test_to_structural_without_names_needs_model(ws, tmp_path):
    bare = write_variant(ws["cnn-named.h5"], tmp_path / "bare.h5", keep_structural=False)
    ws.guard(bare)
    result = ws.invoke("convert", bare, "-o", ws.out("s.h5"), "--to", "structural", code=ExitCode.INVALID)
    assert "--model" in error_line(result)
    assert ws.output_files() == []


def test_input_shape_for_tracing(ws):
    out = ws.out("n.h5")
    _convert(ws, ws["mlp.h5"], out, "--to", "named", "--input-shape", "2,100")
    assert ws.forward(out, "2,100").shape == (2, 10)
    result = ws.invoke("convert", ws["mlp.h5"], "-o", ws.out("bad.h5"), "--to", "named", "--input-shape", "oops",
                       code=ExitCode.USAGE)
    assert "oops" in error_line(result)
    assert not ws.out("bad.h5").exists()


def test_unknown_scheme_is_a_usage_error(ws):
    ws.invoke("convert", ws["cnn.h5"], "-o", ws.out("x.h5"), "--to", "sideways", code=ExitCode.USAGE)
    assert ws.output_files() == []


def test_dry_run_writes_nothing(ws):
    document = ws.json("convert", ws["cnn.h5"], "--to", "named", "--dry-run", command="convert")
    assert document["dry_run"] is True and document["output"] is None and len(document["mapping"]) == 16
    ws.invoke("convert", ws["cnn.h5"], "-o", ws.out("n.h5"), "--to", "named", "--dry-run")
    assert ws.output_files() == []


def test_existing_output_needs_force(ws):
    out = ws.out("n.h5")
    out.write_bytes(b"keep me")
    ws.invoke("convert", ws["cnn.h5"], "-o", out, "--to", "named", code=ExitCode.OUTPUT_EXISTS)
    assert out.read_bytes() == b"keep me"
    ws.invoke("convert", ws["cnn.h5"], "-o", out, "--to", "named", "--force")
    assert read_documents(out)[0] == "named"


def test_output_equal_to_input_is_refused(ws):
    result = ws.invoke("convert", ws["cnn.h5"], "-o", ws["cnn.h5"], "--force", code=ExitCode.INVALID)
    assert "is the input" in error_line(result)


# -- --model (zoo) ------------------------------------------------------------------------------


def test_zoo_file_to_named_with_model(ws, resnet18):
    ws.guard(resnet18)
    out = ws.out("r18-named.h5")
    document = _convert(ws, resnet18, out, "--to", "named", "--model", "resnet18_v1")
    assert document["to"]["kind"] == "named" and document["tensors"] == len(read_arrays(resnet18))
    ws.invoke("diff", resnet18, out, code=0)  # compared by structural names


def test_structural_without_architecture_to_named_with_model(ws, resnet18, tmp_path):
    bare = write_variant(resnet18, tmp_path / "bare.h5", architecture=None)
    ws.guard(bare)
    ws.invoke("convert", bare, "-o", ws.out("x.h5"), "--to", "named", code=ExitCode.INVALID)
    out = ws.out("named.h5")
    _convert(ws, bare, out, "--to", "named", "--model", "resnet18_v1")
    ws.invoke("diff", resnet18, out, "--values", code=0)
    run = ws.json("run", out, "--random-input", "1,3,32,32", command="run")
    assert run["outputs"][0]["shape"] == [1, 10]


def test_named_without_names_aligned_with_model(ws, resnet18, tmp_path):
    named = ws.out("named.h5")
    ws.invoke("convert", resnet18, "-o", named, "--to", "named")
    bare = write_variant(named, tmp_path / "bare.h5", keep_structural=False, architecture=None)
    ws.guard(bare)
    out = ws.out("aligned.h5")
    document = _convert(ws, bare, out, "--to", "structural", "--model", "resnet18_v1")
    assert any("aligned" in note and "graph order" in note for note in document["notes"])
    ws.invoke("diff", resnet18, out, "--values", code=0)
    assert list(read_arrays(out)) == list(read_arrays(resnet18))


def test_alignment_with_the_wrong_model_is_reported_not_guessed(ws, resnet18, tmp_path):
    named = ws.out("named.h5")
    ws.invoke("convert", resnet18, "-o", named, "--to", "named")
    bare = write_variant(named, tmp_path / "bare.h5", keep_structural=False, architecture=None)
    result = ws.invoke("convert", bare, "-o", ws.out("x.h5"), "--to", "structural", "--model", "resnet34_v1",
                       code=ExitCode.INVALID)
    assert "cannot align" in error_line(result)
    assert not ws.out("x.h5").exists()


def test_unknown_zoo_model(ws):
    result = ws.invoke("convert", ws["tutorial.h5"], "-o", ws.out("x.h5"), "--to", "named", "--model", "nosuch",
                       code=ExitCode.USAGE)
    assert "nosuch" in error_line(result) and "resnet18_v1" in error_line(result)


def test_conv_head_model_aligned_with_model(ws, squeezenet, tmp_path):
    """SqueezeNet's head is a convolution: alignment must still find the file's class count (10)."""
    named = ws.out("named.h5")
    ws.invoke("convert", squeezenet, "-o", named, "--to", "named")
    bare = write_variant(named, tmp_path / "bare.h5", keep_structural=False, architecture=None)
    out = ws.out("aligned.h5")
    ws.invoke("convert", bare, "-o", out, "--to", "structural", "--model", "squeezenet1.1")
    ws.invoke("diff", squeezenet, out, "--values", code=0)


# -- file formats -------------------------------------------------------------------------------


def test_format_is_detected_from_bytes_not_name(ws, tmp_path):
    disguised = tmp_path / "model.safetensors"
    shutil.copyfile(ws["cnn.h5"], disguised)
    assert ws.json("inspect", disguised, command="inspect")["format"] == "modelsurgeon-h5"


def test_safetensors_round_trip_values(ws):
    require_format("safetensors_io")
    st, back = ws.out("cnn.safetensors"), ws.out("back.h5")
    document = _convert(ws, ws["cnn.h5"], st)
    assert document["to"]["format"] == "safetensors"
    inspected = ws.json("inspect", st, command="inspect")
    assert inspected["format"] == "safetensors"
    assert sorted(t["key"] for t in inspected["tensors"]) == sorted(CNN_KEYS)
    ws.invoke("diff", ws["cnn.h5"], st, "--values", code=0)
    ws.invoke("convert", st, "-o", back)
    ws.invoke("diff", ws["cnn.h5"], back, "--values", code=0)


def test_safetensors_format_option_overrides_extension(ws):
    require_format("safetensors_io")
    out = ws.out("weights.bin")
    assert _convert(ws, ws["cnn.h5"], out, "--format", "safetensors")["to"]["format"] == "safetensors"
    assert ws.json("inspect", out, command="inspect")["format"] == "safetensors"
    ws.invoke("diff", ws["cnn.h5"], out, "--values", code=0)


def test_safetensors_round_trip_keeps_architecture(ws):
    """The architecture is written into __metadata__; reading it back makes the round trip lossless."""
    require_format("safetensors_io")
    st, back = ws.out("cnn.safetensors"), ws.out("back.h5")
    ws.invoke("convert", ws["cnn.h5"], "-o", st)
    assert ws.json("inspect", st, command="inspect")["architecture"] is not None
    assert ws.forward(st).shape == (1, 10)
    ws.invoke("convert", st, "-o", back)
    assert read_documents(back)[1] == read_documents(ws["cnn.h5"])[1]


def test_safetensors_keeps_named_kind_and_graph(ws):
    require_format("safetensors_io")
    st = ws.out("named.safetensors")
    ws.invoke("convert", ws["cnn-named.h5"], "-o", st)
    inspected = ws.json("inspect", st, command="inspect")
    assert inspected["kind"] == "named"
    assert inspected["graph"] is not None
    np.testing.assert_array_equal(ws.forward(st, "1,3,32,32"), ws.forward(ws["cnn-named.h5"], "1,3,32,32"))


def test_npz_round_trip(ws):
    require_format("mxnet")
    npz, back = ws.out("cnn.npz"), ws.out("back.h5")
    document = _convert(ws, ws["cnn.h5"], npz)
    assert document["to"]["format"] == "npz"
    assert any("architecture" in note for note in document["notes"])
    ws.invoke("diff", ws["cnn.h5"], npz, "--values", code=0)
    ws.invoke("convert", npz, "-o", back)
    assert list(read_arrays(back)) == CNN_KEYS
    ws.invoke("diff", ws["cnn.h5"], back, "--values", code=0)


def test_mxnet_params_round_trip(ws):
    require_format("mxnet")
    params, back = ws.out("cnn.params"), ws.out("back.h5")
    _convert(ws, ws["cnn.h5"], params)
    assert ws.json("inspect", params, command="inspect")["format"] == "mxnet-params"
    ws.invoke("diff", ws["cnn.h5"], params, "--values", code=0)
    ws.invoke("convert", params, "-o", back)
    assert list(read_arrays(back)) == CNN_KEYS
    ws.invoke("diff", ws["cnn.h5"], back, "--values", code=0)


def test_named_to_mxnet_writes_the_graph_beside(ws):
    require_format("mxnet")
    params = ws.out("net-0000.params")
    document = _convert(ws, ws["cnn-named.h5"], params)
    symbol = ws.out("net-symbol.json")
    assert symbol.exists()
    assert any(str(symbol) in note for note in document["notes"])
    graph = json.loads(symbol.read_text())
    assert {n["name"] for n in graph["nodes"] if n["op"] == "null"} >= set(read_arrays(ws["cnn-named.h5"]))
    ws.invoke("diff", ws["cnn-named.h5"], params, "--values", code=0)
    np.testing.assert_allclose(ws.forward(params, "1,3,32,32"), ws.forward(ws["cnn-named.h5"], "1,3,32,32"),
                               rtol=1e-6, atol=1e-7)


def test_mxnet_output_does_not_overwrite_an_existing_symbol_file(ws):
    """net.params puts its graph in net-symbol.json: an existing one is an existing output (needs --force)."""
    require_format("mxnet")
    symbol = ws.out("tutorial-symbol.json")
    shutil.copyfile(ws["tutorial-symbol.json"], symbol)
    before = digest(symbol)
    result = ws.invoke("convert", ws["cnn-named.h5"], "-o", ws.out("tutorial.params"), code=None)
    assert digest(symbol) == before, "an existing -symbol.json was overwritten without --force"
    assert result.exit_code == ExitCode.OUTPUT_EXISTS
    assert not ws.out("tutorial.params").exists()
