"""`modelsurgeon adapt-input`: timm's adapt_input_conv semantics, checked in our engine, PyTorch and Keras 3."""

from __future__ import annotations

import os

import numpy as np
import pytest
from cli_helpers import Workspace, error_line, invoke, parse_json, read_documents, ws  # noqa: F401

from modelsurgeon.cli.errors import ExitCode
from modelsurgeon.core import binding


def _run(path, x: np.ndarray) -> np.ndarray:
    with binding.open_checkpoint(path) as reader:
        return np.asarray(binding.model_from_reader(reader)(x))


def test_grey_input_gives_what_the_rgb_model_gave_for_grey(ws):
    out = ws.out("grey.h5")
    document = ws.json("adapt-input", ws["cnn.h5"], "-o", out, "--channels", "1", command="adapt-input")
    assert document["layer"] == "features.0" and document["how"] == "summed"
    assert document["old_shape"] == [8, 3, 3, 3] and document["new_shape"] == [8, 1, 3, 3]
    _, architecture, _, _ = read_documents(out)
    assert architecture["inputs"][0]["shape"] == [1, 1, 32, 32]
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(_run(out, x), _run(ws["cnn.h5"], np.repeat(x, 3, axis=1)), rtol=1e-5, atol=1e-5)
    assert ws.forward(out).shape == (1, 10), "run takes the recorded (new) input shape"


def test_graph_file_to_six_channels(ws):
    out = ws.out("six.h5")
    document = ws.json("adapt-input", ws["cnn-named.h5"], "-o", out, "--channels", "6", command="adapt-input")
    assert document["how"] == "repeated and scaled by 3/6" and "graph" in document["reason"]
    _, architecture, _, _ = read_documents(out)
    assert architecture["inputs"][0]["shape"] == [1, 6, 32, 32]
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(_run(out, np.concatenate([x, x], axis=1)), _run(ws["cnn-named.h5"], x),
                               rtol=1e-5, atol=1e-5)
    assert ws.forward(out).shape == (1, 10)


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_torch_stem_loads_strictly_and_matches_timm_semantics(tmp_path, channels):
    torch = pytest.importorskip("torch")

    def net(inputs):
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv2d(inputs, 8, 3, bias=False), torch.nn.BatchNorm2d(8),
                                   torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                   torch.nn.Linear(8, 3)).eval()

    model = net(3)
    source = tmp_path / "m.pt"
    torch.save(model.state_dict(), source)
    out = tmp_path / "a.pt"
    invoke("adapt-input", source, "-o", out, "--channels", channels)
    adapted = net(channels)
    state = torch.load(out, weights_only=True)
    adapted.load_state_dict(state, strict=True)
    weight = model[0].weight.detach()
    if channels == 1:
        expected = weight.sum(dim=1, keepdim=True)
    else:  # timm: repeat ceil(N/3) times, keep N, scale by 3/N
        expected = weight.repeat(1, -(-channels // 3), 1, 1)[:, :channels] * (3 / float(channels))
    assert torch.equal(state["0.weight"], expected)
    if channels == 1:
        grey = torch.randn(2, 1, 9, 9)
        with torch.no_grad():
            torch.testing.assert_close(adapted(grey), model(grey.repeat(1, 3, 1, 1)), rtol=1e-5, atol=1e-5)


def test_keras_archive_follows(tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2)])
    source = tmp_path / "k.keras"
    model.save(source)
    out = tmp_path / "grey.keras"
    document = parse_json(invoke("adapt-input", source, "-o", out, "--channels", "1", "--json"), "adapt-input")
    assert document["new_shape"] == [3, 3, 1, 4]
    loaded = keras.models.load_model(out)
    assert tuple(loaded.input_shape) == (None, 8, 8, 1)
    grey = np.random.default_rng(2).standard_normal((2, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(grey, verbose=0), model.predict(np.repeat(grey, 3, axis=3), verbose=0),
                               rtol=1e-5, atol=1e-5)


def test_errors_and_dry_run(ws):
    out = ws.out("o.h5")
    result = ws.invoke("adapt-input", ws["cnn.h5"], "-o", out, "--channels", "1", "--layer", "nowhere",
                       code=ExitCode.INVALID)
    assert "--layer 'nowhere'" in error_line(result)
    ws.invoke("adapt-input", ws["cnn.h5"], "-o", out, "--channels", "0", code=2)
    ws.invoke("adapt-input", ws["cnn.h5"], "-o", out, code=2)
    document = ws.json("adapt-input", ws["cnn.h5"], "-o", out, "--channels", "4", "--layer", "features.3",
                       "--dry-run", command="adapt-input")
    assert document["dry_run"] and document["old_channels"] == 8 and ws.output_files() == []
    result = ws.invoke("adapt-input", ws["mlp.h5"], "-o", out, "--channels", "1", code=ExitCode.INVALID)
    assert "no convolution" in error_line(result)
