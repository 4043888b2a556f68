"""SAM-R1's rewards (§3.3) as TRL reward functions: ``(completions, **dataset_columns) -> list[float]``.

- :func:`tiered_iou_reward`: pure scoring of an IoU (Eq. 5), no model involved.
- :func:`reasoning_format_reward`, :func:`segmentation_format_reward`: the two format rewards.
- :class:`SegmentationReward`: SAM2 (or GrabCut) turns each parsed answer into a mask; its IoU
  with the GT mask is scored by Eq. 5 (or a fixed threshold, for the ablation of Table 3).
- :class:`PointValueReward`, :class:`InBoxPointReward`: the negative-points ablation (Appendix A.2).

Model output is untrusted: a completion that does not parse scores 0 and is counted. Our own
errors (a missing dataset column, a mask of the wrong size) raise.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from .masks import as_mask
from .metrics import mask_iou, point_in_box
from .schema import POLICY_FRAME, REQUIRED_KEYS, Failure, ParseResult, parse_completion
from .segmenters import Segmenter, as_rgb, prompts_from_answer, segment_many

# Eq. 5: 4 if IoU > 0.80; 3 if 0.70 < IoU <= 0.80; 2 if 0.50 < IoU <= 0.70; 0 otherwise.
EQ5_TIERS: tuple[tuple[float, float], ...] = ((0.80, 4.0), (0.70, 3.0), (0.50, 2.0))


def fixed_threshold_tiers(threshold: float, value: float = 4.0) -> tuple[tuple[float, float], ...]:
    """Table 3's fixed-threshold rewards: ``value`` if IoU > threshold, else 0.

    The paper does not state the value; 4 (Eq. 5's top tier) keeps the reward's scale against the
    format rewards unchanged, so the ablation changes only the shape of the reward.
    """
    return ((float(threshold), float(value)),)


def tiered_iou_reward(iou: float, tiers: Sequence[tuple[float, float]] | None = None) -> float:
    """Score an IoU by tiers ``[(threshold, value), ...]``: the value of the highest threshold that
    the IoU strictly exceeds, else 0. ``tiers=None`` is SAM-R1's Eq. 5 (boundaries belong to the
    lower tier: IoU 0.5 -> 0, 0.7 -> 2, 0.8 -> 3)."""
    iou = float(iou)
    if not np.isfinite(iou) or not 0.0 <= iou <= 1.0:
        raise ValueError(f"IoU must be in [0, 1], got {iou}")  # IoU is computed by us: a bad one is a bug
    for threshold, value in sorted(EQ5_TIERS if tiers is None else tiers, reverse=True):
        if iou > threshold:
            return float(value)
    return 0.0


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or a conversational ``[{"role", "content"}]`` list
    whose content is a string or a list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        parts = []
        for message in completion:
            content = message["content"]
            if isinstance(content, str):
                parts.append(content)
            else:
                parts.extend(p.get("text", "") for p in content if p.get("type") == "text")
        return "".join(parts)
    raise TypeError(f"a completion must be a string or a list of messages, got {type(completion).__name__}")


def _log(log_metric: Callable[[str, float], None] | None, name: str, value: float) -> None:
    if log_metric is not None:
        log_metric(name, float(value))


class ReasoningFormatReward:
    """§3.3 reasoning-format reward: ``good`` when the completion is ``<think>...</think>`` followed
    by ``<answer>...</answer>`` and nothing else, ``bad`` otherwise.

    The paper gives no values (PAPER.md §3); 1 / 0 follow the peers (Seg-Zero, VLM-R1).
    """

    PATTERN = re.compile(r"^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$", re.DOTALL)

    def __init__(self, good: float = 1.0, bad: float = 0.0):
        self.good, self.bad = float(good), float(bad)
        self.__name__ = "reasoning_format_reward"  # TRL names the logged metric after it

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float]:
        out = []
        for c in completions:
            text = completion_text(c)
            # exactly one think block and one answer block, in that order
            ok = self.PATTERN.match(text) and text.count("<think>") == 1 and text.count("<answer>") == 1
            out.append(self.good if ok else self.bad)
        return out


class SegmentationFormatReward:
    """§3.3 segmentation-format reward: ``good`` when the answer parses into at least one object
    carrying ``bbox_2d``, ``point_2d`` and a non-empty ``label`` (valid numbers, a proper box),
    ``bad`` otherwise. Values: 1 / 0 as the peers (the paper states none)."""

    def __init__(
        self, good: float = 1.0, bad: float = 0.0, frame: tuple[int, int] = POLICY_FRAME,
        required: Sequence[str] = REQUIRED_KEYS,
    ):
        self.good, self.bad, self.frame, self.required = float(good), float(bad), frame, tuple(required)
        self.__name__ = "segmentation_format_reward"

    def __call__(self, completions: Sequence[Any], log_metric=None, **kwargs: Any) -> list[float]:
        results = [parse_completion(completion_text(c), self.frame, self.required) for c in completions]
        out = [self.good if r.ok and r.answer.objects else self.bad for r in results]
        if results:
            _log(log_metric, "parse/failure_rate", np.mean([not r.ok for r in results]))
        return out


_default_reasoning = ReasoningFormatReward()
_default_segmentation = SegmentationFormatReward()


def reasoning_format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """1.0 for ``<think>...</think><answer>...</answer>``, else 0.0 (§3.3; see ReasoningFormatReward)."""
    return _default_reasoning(completions, **kwargs)


def segmentation_format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """1.0 when the answer carries box, point and label in the schema, else 0.0 (§3.3)."""
    return _default_segmentation(completions, **kwargs)


def _column(kwargs: dict[str, Any], name: str, n: int) -> list[Any]:
    if name not in kwargs:
        have = sorted(k for k in kwargs if k not in ("trainer_state", "log_extra", "log_metric"))
        raise KeyError(f"the reward needs dataset column {name!r}; the batch has {have}")
    values = kwargs[name]
    if len(values) != n:
        raise ValueError(f"column {name!r} has {len(values)} values for {n} completions")
    return list(values)


class SegmentationReward:
    """§3.3 segmentation-accuracy reward: segment each parsed answer, score IoU with the GT by tiers
    (``score="tier"``), or Seg-R1's ``w_iou * IoU + w_s * S-measure`` (``score="segr1"``, PAPER.md §7).

    Per completion: parse (a failure scores 0) -> map box and points from the policy's frame to the
    ``image`` column's frame -> segment (one encoding per distinct image in the call) -> OR the
    masks of the answer's objects -> resize to the GT mask's size (nearest) if it differs -> IoU
    (pixels of the optional ignore column excluded) -> ``tiered_iou_reward`` with ``tiers``
    (None: Eq. 5; ``fixed_threshold_tiers(t)``: Table 3's fixed thresholds).

    ``policy_frame=None`` means the policy saw the ``image`` column at its own size (SAM-R1's 840 x
    840 images, which Qwen2.5-VL's processor keeps). After each call, ``last`` holds per-completion
    ``(parse_result, iou or None, mask or None)`` for the rollout log.
    """

    def __init__(
        self,
        segmenter: Segmenter,
        tiers: Sequence[tuple[float, float]] | None = None,
        policy_frame: tuple[int, int] | None = None,
        image_column: str = "image",
        mask_column: str = "mask",
        ignore_column: str | None = None,
        required: Sequence[str] = REQUIRED_KEYS,
        name: str = "segmentation_reward",
        score: str = "tier",
        segr1_weights: tuple[float, float] = (0.7, 0.3),
    ):
        if score not in ("tier", "segr1"):
            raise ValueError(f"score must be 'tier' (SAM-R1 Eq. 5 / Table 3) or 'segr1' (w_iou IoU + w_s S-measure), "
                             f"got {score!r}")
        self.score, self.segr1_weights = score, (float(segr1_weights[0]), float(segr1_weights[1]))
        self.segmenter, self.tiers, self.policy_frame = segmenter, tiers, policy_frame
        self.image_column, self.mask_column, self.ignore_column = image_column, mask_column, ignore_column
        self.required = tuple(required)
        self.__name__ = name
        self.last: list[tuple[ParseResult, float | None, np.ndarray | None]] = []

    def __call__(self, completions: Sequence[Any], log_metric=None, **kwargs: Any) -> list[float]:
        n = len(completions)
        images = [as_rgb(im, f"column {self.image_column!r} row {i}") for i, im in
                  enumerate(_column(kwargs, self.image_column, n))]
        gts = [as_mask(m, f"column {self.mask_column!r} row {i}") for i, m in
               enumerate(_column(kwargs, self.mask_column, n))]
        ignores = _column(kwargs, self.ignore_column, n) if self.ignore_column else [None] * n
        if "height" in kwargs and "width" in kwargs:  # the original size the GT mask must have
            for i, (gt, h, w) in enumerate(zip(gts, kwargs["height"], kwargs["width"])):
                if gt.shape != (int(h), int(w)):
                    raise ValueError(f"row {i}: column {self.mask_column!r} is {gt.shape[1]}x{gt.shape[0]} but the "
                                     f"row's original size (width, height) is {w}x{h}")

        parses, prompts = [], []
        for i, (c, img) in enumerate(zip(completions, images)):
            frame = self.policy_frame or (img.shape[1], img.shape[0])
            res = parse_completion(completion_text(c), frame, self.required)
            parses.append(res)
            ok = res.ok and res.answer.objects
            prompts.append(prompts_from_answer(res.answer, frame, (img.shape[1], img.shape[0])) if ok else [])
        masks_per_item = segment_many(self.segmenter, images, prompts)

        rewards, self.last = [], []
        for res, masks, gt, ignore in zip(parses, masks_per_item, gts, ignores):
            if not masks:
                rewards.append(0.0)
                self.last.append((res, None, None))
                continue
            pred = np.logical_or.reduce(masks)
            if pred.shape != gt.shape:
                pred = cv2.resize(pred.astype(np.uint8), (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
            iou = mask_iou(pred, gt, ignore)
            if self.score == "segr1":  # Seg-R1 (PAPER.md §7): 0.7 IoU + 0.3 S-measure, on [0, 1]
                from .related import segr1_reward_value

                rewards.append(segr1_reward_value(pred, gt, *self.segr1_weights))
            else:
                rewards.append(tiered_iou_reward(iou, self.tiers))
            self.last.append((res, iou, pred))

        if n:
            ious = [iou for _, iou, _ in self.last if iou is not None]
            _log(log_metric, "seg/mean_iou", np.mean(ious) if ious else 0.0)
            _log(log_metric, "seg/parse_failure_rate", np.mean([iou is None for _, iou, _ in self.last]))
            for reason, count in Counter(r.failure.value for r in parses if r.failure).items():
                _log(log_metric, f"parse/{reason}", count / n)
        return rewards


class PointValueReward:
    """Appendix A.2(b) "point value" reward: ``value`` when the labelled points of the answer
    (``point_labels``) contain both 1 (positive) and 0 (negative), else 0. The paper's value is 1."""

    def __init__(self, value: float = 1.0, frame: tuple[int, int] = POLICY_FRAME):
        self.value, self.frame = float(value), frame
        self.__name__ = "point_value_reward"

    def _ok(self, result: ParseResult) -> bool:
        if not result.ok or not result.answer.objects:
            return False
        return all({0, 1} <= set(o.point_labels) for o in result.answer.objects)

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float]:
        return [self.value if self._ok(parse_completion(completion_text(c), self.frame)) else 0.0 for c in completions]


class InBoxPointReward(PointValueReward):
    """Appendix A.2(c): ``value`` only when both labels appear AND every labelled point (positive
    and negative) lies inside the object's box (edges included), else 0."""

    def __init__(self, value: float = 1.0, frame: tuple[int, int] = POLICY_FRAME):
        super().__init__(value, frame)
        self.__name__ = "in_box_point_reward"

    def _ok(self, result: ParseResult) -> bool:
        if not super()._ok(result):
            return False
        return all(point_in_box(p, o.box) for o in result.answer.objects for p in o.points)


def failure_counts(completions: Sequence[Any], frame: tuple[int, int] = POLICY_FRAME) -> dict[str, int]:
    """Parse-failure reasons of a batch of completions (``"ok"`` for the ones that parse)."""
    counts = Counter({f.value: 0 for f in Failure})
    counts["ok"] = 0
    for c in completions:
        r = parse_completion(completion_text(c), frame)
        counts[r.failure.value if r.failure else "ok"] += 1
    return dict(counts)


class LabelReward:
    """StAR's label prediction (PAPER.md §8): 1.0 when the answer's ``label`` names the GT category (the
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
        for c, cat, q in zip(completions, cats, queries):
            res = parse_completion(completion_text(c), self.frame)
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
