"""Rewards as TRL reward functions, ``(completions, **dataset_columns) -> list[float]``.

- :mod:`.tiers`: pure scoring of an IoU (SAM-R1 Eq. 5, Table 3's fixed thresholds, StAR's tiers);
- :mod:`.format`: SAM-R1's reasoning-format and segmentation-format rewards (§3.3);
- :mod:`.segmentation`: the segmentation-accuracy reward (§3.3; Seg-R1's 0.7 IoU + 0.3 S-measure as an option);
- :mod:`.points`: the negative-points ablation's rewards (Appendix A.2);
- :mod:`.star`: StAR's Hungarian-matched multi-object reward, non-repeat and label rewards;
- :mod:`.build`: the reward functions of a :class:`samr1lib.config.TrainConfig`, in TRL's order.
"""

from .build import build_rewards
from .format import (
    ReasoningFormatReward, SegmentationFormatReward, failure_counts, reasoning_format_reward,
    segmentation_format_reward,
)
from .points import InBoxPointReward, PointValueReward
from .segmentation import SegmentationReward, segment_completions, segr1_reward_value
from .star import LabelReward, NonRepeatReward, StarReward, non_repeat_reward, star_match_reward
from .tiers import EQ5_TIERS, STAR_TIERS, fixed_threshold_tiers, tiered_iou_reward, tiers_from_name

__all__ = [
    "EQ5_TIERS", "STAR_TIERS", "fixed_threshold_tiers", "tiered_iou_reward", "tiers_from_name",
    "ReasoningFormatReward", "SegmentationFormatReward", "reasoning_format_reward", "segmentation_format_reward",
    "failure_counts", "SegmentationReward", "segment_completions", "segr1_reward_value", "PointValueReward",
    "InBoxPointReward", "StarReward", "NonRepeatReward", "LabelReward", "non_repeat_reward", "star_match_reward",
    "build_rewards",
]
