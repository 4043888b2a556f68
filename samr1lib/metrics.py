"""Segmentation and grounding metrics: mask IoU, gIoU / cIoU, box IoU and accuracy, S-measure, salient-object metrics.

Conventions (LISA's evaluation code, which SAM-R1's ReasonSeg numbers follow):
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
    """IoU of two masks; both empty -> 1.0 (LISA's convention)."""
    inter, union = intersection_union(pred, gt, ignore)
    return 1.0 if union == 0 else inter / union


def giou_ciou(
    pred_masks: Sequence[Any], gt_masks: Sequence[Any], ignore_masks: Sequence[Any] | None = None,
    empty_score: float = 1.0,
) -> tuple[float, float]:
    """(gIoU, cIoU) over a split. ``None`` in ``pred_masks`` is an empty prediction (failed parse).

    gIoU = mean_i I_i / U_i (``empty_score``, LISA's 1, for an empty/empty sample); cIoU = sum_i I_i / sum_i U_i
    (``empty_score`` when every sample is empty/empty). An empty split is an error, not a score of 0.
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
    return giou_ciou_from_counts([c[0] for c in counts], [c[1] for c in counts], empty_score)


def giou_ciou_from_counts(intersections: Sequence[int], unions: Sequence[int],
                          empty_score: float = 1.0) -> tuple[float, float]:
    """(gIoU, cIoU) from per-sample pixel counts (what the evaluation's JSONL keeps)."""
    if len(intersections) != len(unions):
        raise ValueError(f"{len(intersections)} intersections for {len(unions)} unions")
    if len(unions) == 0:
        raise ValueError("giou_ciou got no samples: an empty split has no score")
    ious = [float(empty_score) if u == 0 else i / u for i, u in zip(intersections, unions)]
    inter_sum, union_sum = sum(intersections), sum(unions)
    return float(np.mean(ious)), (float(empty_score) if union_sum == 0 else inter_sum / union_sum)


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
    SAM-R1 Table 5). A missing prediction (``None``) is a miss."""
    if len(pred_boxes) != len(gt_boxes):
        raise ValueError(f"{len(pred_boxes)} predicted boxes for {len(gt_boxes)} GT boxes")
    if len(gt_boxes) == 0:
        raise ValueError("box_accuracy got no samples")
    hits = [box_iou(p, g) >= threshold for p, g in zip(pred_boxes, gt_boxes)]
    return float(np.mean(hits))


# ----------------------------------------------------------------------------------------------------
# S-measure (Fan, Cheng, Liu, Li, Borji, "Structure-measure: A new way to evaluate foreground maps", ICCV 2017)

# Same constant as PySODMetrics (``np.spacing(1)``), so that values agree to rounding.
_EPS = np.spacing(1)

def _pred_map(pred: Any) -> np.ndarray:
    """A prediction as float64 in [0, 1]: bool -> {0, 1}; numbers are taken as they are (no
    min-max rescaling, unlike PySODMetrics' ``prepare_data`` for uint8 images)."""
    if isinstance(pred, dict):
        return as_mask(pred, "predicted mask").astype(np.float64)
    arr = np.asarray(pred)
    if arr.ndim != 2:
        raise ValueError(f"predicted mask must be HxW, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.float64)
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"predicted mask must hold numbers or booleans, got dtype {arr.dtype}")
    out = arr.astype(np.float64)
    if out.size and (out.min() < 0 or out.max() > 1):
        raise ValueError("a float prediction must lie in [0, 1]")
    return out


def _s_object(x: np.ndarray) -> float:
    mean = float(np.mean(x))
    std = float(np.std(x, ddof=1)) if x.size > 1 else 0.0
    return 2 * mean / (mean**2 + 1 + std + _EPS)


def _object_score(pred: np.ndarray, gt: np.ndarray) -> float:
    gt_mean = float(np.mean(gt))
    fg = _s_object(pred[gt]) * gt_mean
    bg = _s_object((1 - pred)[~gt]) * (1 - gt_mean)
    return fg + bg


def _ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    h, w = pred.shape
    n = h * w
    gt = gt.astype(np.float64)
    x, y = np.mean(pred), np.mean(gt)
    sigma_x = np.sum((pred - x) ** 2) / (n - 1 + _EPS)
    sigma_y = np.sum((gt - y) ** 2) / (n - 1 + _EPS)
    sigma_xy = np.sum((pred - x) * (gt - y)) / (n - 1 + _EPS)
    a = 4 * x * y * sigma_xy
    b = (x**2 + y**2) * (sigma_x + sigma_y)
    if a != 0:
        return float(a / (b + _EPS))
    if b == 0:
        return 1.0
    return 0.0


def _region_score(pred: np.ndarray, gt: np.ndarray) -> float:
    h, w = gt.shape
    area = h * w
    if np.count_nonzero(gt) == 0:
        cy, cx = np.round(h / 2), np.round(w / 2)
    else:
        cy, cx = np.argwhere(gt).mean(axis=0).round()
    # +1 as in the MATLAB original (its 1:X ranges include X).
    cy, cx = int(cy) + 1, int(cx) + 1
    w_lt = cx * cy / area
    w_rt = cy * (w - cx) / area
    w_lb = (h - cy) * cx / area
    w_rb = 1 - w_lt - w_rt - w_lb
    return (
        _ssim(pred[0:cy, 0:cx], gt[0:cy, 0:cx]) * w_lt
        + _ssim(pred[0:cy, cx:w], gt[0:cy, cx:w]) * w_rt
        + _ssim(pred[cy:h, 0:cx], gt[cy:h, 0:cx]) * w_lb
        + _ssim(pred[cy:h, cx:w], gt[cy:h, cx:w]) * w_rb
    )


def s_measure(pred: Any, gt: Any, alpha: float = 0.5) -> float:
    """Structure measure S_alpha (Fan et al., ICCV 2017), as PySODMetrics' ``Smeasure.cal_sm``.

    ``pred``: HxW bool, or float in [0, 1] (a soft map is used as it is, not min-max rescaled).
    ``gt``: HxW mask (bool, 0/1, float thresholded at 0.5, or a COCO RLE), binarised ONCE by
    :func:`samr1lib.masks.as_mask`. Seg-R1's released code binarises the GT twice, which makes an
    empty prediction score S = 1 (Seg-R1, docs/papers.md); here an empty prediction on a non-empty GT gets
    a low score (the background half of the object term only).

    GT all background -> 1 - mean(pred); GT all foreground -> mean(pred); otherwise
    ``max(0, alpha * S_object + (1 - alpha) * S_region)``.
    """
    g = as_mask(gt, "gt mask")
    p = _pred_map(pred)
    if p.shape != g.shape:
        raise ValueError(f"predicted mask has shape {p.shape} but the GT mask has {g.shape}")
    y = float(np.mean(g))
    if y == 0:
        return float(1 - np.mean(p))
    if y == 1:
        return float(np.mean(p))
    score = alpha * _object_score(p, g) + (1 - alpha) * _region_score(p, g)
    return float(max(0.0, score))


def sod_metrics(preds: Sequence[Any], gts: Sequence[Any]) -> dict[str, float]:
    """Salient-object metrics over a dataset (Seg-R1's evaluation) via PySODMetrics:
    S_alpha, F_beta (beta^2 = 0.3) adaptive / mean / max, E_phi mean, MAE. ``preds`` are masks (bool) or maps
    in [0, 1]; ``gts`` masks. Each pair must have the same shape."""
    import py_sod_metrics as sod

    if len(preds) != len(gts) or not preds:
        raise ValueError(f"need as many predictions as GT masks (>0), got {len(preds)} and {len(gts)}")
    sm, fm, em, mae = sod.Smeasure(), sod.Fmeasure(), sod.Emeasure(), sod.MAE()
    for i, (p, g) in enumerate(zip(preds, gts)):
        pm = _pred_map(p)
        gm = as_mask(g, f"GT mask {i}")
        if pm.shape != gm.shape:
            raise ValueError(f"pair {i}: prediction {pm.shape} and GT {gm.shape} differ in shape")
        pu8 = np.round(pm * 255).astype(np.uint8)
        gu8 = gm.astype(np.uint8) * 255
        for m in (sm, fm, em, mae):
            m.step(pred=pu8, gt=gu8)
    f, e = fm.get_results()["fm"], em.get_results()["em"]
    return {"S_alpha": float(sm.get_results()["sm"]), "F_beta_adaptive": float(f["adp"]),
            "F_beta_mean": float(np.mean(f["curve"])), "F_beta_max": float(np.max(f["curve"])),
            "E_phi_mean": float(np.mean(e["curve"])), "MAE": float(mae.get_results()["mae"])}
