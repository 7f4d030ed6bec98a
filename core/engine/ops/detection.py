"""Object-detection operators of MXNet's ``contrib`` namespace, with MXNet 1.9.1's semantics.

``_contrib_box_nms`` (GluonCV's SSD, YOLOv3 and Faster R-CNN end with it), ``_contrib_box_iou``,
``_contrib_box_decode`` / ``_contrib_box_encode``, ``_contrib_MultiBoxPrior`` /
``_contrib_MultiBoxDetection`` (the original SSD's anchors and decoding), ``_contrib_ROIAlign``,
``ROIPooling``, and
``_contrib_Proposal`` / ``_contrib_MultiProposal`` (the region proposals of symbol-API Faster R-CNN).

Everything is vectorised over boxes, anchors and channels. Greedy non-maximum suppression is
sequential by definition (a box suppressed by an earlier one suppresses nothing), so it walks the
kept boxes in score order, each step one vectorised row of a precomputed overlap matrix. Arithmetic
is done in the input's precision in MXNet's order, so thresholds compare the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import ShapeError, UnsupportedOpError
from .registry import REQUIRED, OpSpec, at_least, between, one_of, register

FORMATS = ("corner", "center")


#: rows of ROIs interpolated at once by ROIAlign (bounds the temporary (rois, C, PH, W) block)
ROI_CHUNK = 32
#: largest pooled output side and sampling grid accepted from a graph file (real models use <= 14
#: and <= 4): a hostile attribute must not allocate gigabytes
MAX_POOLED = 1024
MAX_SAMPLES = 128


def _format(value: str, what: str) -> str:
    if value not in FORMATS:
        raise UnsupportedOpError(f"{what} format '{value}' is not supported; choose corner or center")
    return value


# -- overlaps ---------------------------------------------------------------------------------

def _extent(a0, a1, b0, b1, fmt):
    """Overlap of 1-D extents, MXNet's ``Intersect``: corner (lo, hi) or center (mid, size)."""
    if fmt == "corner":
        w = np.minimum(a1, b1) - np.maximum(a0, b0)
    else:
        half_a, half_b = a1 / 2, b1 / 2
        w = np.minimum(b0 + half_b, a0 + half_a) - np.maximum(b0 - half_b, a0 - half_a)
    return np.maximum(w, 0)


def _area(boxes, fmt):
    if fmt == "corner":
        w, h = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    else:
        w, h = boxes[..., 2], boxes[..., 3]
    return np.where((w < 0) | (h < 0), 0, w * h).astype(boxes.dtype, copy=False)


def _pairwise_intersection(a, b, fmt):
    """(..., N, 4) x (..., M, 4) -> (..., N, M) intersection areas."""
    ax, bx = a[..., :, None, :], b[..., None, :, :]
    w = _extent(ax[..., 0], ax[..., 2], bx[..., 0], bx[..., 2], fmt)
    h = _extent(ax[..., 1], ax[..., 3], bx[..., 1], bx[..., 3], fmt)
    return w * h


def box_iou(lhs, rhs, *, format="corner"):
    """``_contrib_box_iou``: IoU of every lhs box with every rhs box (shape lhs[:-1] + rhs[:-1])."""
    fmt = _format(format, "box_iou")
    if lhs.shape[-1] != 4 or rhs.shape[-1] != 4:
        raise ShapeError(f"box_iou: the last dimension of both inputs must be 4 (got {lhs.shape}, {rhs.shape})")
    a, b = lhs.reshape(-1, 4), rhs.reshape(-1, 4)
    inter = _pairwise_intersection(a, b, fmt)
    union = _area(a, fmt)[:, None] + _area(b, fmt)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(inter > 0, inter / np.where(inter > 0, union, 1), 0).astype(lhs.dtype, copy=False)
    return iou.reshape(*lhs.shape[:-1], *rhs.shape[:-1])


# -- non-maximum suppression -------------------------------------------------------------------

def _greedy_keep(boxes, areas, fmt, suppressed_by, classes=None) -> np.ndarray:
    """Greedy NMS over boxes in score order: which survive.

    One step per kept box, each a vectorised comparison with the boxes after it, so memory stays
    linear in the number of boxes (a Faster R-CNN RPN sends 6000). ``suppressed_by(iou)`` says
    which overlaps suppress; with ``classes``, only boxes of the same class suppress each other.
    """
    n = boxes.shape[0]
    keep = np.ones(n, bool)
    for i in range(n):
        if not keep[i]:
            continue
        rest = slice(i + 1, None)
        w = _extent(boxes[i, 0], boxes[i, 2], boxes[rest, 0], boxes[rest, 2], fmt)
        h = _extent(boxes[i, 1], boxes[i, 3], boxes[rest, 1], boxes[rest, 3], fmt)
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):
            hit = suppressed_by(inter, areas[i] + areas[rest] - inter)
        if classes is not None:
            hit &= classes[rest] == classes[i]
        keep[rest] &= ~hit
    return keep


