"""Model pictures (core/visual): building, layout, SVG/HTML rendering, diff reports, and their commands.

Everything here runs without a browser; tests/test_browser.py opens the same pages in Chromium.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from modelsurgeon.cli.main import cli
from modelsurgeon.core import binding as checkpoint
from modelsurgeon.core import surgery, visual
from modelsurgeon.core.engine.symbol import Graph
from modelsurgeon.core.formats.base import CheckpointReader, TensorInfo
from modelsurgeon.core.visual import placement

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"
SYMBOLS = ROOT / "tests" / "fixtures" / "mxnet" / "symbols"
MOBILENET = ROOT / "tests" / "fixtures" / "mxnet" / "zoo" / "mobilenet0.25" / "mobilenet0.25-0000.params"
SVG_NS = "{http://www.w3.org/2000/svg}"
CNN_LAYERS = ["features.0", "features.1", "features.2", "features.3", "features.4", "features.5", "features.6",
              "features.7", "features.8", "output"]


def run(*args: Any, code: int = 0) -> Any:
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="modelsurgeon")
    assert result.exit_code == code, f"{args}\n{result.stdout}\n{result.stderr}\n{result.exception!r}"
    return result


def picture_of(path: Path, **kwargs: Any) -> visual.Picture:
    with checkpoint.open_checkpoint(str(path)) as reader:
        return visual.build_picture(reader, **kwargs)


def layers_by_name(picture: visual.Picture) -> dict[str, visual.Layer]:
    return {layer.name: layer for layer in picture.layers}


def assert_every_tensor_once(picture: visual.Picture, reader_path: Path) -> None:
    with checkpoint.open_checkpoint(str(reader_path)) as reader:
        keys = list(reader.tensors)
    shown = [t.key for layer in picture.layers for t in layer.tensors]
    assert sorted(shown) == sorted(keys)


def assert_offline(document: str) -> None:
    """No address anywhere except the SVG namespace, nothing that could load a resource."""
    addresses = set(re.findall(r"[a-z][a-z0-9+.-]*://[^\s\"'<>)]*", document, re.IGNORECASE))
    assert addresses <= {"http://www.w3.org/2000/svg"}, addresses
    assert not re.search(r"<(link|img|iframe|object|embed|audio|video|source)\b", document, re.IGNORECASE)
    assert not re.search(r"\b(src|href|xlink:href)\s*=", document, re.IGNORECASE)
    assert "@import" not in document
    assert set(re.findall(r"url\(([^)]*)\)", document)) <= {"#ms-arrow"}
    assert not re.search(r"\b(fetch|XMLHttpRequest|WebSocket|EventSource|sendBeacon|importScripts)\b", document)


def svg_layers(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg.split("?>", 1)[-1])
    return [g for g in root.iter(f"{SVG_NS}g") if "layer" in (g.get("class") or "").split()]


def html_data(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="ms-data">(.*?)</script>', page, re.DOTALL)
    assert match is not None
    return json.loads(match.group(1))


def html_svg(page: str) -> str:
    start, end = page.index("<svg "), page.index("</svg>") + len("</svg>")
    return page[start:end]


# -- fixtures -------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def r34() -> MemoryReader:
    """resnet34_v1 from the zoo as a structural checkpoint with its architecture (64x64 input, to be quick).

    The tensors are zero-cost broadcast zeros: a picture never reads weights.
    """
    from modelsurgeon.core import name_scope
    from modelsurgeon.core.engine import architecture
    from modelsurgeon.core.engine.model_zoo import vision
    with name_scope():
        net = vision.get_model("resnet34_v1", classes=1000)
        net.initialize()
        net(np.zeros((1, 3, 64, 64), np.float32))
        document = architecture.describe(net, [{"name": "data", "shape": [1, 3, 64, 64], "dtype": "float32"}])
        arrays = {key: np.broadcast_to(np.zeros((), p.dtype), p.shape) for key, p in net.collect_params().items()}
    return MemoryReader(arrays, "r34.h5", document)


@pytest.fixture(scope="session")
def cnn3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CNN sample after replace-head --classes 3."""
    target = tmp_path_factory.mktemp("cnn3") / "cnn3.h5"
    run("replace-head", SAMPLES / "cnn.h5", "-o", target, "--classes", "3", "--seed", "0")
    return target


