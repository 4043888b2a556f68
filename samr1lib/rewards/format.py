"""SAM-R1's two format rewards (§3.3) as TRL reward functions, and the parse-failure counts they log."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Callable, Sequence

import numpy as np

from ..parse import Failure, completion_text, parse_completion, parse_many
from ..prompt import POLICY_FRAME, REQUIRED_KEYS

__all__ = ["ReasoningFormatReward", "SegmentationFormatReward", "reasoning_format_reward",
           "segmentation_format_reward", "failure_counts", "log"]


def log(log_metric: Callable[[str, float], None] | None, name: str, value: float) -> None:
    if log_metric is not None:
        log_metric(name, float(value))


class ReasoningFormatReward:
    """§3.3 reasoning-format reward: ``good`` when the completion is ``<think>...</think>`` followed
    by ``<answer>...</answer>`` and nothing else, ``bad`` otherwise.

    SAM-R1 §3.3 gives no values; 1 / 0 follow the peers (Seg-Zero, VLM-R1).
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
        results = parse_many(completions, self.frame, self.required)
        out = [self.good if r.ok and r.answer.objects else self.bad for r in results]
        if results:
            log(log_metric, "parse/failure_rate", np.mean([not r.ok for r in results]))
        return out


_default_reasoning = ReasoningFormatReward()
_default_segmentation = SegmentationFormatReward()


def reasoning_format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """1.0 for ``<think>...</think><answer>...</answer>``, else 0.0 (§3.3; see ReasoningFormatReward)."""
    return _default_reasoning(completions, **kwargs)


def segmentation_format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """1.0 when the answer carries box, point and label in the schema, else 0.0 (§3.3)."""
    return _default_segmentation(completions, **kwargs)


def failure_counts(completions: Sequence[Any], frame: tuple[int, int] = POLICY_FRAME) -> dict[str, int]:
    """Parse-failure reasons of a batch of completions (``"ok"`` for the ones that parse)."""
    counts = Counter({f.value: 0 for f in Failure})
    counts["ok"] = 0
    for c in completions:
        r = parse_completion(completion_text(c), frame)
        counts[r.failure.value if r.failure else "ok"] += 1
    return dict(counts)
