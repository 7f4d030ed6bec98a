"""Real GluonCV 0.10 exports and InsightFace-style symbol checkpoints run without MXNet.

``tools/gluoncv_zoo/make_cases.py`` builds each model with real MXNet 1.9.1 and GluonCV
(``pretrained=False``, random weights, calibrated non-trivial BatchNorm statistics), exports it and
records MXNet's outputs; the cases are made once per session for the tests selected, in one MXNet
subprocess, and cached under ``tests/artifacts/gluoncv_zoo/``. Each export then runs through
``SymbolBlock.imports`` (and a few through the CLI's ``run``, ``convert``, ``diff`` and ``graph``)
and must match MXNet within 1e-4 of the output's scale (float32).

Models that do not run are listed in :data:`NOT_RUNNING` with the reason, and a test checks that
each still fails exactly that way, so the list cannot go stale. Without MXNet and GluonCV the
tests skip locally and fail under CI, like every oracle test.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from modelsurgeon.core.engine.symbol_block import SymbolBlock
from modelsurgeon.core.errors import UnsupportedOpError

ROOT = Path(__file__).resolve().parent.parent
MAKE_CASES = ROOT / "tools" / "gluoncv_zoo" / "make_cases.py"
ARTIFACTS = ROOT / "tests" / "artifacts" / "gluoncv_zoo"
RTOL = 1e-4


def _load_make_cases():
    spec = importlib.util.spec_from_file_location("gluoncv_make_cases", MAKE_CASES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # stdlib and numpy only at import time; MXNet inside functions
    return module


MAKE = _load_make_cases()

#: family -> models that run and are cheap enough for every test run (about a second each, or less)
FAST = {
    "classification": ["resnet18_v1", "resnet50_v1b", "mobilenet1.0", "mobilenetv2_1.0", "mobilenetv3_small",
                       "squeezenet1.0", "cifar_resnet20_v1", "shufflenet_v2", "se_resnet18_v1", "resnest14",
                       "darknet53", "vgg16_bn", "alexnet", "hrnet_w18_small_v1_c", "dla34", "xception",
                       "mobilenet0.25"],
    "pose": ["simple_pose_resnet18_v1b", "mobile_pose_mobilenetv3_small"],
    "detection": ["ssd_300_mobilenet0.25_voc", "ssd_512_mobilenet1.0_voc", "yolo3_mobilenet0.25_voc",
                  "faster_rcnn_symbol", "center_net_resnet18_v1b_voc"],
    "segmentation": ["fcn_resnet50_voc", "psp_resnet50_ade", "deeplab_resnet50_ade", "fastscnn_citys"],
    "depth": ["monodepth2_resnet18_kitti_stereo_640x192"],
    "recognition": ["insightface_resnet", "insightface_mobilefacenet"],
}
#: models that run but take seconds to build or to execute: marked slow
SLOW = ["resnet50_v1d", "resnet50_v2", "resnext50_32x4d", "se_resnext50_32x4d", "mobilenetv3_large", "densenet121",
        "googlenet", "inceptionv3", "senet_154", "nasnet_4_1056", "residualattentionnet56", "cifar_wideresnet16_10",
        "cifar_resnext29_16x64d", "alpha_pose_resnet101_v1b_coco", "ssd_300_vgg16_atrous_voc",
        "ssd_512_resnet50_v1_voc", "yolo3_darknet53_voc", "faster_rcnn_resnet50_v1b_voc",
        "deeplab_v3b_plus_wideresnet_citys", "icnet_resnet50_citys", "danet_resnet50_citys", "resnet18_v1b_0.89",
        "cifar_residualattentionnet56", "simple_pose_resnet50_v1d", "mobile_pose_resnet18_v1b",
        "yolo3_mobilenet1.0_coco", "hrnet_w18_small_v1_s", "deeplab_resnest50_ade", "resnet50_v1s", "se_resnet18_v2",
        "cifar_resnet20_v2", "mobilenetv2_0.25", "shufflenet_v1", "center_net_mobilenetv3_small_duc_voc",
        "center_net_dla34_voc"]
#: models that do not run, with why: (operator or None, reason). MXNet's own failures have no operator.
NOT_RUNNING = {
    "resnet50_v1b_gn": (None, ("MXNet 1.9.1 itself cannot run GluonCV 0.10's GroupNorm export (its Reshape "
                               "passes keep_highest=-1)")),
}

#: models that run but cannot be checked against MXNet 1.9.1, with why
UNVERIFIED = {
    "faster_rcnn_fpn_resnet50_v1b_coco": (
        "FPN pools each level with ROIAlign, giving the ROIs of other levels batch index -1 and summing the "
        "levels; MXNet 1.9.1's CPU ROIAlign zeroes one element of such a ROI and leaves the rest of its "
        "output uninitialised, so MXNet's own result changes from run to run (727, 2167, 3700 detections "
        "seen); ours gives those ROIs zeros, as the model intends"),
}

RUNNING = [name for names in FAST.values() for name in names] + SLOW
FAMILY = {name: family for family, names in FAST.items() for name in names}


def _params():
    params = [pytest.param(name, id=name) for name in RUNNING[: len(RUNNING) - len(SLOW)]]
    params += [pytest.param(name, id=name, marks=pytest.mark.slow) for name in SLOW]
    return params


# -- the cases, made by real MXNet once per session -----------------------------------------------

def _selected_case_names(session) -> list[str]:
    """The fast and not-running cases, and the slow ones whose tests were selected."""
    names = {name for names in FAST.values() for name in names} | set(NOT_RUNNING)
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if Path(str(item.fspath)).name == Path(__file__).name and callspec is not None:
            names.add(callspec.params.get("name", ""))
    return sorted(names - {""})


@pytest.fixture(scope="session")
def gluoncv_cases(request, mxnet_python_path):
    """Directory of the cases this session needs (made or refreshed by make_cases.py under MXNet)."""
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('gluoncv') is None)"
    done = subprocess.run([mxnet_python_path, "-c", probe], capture_output=True, check=False)
    if done.returncode != 0:
        why = f"{mxnet_python_path} has no gluoncv (pip install --no-deps gluoncv==0.10.5.post0)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the GluonCV oracle is unavailable: {why}")
        pytest.skip(why)
    names = _selected_case_names(request.session)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MXNET_ENGINE_TYPE="NaiveEngine", MXNET_HOME=str(ARTIFACTS / ".mxnet"))
    # one maker at a time: parallel test workers share the cache (the second finds the cases made)
    with open(ARTIFACTS / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        made = subprocess.run([mxnet_python_path, str(MAKE_CASES), str(ARTIFACTS), "--only", ",".join(names)],
                              capture_output=True, text=True, env=env, timeout=1800, check=False)
    if made.returncode != 0:
        pytest.fail(f"make_cases.py failed ({made.returncode}):\n{made.stderr[-3000:]}")
    catalogue = json.loads((ARTIFACTS / "catalogue.json").read_text())
    return ARTIFACTS, catalogue


def _case(gluoncv_cases, name):
    root, catalogue = gluoncv_cases
    entry = catalogue[name]
    return root / name, entry


def _outputs(case_dir: Path) -> list[np.ndarray]:
    count = len(list(case_dir.glob("output*.npy")))
    return [np.load(case_dir / f"output{i}.npy") for i in range(count)]


def assert_matches_mxnet(ours, theirs: list[np.ndarray], what: str) -> None:
    """Same shapes and dtypes; every output within RTOL of its own largest magnitude."""
    ours = list(ours) if isinstance(ours, (tuple, list)) else [ours]
    assert len(ours) == len(theirs), f"{what}: {len(ours)} outputs, MXNet gave {len(theirs)}"
    for index, (mine, reference) in enumerate(zip(ours, theirs)):
        mine = np.asarray(mine)
        assert mine.shape == reference.shape, f"{what} output {index}: shape {mine.shape} != {reference.shape}"
        assert mine.dtype == reference.dtype, f"{what} output {index}: dtype {mine.dtype} != {reference.dtype}"
        finite = np.isfinite(reference)
        np.testing.assert_array_equal(mine[~finite], reference[~finite], err_msg=f"{what} output {index}")
        scale = max(float(np.abs(reference[finite]).max(initial=0)), 1e-30)
        np.testing.assert_allclose(mine[finite], reference[finite], rtol=0, atol=RTOL * scale,
                                   err_msg=f"{what} output {index}")


# -- every running model matches MXNet --------------------------------------------------------------

@pytest.mark.parametrize("name", _params())
def test_export_runs_like_mxnet(name, gluoncv_cases):
    case_dir, entry = _case(gluoncv_cases, name)
    assert "error" not in entry, f"MXNet could not build {name}: {entry['error']}"
    inputs = entry.get("inputs", ["data"])  # mx-rcnn's Faster R-CNN also takes im_info
    net = SymbolBlock.imports(str(case_dir / "model-symbol.json"), inputs, str(case_dir / "model-0000.params"))
    ours = net(np.load(case_dir / "input.npy"), *[np.load(case_dir / f"input_{name}.npy") for name in inputs[1:]])
    theirs = _outputs(case_dir)
    assert_matches_mxnet(ours, theirs, name)
    if entry["family"] == "detection":  # the detections are real ones, not only padding
        assert (theirs[0] != -1).any()


def test_every_family_is_covered():
    assert set(FAST) == {"classification", "pose", "detection", "segmentation", "depth", "recognition"}
    assert not set(RUNNING) & set(NOT_RUNNING) and not set(UNVERIFIED) & (set(RUNNING) | set(NOT_RUNNING))
    assert set(RUNNING) | set(NOT_RUNNING) | set(UNVERIFIED) == set(MAKE.ALL_CASES), \
        "every case of make_cases.py is accounted for"


@pytest.mark.parametrize("name", sorted(NOT_RUNNING))
def test_not_running_models_fail_for_the_listed_reason(name, gluoncv_cases):
    case_dir, entry = _case(gluoncv_cases, name)
    operator, reason = NOT_RUNNING[name]
    if operator is None:  # MXNet's own failure: make_cases.py recorded it
        assert "error" in entry, f"{name} now builds in MXNet; move it to FAST or SLOW ({reason})"
        return
    assert "error" not in entry
    with pytest.raises(UnsupportedOpError, match=rf"\b{operator}\b"):
        net = SymbolBlock.imports(str(case_dir / "model-symbol.json"), ["data"], str(case_dir / "model-0000.params"))
        net(np.load(case_dir / "input.npy"))


def test_catalogue_lists_the_operators_of_each_export(gluoncv_cases):
    root, catalogue = gluoncv_cases
    for name in FAMILY:
        graph = json.loads((root / name / "model-symbol.json").read_text())
        ops = {}
        for node in graph["nodes"]:
            if node["op"] != "null":
                ops[node["op"]] = ops.get(node["op"], 0) + 1
        assert catalogue[name]["ops"] == dict(sorted(ops.items())), name
    detection_ops = {op for name in FAST["detection"] for op in catalogue[name]["ops"]}
    assert {"_contrib_box_nms", "_contrib_box_decode"} <= detection_ops


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(UNVERIFIED))
def test_unverified_models_run_deterministically(name, gluoncv_cases):
    """What can be checked without a trustworthy MXNet result: shapes, finiteness, repeatability."""
    case_dir, _ = _case(gluoncv_cases, name)
    net = SymbolBlock.imports(str(case_dir / "model-symbol.json"), ["data"], str(case_dir / "model-0000.params"))
    x = np.load(case_dir / "input.npy")
    first, second = net(x), net(x)
    theirs = _outputs(case_dir)
    assert [np.shape(o) for o in first] == [o.shape for o in theirs]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
        assert np.isfinite(a).all()
    assert (first[0] != -1).any()


# -- symbol-API checkpoints and the CLI ----------------------------------------------------------------

def _cli(*args, code=0):
    from cli_helpers import invoke
    return invoke(*args, code=code)


@pytest.mark.parametrize("name", ["resnet18_v1", "ssd_300_mobilenet0.25_voc", "insightface_resnet"])
def test_cli_run_matches_mxnet(name, gluoncv_cases, tmp_path):
    case_dir, _ = _case(gluoncv_cases, name)
    out = tmp_path / "out.npy"
    result = _cli("run", case_dir / "model-0000.params", "--input", case_dir / "input.npy", "-o", out, "--json")
    document = json.loads(result.stdout)
    assert document["outputs"][0]["shape"] == list(np.load(case_dir / "output0.npy").shape)
    assert_matches_mxnet(np.load(out), _outputs(case_dir)[:1], f"modelsurgeon run {name}")


def test_symbol_checkpoint_keys_and_fix_gamma(gluoncv_cases):
    """InsightFace-style files: arg:/aux: keys; the embedding's BatchNorm ignores its (random) gamma."""
    case_dir, _ = _case(gluoncv_cases, "insightface_mobilefacenet")
    graph = json.loads((case_dir / "model-symbol.json").read_text())
    ops = {node["op"] for node in graph["nodes"]}
    assert {"_minus_scalar", "_mul_scalar", "LeakyReLU", "BatchNorm", "FullyConnected"} <= ops
    depthwise = [n for n in graph["nodes"] if n["op"] == "Convolution" and n["attrs"].get("num_group") != "1"]
    assert any(n["attrs"]["kernel"] == "(8, 8)" for n in depthwise), "the depthwise global convolution"
    fc1 = next(n for n in graph["nodes"] if n["name"] == "fc1")
    assert fc1["attrs"]["fix_gamma"] == "True"
    raw = (case_dir / "model-0000.params").read_bytes()
    assert b"arg:fc1_gamma" in raw and b"aux:fc1_moving_var" in raw
    net = SymbolBlock.imports(str(case_dir / "model-symbol.json"), ["data"], str(case_dir / "model-0000.params"))
    gamma = net.collect_params()["fc1_gamma"].data()
    assert not np.allclose(gamma, 1.0)  # a converter that used it would be wrong
    assert_matches_mxnet(net(np.load(case_dir / "input.npy")), _outputs(case_dir), "insightface_mobilefacenet")