class MemoryReader(CheckpointReader):
    """A checkpoint held in memory (for odd keys that no sample has)."""

    def __init__(self, arrays: dict[str, np.ndarray], path: str = "memory.h5", architecture: Any = None,
                 graph: Any = None, kind: str = "structural") -> None:
        self.path, self.format, self.kind = path, "memory", kind
        self.metadata: dict[str, str] = {}
        self.arrays = arrays
        self.tensors = {k: TensorInfo(k, a.shape, a.dtype) for k, a in arrays.items()}
        self.architecture, self.graph = architecture, graph

    def read(self, key: str) -> np.ndarray:
        return self.arrays[key]


# -- building pictures ------------------------------------------------------------------------------

def test_architecture_picture_of_the_cnn_sample():
    picture = picture_of(SAMPLES / "cnn.h5")
    assert picture.source == "architecture"
    assert [layer.name for layer in picture.layers] == ["data", *CNN_LAYERS]
    layers = layers_by_name(picture)
    assert layers["data"].kind == "input" and layers["data"].shape == (1, 3, 32, 32)
    assert (layers["features.0"].op, layers["features.0"].summary) == ("Conv2D", "3×3, 8 ch, relu")
    assert layers["features.0"].shape == (1, 8, 32, 32)  # the fused relu is part of the layer
    assert layers["features.2"].shape == (1, 8, 16, 16)
    assert layers["output"].shape == (1, 10) and layers["output"].params == 32 * 10 + 10
    assert [t.key for t in layers["features.1"].tensors] == [
        "features.1.gamma", "features.1.beta", "features.1.running_mean", "features.1.running_var"]
    heads = [layer.name for layer in picture.layers if layer.head]
    assert heads == ["output"] and "'output'" in (picture.head or "")
    assert picture.edges == [(a.id, b.id) for a, b in zip(picture.layers, picture.layers[1:])]
    assert picture.facts["parameters"] == sum(layer.params for layer in picture.layers)
    assert_every_tensor_once(picture, SAMPLES / "cnn.h5")


def test_graph_picture_of_a_named_file_has_every_operator():
    picture = picture_of(SAMPLES / "cnn-named.h5")
    assert picture.source == "graph" and picture.key_column == "key (unique name)"
    with checkpoint.open_checkpoint(str(SAMPLES / "cnn-named.h5")) as reader:
        graph = Graph.from_json(reader.graph)
        head = surgery.find_head(reader)
    operators = [node.name for node in graph.op_nodes()]
    assert [layer.name for layer in picture.layers if layer.kind != "input"] == operators
    layer = picture.layer_of(head.weight)
    assert layer is not None and layer.head and layer.op == "FullyConnected"
    assert layer.path == "output" and layer.shape == (1, 10)  # input shape from the embedded architecture
    conv = layers_by_name(picture)["conv0_fwd"]
    assert conv.tensors[0].structural == ("features.0.weight",) and conv.shape == (1, 8, 32, 32)
    assert_every_tensor_once(picture, SAMPLES / "cnn-named.h5")


def test_keys_only_picture_groups_tensors_by_block():
    picture = picture_of(SAMPLES / "tutorial.h5")
    assert picture.source == "keys"
    assert [(layer.name, [t.key for t in layer.tensors]) for layer in picture.layers] == [
        ("dense0", ["dense0.weight", "dense0.bias"]), ("dense1", ["dense1.weight", "dense1.bias"]),
        ("mydense", ["mydense.weight", "mydense.bias"])]
    assert [layer.name for layer in picture.layers if layer.head] == ["mydense"]