def box_nms(data, *, overlap_thresh=0.5, valid_thresh=0.0, topk=-1, coord_start=2, score_index=1,
            id_index=-1, background_id=-1, force_suppress=False, in_format="corner", out_format="corner"):
    """``_contrib_box_nms``: sort boxes by score, keep the top k, suppress overlaps, pad with -1.

    Per batch (every dimension before the last two), boxes with score > ``valid_thresh`` (and,
    with ``id_index``, class != ``background_id``) are stably sorted by descending score; only
    the first ``topk`` take part. A box is suppressed when its IoU with a kept, higher-scored box
    (of the same class unless ``force_suppress`` or no ``id_index``) exceeds ``overlap_thresh``.
    Kept rows come first in score order, whole; every other row is -1. A format conversion
    leaves rows whose first coordinate is negative untouched, as MXNet does.
    """
    in_fmt, out_fmt = _format(in_format, "box_nms in"), _format(out_format, "box_nms out")
    if data.ndim < 2:
        raise ShapeError(f"box_nms: input must have at least 2 dimensions (got {data.shape})")
    width = data.shape[-1]
    if not 0 <= score_index < width or not 0 <= coord_start <= width - 4 or \
            coord_start <= score_index <= coord_start + 3:
        raise ShapeError(f"box_nms: score_index {score_index} / coord_start {coord_start} do not fit rows of "
                         f"{width} values")
    if id_index >= 0 and (id_index >= width or id_index == score_index or
                          coord_start <= id_index <= coord_start + 3):
        raise ShapeError(f"box_nms: id_index {id_index} does not fit rows of {width} values")
    num = data.shape[-2]
    batches = data.reshape(-1, num, width)
    k = num if topk < 0 else min(num, topk)
    if k < 1:
        return data.copy()
    out = np.full_like(batches, -1)
    thresh = batches.dtype.type(overlap_thresh)
    for b, rows in enumerate(batches):  # batches are few; everything inside is vectorised
        scores = rows[:, score_index]
        valid = scores > batches.dtype.type(valid_thresh)
        if id_index >= 0:
            valid &= rows[:, id_index] != batches.dtype.type(background_id)
        candidates = np.flatnonzero(valid)
        order = candidates[np.argsort(-scores[candidates], kind="stable")][:k]
        if order.size == 0:
            continue
        chosen = rows[order]
        # MXNet compares the ids as integers
        ids = chosen[:, id_index].astype(np.int64) if id_index >= 0 and not force_suppress else None
        boxes = chosen[:, coord_start:coord_start + 4]
        kept = chosen[_greedy_keep(boxes, _area(boxes, in_fmt), in_fmt,
                                   lambda inter, union: inter / union > thresh, ids)]
        out[b, :len(kept)] = kept
    if in_fmt != out_fmt:
        coords = out[..., coord_start:coord_start + 4]
        convert = coords[..., 0] >= 0
        if out_fmt == "center":
            new = np.stack([(coords[..., 0] + coords[..., 2]) / 2, (coords[..., 1] + coords[..., 3]) / 2,
                            coords[..., 2] - coords[..., 0], coords[..., 3] - coords[..., 1]], axis=-1)
        else:
            half_w, half_h = coords[..., 2] / 2, coords[..., 3] / 2
            new = np.stack([coords[..., 0] - half_w, coords[..., 1] - half_h,
                            coords[..., 0] + half_w, coords[..., 1] + half_h], axis=-1)
        coords[convert] = new[convert]
    return out.reshape(data.shape)


# -- box coding ---------------------------------------------------------------------------------

def box_decode(data, anchors, *, std0=1.0, std1=1.0, std2=1.0, std3=1.0, clip=-1.0, format="center"):
    """``_contrib_box_decode``: (B, N, 4) offsets on (1, N, 4) anchors -> corner boxes."""
    fmt = _format(format, "box_decode")
    if data.ndim != 3 or data.shape[-1] != 4 or anchors.shape[-1] != 4:
        raise ShapeError(f"box_decode: data must be (B, N, 4) and anchors (..., N, 4) "
                         f"(got {data.shape}, {anchors.shape})")
    t = data.dtype.type
    a = anchors.reshape(-1, 4)[: data.shape[1]]
    if a.shape[0] != data.shape[1]:
        raise ShapeError(f"box_decode: {data.shape[1]} boxes but {a.shape[0]} anchors")
    ax, ay, aw, ah = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
    if fmt == "corner":
        aw, ah = aw - ax, ah - ay
        ax, ay = ax + aw * t(0.5), ay + ah * t(0.5)
    ox = data[..., 0] * t(std0) * aw + ax
    oy = data[..., 1] * t(std1) * ah + ay
    dw, dh = data[..., 2] * t(std2), data[..., 3] * t(std3)
    if clip > 0:
        dw, dh = np.minimum(dw, t(clip)), np.minimum(dh, t(clip))
    ow = np.exp(dw) * aw * t(0.5)
    oh = np.exp(dh) * ah * t(0.5)
    return np.stack([ox - ow, oy - oh, ox + ow, oy + oh], axis=-1).astype(data.dtype, copy=False)


