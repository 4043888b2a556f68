"""The parser: completion text -> :class:`Answer` (or a typed :class:`Failure`), and back.

The answer may be one object or a list of objects (StAR's multi-object answers; an empty list means "no
target"). Coordinates are pixels of the frame the policy sees (840 x 840 in SAM-R1, §4.1). The parser never
raises on model text: it returns a :class:`ParseResult` holding either an :class:`Answer` or a
:class:`Failure` reason with a human-readable detail. The keys are those the prompt asks for
(:mod:`samr1lib.prompt`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Sequence

from .prompt import BOX_KEY, LABEL_KEY, POINT_KEY, POINT_LABELS_KEY, POINTS_KEY, POLICY_FRAME, REQUIRED_KEYS


class Failure(str, Enum):
    """Why a completion did not parse into an Answer (each is counted, none is an exception)."""

    NO_ANSWER_TAG = "no_answer_tag"  # no <answer>...</answer> block
    BAD_JSON = "bad_json"  # the block is not JSON
    WRONG_STRUCTURE = "wrong_structure"  # top level not an object/list, or an item not an object
    MISSING_KEY = "missing_key"  # a required key is absent
    WRONG_TYPE = "wrong_type"  # a field has the wrong type or length
    NON_FINITE = "non_finite"  # NaN, infinity, or a number too large for a float
    DEGENERATE_BOX = "degenerate_box"  # x2 <= x1 or y2 <= y1
    OUT_OF_FRAME = "out_of_frame"  # the box lies entirely outside the frame
    BAD_POINT_LABELS = "bad_point_labels"  # labels not 0/1, or not one per point


@dataclass(frozen=True)
class ObjectAnswer:
    """One target: box, reference point, label, and optional labelled points (frame pixels)."""

    box: tuple[float, float, float, float] | None
    point: tuple[float, float] | None
    label: str
    points: tuple[tuple[float, float], ...] = ()
    point_labels: tuple[int, ...] = ()

    def prompt_points(self) -> tuple[list[tuple[float, float]], list[int]]:
        """All points handed to a segmenter: the reference point (positive) then labelled ones."""
        pts = ([self.point] if self.point is not None else []) + list(self.points)
        labels = ([1] if self.point is not None else []) + list(self.point_labels)
        return pts, labels

    def to_json(self, decimals: int | None = None) -> dict[str, Any]:
        """The object as JSON; ``decimals=0`` writes integer pixels, as Qwen2.5-VL does."""

        def r(vals):
            if decimals is None:
                return list(vals)
            return [int(round(v)) if decimals == 0 else round(v, decimals) for v in vals]

        out: dict[str, Any] = {}
        if self.box is not None:
            out[BOX_KEY] = r(self.box)
        if self.point is not None:
            out[POINT_KEY] = r(self.point)
        out[LABEL_KEY] = self.label
        if self.points:
            out[POINTS_KEY] = [r(p) for p in self.points]
            out[POINT_LABELS_KEY] = list(self.point_labels)
        return out


@dataclass(frozen=True)
class Answer:
    """A parsed answer: zero or more objects; ``is_list`` records whether the JSON was a list."""

    objects: tuple[ObjectAnswer, ...]
    is_list: bool = False

    @property
    def first(self) -> ObjectAnswer | None:
        return self.objects[0] if self.objects else None

    def to_json(self, decimals: int | None = None) -> Any:
        items = [o.to_json(decimals) for o in self.objects]
        return items if self.is_list or not items else items[0]


@dataclass(frozen=True)
class ParseResult:
    """Either ``answer`` (and ``failure is None``) or a ``failure`` with a ``detail``."""

    answer: Answer | None = None
    failure: Failure | None = None
    detail: str = ""
    think: str | None = field(default=None)

    @property
    def ok(self) -> bool:
        return self.failure is None


_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_FENCE_RE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class _Bad(Exception):
    """Internal: carries a failure reason out of the nested validators."""

    def __init__(self, failure: Failure, detail: str):
        super().__init__(detail)
        self.failure, self.detail = failure, detail


def _number(value: Any, where: str) -> float:
    # bool is a subclass of int in Python; true/false are not coordinates.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(Failure.WRONG_TYPE, f"{where} must be a number, got {value!r:.40}")
    try:
        x = float(value)
    except OverflowError:  # a JSON integer with hundreds of digits
        raise _Bad(Failure.NON_FINITE, f"{where} is too large for a float") from None
    if not math.isfinite(x):
        raise _Bad(Failure.NON_FINITE, f"{where} is {x}")
    return x


def _numbers(value: Any, n: int, where: str) -> list[float]:
    if not isinstance(value, list) or len(value) != n:
        raise _Bad(Failure.WRONG_TYPE, f"{where} must be a list of {n} numbers, got {value!r:.60}")
    return [_number(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _clip(v: float, hi: float) -> float:
    return min(max(v, 0.0), hi)


def _parse_object(obj: Any, frame: tuple[int, int], required: Sequence[str], idx: str) -> ObjectAnswer:
    if not isinstance(obj, dict):
        raise _Bad(Failure.WRONG_STRUCTURE, f"answer{idx} must be a JSON object, got {type(obj).__name__}")
    for key in required:
        if key not in obj:
            raise _Bad(Failure.MISSING_KEY, f"answer{idx} has no {key!r}")
    w, h = frame

    box = None
    if BOX_KEY in obj:
        x1, y1, x2, y2 = _numbers(obj[BOX_KEY], 4, f"{BOX_KEY}{idx}")
        if x2 <= x1 or y2 <= y1:
            raise _Bad(Failure.DEGENERATE_BOX, f"{BOX_KEY}{idx} = {[x1, y1, x2, y2]} has x2 <= x1 or y2 <= y1")
        clipped = (_clip(x1, w), _clip(y1, h), _clip(x2, w), _clip(y2, h))
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            raise _Bad(Failure.OUT_OF_FRAME, f"{BOX_KEY}{idx} = {[x1, y1, x2, y2]} lies outside the {w}x{h} frame")
        box = clipped

    point = None
    if POINT_KEY in obj:
        px, py = _numbers(obj[POINT_KEY], 2, f"{POINT_KEY}{idx}")
        point = (_clip(px, w), _clip(py, h))

    label = obj.get(LABEL_KEY, "")
    if not isinstance(label, str):
        raise _Bad(Failure.WRONG_TYPE, f"{LABEL_KEY}{idx} must be a string, got {label!r:.40}")
    if LABEL_KEY in required and not label.strip():
        raise _Bad(Failure.WRONG_TYPE, f"{LABEL_KEY}{idx} is empty")

    points: list[tuple[float, float]] = []
    labels: list[int] = []
    if POINTS_KEY in obj or POINT_LABELS_KEY in obj:
        raw_pts, raw_lab = obj.get(POINTS_KEY), obj.get(POINT_LABELS_KEY)
        if not isinstance(raw_pts, list):
            raise _Bad(Failure.WRONG_TYPE, f"{POINTS_KEY}{idx} must be a list of [x, y], got {raw_pts!r:.40}")
        for j, p in enumerate(raw_pts):
            px, py = _numbers(p, 2, f"{POINTS_KEY}{idx}[{j}]")
            points.append((_clip(px, w), _clip(py, h)))
        if not isinstance(raw_lab, list) or len(raw_lab) != len(points):
            raise _Bad(Failure.BAD_POINT_LABELS, f"{POINT_LABELS_KEY}{idx} must hold one label per point")
        for lab in raw_lab:
            if isinstance(lab, bool) or lab not in (0, 1):
                raise _Bad(Failure.BAD_POINT_LABELS, f"{POINT_LABELS_KEY}{idx} has {lab!r:.20}; labels are 0 or 1")
            labels.append(int(lab))

    if box is None and point is None and not points:
        raise _Bad(Failure.MISSING_KEY, f"answer{idx} has no box and no point")
    return ObjectAnswer(box=box, point=point, label=label.strip(), points=tuple(points), point_labels=tuple(labels))


def parse_completion(
    text: Any,
    frame: tuple[int, int] = POLICY_FRAME,
    required: Sequence[str] = REQUIRED_KEYS,
) -> ParseResult:
    """Parse a completion into an Answer, or a failure reason. Never raises on model output.

    ``frame`` is (width, height) of the image the policy saw: boxes and points are clipped to it.
    The first ``<answer>`` block is used; a ```json fence inside it is allowed.
    """
    if not isinstance(text, str):
        return ParseResult(failure=Failure.NO_ANSWER_TAG, detail=f"completion is {type(text).__name__}, not text")
    think_match = _THINK_RE.search(text)
    think = think_match.group(1).strip() if think_match else None
    match = _ANSWER_RE.search(text)
    if match is None:
        return ParseResult(failure=Failure.NO_ANSWER_TAG, detail="no <answer>...</answer> block", think=think)
    body = match.group(1).strip()
    fenced = _FENCE_RE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as err:  # JSONDecodeError is a ValueError
        return ParseResult(failure=Failure.BAD_JSON, detail=f"not JSON: {str(err)[:80]}", think=think)
    try:
        if isinstance(data, list):
            objs = tuple(_parse_object(o, frame, required, f"[{i}]") for i, o in enumerate(data))
            answer = Answer(objects=objs, is_list=True)
        elif isinstance(data, dict):
            answer = Answer(objects=(_parse_object(data, frame, required, ""),), is_list=False)
        else:
            raise _Bad(Failure.WRONG_STRUCTURE, f"answer must be an object or a list, got {type(data).__name__}")
    except _Bad as bad:
        return ParseResult(failure=bad.failure, detail=bad.detail, think=think)
    return ParseResult(answer=answer, think=think)


def format_completion(
    answer: Answer | ObjectAnswer | Sequence[ObjectAnswer], think: str = "", decimals: int | None = 0
) -> str:
    """Render an answer as a completion in the schema (for SFT targets, tests and galleries)."""
    if isinstance(answer, ObjectAnswer):
        payload: Any = answer.to_json(decimals)
    elif isinstance(answer, Answer):
        payload = answer.to_json(decimals)
    else:
        payload = [o.to_json(decimals) for o in answer]
    return f"<think>{think}</think><answer>{json.dumps(payload)}</answer>"


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or a conversational ``[{"role", "content"}]`` list
    whose content is a string or a list of ``{"type": "text", "text": ...}`` parts. Anything else is our
    own bug (TRL hands rewards one of these two forms) and raises."""
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


def parse_many(completions: Sequence[Any], frames: Sequence[tuple[int, int]] | tuple[int, int] = POLICY_FRAME,
               required: Sequence[str] = REQUIRED_KEYS) -> list[ParseResult]:
    """:func:`parse_completion` of each TRL completion; ``frames`` is one frame for all or one per completion."""
    if len(frames) == 2 and all(isinstance(v, (int, float)) for v in frames):
        frames = [frames] * len(completions)  # type: ignore[list-item]
    if len(frames) != len(completions):
        raise ValueError(f"{len(frames)} frames for {len(completions)} completions")
    return [parse_completion(completion_text(c), tuple(f), required) for c, f in zip(completions, frames)]