def test_mxnet_style_keys_without_dots_are_grouped_at_the_last_underscore():
    arrays = {name: np.zeros(4, np.float32) for name in (
        "net0_conv0_weight", "net0_conv0_bias", "net0_bn0_gamma", "net0_bn0_running_mean", "net0_bn0_running_var")}
    picture = visual.build_picture(MemoryReader(arrays))
    assert [(layer.name, len(layer.tensors)) for layer in picture.layers] == [("net0_conv0", 2), ("net0_bn0", 3)]


def test_real_mxnet_export_with_parameters():
    picture = picture_of(MOBILENET, input_shape=(1, 3, 64, 64))
    assert picture.source == "graph" and picture.notes == []
    assert len([layer for layer in picture.layers if layer.kind != "input"]) == 84
    assert all(layer.shape is not None for layer in picture.layers)
    head = [layer for layer in picture.layers if layer.head]
    assert [layer.name for layer in head] == ["mobilenet0_dense0_fwd"] and head[0].shape == (1, 10)
    assert_every_tensor_once(picture, MOBILENET)
    without_shape = picture_of(MOBILENET)
    assert any("give `input_shape`" in note for note in without_shape.notes)
    assert all(layer.shape is None for layer in without_shape.layers if layer.kind != "input")


@pytest.mark.parametrize("name, operators, parameters, size", [
    ("alexnet", 21, 61_100_840, 224), ("resnet18_v1", 68, 11_699_112, 64), ("squeezenet1.1", 66, 1_235_496, 224),
    ("mobilenet0.25", 84, 475_544, 64)])
def test_bare_mxnet_symbol_files_infer_parameter_and_output_shapes(name, operators, parameters, size):
    graph = checkpoint.read_graph_file(str(SYMBOLS / f"{name}-symbol.json"))
    picture = visual.picture_from_graph(graph, input_shape=(1, 3, size, size), title=name)
    assert len([layer for layer in picture.layers if layer.kind != "input"]) == operators
    assert picture.facts["parameters"] == parameters  # the published parameter counts
    assert all(layer.shape is not None for layer in picture.layers)
    assert picture.layers[-1].shape in ((1, 1000), (1, 1000, 1, 1))


def test_resnet34_architecture_agrees_with_the_real_mxnet_graph(r34):
    """Our trace of the zoo's architecture and MXNet 1.9.1's exported graph draw the same network."""
    ours = visual.build_picture(r34)
    theirs = visual.picture_from_graph(checkpoint.read_graph_file(str(SYMBOLS / "resnet34_v1-symbol.json")),
                                       input_shape=(1, 3, 64, 64))
    assert ours.source == "architecture" and theirs.source == "graph"
    assert len(ours.layers) == len(theirs.layers) == 125  # 124 layers/operators and the input
    assert len(ours.edges) == len(theirs.edges) == 140  # 16 residual shortcuts
    kinds = {"Conv2D": "Convolution", "Dense": "FullyConnected", "MaxPool2D": "Pooling",
             "GlobalAvgPool2D": "Pooling"}

    def summary(picture: visual.Picture) -> list[tuple[str, Any, int]]:
        return sorted((kinds.get(layer.op, layer.op), layer.shape, layer.params) for layer in picture.layers
                      if layer.kind != "input")

    assert summary(ours) == summary(theirs)
    adds = [layer for layer in ours.layers if layer.op == "elemwise_add"]
    assert [layer.name for layer in adds[:2]] == ["features.4.0/add", "features.4.1/add"]
    assert [layer.name for layer in ours.layers if layer.head] == ["output"]
    shown = [t.key for layer in ours.layers for t in layer.tensors]
    assert sorted(shown) == sorted(r34.tensors)


def test_untraceable_architecture_falls_back_to_definition_order():
    with checkpoint.open_checkpoint(str(SAMPLES / "cnn.h5")) as reader:
        reader.architecture = {**reader.architecture, "inputs": []}
        picture = visual.build_picture(reader)
    assert picture.source == "architecture"
    assert [layer.name for layer in picture.layers] == CNN_LAYERS
    assert any("definition order" in note and "`input_shape`" in note for note in picture.notes)
    assert_every_tensor_once(picture, SAMPLES / "cnn.h5")
    with checkpoint.open_checkpoint(str(SAMPLES / "cnn.h5")) as reader:
        reader.architecture = {**reader.architecture, "inputs": []}
        traced = visual.build_picture(reader, input_shape=(2, 3, 16, 16))
    assert traced.notes == [] and layers_by_name(traced)["output"].shape == (2, 10)