def box_encode(samples, matches, anchors, refs, means, stds):
    """``_contrib_box_encode``: training targets and masks (two outputs) for matched anchors."""
    if anchors.ndim != 3 or anchors.shape[-1] != 4 or refs.ndim != 3 or refs.shape[-1] != 4:
        raise ShapeError(f"box_encode: anchors and refs must be (B, N, 4) and (B, M, 4) "
                         f"(got {anchors.shape}, {refs.shape})")
    t = anchors.dtype.type
    b, n = anchors.shape[:2]
    match = matches.reshape(b, n).astype(np.int64)
    ref = np.take_along_axis(refs, match[..., None], axis=1)
    rw, rh = ref[..., 2] - ref[..., 0], ref[..., 3] - ref[..., 1]
    rx, ry = ref[..., 0] + rw * t(0.5), ref[..., 1] + rh * t(0.5)
    aw, ah = anchors[..., 2] - anchors[..., 0], anchors[..., 3] - anchors[..., 1]
    ax, ay = anchors[..., 0] + aw * t(0.5), anchors[..., 1] + ah * t(0.5)
    valid = samples.reshape(b, n) > t(0.5)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.stack([((rx - ax) / aw - means[0]) / stds[0], ((ry - ay) / ah - means[1]) / stds[1],
                        (np.log(rw / aw) - means[2]) / stds[2], (np.log(rh / ah) - means[3]) / stds[3]],
                       axis=-1)
    mask = np.broadcast_to(valid[..., None], raw.shape)
    targets = np.where(mask, raw, 0).astype(anchors.dtype, copy=False)
    return [targets, mask.astype(anchors.dtype)]


# -- SSD anchors and detection ------------------------------------------------------------------

def multibox_prior(data, *, sizes=(1.0,), ratios=(1.0,), clip=False, steps=(-1.0, -1.0), offsets=(0.5, 0.5)):
    """``_contrib_MultiBoxPrior``: (1, H*W*(len(sizes)+len(ratios)-1), 4) corner anchors in [0, 1]."""
    if data.ndim < 4:
        raise ShapeError(f"MultiBoxPrior: input must be 4-D (got {data.shape})")
    if not sizes or not ratios or len(steps) != 2 or len(offsets) != 2:
        raise ShapeError("MultiBoxPrior: sizes and ratios need at least one value, steps and offsets two")
    f = np.float32
    height, width = data.shape[2], data.shape[3]
    step_y, step_x = f(steps[0]), f(steps[1])
    if steps[0] <= 0 or steps[1] <= 0:
        step_y, step_x = f(1) / f(height), f(1) / f(width)
    cy = (np.arange(height, dtype=f) + f(offsets[0])) * step_y
    cx = (np.arange(width, dtype=f) + f(offsets[1])) * step_x
    half_w, half_h = [], []
    for size in sizes:  # ratio 1, every size
        half_w.append(f(size) * f(height) / f(width) / f(2))
        half_h.append(f(size) / f(2))
    for ratio in ratios[1:]:  # every other ratio, first size
        root = np.sqrt(f(ratio))
        half_w.append(f(sizes[0]) * f(height) / f(width) * root / f(2))
        half_h.append(f(sizes[0]) / root / f(2))
    hw, hh = np.array(half_w, f), np.array(half_h, f)
    cyy, cxx = cy[:, None, None], cx[None, :, None]
    boxes = np.stack(np.broadcast_arrays(cxx - hw, cyy - hh, cxx + hw, cyy + hh), axis=-1)
    if clip:
        boxes = np.clip(boxes, 0, 1)
    return boxes.reshape(1, -1, 4).astype(data.dtype if data.dtype.kind == "f" else f, copy=False)


