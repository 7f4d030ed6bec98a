"""The detection operators (core/engine/ops/detection.py) against real MXNet 1.9.1.

Every case is one ``mx.nd.contrib`` (or ``mx.nd``) call with MXNet's string attributes (what a ``-symbol.json``
holds) on random inputs chosen to exercise the attribute's edge: boxes clustered so NMS suppresses,
tied scores (stable order), rows of the background class or id -1, batch dimensions, both box
formats, top-k smaller than the candidates, ROIs reaching outside the feature map. All cases run in
one MXNet subprocess; without MXNet they skip locally and fail under CI (see conftest.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelsurgeon.core.engine import ops
from modelsurgeon.core.errors import (
    InvalidAttributeError,
    ModelSurgeonError,
    ShapeError,
)

_GEN = np.random.default_rng(15)


def _s(value):
    if isinstance(value, tuple):
        return "(" + ", ".join(map(str, value)) + ("," if len(value) == 1 else "") + ")"
    return str(value)


def _corner_boxes(shape, clustered=True, scale=1.0):
    """Corner boxes (x1 < x2, y1 < y2); clustered ones overlap a lot, so NMS has work to do."""
    centers = _GEN.uniform(0.2, 0.8, (*shape, 2)) if not clustered else \
        _GEN.choice([0.3, 0.5, 0.7], (*shape, 2)) + _GEN.normal(0, 0.03, (*shape, 2))
    sizes = _GEN.uniform(0.1, 0.4, (*shape, 2))
    boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=-1) * scale
    return boxes.astype(np.float32)


def _detections(batch, n, classes=3, ties=False, width=6, id_col=0, score_col=1, coord=2, negative_ids=True):
    rows = np.zeros((*batch, n, width), np.float32)
    rows[..., coord:coord + 4] = _corner_boxes((*batch, n))
    scores = _GEN.uniform(0, 1, (*batch, n))
    if ties:
        scores = np.round(scores * 5) / 5
    rows[..., score_col] = scores
    if id_col is not None:
        ids = _GEN.integers(0, classes, (*batch, n)).astype(np.float32)
        if negative_ids:
            ids[..., ::7] = -1  # GluonCV's padding rows
        rows[..., id_col] = ids
    return rows


def _to_center(rows, coord=2):
    out = rows.copy()
    box = rows[..., coord:coord + 4]
    out[..., coord:coord + 4] = np.stack([(box[..., 0] + box[..., 2]) / 2, (box[..., 1] + box[..., 3]) / 2,
                                          box[..., 2] - box[..., 0], box[..., 3] - box[..., 1]], axis=-1)
    return out


def _cases():
    cases = []

    def add(case_id, op, inputs, **attrs):
        cases.append((case_id, op, inputs, {k: _s(v) for k, v in attrs.items()}))

    # -- box_nms: every attribute
    rows = _detections((), 40)
    add("nms_defaults", "_contrib_box_nms", [rows])
    add("nms_gluoncv_ssd", "_contrib_box_nms", [rows], overlap_thresh=0.45, valid_thresh=0.01, topk=400,
        coord_start=2, score_index=1, id_index=0, force_suppress=False)
    add("nms_topk_below_candidates", "_contrib_box_nms", [rows], overlap_thresh=0.3, topk=9, id_index=0)
    add("nms_valid_thresh", "_contrib_box_nms", [rows], valid_thresh=0.6, id_index=0)
    add("nms_force_suppress", "_contrib_box_nms", [rows], id_index=0, force_suppress=True)
    add("nms_background_id", "_contrib_box_nms", [rows], id_index=0, background_id=1)
    add("nms_threshold_zero", "_contrib_box_nms", [rows], overlap_thresh=0.0, id_index=0)
    add("nms_threshold_one", "_contrib_box_nms", [rows], overlap_thresh=1.0)
    add("nms_topk_zero_copies", "_contrib_box_nms", [rows], topk=0)
    add("nms_nothing_valid", "_contrib_box_nms", [rows], valid_thresh=2.0)
    add("nms_tied_scores", "_contrib_box_nms", [_detections((), 50, ties=True)], id_index=0, overlap_thresh=0.4)
    add("nms_batch_dims", "_contrib_box_nms", [_detections((2, 3), 20)], id_index=0, topk=12, overlap_thresh=0.5)
    center = _to_center(rows)
    add("nms_center_in_corner_out", "_contrib_box_nms", [center], id_index=0, in_format="center",
        out_format="corner")
    add("nms_corner_in_center_out", "_contrib_box_nms", [rows], id_index=0, in_format="corner",
        out_format="center")
    add("nms_center_both", "_contrib_box_nms", [center], id_index=0, in_format="center", out_format="center")
    rpn = _detections((1,), 60, width=5, id_col=None, score_col=0, coord=1)
    add("nms_rpn_layout", "_contrib_box_nms", [rpn], overlap_thresh=0.7, topk=30, coord_start=1, score_index=0,
        id_index=-1, force_suppress=True)
    wide = _detections((2,), 30, width=7, id_col=6, score_col=0, coord=2)
    add("nms_id_last_column", "_contrib_box_nms", [wide], coord_start=2, score_index=0, id_index=6)
    degenerate = rows.copy()
    degenerate[::5, 4] = degenerate[::5, 2] - 0.1  # negative widths: area 0
    add("nms_degenerate_boxes", "_contrib_box_nms", [degenerate], id_index=0)
    add("nms_alias", "_contrib_box_non_maximum_suppression", [rows], id_index=0, topk=15)

    # -- box_iou
    add("iou_corner", "_contrib_box_iou", [_corner_boxes((2, 5)), _corner_boxes((3,))])
    add("iou_center", "_contrib_box_iou", [_to_center(_corner_boxes((4,)), 0), _to_center(_corner_boxes((2, 3)), 0)],
        format="center")

    # -- box_decode
    offsets = _GEN.normal(0, 1, (2, 12, 4)).astype(np.float32)
    anchors_center = np.concatenate([_GEN.uniform(0, 1, (1, 12, 2)), _GEN.uniform(0.1, 0.5, (1, 12, 2))],
                                    axis=-1).astype(np.float32)
    add("decode_center", "_contrib_box_decode", [offsets, anchors_center], std0=0.1, std1=0.1, std2=0.2,
        std3=0.2, format="center")
    add("decode_corner_defaults", "_contrib_box_decode", [offsets, _corner_boxes((1, 12))], format="corner")
    add("decode_clip", "_contrib_box_decode", [offsets * 3, anchors_center], clip=1.5, std2=0.5, std3=2.0)

    # -- box_encode (two outputs: targets and masks)
    samples = _GEN.choice([-1.0, 0.0, 1.0], (2, 10)).astype(np.float32)
    matches = _GEN.integers(0, 4, (2, 10)).astype(np.float32)
    add("encode", "_contrib_box_encode", [samples, matches, _corner_boxes((2, 10)), _corner_boxes((2, 4)),
                                          np.array([0.0, 0.1, -0.1, 0.0], np.float32),
                                          np.array([0.1, 0.1, 0.2, 0.2], np.float32)])

    # -- MultiBoxPrior
    feature = _GEN.normal(0, 1, (2, 3, 5, 7)).astype(np.float32)
    add("prior_defaults", "_contrib_MultiBoxPrior", [feature])
    add("prior_sizes_ratios", "_contrib_MultiBoxPrior", [feature], sizes=(0.5, 0.25, 0.1), ratios=(1, 2, 0.5, 3))
    add("prior_clip", "_contrib_MultiBoxPrior", [feature], sizes=(0.9, 0.6), ratios=(1, 0.33), clip=True)
    add("prior_steps_offsets", "_contrib_MultiBoxPrior", [feature], sizes=(0.3,), ratios=(1, 2),
        steps=(0.2, 0.125), offsets=(0.25, 0.75))

    # -- MultiBoxDetection
    anchors = ops.invoke("_contrib_MultiBoxPrior", [np.zeros((1, 1, 4, 4), np.float32)],
                         {"sizes": "(0.5, 0.3)", "ratios": "(1, 2)"})
    num = anchors.shape[1]
    logits = _GEN.normal(0, 2, (2, 4, num))
    probs = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    loc = _GEN.normal(0, 0.5, (2, num * 4)).astype(np.float32)
    add("mbdet_defaults", "_contrib_MultiBoxDetection", [probs, loc, anchors])
    add("mbdet_threshold_topk", "_contrib_MultiBoxDetection", [probs, loc, anchors], threshold=0.3, nms_topk=10,
        nms_threshold=0.4)
    add("mbdet_force_noclip", "_contrib_MultiBoxDetection", [probs, loc, anchors], force_suppress=True, clip=False,
        variances=(0.2, 0.2, 0.1, 0.1))
    add("mbdet_no_nms", "_contrib_MultiBoxDetection", [probs, loc, anchors], nms_threshold=0.0, threshold=0.25)

    # -- ROIAlign
    data = _GEN.normal(0, 1, (2, 4, 9, 11)).astype(np.float32)
    rois = np.concatenate([_GEN.integers(0, 2, (7, 1)), _corner_boxes((7,), clustered=False, scale=20)], axis=1)
    rois[0, 1:] = [-3.0, -2.0, 6.0, 30.0]  # reaches outside the map
    rois[1, 1:] = [5.0, 5.0, 5.2, 5.1]  # smaller than a cell
    rois = rois.astype(np.float32)
    add("roialign_gluoncv", "_contrib_ROIAlign", [data, rois], pooled_size=(3, 3), spatial_scale=0.5,
        sample_ratio=2)
    add("roialign_adaptive", "_contrib_ROIAlign", [data, rois], pooled_size=(2, 4), spatial_scale=0.5)
    add("roialign_aligned", "_contrib_ROIAlign", [data, rois[2:]], pooled_size=(3, 2), spatial_scale=0.25,
        sample_ratio=3, aligned=True)
    add("roialign_position_sensitive", "_contrib_ROIAlign", [_GEN.normal(0, 1, (2, 8, 9, 11)).astype(np.float32),
                                                            rois], pooled_size=(2, 2), spatial_scale=0.5,
        sample_ratio=2, position_sensitive=True)

    # -- ROIPooling
    add("roipooling", "ROIPooling", [data, rois], pooled_size=(3, 3), spatial_scale=0.5)
    add("roipooling_rect_scale", "ROIPooling", [data, rois], pooled_size=(2, 4), spatial_scale=0.3)
    add("roipooling_half_pixels", "ROIPooling", [data, np.array([[0, 1, 1, 7, 5], [1, 3, 5, 9, 9], [0, 15, 15, 40, 30]],
                                                                np.float32)], pooled_size=(4, 3), spatial_scale=0.5)

    # -- Proposal / MultiProposal (symbol-API Faster R-CNN)
    def rpn(batch, anchors, height, width):
        prob = _GEN.uniform(0, 1, (batch, 2 * anchors, height, width)).astype(np.float32)
        deltas = _GEN.normal(0, 0.3, (batch, 4 * anchors, height, width)).astype(np.float32)
        return prob, deltas

    prob, deltas = rpn(1, 12, 6, 8)
    info = np.array([[90, 120, 1.0]], np.float32)  # the last row and column of positions are padding
    add("proposal_defaults_small", "_contrib_Proposal", [prob, deltas, info], rpn_pre_nms_top_n=200,
        rpn_post_nms_top_n=40, rpn_min_size=4)
    add("proposal_scores_and_repeats", "_contrib_Proposal", [prob, deltas, info], rpn_pre_nms_top_n=150,
        rpn_post_nms_top_n=120, threshold=0.2, rpn_min_size=2, output_score=True)
    prob6, deltas6 = rpn(1, 6, 9, 7)
    add("proposal_scales_ratios_stride", "_contrib_Proposal", [prob6, deltas6, np.array([[70, 56, 1.5]], np.float32)],
        scales=(2, 4), ratios=(0.5, 1, 2), feature_stride=8, rpn_pre_nms_top_n=100, rpn_post_nms_top_n=30,
        threshold=0.5, rpn_min_size=3)
    add("proposal_iou_loss", "_contrib_Proposal", [prob6, deltas6 * 10, np.array([[72, 56, 1.0]], np.float32)],
        scales=(2, 4), ratios=(0.5, 1, 2), feature_stride=8, rpn_pre_nms_top_n=80, rpn_post_nms_top_n=20,
        iou_loss=True, rpn_min_size=1)
    prob2, deltas2 = rpn(2, 12, 5, 6)
    add("multiproposal_batch", "_contrib_MultiProposal", [prob2, deltas2, np.array([[80, 96, 1.0], [64, 90, 1.0]],
                                                                                     np.float32)],
        rpn_pre_nms_top_n=120, rpn_post_nms_top_n=25, rpn_min_size=4, output_score=True)
    return cases


CASES = _cases()

MXNET_SCRIPT = r"""
import json, sys
import numpy as np
import mxnet as mx
cases = json.load(open(sys.argv[1]))
arrays = np.load(sys.argv[2])
out = {}
for case_id, op, count, attrs in cases:
    inputs = [mx.nd.array(arrays[f"{case_id}__{i}"]) for i in range(count)]
    namespace = mx.nd.contrib if op.startswith("_contrib_") else mx.nd
    result = getattr(namespace, op.replace("_contrib_", ""))(*inputs, **attrs)
    for k, value in enumerate(result if isinstance(result, (list, tuple)) else [result]):
        out[f"{case_id}__{k}"] = value.asnumpy()
