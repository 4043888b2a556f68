"""SAM-R1's segmentation-accuracy reward (§3.3): the IoU of the segmenter's mask with the GT mask, scored by Eq. 5's
tiers (or Table 3's fixed thresholds), or by Seg-R1's 0.7 IoU + 0.3 S-measure.

Per completion, :func:`segment_completions` does the one parse -> frame -> segment -> resize step
(:func:`samr1lib.segmenters.answer_masks`) on the dataset columns of a TRL reward call. The trainer runs it ONCE
per batch and hands its result to every reward as the ``segmentation`` column; a reward called on its own (tests,
notebooks) runs it itself. Model output is untrusted: a completion that does not parse scores 0 and is counted.
Our own errors (a missing dataset column, a mask of the wrong size) raise.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

import numpy as np

from ..data import open_image
from ..masks import as_mask
from ..metrics import mask_iou, s_measure
from ..segmenters import AnswerMasks, Segmenter, answer_masks
from .tiers import tiered_iou_reward

__all__ = ["ORIGINAL", "column", "reward_images", "segment_completions", "segmentation_metrics", "SegmentationReward",
           "segr1_reward_value"]

# The image column value meaning "each row's ORIGINAL image" (its image_path, opened once per distinct path): what
# the segmenter sees in training, as in evaluation. Segmenting the policy's 840 x 840 copy instead and shrinking the
# mask back costs IoU by itself (a perfect mask of a 6 px object shrunk to 640x480 scores 0.84) and moves rewards
# across Eq. 5's tiers.
ORIGINAL = "original"
_TRL_KWARGS = ("trainer_state", "log_extra", "log_metric", "prompts", "completion_ids", "segmentation")


def column(kwargs: dict[str, Any], name: str, n: int) -> list[Any]:
    """Dataset column ``name`` of a reward call, checked to hold one value per completion."""
    if name not in kwargs:
        have = sorted(k for k in kwargs if k not in _TRL_KWARGS)
        raise KeyError(f"the reward needs dataset column {name!r}; the batch has {have}")
    values = kwargs[name]
    if len(values) != n:
        raise ValueError(f"column {name!r} has {len(values)} values for {n} completions")
    return list(values)


def reward_images(columns: dict[str, Any], n: int, image_column: str = ORIGINAL) -> list[Any]:
    """What the segmenter sees for each of the ``n`` rows: the original images (``image_column=ORIGINAL``: the
    records' ``image_path``, ``width``, ``height`` and ``dataset`` columns, each distinct file opened once) or an
    in-memory image column."""
    if image_column != ORIGINAL:
        return column(columns, image_column, n)
    rows = [{k: column(columns, k, n)[i] for k in ("image_path", "width", "height")} for i in range(n)]
    kinds = columns.get("dataset") or [None] * n
    opened: dict[str, Any] = {}
    for row, kind in zip(rows, kinds):
        if row["image_path"] not in opened:
            opened[row["image_path"]] = open_image({**row, "dataset": kind})
    return [opened[row["image_path"]] for row in rows]


def segment_completions(segmenter: Segmenter, completions: Sequence[Any], image_column: str = "image",
                        mask_column: str = "mask", frame: tuple[int, int] | None = None,
                        **columns: Any) -> list[AnswerMasks]:
    """:func:`answer_masks` for a TRL reward call: the segmenter sees :func:`reward_images` (``image_column``:
    :data:`ORIGINAL` in training, or an in-memory column); answers are in ``frame`` if given, else in the dataset's
    ``policy_frame`` column if the batch has one, else in each image's own size; masks come back at the GT mask's
    size (the ``mask`` column, checked against ``height`` / ``width`` when the batch has them)."""
    n = len(completions)
    images = reward_images(columns, n, image_column)
    gts = [as_mask(m, f"column {mask_column!r} row {i}") for i, m in enumerate(column(columns, mask_column, n))]
    if "height" in columns and "width" in columns:  # the original size the GT mask must have
        for i, (gt, h, w) in enumerate(zip(gts, columns["height"], columns["width"])):
            if gt.shape != (int(h), int(w)):
                raise ValueError(f"row {i}: column {mask_column!r} is {gt.shape[1]}x{gt.shape[0]} but the row's "
                                 f"original size (width, height) is {w}x{h}")
    frames = [frame] * n if frame is not None else columns.get("policy_frame")
    return answer_masks(completions, images, segmenter, frames, [(g.shape[1], g.shape[0]) for g in gts])


def segmentation_metrics(outcomes: Sequence[AnswerMasks], ious: Sequence[float | None]) -> dict[str, float]:
    """What the trainer logs per batch: ``seg/mean_iou`` (over parsed answers; 0 when none parsed),
    ``seg/parse_failure_rate`` and ``parse/<reason>`` (share of the batch failing for that reason)."""
    if not outcomes:
        return {}
    parsed = [iou for iou in ious if iou is not None]
    out = {"seg/mean_iou": float(np.mean(parsed)) if parsed else 0.0,
           "seg/parse_failure_rate": float(np.mean([not o.parse.ok for o in outcomes]))}
    for reason, count in Counter(o.parse.failure.value for o in outcomes if o.parse.failure).items():
        out[f"parse/{reason}"] = count / len(outcomes)
    return out


def segr1_reward_value(pred: Any, gt: Any, w_iou: float = 0.7, w_s: float = 0.3) -> float:
    """Seg-R1's mask reward, ``w_iou * IoU + w_s * S-measure`` (0.7 / 0.3 in its released code,
    docs/papers.md). ``pred=None`` is an empty prediction. IoU binarises a soft ``pred`` at 0.5
    (:func:`samr1lib.masks.as_mask`); S-measure uses it as it is. Both empty -> IoU 1 and S 1."""
    g = as_mask(gt, "gt mask")
    p = np.zeros(g.shape, dtype=bool) if pred is None else pred
    return float(w_iou * mask_iou(p, g) + w_s * s_measure(p, g))


class SegmentationReward:
    """§3.3 segmentation-accuracy reward: IoU of the answer's mask with the GT, scored by tiers (``score="tier"``:
    Eq. 5 when ``tiers`` is None, Table 3's fixed thresholds via ``fixed_threshold_tiers(t)``) or Seg-R1's
    ``w_iou * IoU + w_s * S-measure`` (``score="segr1"``).

    A failed parse scores 0; a parsed answer's prediction is the OR of its objects' masks (empty for an empty
    list); pixels of the optional ``ignore`` column count in neither I nor U. ``policy_frame=None`` means the
    policy saw the ``image`` column at its own size (SAM-R1's 840 x 840 images, which Qwen2.5-VL keeps).
    The trainer logs the batch's :func:`segmentation_metrics` (once, whatever rewards run).
    """

    def __init__(self, segmenter: Segmenter | None, tiers: Sequence[tuple[float, float]] | None = None,
                 policy_frame: tuple[int, int] | None = None, image_column: str = "image", mask_column: str = "mask",
                 ignore_column: str | None = None, name: str = "segmentation_reward", score: str = "tier",
                 segr1_weights: tuple[float, float] = (0.7, 0.3)):
        if score not in ("tier", "segr1"):
            raise ValueError(f"score must be 'tier' (SAM-R1 Eq. 5 / Table 3) or 'segr1' (w_iou IoU + w_s S-measure), "
                             f"got {score!r}")
        self.score, self.segr1_weights = score, (float(segr1_weights[0]), float(segr1_weights[1]))
        self.segmenter, self.tiers, self.policy_frame = segmenter, tiers, policy_frame
        self.image_column, self.mask_column, self.ignore_column = image_column, mask_column, ignore_column
        self.__name__ = name

    def segment(self, completions: Sequence[Any], **kwargs: Any) -> list[AnswerMasks]:
        """This reward's own :func:`segment_completions` (when the trainer did not hand one in)."""
        if self.segmenter is None:
            raise ValueError(f"{self.__name__} has no segmenter and the call brought no 'segmentation' column")
        return segment_completions(self.segmenter, completions, self.image_column, self.mask_column,
                                   self.policy_frame, **kwargs)

    def ious(self, outcomes: Sequence[AnswerMasks], **kwargs: Any) -> list[float | None]:
        """IoU of each parsed answer's prediction with its GT (``None`` for a failed parse)."""
        n = len(outcomes)
        gts = column(kwargs, self.mask_column, n)
        ignores = column(kwargs, self.ignore_column, n) if self.ignore_column else [None] * n
        return [mask_iou(o.prediction, gt, ig) if o.parse.ok else None for o, gt, ig in zip(outcomes, gts, ignores)]

    def __call__(self, completions: Sequence[Any], segmentation: Sequence[AnswerMasks] | None = None,
                 **kwargs: Any) -> list[float]:
        outcomes = list(segmentation) if segmentation is not None else self.segment(completions, **kwargs)
        ious = self.ious(outcomes, **kwargs)
        gts = column(kwargs, self.mask_column, len(outcomes))
        rewards = []
        for o, iou, gt in zip(outcomes, ious, gts):
            if iou is None:
                rewards.append(0.0)
            elif self.score == "segr1":
                rewards.append(segr1_reward_value(o.prediction, gt, *self.segr1_weights))
            else:
                rewards.append(tiered_iou_reward(iou, self.tiers))
        return rewards