def multibox_detection(cls_prob, loc_pred, anchor, *, clip=True, threshold=0.01, background_id=0,
                       nms_threshold=0.5, force_suppress=False, variances=(0.1, 0.1, 0.2, 0.2), nms_topk=-1):
    """``_contrib_MultiBoxDetection``: SSD's decoding, per-anchor best class, sorting and NMS.

    Output (B, N, 6) rows ``[class, score, xmin, ymin, xmax, ymax]``: detections first (sorted
    by score when NMS runs), suppressed ones with class -1, unused rows all -1. Class 0 of
    ``cls_prob`` is the background, as in MXNet's CPU kernel.
    """
    if len(variances) != 4:
        raise ShapeError("MultiBoxDetection: variances must have 4 values")
    if cls_prob.ndim != 3:
        raise ShapeError(f"MultiBoxDetection: cls_prob must be (B, classes, N) (got {cls_prob.shape})")
    batch, _, num = cls_prob.shape
    dtype = cls_prob.dtype
    t = dtype.type
    loc = loc_pred.reshape(batch, num, 4)
    anc = anchor.reshape(-1, 4)[:num]
    if anc.shape[0] != num:
        raise ShapeError(f"MultiBoxDetection: {num} anchors expected, got {anc.shape[0]}")
    # best foreground class: first maximum over classes 1..C-1 of values above -1
    fg = cls_prob[:, 1:, :]
    best = np.argmax(fg, axis=1)
    score = np.take_along_axis(fg, best[:, None, :], axis=1)[:, 0, :]
    has = score > t(-1)
    ids = np.where(has, best + 1, 0)
    score = np.where(has, score, t(-1))
    ids = np.where((ids > 0) & (score < t(threshold)), 0, ids)
    # decode every anchor
    aw, ah = anc[:, 2] - anc[:, 0], anc[:, 3] - anc[:, 1]
    ax, ay = (anc[:, 0] + anc[:, 2]) / t(2), (anc[:, 1] + anc[:, 3]) / t(2)
    vx, vy, vw, vh = (t(v) for v in variances)
    ox = loc[..., 0] * vx * aw + ax
    oy = loc[..., 1] * vy * ah + ay
    ow = np.exp(loc[..., 2] * vw) * aw / t(2)
    oh = np.exp(loc[..., 3] * vh) * ah / t(2)
    corners = np.stack([ox - ow, oy - oh, ox + ow, oy + oh], axis=-1)
    if clip:
        corners = np.clip(corners, 0, 1)
    rows = np.concatenate([(ids - 1).astype(dtype)[..., None], score[..., None], corners], axis=-1)
    out = np.full((batch, num, 6), -1, dtype)
    nms, nms_t = 0 < nms_threshold <= 1, t(nms_threshold)
    for b in range(batch):
        valid = rows[b][ids[b] > 0]
        if len(valid) and nms:
            valid = valid[np.argsort(-valid[:, 1], kind="stable")]
            keep = len(valid) if nms_topk <= 0 else min(nms_topk, len(valid))
            head = valid[:keep].copy()
            # MXNet's CalculateOverlap: a union <= 0 counts as no overlap
            boxes = head[:, 2:]
            areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])  # not clamped, as MXNet's
            survive = _greedy_keep(boxes, areas, "corner",
                                   lambda inter, union: np.where(union <= 0, t(0), inter / union) >= nms_t,
                                   None if force_suppress else head[:, 0])
            head[~survive, 0] = -1
            # rows past the top k keep their unsorted contents, marked as suppressed (MXNet's quirk)
            rest = rows[b][ids[b] > 0][keep:].copy()
            rest[:, 0] = -1
            valid = np.concatenate([head, rest])
        out[b, :len(valid)] = valid
    return out


# -- ROIAlign -----------------------------------------------------------------------------------

def _interp_weights(start, bin_size, grid, pooled, size, t):
    """(R, pooled, size) weights of the bilinear samples of each bin along one axis (Detectron's)."""
    r = start.shape[0]
    pos = np.arange(pooled, dtype=t)[None, :, None]
    sample = (np.arange(grid, dtype=t) + t(0.5))[None, None, :]
    coord = start[:, None, None] + pos * bin_size[:, None, None] + sample * bin_size[:, None, None] / t(grid)
    inside = (coord >= t(-1)) & (coord <= t(size))
    coord = np.maximum(coord, 0)
    low = coord.astype(np.int64)
    top = low >= size - 1
    low = np.where(top, size - 1, low)
    high = np.where(top, size - 1, low + 1)
    coord = np.where(top, low.astype(t), coord)
    frac = coord - low.astype(t)
    w_low, w_high = (t(1) - frac) * inside, frac * inside
    cells = np.arange(size)
    weights = (w_low[..., None] * (low[..., None] == cells) + w_high[..., None] * (high[..., None] == cells))
    return weights.sum(axis=2).astype(t).reshape(r, pooled, size)


