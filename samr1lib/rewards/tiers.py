"""Tiered scoring of an IoU: SAM-R1's Eq. 5, Table 3's fixed thresholds, StAR's five tiers. Pure, no model."""

from __future__ import annotations

import math
import re
from typing import Sequence

__all__ = ["EQ5_TIERS", "STAR_TIERS", "fixed_threshold_tiers", "tiered_iou_reward", "tiers_from_name"]

# SAM-R1 Eq. 5: 4 if IoU > 0.80; 3 if 0.70 < IoU <= 0.80; 2 if 0.50 < IoU <= 0.70; 0 otherwise.
EQ5_TIERS: tuple[tuple[float, float], ...] = ((0.80, 4.0), (0.70, 3.0), (0.50, 2.0))
# StAR's mask-IoU tiers: IoU strictly above 0.9 / 0.8 / 0.7 / 0.5 / 0.3 -> 5 / 4 / 3 / 2 / 1 (docs/papers.md).
STAR_TIERS: tuple[tuple[float, float], ...] = ((0.9, 5), (0.8, 4), (0.7, 3), (0.5, 2), (0.3, 1))


def fixed_threshold_tiers(threshold: float, value: float = 4.0) -> tuple[tuple[float, float], ...]:
    """SAM-R1 Table 3's fixed-threshold rewards: ``value`` if IoU > threshold, else 0.

    The paper does not state the value; 4 (Eq. 5's top tier) keeps the reward's scale against the
    format rewards unchanged, so the ablation changes only the shape of the reward.
    """
    return ((float(threshold), float(value)),)


def tiered_iou_reward(iou: float, tiers: Sequence[tuple[float, float]] | None = None) -> float:
    """Score an IoU by tiers ``[(threshold, value), ...]``: the value of the highest threshold that
    the IoU strictly exceeds, else 0. ``tiers=None`` is SAM-R1's Eq. 5 (boundaries belong to the
    lower tier: IoU 0.5 -> 0, 0.7 -> 2, 0.8 -> 3)."""
    iou = float(iou)
    if not math.isfinite(iou) or not 0.0 <= iou <= 1.0:
        raise ValueError(f"IoU must be in [0, 1], got {iou}")  # IoU is computed by us: a bad one is a bug
    for threshold, value in sorted(EQ5_TIERS if tiers is None else tiers, reverse=True):
        if iou > threshold:
            return float(value)
    return 0.0


_FIXED = re.compile(r"fixed(0(\.\d+)?)")


def tiers_from_name(name: str) -> tuple[tuple[float, float], ...] | None:
    """``"eq5"`` -> None (Eq. 5); ``"fixed0.7"`` -> Table 3's fixed-threshold tiers (``TrainConfig.tiers``)."""
    if name == "eq5":
        return None
    m = _FIXED.fullmatch(name)
    if m is None:
        raise ValueError(f"tiers must be 'eq5' or 'fixed<t>' with 0 <= t < 1 (Table 3: fixed0.5/0.7/0.8), got {name!r}")
    return fixed_threshold_tiers(float(m.group(1)))
