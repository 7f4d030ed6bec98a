"""docs/format.md is the whole contract: read our files with nothing but h5py and json.

Nothing from modelsurgeon is used to *read* here: only to write the files under test. The
decoding helpers below are written from the document, not from the code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from modelsurgeon import core
from modelsurgeon.core.engine import nn

DOC = Path(__file__).resolve().parents[1] / "docs" / "format.md"
ROOT_ATTRIBUTES = ("format", "kind", "format_version", "creator")
DOC_DTYPES = {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
              "uint64", "bool"}


def decode_name(name: str) -> str:
    """Dataset name -> key, as the document says: %XX decodes, a lone % stays literal."""
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), name)


def read_text_document(ds: h5py.Dataset):
    assert ds.shape == ()
    assert h5py.check_string_dtype(ds.dtype).encoding == "utf-8"
    value = ds[()]
    return json.loads(value.decode("utf-8") if isinstance(value, bytes) else value)


def _doc_text() -> str:
    if not DOC.exists():
        pytest.fail(f"{DOC} is missing")
    return DOC.read_text(encoding="utf-8")


class Odd(core.HybridBlock):
    """A model whose structural keys need escaping, with a shared layer."""

    def __init__(self):
        super().__init__()
        self.body = nn.HybridSequential()
        self.body.add(nn.Conv2D(3, 3, padding=1, in_channels=2), nn.BatchNorm(in_channels=3))
        self.body.register_child(nn.Dense(4, in_units=3 * 4 * 4), "dense/50%")
        self.tied = nn.Dense(4, in_units=3 * 4 * 4)
        self.tied.share_parameters(self.body._children["dense/50%"].collect_params())

    def forward(self, x):
        x = self.body._children["1"](self.body._children["0"](x))
        return core.nd.add(self.body._children["dense/50%"](x), self.tied(x))


@pytest.fixture
def odd_model():
    model = Odd()
    model.initialize(core.init.Xavier())
    model(np.random.default_rng(0).standard_normal((2, 2, 4, 4)).astype(np.float32))
    return model


def test_structural_file_read_with_plain_h5py(tmp_path, odd_model):
    path = tmp_path / "odd.h5"
    odd_model.save_parameters(str(path))
    expected = {k: p.data() for k, p in odd_model.collect_params().items()}
    with h5py.File(path, "r") as f:
        # root attributes
        assert set(ROOT_ATTRIBUTES) <= set(f.attrs)
        assert f.attrs["format"] == "modelsurgeon"
        assert f.attrs["kind"] == "structural"
        version = f.attrs["format_version"]
        assert isinstance(version, np.integer) and version.dtype == np.int64 and int(version) == 1
        assert f.attrs["creator"] == f"modelsurgeon {core.__version__}"
        # tensors, in model order, keys escaped
        tensors = f["tensors"]
        names = list(tensors)
        assert [decode_name(n) for n in names] == list(expected)
        assert "body.dense%2F50%25.weight" in names
        for name in names:
            ds = tensors[name]
            assert isinstance(ds, h5py.Dataset)
            assert ds.chunks is None and ds.compression is None  # contiguous, uncompressed
            assert ds.dtype.byteorder in ("<", "=", "|") and ds.dtype.name in DOC_DTYPES
            assert h5py.h5o.get_info(ds.id).mtime == 0  # no timestamps
            np.testing.assert_array_equal(ds[()], expected[decode_name(name)])
        # a shared tensor is one dataset, hard-linked under its other keys
        assert tensors["tied.weight"].id == tensors["body.dense%2F50%25.weight"].id
        assert isinstance(tensors.get("tied.weight", getlink=True), h5py.HardLink)
        # /meta is optional: Odd is not a registered layer type, so there is no architecture
        assert "meta" not in f or "architecture" not in f["meta"]


def test_architecture_document_layout(tmp_path):
    net = core.model_zoo.vision.get_model("mobilenet0.25", classes=3)
    net.initialize()
    net(np.zeros((1, 3, 32, 32), np.float32))
    path = tmp_path / "mobilenet.h5"
    net.save_parameters(str(path))
    with h5py.File(path, "r") as f:
        doc = read_text_document(f["meta/architecture"])
    assert doc["format"] == "modelsurgeon-architecture" and doc["version"] == 1
    assert doc["inputs"] == [{"name": "data", "shape": [1, 3, 32, 32], "dtype": "float32"}]

    def check(node):
        assert set(node) <= {"type", "config", "children"}
        assert isinstance(node["type"], str) and isinstance(node["config"], dict)
        for name, child in node.get("children", []):
            assert isinstance(name, str)
            check(child)

    check(doc["root"])
    assert doc["root"]["type"] == "MobileNet"
    assert [name for name, _ in doc["root"]["children"]] == ["features", "output"]


def test_named_file_read_with_plain_h5py(tmp_path):
    net = nn.HybridSequential()
    net.add(nn.Conv2D(3, 3, in_channels=2), nn.BatchNorm(in_channels=3), nn.Flatten(), nn.Dense(2, in_units=12))
    net.initialize(core.init.Xavier())
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4)).astype(np.float32)
    net(x)
    _, params_file = net.export(str(tmp_path / "net"))
    structural = {p.name: k for k, p in net.collect_params().items()}
    with h5py.File(params_file, "r") as f:
        assert f.attrs["format"] == "modelsurgeon" and f.attrs["kind"] == "named"
        assert int(f.attrs["format_version"]) == 1
        tensors = f["tensors"]
        keys = [decode_name(n) for n in tensors]
        assert keys == list(structural)
        for key in keys:
            ds = tensors[key]
            role = ds.attrs["role"]
            assert role == ("aux" if structural[key].endswith(("running_mean", "running_var")) else "arg")
            assert json.loads(ds.attrs["structural"]) == [structural[key]]
        graph = read_text_document(f["meta/graph"])
        assert list(graph) == ["nodes", "arg_nodes", "node_row_ptr", "heads", "attrs"]
        variables = [n["name"] for n in graph["nodes"] if n["op"] == "null"]
        assert variables == ["data", *keys]  # variable nodes are named by the tensor keys
        for node in graph["nodes"]:
            assert all(isinstance(v, str) for v in node.get("attrs", {}).values())
            assert all(len(entry) == 3 for entry in node["inputs"])
        for key, param in zip(keys, net.collect_params().values()):
            np.testing.assert_array_equal(tensors[key][()], param.data())


def test_doc_mentions_every_root_attribute_and_document():
    text = _doc_text()
    root = text.split("## Root attributes", 1)[1].split("\n## ", 1)[0]
    for attribute in ROOT_ATTRIBUTES:
        assert f"| `{attribute}` |" in root, attribute
    for dataset in ("/meta/architecture", "/meta/graph", "/meta/metadata", "/tensors"):
        assert dataset in text
    for attribute in ("role", "structural"):
        assert f"`{attribute}`" in text


def test_doc_escape_table_matches_the_writer(tmp_path):
    text = _doc_text()
    rows = re.findall(r"^\| `([^`]+)` \| `/tensors/([^`]+)` \|$", text, flags=re.MULTILINE)
    assert len(rows) >= 3
    from modelsurgeon.core.formats import h5
    from modelsurgeon.core.formats.base import STRUCTURAL, TensorInfo
    keys = [key for key, _ in rows] + ["."]
    path = tmp_path / "escape.h5"
    h5.write_h5(str(path), STRUCTURAL, [TensorInfo(k, (1,), np.dtype(np.float32)) for k in keys],
                lambda info: np.zeros(1, np.float32))
    with h5py.File(path, "r") as f:
        names = list(f["tensors"])
    assert names == [name for _, name in rows] + ["%2E"]
    assert [decode_name(n) for n in names] == keys


def test_doc_dtype_table_matches_the_reader():
    text = _doc_text()
    table = text.split("### Dtypes", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([a-z]+[0-9]*)`", table.split("Any other dtype")[0]))
    assert documented == DOC_DTYPES
    from modelsurgeon.core.formats import h5
    assert {dtype.name for dtype in h5.DTYPES} == DOC_DTYPES
