"""Real GluonCV and InsightFace-style models, exported by real MXNet (tools/gluoncv_zoo/make_cases.py),
converted to ONNX: ONNX Runtime gives MXNet's outputs within 1e-4 of their scale.

The cases are generated once with the MXNet oracle interpreter and cached under tests/artifacts/
(git-ignored). Without MXNet the test skips locally and fails under CI (see conftest.py); it skips
where the case generator is not part of the checkout.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from modelsurgeon.core.binding import open_checkpoint
from modelsurgeon.core.onnx import runtime
from modelsurgeon.core.onnx.export import export_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "gluoncv_zoo" / "make_cases.py"
ARTIFACTS = ROOT / "tests" / "artifacts" / "gluoncv_onnx"
#: Small cases of each family that ONNX can express (detection ends in MXNet's own NMS: see test_onnx_ops).
CASES = ["insightface_mobilefacenet", "insightface_resnet", "mobilenetv3_small", "shufflenet_v2", "squeezenet1.0",
         "cifar_resnet20_v1", "mobile_pose_mobilenetv3_small", "fastscnn_citys"]

GENERATE = r"""
import runpy, sys
tool, out, only = sys.argv[1:4]
sys.argv = [tool, out, "--only", only]
runpy.run_path(tool, run_name="__main__")
"""


@pytest.fixture(scope="module")
def cases(mxnet_run) -> Path:
    if not TOOL.exists():
        pytest.skip("tools/gluoncv_zoo/make_cases.py is not in this checkout")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open(ARTIFACTS / ".lock", "w") as lock:  # parallel test workers share the cache
        fcntl.flock(lock, fcntl.LOCK_EX)
        mxnet_run(GENERATE, str(TOOL), str(ARTIFACTS), ",".join(CASES), timeout=600)
    return ARTIFACTS


@pytest.mark.parametrize("name", CASES)
def test_ort_runs_our_export_of_gluoncv_models_to_mxnets_output(name, cases):
    folder = cases / name
    x = np.load(folder / "input.npy")
    expected = [np.load(p) for p in sorted(folder.glob("output*.npy"))]
    with open_checkpoint(str(folder / "model-0000.params")) as reader:
        model = export_checkpoint(reader, input_shape=x.shape)
    actual = runtime.run(model.SerializeToString(), [x], threads=1)
    assert len(actual) == len(expected)
    for mine, theirs in zip(actual, expected):
        assert mine.shape == theirs.shape
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-4 * float(np.abs(theirs).max()))