def roi_align(data, rois, *, pooled_size, spatial_scale, sample_ratio=-1, position_sensitive=False, aligned=False):
    """``_contrib_ROIAlign``: average of bilinear samples per bin, (R, C, PH, PW).

    ``rois`` rows are ``[batch, x1, y1, x2, y2]`` in image coordinates.
    A ROI with a negative batch index gives zeros.
    """
    if data.ndim != 4 or rois.ndim != 2 or rois.shape[1] != 5:
        raise ShapeError(f"ROIAlign: data must be NCHW and rois (R, 5) (got {data.shape}, {rois.shape})")
    if len(pooled_size) == 1:
        pooled_size = pooled_size * 2
    ph, pw = pooled_size
    t = data.dtype.type
    n, c, height, width = data.shape
    out_c = c // (ph * pw) if position_sensitive else c
    if position_sensitive and c != out_c * ph * pw:
        raise ShapeError(f"ROIAlign: position_sensitive needs channels divisible by {ph * pw} (got {c})")
    out = np.zeros((rois.shape[0], out_c, ph, pw), data.dtype)
    if rois.shape[0] == 0:
        return out
    batch = rois[:, 0].astype(np.int64)  # C's truncation towards zero
    coords = rois[:, 1:]
    offset = t(0.5) if aligned else t(0)
    boxes = coords.astype(data.dtype) * t(spatial_scale) - offset
    roi_w, roi_h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    if aligned:
        if np.any(roi_w <= 0) or np.any(roi_h <= 0):
            raise ShapeError("ROIAlign: with aligned=True every ROI needs a positive width and height")
    else:
        roi_w, roi_h = np.maximum(roi_w, t(1)), np.maximum(roi_h, t(1))
    bin_h, bin_w = roi_h / t(ph), roi_w / t(pw)
    if sample_ratio > 0:
        grid_h = np.full(len(rois), sample_ratio, np.int64)
        grid_w = grid_h
    else:
        adaptive = np.ceil(np.stack([roi_h / t(ph), roi_w / t(pw)]))
        if not np.all(adaptive <= MAX_SAMPLES):  # also catches inf and nan
            raise ShapeError(f"ROIAlign: a ROI would be sampled on a grid of more than {MAX_SAMPLES} points per "
                             "bin side; set sample_ratio")
        grid_h, grid_w = adaptive.astype(np.int64)
    if batch.size and batch.max() >= n:
        raise ShapeError(f"ROIAlign: a ROI refers to image {int(batch.max())} of a batch of {n}")
    live = np.flatnonzero(batch >= 0)
    # ROIs sampled on the same grid are interpolated together
    grids, group = np.unique(np.stack([grid_h[live], grid_w[live]], axis=1), axis=0, return_inverse=True)
    planes = data.reshape(n, out_c, ph, pw, height, width) if position_sensitive else data
    for which, (gh, gw) in enumerate(grids.tolist()):
        idx = live[group.reshape(-1) == which]
        wy = _interp_weights(boxes[idx, 1], bin_h[idx], gh, ph, height, t)  # (R, PH, H)
        wx = _interp_weights(boxes[idx, 0], bin_w[idx], gw, pw, width, t)  # (R, PW, W)
        count = t(max(gh * gw, 1))
        for start in range(0, len(idx), ROI_CHUNK):
            part = slice(start, start + ROI_CHUNK)
            images = planes[batch[idx[part]]]
            if position_sensitive:
                pooled = np.einsum("rph,rcpqhw,rqw->rcpq", wy[part], images, wx[part], optimize=True)
            else:
                rows = np.matmul(wy[part][:, None], images)  # (r, C, PH, W)
                pooled = np.matmul(rows, np.swapaxes(wx[part], 1, 2)[:, None])  # (r, C, PH, PW)
            out[idx[part]] = pooled / count
    return out


# -- ROIPooling ---------------------------------------------------------------------------------