# -- layout -------------------------------------------------------------------------------------------

def assert_no_overlap(drawing: placement.Drawing) -> None:
    boxes = sorted(drawing.boxes.values(), key=lambda b: (b.y, b.x))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if b.y >= a.y + a.h:
                break
            assert a.x + a.w <= b.x + 0.01 or b.x + b.w <= a.x + 0.01 or a.y + a.h <= b.y + 0.01, (a, b)


def test_layered_layout_of_resnet34(r34):
    picture = visual.build_picture(r34)
    drawing = visual.layout(picture)
    assert set(drawing.boxes) == {layer.id for layer in picture.layers}
    assert_no_overlap(drawing)
    for box in drawing.boxes.values():
        assert box.x >= 0 and box.x + box.w <= drawing.width and box.y >= 0 and box.y + box.h <= drawing.height
    assert drawing.width < 900  # a column, not a sprawl: shortcuts run in a lane beside the chain
    for edge in drawing.edges:
        source, target = drawing.boxes[edge.source], drawing.boxes[edge.target]
        assert edge.points[0][1] == source.y + source.h and edge.points[-1][1] == target.y
        assert source.y < target.y  # data flows down
    chain = [drawing.boxes[layer.id] for layer in picture.layers[:6]]
    assert len({round(box.cx) for box in chain}) == 1  # a plain chain is one straight column


