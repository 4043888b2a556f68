"""StAR's rewards (docs/papers.md): the accuracy reward by Hungarian matching of predicted and GT objects
(mask-IoU tiers + box IoU + box L1 + point-in-box terms, matched sum divided by max(#pred, #GT)), the non-repeat
reward and label prediction."""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..frames import scale_object
from ..masks import as_mask, mask_to_box
from ..metrics import box_iou, mask_iou, point_in_box
from ..parse import completion_text, parse_many
from ..prompt import POLICY_FRAME
from ..segmenters import AnswerMasks, Segmenter
from .segmentation import segment_completions
from .tiers import STAR_TIERS, tiered_iou_reward

__all__ = ["star_mask_tier", "star_pair_score", "star_max_pair_score", "star_match_reward", "non_repeat_reward",
           "StarReward", "NonRepeatReward", "LabelReward"]


def star_mask_tier(iou: float, tiers: Sequence[tuple[float, float]] = STAR_TIERS) -> float:
    """StAR's mask-IoU tier (docs/papers.md): IoU strictly above 0.9/0.8/0.7/0.5/0.3 -> 5/4/3/2/1,
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
    [point inside the GT box] (docs/papers.md). ``pred_obj`` has ``.box`` (x1, y1, x2, y2) and
    ``.point`` (x, y) as :class:`samr1lib.parse.ObjectAnswer`, in the GT boxes' pixel frame;
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
    """StAR's accuracy reward (docs/papers.md): Hungarian matching (``linear_sum_assignment``,
    maximising) of predicted and GT objects on :func:`star_pair_score`, the matched sum divided
    by max(#pred, #GT), so an unmatched extra prediction or a missed GT object costs a share.

    ``pred_objs``: an :class:`samr1lib.parse.Answer` or a sequence of ``ObjectAnswer``;
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
    """StAR's non-repeat reward (docs/papers.md): 0.0 if any sentence occurs twice, else 1.0.

    Sentences: the text (a string or a TRL completion, via
    :func:`samr1lib.parse.completion_text`) split on ``.``, ``!``, ``?`` and newlines,
    stripped, empty pieces dropped; comparison is exact (case-sensitive). The whole completion
    is checked, answer included."""
    s = completion_text(text)
    sentences = [p.strip() for p in _SENTENCE_SPLIT.split(s)]
    sentences = [p for p in sentences if p]
    return 0.0 if len(sentences) != len(set(sentences)) else 1.0


class StarReward:
    """StAR's accuracy reward as a TRL reward function (docs/papers.md): every predicted object segmented on its
    own, then :func:`star_match_reward` (Hungarian matching, divided by max(#pred, #GT)) against the GT objects.

    GT objects: the ``gt_masks`` column (a list of masks / RLEs per row, ``[]`` = no target) when the dataset has
    it, else the single ``mask`` column (an empty mask = no target) with the ``box`` column (or the mask's box).
    Predicted boxes and points are mapped from the policy's frame to the GT's original frame before the box terms.
    A failed parse scores 0. Scale 0..8. Uses the trainer's ``segmentation`` column when given (one segmentation
    per completion per step), else segments itself.
    """

    __name__ = "star_reward"

    def __init__(self, segmenter: Segmenter | None, tiers: Sequence[tuple[float, float]] = STAR_TIERS,
                 policy_frame=None, image_column: str = "image", mask_column: str = "mask", box_column: str = "box"):
        self.segmenter, self.tiers, self.policy_frame = segmenter, tiers, policy_frame
        self.image_column, self.mask_column, self.box_column = image_column, mask_column, box_column

    def _gt(self, kwargs: dict, i: int) -> tuple[list, list]:
        if "gt_masks" in kwargs and kwargs["gt_masks"][i] is not None:
            masks = [as_mask(m, f"gt_masks row {i}") for m in kwargs["gt_masks"][i]]
            return [list(mask_to_box(m)) if m.any() else None for m in masks], masks
        m = as_mask(kwargs[self.mask_column][i], f"column {self.mask_column!r} row {i}")
        if not m.any():
            return [], []
        box = kwargs.get(self.box_column, [None] * (i + 1))[i]
        return [list(box) if box is not None else list(mask_to_box(m))], [m]

    def __call__(self, completions: Sequence[Any], segmentation: Sequence[AnswerMasks] | None = None,
                 **kwargs: Any) -> list[float]:
        if segmentation is None:
            if self.segmenter is None:
                raise ValueError("StarReward has no segmenter and the call brought no 'segmentation' column")
            segmentation = segment_completions(self.segmenter, completions, self.image_column, self.mask_column,
                                               self.policy_frame, **kwargs)
        out = []
        for i, o in enumerate(segmentation):
            if not o.parse.ok:
                out.append(0.0)
                continue
            gt_boxes, gt_masks = self._gt(kwargs, i)
            objs = [scale_object(obj, o.policy_frame, o.size) for obj in o.parse.answer.objects]
            out.append(star_match_reward(objs, list(o.masks), gt_boxes, gt_masks, self.tiers))
        return out


class NonRepeatReward:
    """:func:`non_repeat_reward` as a TRL reward function (StAR, docs/papers.md)."""

    __name__ = "non_repeat_reward"

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float]:
        return [non_repeat_reward(c) for c in completions]


class LabelReward:
    """StAR's label prediction (docs/papers.md): 1.0 when the answer's ``label`` names the GT category (the
    ``category`` column) or is contained in the query phrase (case-insensitive), else 0.0; a failed parse or a
    row without a category and query scores 0. With several objects, the share of objects labelled right."""

    __name__ = "label_reward"

    def __init__(self, frame: tuple[int, int] = POLICY_FRAME, category_column: str = "category",
                 query_column: str = "query"):
        self.frame, self.category_column, self.query_column = frame, category_column, query_column

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float]:
        n = len(completions)
        cats = kwargs.get(self.category_column) or [None] * n
        queries = kwargs.get(self.query_column) or [None] * n
        out = []
        for res, cat, q in zip(parse_many(completions, self.frame), cats, queries):
            if not res.ok or not res.answer.objects:
                out.append(0.0)
                continue
            names = [str(x).strip().lower() for x in (cat,) if x]
            phrase = str(q or "").lower()
            hits = [bool(o.label) and (o.label.strip().lower() in names or
                                       (len(o.label.strip()) > 1 and o.label.strip().lower() in phrase))
                    for o in res.answer.objects]
            out.append(float(np.mean(hits)))
        return out
