"""Every operator case checked against real MXNet (tests/test_ops_mxnet_more.py) also exports to ONNX,
and ONNX Runtime gives our engine's outputs (so MXNet's) for every output of the node. The batch
dimension is dynamic, except where an operator's output cannot follow it (then the exporter says
so, naming the batch size, and the case exports with a fixed batch)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from modelsurgeon.core.engine import ops
from modelsurgeon.core.engine.symbol import Graph
from modelsurgeon.core.errors import UnsupportedOpError
from modelsurgeon.core.onnx import runtime
from modelsurgeon.core.onnx.export import export_graph


def _mxnet_cases(name: str) -> list:
    """The CASES table of another test module (an empty list where that module is absent)."""
    source = Path(__file__).resolve().parent / f"{name}.py"
    if not source.exists():
        return []
    spec = importlib.util.spec_from_file_location(f"_modelsurgeon_cases_{name}", source)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return list(module.CASES)


CASES = _mxnet_cases("test_ops_mxnet_more") + _mxnet_cases("test_ops_detection")
#: Operators (and cases) whose MXNet semantics ONNX cannot express: a clear UnsupportedOpError (exit 8).
NOT_EXPRESSIBLE = {"_contrib_box_nms", "_contrib_box_non_maximum_suppression", "_contrib_MultiBoxDetection",
                   "_contrib_box_encode", "roialign_position_sensitive"}
#: Operators with no ONNX translation yet (region proposals end in NMS; ROIPooling's MXNet rounding is
#: not MaxRoiPool's): exporting them is a clear UnsupportedOpError naming them, also exit 8.
NOT_TRANSLATED = {"ROIPooling", "_contrib_Proposal", "_contrib_MultiProposal"}


def _graph(op: str, attrs: dict[str, str], count: int, outputs: int) -> Graph:
    nodes = [{"op": "null", "name": "data" if i == 0 else f"in{i}", "inputs": []} for i in range(count)]
    nodes.append({"op": op, "name": "node", "attrs": attrs, "inputs": [[i, 0, 0] for i in range(count)]})
    return Graph.from_json({"nodes": nodes, "heads": [[count, j, 0] for j in range(outputs)]})


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_operator_exports_and_runs_like_our_engine(case):
    case_id, op, inputs, attrs = case
    spec = ops.get(op)
    outputs = spec.num_outputs(spec.parse(attrs))
    graph = _graph(op, attrs, len(inputs), outputs)
    expected = ops.invoke(op, inputs, attrs)
    expected = expected if isinstance(expected, list) else [expected]
    params = {f"in{i}": a for i, a in enumerate(inputs) if i}
    feeds = inputs[:1]
    shapes = {"data": feeds[0].shape} if feeds else {}
    dtypes = {"data": feeds[0].dtype} if feeds else {}
    if op in NOT_TRANSLATED:
        with pytest.raises(UnsupportedOpError, match=f"no ONNX translation for operator {op} \\(node 'node'\\)"):
            export_graph(graph, params, shapes, input_dtypes=dtypes)
        return
    if op in NOT_EXPRESSIBLE or case_id in NOT_EXPRESSIBLE:
        with pytest.raises(UnsupportedOpError, match=f"operator {op} \\(node 'node'\\) cannot be exported"):
            export_graph(graph, params, shapes, input_dtypes=dtypes)
        return
    try:
        model = export_graph(graph, params, shapes, input_dtypes=dtypes)
    except UnsupportedOpError as exc:
        if "batch size" not in str(exc):
            raise
        model = export_graph(graph, params, shapes, input_dtypes=dtypes, dynamic_batch=False)
    actual = runtime.run(model.SerializeToString(), feeds, threads=1)
    assert len(actual) == len(expected)
    for mine, theirs in zip(actual, expected):
        theirs = np.asarray(theirs)
        assert mine.shape == theirs.shape
        assert mine.dtype == theirs.dtype
        scale = float(np.nanmax(np.abs(theirs))) if theirs.size and theirs.dtype.kind in "fc" else 0.0
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5 + 1e-5 * scale)