def _round_half_away(x):
    """C's ``round``: halves go away from zero (numpy's rounds them to even)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def roi_pooling(data, rois, *, pooled_size, spatial_scale):
    """``ROIPooling`` (Fast R-CNN): the maximum of each of PH x PW bins of a rounded ROI.

    Bins that fall outside the feature map are 0. Each ROI is one vectorised step over channels
    and bins: a maximum over each bin's columns, then over its rows.
    """
    if data.ndim != 4 or rois.ndim != 2 or rois.shape[1] != 5:
        raise ShapeError(f"ROIPooling: data must be NCHW and rois (R, 5) (got {data.shape}, {rois.shape})")
    if len(pooled_size) == 1:
        pooled_size = pooled_size * 2
    ph, pw = pooled_size
    t = data.dtype.type
    n, c, height, width = data.shape
    batch = rois[:, 0].astype(np.int64)
    if batch.size and (batch.min() < 0 or batch.max() >= n):
        raise ShapeError(f"ROIPooling: ROI batch indices must lie in [0, {n}) "
                         f"(got {int(batch.min())}..{int(batch.max())})")
    corners = _round_half_away(rois[:, 1:].astype(data.dtype) * t(spatial_scale)).astype(np.int64)
    x0, y0, x1, y1 = corners.T
    roi_h, roi_w = np.maximum(y1 - y0 + 1, 1), np.maximum(x1 - x0 + 1, 1)
    out = np.zeros((rois.shape[0], c, ph, pw), data.dtype)
    lowest = np.finfo(data.dtype).min if data.dtype.kind == "f" else np.iinfo(data.dtype).min
    for index in range(rois.shape[0]):  # ROIs, each vectorised over channels and bins
        bins = []
        for pooled, size, start, extent in ((ph, height, y0[index], roi_h[index]),
                                            (pw, width, x0[index], roi_w[index])):
            bin_size = t(extent) / t(pooled)
            steps = np.arange(pooled, dtype=t)
            lo = np.clip(np.floor(steps * bin_size).astype(np.int64) + start, 0, size)
            hi = np.clip(np.ceil((steps + t(1)) * bin_size).astype(np.int64) + start, 0, size)
            cells = np.arange(size)
            bins.append(((cells >= lo[:, None]) & (cells < hi[:, None]), hi <= lo))
        (rows, empty_rows), (cols, empty_cols) = bins
        image = data[batch[index]]
        across = np.where(cols[None, None], image[:, :, None, :], lowest).max(axis=-1)  # (C, H, PW)
        pooled = np.where(rows[None, :, :, None], across[:, None, :, :], lowest).max(axis=2)  # (C, PH, PW)
        empty = empty_rows[:, None] | empty_cols[None, :]
        out[index] = np.where(empty, 0, pooled)
    return out


# -- region proposals (symbol-API Faster R-CNN) ---------------------------------------------------

def _rpn_anchors(feature_stride: int, scales, ratios) -> np.ndarray:
    """The (ratios x scales, 4) base anchors of py-faster-rcnn, with MXNet's float rounding."""
    f = np.float32
    base = np.array([0, 0, feature_stride - 1, feature_stride - 1], f)
    w, h = base[2] - base[0] + f(1), base[3] - base[1] + f(1)
    x_ctr, y_ctr = f(base[0] + 0.5 * (w - f(1))), f(base[1] + 0.5 * (h - f(1)))
    out = []
    for ratio in ratios:
        for scale in scales:
            size_ratios = np.floor(w * h / f(ratio))
            new_w = np.floor(np.sqrt(size_ratios) + f(0.5)) * f(scale)
            new_h = np.floor(new_w / f(scale) * f(ratio) + f(0.5)) * f(scale)
            out.append([x_ctr - f(0.5) * (new_w - f(1)), y_ctr - f(0.5) * (new_h - f(1)),
                        x_ctr + f(0.5) * (new_w - f(1)), y_ctr + f(0.5) * (new_h - f(1))])
    return np.array(out, f)


