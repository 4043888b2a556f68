"""The negative-points ablation's rewards (SAM-R1 Appendix A.2, a variant that failed and is not in the final
method): the answer may carry labelled points (``points_2d`` + ``point_labels``)."""

from __future__ import annotations

from typing import Any, Sequence

from ..metrics import point_in_box
from ..parse import ParseResult, parse_many
from ..prompt import POLICY_FRAME

__all__ = ["PointValueReward", "InBoxPointReward"]


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
        return [self.value if self._ok(res) else 0.0 for res in parse_many(completions, self.frame)]


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