np.savez(sys.argv[3], **out)
"""


@pytest.fixture(scope="module")
def mxnet_outputs(mxnet_run, tmp_path_factory):
    work = tmp_path_factory.mktemp("mxnet_detection")
    (work / "cases.json").write_text(json.dumps([[c, op, len(inputs), attrs] for c, op, inputs, attrs in CASES]))
    np.savez(work / "inputs.npz", **{f"{c}__{i}": a for c, _, inputs, _ in CASES for i, a in enumerate(inputs)})
    mxnet_run(MXNET_SCRIPT, str(work / "cases.json"), str(work / "inputs.npz"), str(work / "out.npz"))
    with np.load(work / "out.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_detection_operator_matches_mxnet(case, mxnet_outputs):
    case_id, op, inputs, attrs = case
    ours = ops.invoke(op, inputs, attrs)
    ours = ours if isinstance(ours, (list, tuple)) else [ours]
    theirs = [mxnet_outputs[key] for key in sorted(k for k in mxnet_outputs if k.startswith(case_id + "__"))]
    assert len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs):
        assert mine.shape == reference.shape
        assert mine.dtype == reference.dtype
        np.testing.assert_allclose(mine, reference, rtol=1e-5, atol=1e-5)


def test_nms_cases_really_suppress():
    """The NMS cases are not vacuous: boxes were dropped by overlap, not only by score."""
    rows = next(case[2][0] for case in CASES if case[0] == "nms_defaults")
    out = ops.invoke("_contrib_box_nms", [rows], {})
    kept = int((out[:, 0] != -1).sum())
    assert 0 < kept < int((rows[:, 1] > 0).sum())


def test_nms_attribute_errors():
    rows = _detections((), 5)
    with pytest.raises(InvalidAttributeError, match="attribute in_format='xywh' must be one of 'corner', 'center'"):
        ops.invoke("_contrib_box_nms", [rows], {"in_format": "xywh"})
    with pytest.raises(ShapeError, match="score_index 1 / coord_start 4"):
        ops.invoke("_contrib_box_nms", [rows], {"coord_start": "4"})
    with pytest.raises(ShapeError, match="id_index 3 does not fit"):
        ops.invoke("_contrib_box_nms", [rows], {"id_index": "3"})
    with pytest.raises(ModelSurgeonError, match="unsupported attribute"):
        ops.invoke("_contrib_box_nms", [rows], {"bogus": "1"})


def test_roi_align_negative_batch_gives_zeros():
    data = _GEN.normal(0, 1, (1, 2, 5, 5)).astype(np.float32)
    rois = np.array([[-1, 0, 0, 4, 4], [0, 0, 0, 4, 4]], np.float32)
    out = ops.invoke("_contrib_ROIAlign", [data, rois], {"pooled_size": "(2, 2)", "spatial_scale": "1.0"})
    assert not out[0].any() and out[1].any()


# -- naive references (no MXNet needed): MXNet's loops written out element by element -----------

def _naive_box_nms(data, overlap_thresh, valid_thresh, topk, coord_start, score_index, id_index, force_suppress):
    out = np.full_like(data, -1)
    for b, rows in enumerate(data):
        order = sorted((i for i in range(len(rows)) if rows[i, score_index] > valid_thresh
                        and (id_index < 0 or rows[i, id_index] != -1)),
                       key=lambda i: -rows[i, score_index])[: topk if topk > 0 else None]
        alive = [True] * len(order)
        for r, i in enumerate(order):
            if not alive[r]:
                continue
            for p in range(r + 1, len(order)):
                j = order[p]
                if not alive[p] or (id_index >= 0 and not force_suppress and
                                    int(rows[i, id_index]) != int(rows[j, id_index])):
                    continue
                a, c = rows[i, coord_start:coord_start + 4], rows[j, coord_start:coord_start + 4]
                w = max(min(a[2], c[2]) - max(a[0], c[0]), 0)
                h = max(min(a[3], c[3]) - max(a[1], c[1]), 0)
                area_a = max(a[2] - a[0], 0) * max(a[3] - a[1], 0) if a[2] >= a[0] and a[3] >= a[1] else 0
                area_c = max(c[2] - c[0], 0) * max(c[3] - c[1], 0) if c[2] >= c[0] and c[3] >= c[1] else 0
                inter = w * h
                if inter / (area_a + area_c - inter) > overlap_thresh:
                    alive[p] = False
        kept = [order[r] for r in range(len(order)) if alive[r]]
        out[b, :len(kept)] = rows[kept]
    return out


@pytest.mark.parametrize("seed", range(6))
def test_box_nms_matches_a_naive_loop(seed):
    gen = np.random.default_rng(seed)
    rows = _detections((2,), 25)
    rows[..., 1] = gen.permutation(50).reshape(2, 25) / 50  # distinct scores: one valid order
    attrs = {"overlap_thresh": float(gen.uniform(0.2, 0.8)), "valid_thresh": float(gen.uniform(0, 0.3)),
                 "topk": int(gen.choice([-1, 8, 15])), "coord_start": 2, "score_index": 1, "id_index": int(gen.choice([-1, 0])),
                 "force_suppress": bool(gen.integers(2))}
    ours = ops.invoke("_contrib_box_nms", [rows], {k: _s(v) for k, v in attrs.items()})
    np.testing.assert_allclose(ours, _naive_box_nms(rows, **attrs), rtol=1e-6)


def _naive_roi_align(data, rois, ph, pw, scale, ratio):
    out = np.zeros((len(rois), data.shape[1], ph, pw))
    height, width = data.shape[2:]
    for n, (b, x1, y1, x2, y2) in enumerate(rois.astype(np.float64)):
        sx, sy = x1 * scale, y1 * scale
        rw, rh = max(x2 * scale - sx, 1.0), max(y2 * scale - sy, 1.0)
        bh, bw = rh / ph, rw / pw
        for i in range(ph):
            for j in range(pw):
                total = np.zeros(data.shape[1])
                for iy in range(ratio):
                    for ix in range(ratio):
                        y = sy + i * bh + (iy + 0.5) * bh / ratio
                        x = sx + j * bw + (ix + 0.5) * bw / ratio
                        if y < -1 or y > height or x < -1 or x > width:
                            continue
                        y, x = max(y, 0.0), max(x, 0.0)
                        y0, x0 = min(int(y), height - 1), min(int(x), width - 1)
                        y1_, x1_ = min(y0 + 1, height - 1), min(x0 + 1, width - 1)
                        y = float(y0) if y0 == height - 1 else y
                        x = float(x0) if x0 == width - 1 else x
                        ly, lx = y - y0, x - x0
                        img = data[int(b)]
                        total += ((1 - ly) * (1 - lx) * img[:, y0, x0] + (1 - ly) * lx * img[:, y0, x1_]
                                  + ly * (1 - lx) * img[:, y1_, x0] + ly * lx * img[:, y1_, x1_])
                out[n, :, i, j] = total / (ratio * ratio)
    return out


def test_roi_align_matches_a_naive_loop():
    data = _GEN.normal(0, 1, (2, 3, 7, 9)).astype(np.float32)
    rois = np.concatenate([_GEN.integers(0, 2, (6, 1)), _corner_boxes((6,), clustered=False, scale=16)], axis=1)
    rois[0, 1:] = [-4, -3, 20, 18]
    rois = rois.astype(np.float32)
    ours = ops.invoke("_contrib_ROIAlign", [data, rois], {"pooled_size": "(3, 2)", "spatial_scale": "0.5",
                                                          "sample_ratio": "2"})
    np.testing.assert_allclose(ours, _naive_roi_align(data, rois, 3, 2, 0.5, 2), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op,inputs,attrs,match", [
    ("_contrib_ROIAlign", 2, {"pooled_size": "(100000, 100000)", "spatial_scale": "1"}, "pooled_size"),
    ("_contrib_ROIAlign", 2, {"pooled_size": "(2, 2)", "spatial_scale": "1", "sample_ratio": "100000"},
     "sample_ratio"),
    ("ROIPooling", 2, {"pooled_size": "(0, 3)", "spatial_scale": "1"}, "pooled_size"),
    ("_contrib_Proposal", 3, {"feature_stride": "0"}, "feature_stride"),
    ("_contrib_Proposal", 3, {"rpn_post_nms_top_n": "0"}, "rpn_post_nms_top_n"),
])
def test_hostile_attributes_are_refused_when_read(op, inputs, attrs, match):
    """A graph file cannot make these operators allocate gigabytes or divide by zero."""
    with pytest.raises(InvalidAttributeError, match=match):
        ops.get(op).parse(attrs, "node0")


def test_roi_align_refuses_a_huge_adaptive_grid():
    data = np.zeros((1, 1, 4, 4), np.float32)
    rois = np.array([[0, 0, 0, 1e30, 1e30]], np.float32)
    with pytest.raises(ShapeError, match="set sample_ratio"):
        ops.invoke("_contrib_ROIAlign", [data, rois], {"pooled_size": "(2, 2)", "spatial_scale": "1"})