def _proposals_of_image(scores, deltas, info, *, pre, post, threshold, min_size, stride, anchors, iou_loss):
    """Rows (post, 4) and scores (post,) of one image, as MXNet's CPU Proposal computes them."""
    f = np.float32
    num, height, width = scores.shape
    shift_x = np.arange(width, dtype=f) * f(stride)
    shift_y = np.arange(height, dtype=f) * f(stride)
    # index = h * (W * A) + w * A + a, as MXNet enumerates them
    boxes = (anchors[None, None, :, :] + np.stack([shift_x[None, :, None].repeat(height, 0),
                                                   shift_y[:, None, None].repeat(width, 1)] * 2,
                                                  axis=-1)).reshape(-1, 4)
    score = scores.transpose(1, 2, 0).reshape(-1).astype(f)
    d = deltas.reshape(num, 4, height, width).transpose(2, 3, 0, 1).reshape(-1, 4).astype(np.float64)
    im_h, im_w = f(info[0]), f(info[1])
    b = boxes.astype(np.float64)
    if iou_loss:
        pred = b + d
    else:  # float operands, double constants: C++ promotes to double, then stores floats
        bw = (b[:, 2] - b[:, 0] + 1.0).astype(f).astype(np.float64)
        bh = (b[:, 3] - b[:, 1] + 1.0).astype(f).astype(np.float64)
        cx = (b[:, 0] + 0.5 * (bw - 1.0)).astype(f).astype(np.float64)
        cy = (b[:, 1] + 0.5 * (bh - 1.0)).astype(f).astype(np.float64)
        pcx = (d[:, 0] * bw + cx).astype(f).astype(np.float64)
        pcy = (d[:, 1] * bh + cy).astype(f).astype(np.float64)
        pw = (np.exp(d[:, 2]) * bw).astype(f).astype(np.float64)
        ph = (np.exp(d[:, 3]) * bh).astype(f).astype(np.float64)
        pred = np.stack([pcx - 0.5 * (pw - 1.0), pcy - 0.5 * (ph - 1.0), pcx + 0.5 * (pw - 1.0),
                         pcy + 0.5 * (ph - 1.0)], axis=1)
    pred = pred.astype(f)
    limit = np.array([im_w, im_h, im_w, im_h], f) - f(1)
    pred = np.maximum(np.minimum(pred, limit), f(0))
    real_h, real_w = int(float(info[0]) / stride), int(float(info[1]) / stride)
    rows = np.arange(height).repeat(width * num)
    cols = np.tile(np.arange(width).repeat(num), height)
    score = np.where((rows >= real_h) | (cols >= real_w), f(-1), score)
    small = f(min_size) * f(info[2])
    tiny = ((pred[:, 2] - pred[:, 0] + f(1)) < small) | ((pred[:, 3] - pred[:, 1] + f(1)) < small)
    pred = pred + np.where(tiny[:, None], np.array([-1, -1, 1, 1], f) * (small / f(2)), f(0))
    score = np.where(tiny, f(-1), score)
    order = np.argsort(-score, kind="stable")[:pre]
    dets, det_scores = pred[order], score[order]
    area = (dets[:, 2] - dets[:, 0] + f(1)) * (dets[:, 3] - dets[:, 1] + f(1))
    alive = np.ones(len(dets), bool)
    keep: list[int] = []
    for i in range(len(dets)):  # greedy, one kept box at a time (at most ``post`` of them)
        if len(keep) >= post:
            break
        if not alive[i]:
            continue
        keep.append(i)
        rest = slice(i + 1, None)
        w = np.maximum(f(0), np.minimum(dets[i, 2], dets[rest, 2]) - np.maximum(dets[i, 0], dets[rest, 0]) + f(1))
        h = np.maximum(f(0), np.minimum(dets[i, 3], dets[rest, 3]) - np.maximum(dets[i, 1], dets[rest, 1]) + f(1))
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):
            alive[rest] &= ~(inter / (area[i] + area[rest] - inter) > f(threshold))
    chosen = np.asarray(keep)[np.arange(post) % len(keep)]  # short lists repeat, as MXNet pads them
    return dets[chosen], det_scores[chosen]


def proposal(cls_prob, bbox_pred, im_info, *, rpn_pre_nms_top_n=6000, rpn_post_nms_top_n=300, threshold=0.7,
             rpn_min_size=16, scales=(4.0, 8.0, 16.0, 32.0), ratios=(0.5, 1.0, 2.0), feature_stride=16,
             output_score=False, iou_loss=False):
    """``_contrib_Proposal`` / ``_contrib_MultiProposal``: RPN outputs -> (B * post, 5) ROIs.

    Anchors of every ratio and scale at every ``feature_stride`` step are moved by the predicted
    deltas, clipped to the image, and small ones dropped (score -1); the ``rpn_pre_nms_top_n`` best
    go through NMS at ``threshold`` until ``rpn_post_nms_top_n`` are kept, a shorter list repeating
    itself. Rows are ``[batch, x1, y1, x2, y2]``; with ``output_score`` the scores follow.
    """
    batch, channels, height, width = cls_prob.shape
    anchors = _rpn_anchors(feature_stride, scales, ratios)
    num = channels // 2
    if num != len(anchors) or bbox_pred.shape != (batch, 4 * num, height, width) or im_info.shape[0] != batch:
        raise ShapeError(f"Proposal: {len(anchors)} anchors per position (ratios x scales) need cls_prob "
                         f"(B, {2 * len(anchors)}, H, W), bbox_pred (B, {4 * len(anchors)}, H, W) and im_info "
                         f"(B, 3); got {cls_prob.shape}, {bbox_pred.shape}, {im_info.shape}")
    count = num * height * width
    pre = min(rpn_pre_nms_top_n if rpn_pre_nms_top_n > 0 else count, count)
    post = min(rpn_post_nms_top_n, pre)
    rois, scores = [], []
    for b in range(batch):
        boxes, score = _proposals_of_image(cls_prob[b, num:], bbox_pred[b], im_info[b], pre=pre, post=post,
                                           threshold=threshold, min_size=rpn_min_size, stride=feature_stride,
                                           anchors=anchors, iou_loss=iou_loss)
        rois.append(np.concatenate([np.full((post, 1), b, np.float32), boxes], axis=1))
        scores.append(score[:, None])
    out = [np.concatenate(rois).astype(cls_prob.dtype), np.concatenate(scores).astype(cls_prob.dtype)]
    return out if output_score else out[0]


