"""Pure reward and inference helpers of the related systems Seg-R1 (PAPER.md §7) and StAR (§8).

Seg-R1 (PAPER.md §7):
- :func:`s_measure`: the structure measure S_alpha (Fan, Cheng, Liu, Li, Borji, "Structure-measure:
  A new way to evaluate foreground maps", ICCV 2017), with the object-aware and region-aware
  terms exactly as PySODMetrics' ``Smeasure`` defines them (re-implemented here in numpy).
- :func:`segr1_reward_value`: 0.7 * IoU + 0.3 * S-measure, the combination in Seg-R1's released
  code. Unlike that code we binarise the GT once only, so an empty prediction on a non-empty GT
  scores low, not S = 1 (PAPER.md §7).

StAR (PAPER.md §8):
- :func:`star_mask_tier`, :func:`star_match_reward`: accuracy reward by Hungarian matching of the
  predicted and GT objects (mask-IoU tiers + box IoU + box L1 + point-in-box terms), matched sum
  divided by max(#pred, #GT).
- :func:`non_repeat_reward`: 0 when a sentence repeats, else 1.
- :func:`rest_select`: REST's choice of the k highest- and k lowest-reward rollouts.
- :func:`majority_vote`: mask-level majority voting at test time.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from .masks import as_mask
from .metrics import box_iou, mask_iou, point_in_box
from .rewards import completion_text, tiered_iou_reward

# Same constant as PySODMetrics (``np.spacing(1)``), so that values agree to rounding.
_EPS = np.spacing(1)

STAR_TIERS: tuple[tuple[float, float], ...] = ((0.9, 5), (0.8, 4), (0.7, 3), (0.5, 2), (0.3, 1))


# --------------------------------------------------------------------------------------------
# Seg-R1: S-measure and the combined reward value
# --------------------------------------------------------------------------------------------


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
    empty prediction score S = 1 (PAPER.md §7); here an empty prediction on a non-empty GT gets
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


def segr1_reward_value(pred: Any, gt: Any, w_iou: float = 0.7, w_s: float = 0.3) -> float:
    """Seg-R1's mask reward, ``w_iou * IoU + w_s * S-measure`` (0.7 / 0.3 in its released code,
    PAPER.md §7). ``pred=None`` is an empty prediction. IoU binarises a soft ``pred`` at 0.5
    (:func:`samr1lib.masks.as_mask`); S-measure uses it as it is. Both empty -> IoU 1 and S 1."""
    g = as_mask(gt, "gt mask")
    p = np.zeros(g.shape, dtype=bool) if pred is None else pred
    return float(w_iou * mask_iou(p, g) + w_s * s_measure(p, g))


# --------------------------------------------------------------------------------------------
# StAR: accuracy reward by Hungarian matching, non-repeat reward, REST, majority voting
# --------------------------------------------------------------------------------------------


def star_mask_tier(iou: float, tiers: Sequence[tuple[float, float]] = STAR_TIERS) -> float:
    """StAR's mask-IoU tier (PAPER.md §8): IoU strictly above 0.9/0.8/0.7/0.5/0.3 -> 5/4/3/2/1,
    else 0. ``tiers`` are (threshold, value) pairs; the highest threshold exceeded wins."""
    return tiered_iou_reward(iou, tiers)


def _box_l1(a: Sequence[float] | None, b: Sequence[float] | None) -> float:
    if a is None or b is None:
        return float("inf")
    return float(np.mean(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))))


def star_pair_score(
    pred_obj: Any,
    pred_mask: Any,
    gt_box: Sequence[float] | None,
    gt_mask: Any,
    tiers: Sequence[tuple[float, float]] = STAR_TIERS,
    box_iou_threshold: float = 0.5,
    l1_threshold: float = 10.0,
) -> float:
    """Score of one (prediction, GT) pair: mask tier + [box IoU > 0.5] + [box L1 < 10 px] +
    [point inside the GT box] (PAPER.md §8). ``pred_obj`` has ``.box`` (x1, y1, x2, y2) and
    ``.point`` (x, y) as :class:`samr1lib.schema.ObjectAnswer`, in the GT boxes' pixel frame;
    box L1 is the mean absolute difference of the four coordinates. ``pred_mask=None`` is an
    empty mask; a missing box or point earns nothing for its terms."""
    box = getattr(pred_obj, "box", None)
    point = getattr(pred_obj, "point", None)
    score = star_mask_tier(mask_iou(pred_mask, gt_mask), tiers)
    score += float(box_iou(box, gt_box) > box_iou_threshold)
    score += float(_box_l1(box, gt_box) < l1_threshold)
    score += float(point_in_box(point, gt_box))
    return score


def star_max_pair_score(tiers: Sequence[tuple[float, float]] = STAR_TIERS) -> float:
    """The most one matched pair can earn: top tier + 3 (8 with the default tiers)."""
    return float(max((v for _, v in tiers), default=0.0)) + 3.0


def star_match_reward(
    pred_objs: Any,
    pred_masks: Sequence[Any],
    gt_boxes: Sequence[Sequence[float] | None],
    gt_masks: Sequence[Any],
    tiers: Sequence[tuple[float, float]] = STAR_TIERS,
    box_iou_threshold: float = 0.5,
    l1_threshold: float = 10.0,
) -> float:
    """StAR's accuracy reward (PAPER.md §8): Hungarian matching (``linear_sum_assignment``,
    maximising) of predicted and GT objects on :func:`star_pair_score`, the matched sum divided
    by max(#pred, #GT), so an unmatched extra prediction or a missed GT object costs a share.

    ``pred_objs``: an :class:`samr1lib.schema.Answer` or a sequence of ``ObjectAnswer``;
    ``pred_masks[i]`` is the segmenter's mask for ``pred_objs[i]`` (``None`` = empty).

    Conventions (ours, stated): both empty ("no target" answered on a no-target sample) ->
    :func:`star_max_pair_score` (8.0 with the default tiers, a perfect per-object score); exactly
    one side empty -> 0.0. The reward is on the 0..8 scale, not normalised to [0, 1].
    """
    objs = list(getattr(pred_objs, "objects", pred_objs))
    if len(objs) != len(pred_masks):
        raise ValueError(f"{len(objs)} predicted objects for {len(pred_masks)} predicted masks")
    if len(gt_boxes) != len(gt_masks):
        raise ValueError(f"{len(gt_boxes)} GT boxes for {len(gt_masks)} GT masks")
    n_pred, n_gt = len(objs), len(gt_masks)
    if n_pred == 0 and n_gt == 0:
        return star_max_pair_score(tiers)
    if n_pred == 0 or n_gt == 0:
        return 0.0
    gms = [as_mask(m, "gt mask") for m in gt_masks]
    scores = np.array(
        [
            [
                star_pair_score(o, pm, gb, gm, tiers, box_iou_threshold, l1_threshold)
                for gb, gm in zip(gt_boxes, gms)
            ]
            for o, pm in zip(objs, pred_masks)
        ],
        dtype=float,
    )
    rows, cols = linear_sum_assignment(scores, maximize=True)
    return float(scores[rows, cols].sum() / max(n_pred, n_gt))


_SENTENCE_SPLIT = re.compile(r"[.!?\n]")


def non_repeat_reward(text: Any) -> float:
    """StAR's non-repeat reward (PAPER.md §8): 0.0 if any sentence occurs twice, else 1.0.

    Sentences: the text (a string or a TRL completion, via
    :func:`samr1lib.rewards.completion_text`) split on ``.``, ``!``, ``?`` and newlines,
    stripped, empty pieces dropped; comparison is exact (case-sensitive). The whole completion
    is checked, answer included."""
    s = completion_text(text)
    sentences = [p.strip() for p in _SENTENCE_SPLIT.split(s)]
    sentences = [p for p in sentences if p]
    return 0.0 if len(sentences) != len(set(sentences)) else 1.0


def rest_select(rewards: Sequence[float], k: int) -> list[int]:
    """REST (StAR, PAPER.md §8): indices of the k lowest- and k highest-reward rollouts, disjoint,
    in ascending index order. Fewer than 2k rollouts -> all of them. Ties are broken by index
    (a stable sort ascending by reward: the lowest are its first k, the highest its last k)."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    n = len(rewards)
    if n <= 2 * k:
        return list(range(n))
    order = np.argsort(np.asarray(rewards, dtype=float), kind="stable")
    keep = set(order[:k].tolist()) | set(order[n - k :].tolist())
    return sorted(keep)


def _sample_masks(sample: Any) -> list[np.ndarray]:
    """One sample's object masks: ``None`` or ``[]`` = no object; a single HxW mask or RLE = one
    object; a list of masks = that many objects."""
    if sample is None:
        return []
    if isinstance(sample, dict) or (isinstance(sample, np.ndarray) and sample.ndim == 2):
        return [as_mask(sample, "candidate mask")]
    return [as_mask(m, "candidate mask") for m in sample]


def majority_vote(
    samples: Sequence[Any],
    iou_threshold: float = 0.85,
    min_vote_ratio: float = 0.2,
    no_object_ratio: float = 0.5,
) -> np.ndarray | None:
    """StAR's mask-level majority voting over N sampled answers (PAPER.md §8).

    ``samples[i]``: the object masks of sample i, a list (``[]`` or ``None`` = a "no object"
    vote; a bare HxW mask counts as one object). Returns the voted mask (bool HxW) or ``None``
    for "no object".

    1. If the no-object votes are >= ``no_object_ratio`` * N, return ``None``.
    2. Greedy clustering, candidates in sample order then object order: a candidate joins the
       first cluster whose seed (its first member) has mask IoU >= ``iou_threshold`` with it,
       else it seeds a new cluster.
    3. A cluster's votes = the number of distinct samples among its members; keep clusters
       with votes / N >= ``min_vote_ratio`` (N counts all samples, no-object ones included).
    4. K = the most common object count among the object-voting samples (ties -> the smaller
       K); keep the top K kept clusters by votes (ties -> the earlier-created cluster).
    5. Each cluster's best mask = the member with the highest mean IoU to the cluster's members
       (ties -> the earlier member); return the OR of those masks.
    If no cluster reaches ``min_vote_ratio`` we return ``None`` (no candidate has support).
    """
    n = len(samples)
    if n == 0:
        return None
    per_sample = [_sample_masks(s) for s in samples]
    n_none = sum(1 for m in per_sample if not m)
    if n_none >= no_object_ratio * n:
        return None

    clusters: list[list[tuple[int, np.ndarray]]] = []
    for i, masks in enumerate(per_sample):
        for m in masks:
            for c in clusters:
                if mask_iou(m, c[0][1]) >= iou_threshold:
                    c.append((i, m))
                    break
            else:
                clusters.append([(i, m)])

    votes = [len({i for i, _ in c}) for c in clusters]
    kept = [j for j in range(len(clusters)) if votes[j] / n >= min_vote_ratio]
    if not kept:
        return None
    counts = Counter(len(m) for m in per_sample if m)
    top = max(counts.values())
    k = min(c for c, v in counts.items() if v == top)
    kept = sorted(kept, key=lambda j: (-votes[j], j))[:k]

    out: np.ndarray | None = None
    for j in kept:
        members = [m for _, m in clusters[j]]
        mean_iou = [np.mean([mask_iou(a, b) for b in members]) for a in members]
        best = members[int(np.argmax(mean_iou))]
        out = best.copy() if out is None else (out | best)
    return out


class StarReward:
    """StAR's accuracy reward as a TRL reward function (PAPER.md §8): every predicted object segmented on its
    own, then :func:`star_match_reward` (Hungarian matching, divided by max(#pred, #GT)) against the GT objects.

    GT objects: the ``gt_masks`` column (a list of masks / RLEs per row, ``[]`` = no target) when the dataset has
    it, else the single ``mask`` column (an empty mask = no target) with the ``box`` column (or the mask's box).
    Predicted boxes and points are mapped from the policy's frame (the ``image`` column's size unless
    ``policy_frame``) to the GT's original frame before the box terms. A failed parse scores 0. Scale 0..8.
    """

    __name__ = "star_reward"

    def __init__(self, segmenter, tiers: Sequence[tuple[float, float]] = STAR_TIERS, policy_frame=None,
                 image_column: str = "image", mask_column: str = "mask", box_column: str = "box"):
        self.segmenter, self.tiers, self.policy_frame = segmenter, tiers, policy_frame
        self.image_column, self.mask_column, self.box_column = image_column, mask_column, box_column

    def _gt(self, kwargs: dict, i: int) -> tuple[list, list]:
        from .masks import mask_to_box

        if "gt_masks" in kwargs and kwargs["gt_masks"][i] is not None:
            masks = [as_mask(m, f"gt_masks row {i}") for m in kwargs["gt_masks"][i]]
            return [list(mask_to_box(m)) if m.any() else None for m in masks], masks
        m = as_mask(kwargs[self.mask_column][i], f"column {self.mask_column!r} row {i}")
        if not m.any():
            return [], []
        box = kwargs.get(self.box_column, [None] * (i + 1))[i]
        return [list(box) if box is not None else list(mask_to_box(m))], [m]

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float]:
        import cv2

        from .frames import scale_object
        from .schema import parse_completion
        from .segmenters import as_rgb, prompts_from_answer, segment_many

        n = len(completions)
        if self.image_column not in kwargs or self.mask_column not in kwargs:
            raise KeyError(f"StarReward needs the {self.image_column!r} and {self.mask_column!r} dataset columns")
        images = [as_rgb(im, f"column {self.image_column!r} row {i}") for i, im in enumerate(kwargs[self.image_column])]
        parses, prompts = [], []
        for c, img in zip(completions, images):
            frame = self.policy_frame or (img.shape[1], img.shape[0])
            res = parse_completion(completion_text(c), frame)
            parses.append(res)
            prompts.append(prompts_from_answer(res.answer, frame, (img.shape[1], img.shape[0])) if res.ok else [])
        masks = segment_many(self.segmenter, images, prompts)
        out = []
        for i in range(n):
            res = parses[i]
            if not res.ok:
                out.append(0.0)
                continue
            gt_boxes, gt_masks = self._gt(kwargs, i)
            h, w = (gt_masks[0].shape if gt_masks else as_mask(kwargs[self.mask_column][i], "mask").shape)
            frame = self.policy_frame or (images[i].shape[1], images[i].shape[0])
            objs = [scale_object(o, frame, (w, h)) for o in res.answer.objects]
            pms = [m if m.shape == (h, w) else cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
                   for m in masks[i]]
            out.append(star_match_reward(objs, pms, gt_boxes, gt_masks, self.tiers))
        return out


class NonRepeatReward:
    """:func:`non_repeat_reward` as a TRL reward function (StAR, PAPER.md §8)."""

    __name__ = "non_repeat_reward"

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float]:
        return [non_repeat_reward(c) for c in completions]


def sod_metrics(preds: Sequence[Any], gts: Sequence[Any]) -> dict[str, float]:
    """Salient-object metrics over a dataset (Seg-R1's evaluation, PAPER.md §7) via PySODMetrics:
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
