"""Segmentation and grounding metrics: mask IoU, gIoU / cIoU, box IoU and box accuracy.

Conventions (PAPER.md §9, from the peers' evaluation code):
- gIoU is the mean of per-sample IoU; a sample whose GT and prediction are both empty scores 1.
- cIoU is the sum of intersections over the sum of unions across the split.
- A failed parse is a sample with an empty prediction (pass ``None``), never a dropped sample.
- Pixels of an optional ignore mask (ReasonSeg's ``ignore`` regions) count in neither I nor U.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .masks import as_mask


def intersection_union(pred: Any, gt: Any, ignore: Any = None) -> tuple[int, int]:
    """Pixel counts (|P & G|, |P | G|) outside ``ignore``. ``pred=None`` is an empty prediction."""
    g = as_mask(gt, "gt mask")
    p = np.zeros_like(g) if pred is None else as_mask(pred, "predicted mask")
    if p.shape != g.shape:
        raise ValueError(f"predicted mask has shape {p.shape} but the GT mask has {g.shape}")
    if ignore is not None:
        keep = ~as_mask(ignore, "ignore mask")
        if keep.shape != g.shape:
            raise ValueError(f"ignore mask has shape {keep.shape} but the GT mask has {g.shape}")
        p, g = p & keep, g & keep
    return int(np.count_nonzero(p & g)), int(np.count_nonzero(p | g))


def mask_iou(pred: Any, gt: Any, ignore: Any = None) -> float:
    """IoU of two masks; both empty -> 1.0 (PAPER.md §9)."""
    inter, union = intersection_union(pred, gt, ignore)
    return 1.0 if union == 0 else inter / union


def giou_ciou(
    pred_masks: Sequence[Any], gt_masks: Sequence[Any], ignore_masks: Sequence[Any] | None = None
) -> tuple[float, float]:
    """(gIoU, cIoU) over a split. ``None`` in ``pred_masks`` is an empty prediction (failed parse).

    gIoU = mean_i I_i / U_i (1 for an empty/empty sample); cIoU = sum_i I_i / sum_i U_i
    (1 when every sample is empty/empty). An empty split is an error, not a score of 0.
    """
    if len(pred_masks) != len(gt_masks):
        raise ValueError(f"{len(pred_masks)} predictions for {len(gt_masks)} GT masks")
    if len(gt_masks) == 0:
        raise ValueError("giou_ciou got no samples: an empty split has no score")
    if ignore_masks is not None and len(ignore_masks) != len(gt_masks):
        raise ValueError(f"{len(ignore_masks)} ignore masks for {len(gt_masks)} GT masks")
    counts = [
        intersection_union(pred, gt, None if ignore_masks is None else ignore_masks[i])
        for i, (pred, gt) in enumerate(zip(pred_masks, gt_masks))
    ]
    return giou_ciou_from_counts([c[0] for c in counts], [c[1] for c in counts])


def giou_ciou_from_counts(intersections: Sequence[int], unions: Sequence[int]) -> tuple[float, float]:
    """(gIoU, cIoU) from per-sample pixel counts (what the evaluation's JSONL keeps)."""
    if len(intersections) != len(unions):
        raise ValueError(f"{len(intersections)} intersections for {len(unions)} unions")
    if len(unions) == 0:
        raise ValueError("giou_ciou got no samples: an empty split has no score")
    ious = [1.0 if u == 0 else i / u for i, u in zip(intersections, unions)]
    inter_sum, union_sum = sum(intersections), sum(unions)
    return float(np.mean(ious)), (1.0 if union_sum == 0 else inter_sum / union_sum)


def box_iou(a: Sequence[float] | None, b: Sequence[float] | None) -> float:
    """IoU of two boxes [x1, y1, x2, y2] (continuous coordinates); ``None`` scores 0."""
    if a is None or b is None:
        return 0.0
    ax1, ay1, ax2, ay2 = (float(v) for v in a)
    bx1, by1, bx2, by2 = (float(v) for v in b)
    iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    ih = max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    union = max(0.0, ax2 - ax1) * max(0.0, ay2 - ay1) + max(0.0, bx2 - bx1) * max(0.0, by2 - by1) - inter
    return 0.0 if union <= 0 else inter / union


def point_in_box(point: Sequence[float] | None, box: Sequence[float] | None) -> bool:
    """Whether (x, y) lies in [x1, x2] x [y1, y2] (edges included); ``None`` is outside."""
    if point is None or box is None:
        return False
    x, y = float(point[0]), float(point[1])
    x1, y1, x2, y2 = (float(v) for v in box)
    return x1 <= x <= x2 and y1 <= y <= y2


def box_accuracy(pred_boxes: Sequence[Any], gt_boxes: Sequence[Any], threshold: float = 0.5) -> float:
    """Share of samples whose predicted box has IoU >= ``threshold`` with the GT box (Acc@0.5, the
    usual REC accuracy, as in MDETR and VLM-R1's REC evaluation; the LISA-Grounding metric of
    PAPER.md §5). A missing prediction (``None``) is a miss."""
    if len(pred_boxes) != len(gt_boxes):
        raise ValueError(f"{len(pred_boxes)} predicted boxes for {len(gt_boxes)} GT boxes")
    if len(gt_boxes) == 0:
        raise ValueError("box_accuracy got no samples")
    hits = [box_iou(p, g) >= threshold for p, g in zip(pred_boxes, gt_boxes)]
    return float(np.mean(hits))


def s_measure(pred: Any, gt: Any, alpha: float = 0.5) -> float:
    """Structure measure S_alpha (Fan et al. 2017) of an HxW prediction against a GT mask; the
    implementation lives with the Seg-R1 pieces in :mod:`samr1lib.related` (PAPER.md §7)."""
    from .related import s_measure as _s_measure

    return _s_measure(pred, gt, alpha)