# -- registration ---------------------------------------------------------------------------------

def _box_format_attr(default: str) -> tuple[str, Any, Any]:
    return ("str", default, one_of(*FORMATS))


register(OpSpec("_contrib_box_nms", box_nms,
                {"overlap_thresh": ("float", 0.5), "valid_thresh": ("float", 0.0), "topk": ("int", -1),
                 "coord_start": ("int", 2), "score_index": ("int", 1), "id_index": ("int", -1),
                 "background_id": ("int", -1), "force_suppress": ("bool", False),
                 "in_format": _box_format_attr("corner"), "out_format": _box_format_attr("corner")}),
         "_contrib_box_non_maximum_suppression", "_npx_box_nms")
register(OpSpec("_contrib_box_iou", box_iou, {"format": _box_format_attr("corner")},
                inputs=lambda attrs: ["lhs", "rhs"]), "_npx_box_iou")
register(OpSpec("_contrib_box_decode", box_decode,
                {"std0": ("float", 1.0), "std1": ("float", 1.0), "std2": ("float", 1.0), "std3": ("float", 1.0),
                 "clip": ("float", -1.0), "format": _box_format_attr("center")},
                inputs=lambda attrs: ["data", "anchors"]), "_npx_box_decode")
register(OpSpec("_contrib_box_encode", box_encode, {},
                inputs=lambda attrs: ["samples", "matches", "anchors", "refs", "means", "stds"],
                num_outputs=lambda attrs: 2),
         "_npx_box_encode")
register(OpSpec("_contrib_MultiBoxPrior", multibox_prior,
                {"sizes": ("ftuple", (1.0,)), "ratios": ("ftuple", (1.0,)), "clip": ("bool", False),
                 "steps": ("ftuple", (-1.0, -1.0)), "offsets": ("ftuple", (0.5, 0.5))}),
         "_npx_multibox_prior")
register(OpSpec("_contrib_MultiBoxDetection", multibox_detection,
                {"clip": ("bool", True), "threshold": ("float", 0.01), "background_id": ("int", 0),
                 "nms_threshold": ("float", 0.5), "force_suppress": ("bool", False),
                 "variances": ("ftuple", (0.1, 0.1, 0.2, 0.2)), "nms_topk": ("int", -1)},
                inputs=lambda attrs: ["cls_prob", "loc_pred", "anchor"]), "_npx_multibox_detection")
register(OpSpec("_contrib_ROIAlign", roi_align,
                {"pooled_size": ("tuple", REQUIRED, between(1, MAX_POOLED)), "spatial_scale": ("float", REQUIRED),
                 "sample_ratio": ("int", -1, between(-1, MAX_SAMPLES)), "position_sensitive": ("bool", False),
                 "aligned": ("bool", False)},
                inputs=lambda attrs: ["data", "rois"]), "_npx_roi_align")

_PROPOSAL_ATTRS = {"rpn_pre_nms_top_n": ("int", 6000), "rpn_post_nms_top_n": ("int", 300, at_least(1)),
                   "threshold": ("float", 0.7), "rpn_min_size": ("int", 16),
                   "scales": ("ftuple", (4.0, 8.0, 16.0, 32.0)), "ratios": ("ftuple", (0.5, 1.0, 2.0)),
                   "feature_stride": ("int", 16, at_least(1)), "output_score": ("bool", False),
                   "iou_loss": ("bool", False)}


def _single_image_proposal(cls_prob, bbox_pred, im_info, **attrs):
    if cls_prob.shape[0] != 1:
        raise ShapeError(f"Proposal takes one image (MultiProposal takes a batch); cls_prob has {cls_prob.shape[0]}")
    return proposal(cls_prob, bbox_pred, im_info, **attrs)


register(OpSpec("_contrib_Proposal", _single_image_proposal, dict(_PROPOSAL_ATTRS),
                inputs=lambda attrs: ["cls_prob", "bbox_pred", "im_info"],
                num_outputs=lambda attrs: 2 if attrs.get("output_score") else 1), "_npx_proposal")
register(OpSpec("_contrib_MultiProposal", proposal, dict(_PROPOSAL_ATTRS),
                inputs=lambda attrs: ["cls_prob", "bbox_pred", "im_info"],
                num_outputs=lambda attrs: 2 if attrs.get("output_score") else 1), "_npx_multi_proposal")
register(OpSpec("ROIPooling", roi_pooling, {"pooled_size": ("tuple", REQUIRED, between(1, MAX_POOLED)),
                                             "spatial_scale": ("float", REQUIRED)},
                inputs=lambda attrs: ["data", "rois"]), "_npx_roi_pooling")