@pytest.mark.parametrize("name,node", [("insightface_resnet", "fc1"), ("yolo3_mobilenet0.25_voc", "box_nms")])
def test_convert_diff_and_graph(name, node, gluoncv_cases, tmp_path):
    """A symbol-API checkpoint and a detection export survive convert (diff says equal, run agrees)."""
    case_dir, _ = _case(gluoncv_cases, name)
    params = case_dir / "model-0000.params"
    converted = tmp_path / "model.h5"
    _cli("convert", params, "-o", converted)
    result = _cli("diff", params, converted, "--values", "--json")
    assert json.loads(result.stdout)["equal"] is True
    out = tmp_path / "out.npy"
    _cli("run", converted, "--input", case_dir / "input.npy", "-o", out)
    assert_matches_mxnet(np.load(out), _outputs(case_dir)[:1], f"converted {name}")
    picture = tmp_path / "graph.svg"
    _cli("graph", case_dir / "model-symbol.json", "-o", picture)
    assert node in picture.read_text()


def test_cli_run_of_a_not_running_model_is_exit_8_naming_the_node(gluoncv_cases, tmp_path):
    """A real export with one operator we do not run (CenterNet's decoder given a deformable convolution)."""
    case_dir, _ = _case(gluoncv_cases, "center_net_resnet18_v1b_voc")
    graph = json.loads((case_dir / "model-symbol.json").read_text())
    for node in graph["nodes"]:
        if node["op"] == "zeros_like":
            node["op"] = "_contrib_DeformableConvolution"
    shutil.copy(case_dir / "model-0000.params", tmp_path / "model-0000.params")
    (tmp_path / "model-symbol.json").write_text(json.dumps(graph))
    result = _cli("run", tmp_path / "model-0000.params", "--input", case_dir / "input.npy", code=8)
    assert re.search(r"_contrib_DeformableConvolution.*node 'centernet\d*_centernetdecoder0_zeros_like0'",
                     result.stderr)
    assert result.stdout == ""
