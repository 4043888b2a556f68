"""The reward functions of a training run, in TRL's order, from a :class:`samr1lib.config.TrainConfig`."""

from __future__ import annotations

from typing import Any

from ..segmenters import Segmenter
from .format import ReasoningFormatReward, SegmentationFormatReward
from .points import InBoxPointReward, PointValueReward
from .segmentation import ORIGINAL, SegmentationReward
from .star import LabelReward, NonRepeatReward, StarReward
from .tiers import tiers_from_name

__all__ = ["build_rewards"]


def build_rewards(cfg, segmenter: Segmenter) -> list[Any]:
    """SAM-R1 §3.3: reasoning format, segmentation format, segmentation accuracy (Eq. 5 tiers, Table 3's fixed
    thresholds, or Seg-R1's IoU + S-measure); StAR's matched reward + non-repeat instead of the accuracy reward
    (``seg_reward="star"``); StAR's label reward (``label_reward``); Appendix A.2's point reward
    (``negative_points``). Reads: tiers, seg_reward, segr1_w_iou, segr1_w_s, label_reward, negative_points,
    negative_points_value, image_size and the four format-reward values. The segmenter sees each row's original
    image (as in evaluation); the answers' coordinates are mapped from the policy's frame to it."""
    funcs: list[Any] = [
        ReasoningFormatReward(cfg.reasoning_format_good, cfg.reasoning_format_bad),
        SegmentationFormatReward(cfg.segmentation_format_good, cfg.segmentation_format_bad),
    ]
    if cfg.seg_reward == "star":  # StAR: the matched multi-object score replaces the single-mask tier
        funcs += [StarReward(segmenter, image_column=ORIGINAL), NonRepeatReward()]
    else:
        funcs.append(SegmentationReward(
            segmenter, tiers=tiers_from_name(cfg.tiers), image_column=ORIGINAL, ignore_column="ignore",
            score="segr1" if cfg.seg_reward == "segr1" else "tier", segr1_weights=(cfg.segr1_w_iou, cfg.segr1_w_s)))
    if cfg.label_reward:
        funcs.append(LabelReward(frame=(cfg.image_size, cfg.image_size)))
    if cfg.negative_points == "point_value":
        funcs.append(PointValueReward(cfg.negative_points_value))
    elif cfg.negative_points == "in_box":
        funcs.append(InBoxPointReward(cfg.negative_points_value))
    return funcs