def test_isotonic_keeps_order_and_gaps():
    placed = placement._isotonic([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [10.0, 10.0])
    assert placed == pytest.approx([-10.0, 0.0, 10.0])
    assert placement._isotonic([0.0, 50.0], [1.0, 1.0], [10.0]) == pytest.approx([0.0, 50.0])


def test_treemap_nests_boxes_inside_their_frames():
    arrays = {f"blocks.{b}.{layer}.{p}": np.zeros((8 * (b + 1), 4), np.float32)
              for b in range(3) for layer in ("conv", "norm") for p in ("weight", "bias")}
    arrays["head.weight"] = np.zeros((200, 64), np.float32)
    picture = visual.build_picture(MemoryReader(arrays))
    drawing = visual.layout(picture)
    assert drawing.style == "treemap" and len(drawing.boxes) == 7
    assert_no_overlap(drawing)
    frames = {frame.label: frame for frame in drawing.frames}
    assert set(frames) >= {"blocks", "0", "1", "2"}
    outer = frames["blocks"]
    for layer in picture.layers:
        box = drawing.boxes[layer.id]
        if layer.path.startswith("blocks."):
            assert outer.x <= box.x and box.x + box.w <= outer.x + outer.w + 0.01
            assert outer.y <= box.y and box.y + box.h <= outer.y + outer.h + 0.01
    area = {layer.name: drawing.boxes[layer.id].w * drawing.boxes[layer.id].h for layer in picture.layers}
    assert area["head"] > area["blocks.2.conv"] > area["blocks.0.conv"]  # bigger tensors, bigger boxes
    assert drawing.labels[picture.layers[0].id] == "conv"


# -- rendering ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cnn.h5", "cnn-named.h5", "tutorial.h5", "mlp.h5", "tutorial-named.h5"])
def test_every_sample_renders_offline_with_every_layer(name):
    picture = picture_of(SAMPLES / name)
    drawing = visual.layout(picture)
    svg = visual.render_svg(picture, drawing)
    page = visual.render_html(picture, drawing)
    for document in (svg, page):
        assert_offline(document)
    groups = svg_layers(svg)
    assert [g.get("data-id") for g in groups] == [layer.id for layer in picture.layers]
    titles = [g.find(f"{SVG_NS}title").text for g in groups]  # hover text in any SVG viewer
    for layer, title in zip(picture.layers, titles):
        assert title.startswith(layer.name)
        assert all(t.key in title for t in layer.tensors)
    assert [g.get("data-id") for g in svg_layers(html_svg(page))] == [layer.id for layer in picture.layers]
    data = html_data(page)
    assert [layer["name"] for layer in data["layers"]] == [layer.name for layer in picture.layers]
    assert 'http-equiv="Content-Security-Policy" content="default-src \'none\'' in page


def test_rendering_is_reproducible():
    first = visual.render_html(picture_of(SAMPLES / "cnn.h5"))
    second = visual.render_html(picture_of(SAMPLES / "cnn.h5"))
    assert first == second


def test_hostile_keys_are_escaped():
    evil = '</script><script>alert(1)</script><b onmouseover="x">\x00\x07'
    arrays = {f"{evil}.weight": np.zeros((2, 2), np.float32), "ok.bias": np.zeros(2, np.float32)}
    picture = visual.build_picture(MemoryReader(arrays, path=f"{evil}.h5"))
    svg = visual.render_svg(picture)
    page = visual.render_html(picture)
    assert "<script>alert" not in page and "<script>alert" not in svg
    assert page.count("</script>") == 2  # the data block and the code block, nothing else
    assert "<b onmouseover" not in page and "<b onmouseover" not in svg
    svg_layers(svg)  # still well-formed XML, control characters included
    keys = [t["key"] for layer in html_data(page)["layers"] for t in layer["tensors"]]
    assert f"{evil}.weight" in keys  # the data keeps the real key; only the markup is escaped


def test_head_and_diff_chips_are_drawn():
    svg = visual.render_svg(picture_of(SAMPLES / "cnn.h5"))
    head = [g for g in svg_layers(svg) if "head" in g.get("class").split()]
    assert [g.get("data-id") for g in head] == ["output"]
    assert any(t.text == "HEAD" for t in head[0].iter(f"{SVG_NS}text"))


# -- diff --------------------------------------------------------------------------------------------

def diff_of(a: Path, b: Path, values: bool = True) -> visual.Picture:
    with checkpoint.open_checkpoint(str(a)) as ra, checkpoint.open_checkpoint(str(b)) as rb:
        return visual.diff_picture(ra, rb, surgery.diff(ra, rb, values=values))


def test_diff_after_replace_head_touches_only_the_head(cnn3):
    picture = diff_of(SAMPLES / "cnn.h5", cnn3)
    states = {layer.name: layer.state for layer in picture.layers}
    assert states["output"] == "reshaped"
    assert {name for name, state in states.items() if state not in (None, "same")} == {"output"}
    assert picture.diff["layers_touched"] == ["output"]
    assert picture.diff["counts"] == {"removed": 0, "reshaped": 2, "added": 0, "renamed": 0, "changed": 0, "same": 14}
    assert [row["b"] for row in picture.diff["tensors"]] == ["output.bias", "output.weight"]
    assert picture.diff["tensors"][1]["detail"] == "10×32 float32 → 3×32 float32"
    with checkpoint.open_checkpoint(str(SAMPLES / "cnn.h5")) as ra, checkpoint.open_checkpoint(str(cnn3)) as rb:
        page = visual.render_diff_html(ra, rb, surgery.diff(ra, rb, values=True))
    assert_offline(page)
    assert "1 of 10 layers touched: output." in page
    reshaped = [g.get("data-id") for g in svg_layers(html_svg(page)) if "state-reshaped" in g.get("class")]
    assert reshaped == ["output"]


def test_diff_values_changed_and_renamed(tmp_path):
    with checkpoint.open_checkpoint(str(SAMPLES / "mlp.h5")) as reader:
        arrays = {key: np.array(reader.read(key)) for key in reader.tensors}
        architecture = reader.architecture
    a = MemoryReader(arrays, "a.h5", architecture)
    changed = dict(arrays)
    changed["1.weight"] = changed["1.weight"] + np.float32(0.5)
    b = MemoryReader(changed, "b.h5", architecture)
    picture = visual.diff_picture(a, b, surgery.diff(a, b, values=True))
    assert {layer.name: layer.state for layer in picture.layers if layer.kind != "input"} == {
        "0": "same", "1": "changed", "2": "same"}
    assert picture.diff["tensors"] == [{"state": "changed", "a": "1.weight", "b": "1.weight",
                                        "detail": "max |a−b| = 0.5"}]
    renamed = {k.replace("2.", "classifier."): v for k, v in arrays.items()}
    c = MemoryReader(renamed, "c.h5")
    picture = visual.diff_picture(a, c, surgery.diff(a, c, values=True))
    rows = {row["b"]: row for row in picture.diff["tensors"]}
    assert rows["classifier.weight"] == {"state": "renamed", "a": "2.weight", "b": "classifier.weight",
                                         "detail": "was 2.weight"}
    assert picture.diff["counts"]["removed"] == 0 and picture.diff["counts"]["added"] == 0
    plain = visual.diff_picture(a, c, surgery.diff(a, c, values=True), detect_renames=False)
    assert plain.diff["counts"]["removed"] == 2 and plain.diff["counts"]["added"] == 2


def test_constant_tensors_are_not_taken_for_renames():
    a = MemoryReader({"x.bias": np.zeros(4, np.float32), "y.bias": np.zeros(4, np.float32)})
    b = MemoryReader({"z.bias": np.zeros(4, np.float32), "w.gamma": np.zeros(4, np.float32)})
    assert surgery.find_renames(a, b, ["x.bias", "y.bias"], ["z.bias", "w.gamma"]) == []
    a1 = MemoryReader({"x.bias": np.zeros(4, np.float32)})
    assert surgery.find_renames(a1, b, ["x.bias"], ["z.bias", "w.gamma"]) == [("x.bias", "z.bias")]


def test_diff_draws_removed_layers_apart():
    picture = diff_of(SAMPLES / "cnn.h5", SAMPLES / "mlp.h5")
    ghosts = [layer for layer in picture.layers if layer.ghost]
    assert ghosts and all(layer.detached and layer.state == "removed" for layer in ghosts)
    assert "features.0" in {layer.name for layer in ghosts}
    drawing = visual.layout(picture)
    assert [frame.label for frame in drawing.frames] == ["only in A (removed)"]
    assert_no_overlap(drawing)
    right_of_graph = max(drawing.boxes[layer.id].x + drawing.boxes[layer.id].w
                         for layer in picture.layers if not layer.detached)
    assert all(drawing.boxes[layer.id].x > right_of_graph for layer in ghosts)


def test_diff_across_key_schemes_is_all_unchanged():
    picture = diff_of(SAMPLES / "cnn.h5", SAMPLES / "cnn-named.h5")
    assert picture.diff["equal"] and picture.diff["tensors"] == []
    assert picture.diff["counts"]["same"] == 16


# -- stats -------------------------------------------------------------------------------------------

def test_histogram_and_sparkline():
    assert visual.histogram(np.array([0.0, 0.1, 0.2, 0.9, 1.0]), bins=4) == [3, 0, 0, 2]
    assert visual.histogram(np.array([np.nan, np.inf, 2.0, 2.0])) == [0, 0, 0, 0, 2, 0, 0, 0]
    assert visual.histogram(np.array([np.nan])) == []
    assert visual.histogram(np.array([True, False, True]), bins=2) == [1, 2]
    assert visual.sparkline([0, 1, 2, 4]) == " ▂▄█"
    assert visual.sparkline([]) == "" and visual.sparkline([0, 0]) == ""


# -- commands ----------------------------------------------------------------------------------------

def test_graph_command_html_svg_and_json(tmp_path):
    page, picture = tmp_path / "cnn.html", tmp_path / "cnn.svg"
    result = run("graph", SAMPLES / "cnn.h5", "-o", page)
    assert result.stdout == ""
    assert "wrote" in result.stderr and "10 layers drawn from the embedded architecture" in result.stderr
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    document = json.loads(run("graph", SAMPLES / "cnn.h5", "-o", picture, "--json").stdout)
    assert document["command"] == "graph" and document["format"] == "svg" and document["source"] == "architecture"
    assert document["layers"] == 10 and document["output"] == str(picture)
    assert [layer["name"] for layer in document["picture"]["layers"]][1:] == CNN_LAYERS
    assert picture.read_text(encoding="utf-8").startswith("<?xml")
    assert_offline(picture.read_text(encoding="utf-8"))


def test_graph_command_refuses_to_overwrite_and_unknown_formats(tmp_path):
    target = tmp_path / "cnn.html"
    target.write_text("keep me")
    result = run("graph", SAMPLES / "cnn.h5", "-o", target, code=7)
    assert "--force" in result.stderr and target.read_text() == "keep me"
    run("graph", SAMPLES / "cnn.h5", "-o", target, "--force")
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    result = run("graph", SAMPLES / "cnn.h5", "-o", tmp_path / "cnn.png", code=2)
    assert "OUT.html or OUT.svg" in result.stderr
    run("graph", tmp_path / "missing.h5", "-o", tmp_path / "x.html", code=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn.html"]  # no temporary files left


def test_graph_command_on_a_symbol_file_and_an_mxnet_export(tmp_path):
    target = tmp_path / "r34.html"
    document = json.loads(run("graph", SYMBOLS / "resnet34_v1-symbol.json", "-o", target, "--input-shape",
                              "1,3,64,64", "--json").stdout)
    assert document["source"] == "graph" and document["layers"] == 124 and document["notes"] == []
    assert len(svg_layers(html_svg(target.read_text(encoding="utf-8")))) == 125
    document = json.loads(run("graph", MOBILENET, "-o", tmp_path / "m.svg", "--input-shape", "1,3,64,64",
                              "--json").stdout)
    assert document["layers"] == 84 and document["head"].startswith("mobilenet0_dense0_fwd")


def test_diff_html_report(tmp_path, cnn3):
    report = tmp_path / "report.html"
    result = run("diff", SAMPLES / "cnn.h5", cnn3, "--html", report, code=1)
    assert "~ output.weight" in result.stdout and f"wrote {report}" in result.stderr
    page = report.read_text(encoding="utf-8")
    assert html_data(page)["diff"]["layers_touched"] == ["output"]
    run("diff", SAMPLES / "cnn.h5", cnn3, "--html", report, code=7)
    document = json.loads(run("diff", SAMPLES / "cnn.h5", cnn3, "--html", report, "--force", "--json",
                              code=1).stdout)
    assert document["report"] == str(report) and len(document["values"]) == 14  # --html compares values
    plain = json.loads(run("diff", SAMPLES / "cnn.h5", cnn3, "--json", code=1).stdout)
    assert "report" not in plain and plain["values"] is None


def test_inspect_stats_histogram(monkeypatch):
    document = json.loads(run("inspect", SAMPLES / "cnn.h5", "--stats", "--json").stdout)
    for record in document["tensors"]:
        assert len(record["histogram"]) == 8 and sum(record["histogram"]) == record["size"]
    from modelsurgeon.cli.output import Output
    monkeypatch.setattr(Output, "stdout_is_terminal", property(lambda self: True))
    text = run("inspect", SAMPLES / "cnn.h5", "--stats", "--filter", "output.weight").stdout
    assert "histog" in text and re.search("[▁▂▃▄▅▆▇█]{3}", text)


@pytest.mark.parametrize("module", ["picture", "placement", "stats"])
def test_docstring_examples_run(module):
    import doctest
    import importlib
    assert doctest.testmod(importlib.import_module(f"modelsurgeon.core.visual.{module}")).failed == 0


def test_an_empty_checkpoint_still_renders():
    picture = visual.build_picture(MemoryReader({}))
    assert picture.layers == [] and picture.source == "keys"
    assert svg_layers(visual.render_svg(picture)) == []
    assert_offline(visual.render_html(picture))
