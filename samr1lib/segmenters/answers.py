"""The ONE step from completions to masks, used by the rewards, the trainer's rollout log and evaluation alike:

    parse (in the policy's frame) -> map box and points to the segmenter's image -> segment (one encoding per
    distinct image, :func:`segment_many`) -> resize each object's mask to the GT's size (nearest-exact).

An answer that fails to parse has no masks; an answer that parses into an empty list ("no target", StAR) has no
masks either, and its prediction is the empty mask. That is the single rule for when an answer counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np

from ..frames import Frame, scale_object
from ..parse import Answer, ParseResult, parse_many
from ..prompt import REQUIRED_KEYS
from .base import SegPrompt, Segmenter, as_rgb
from .batch import segment_many

__all__ = ["AnswerMasks", "prompts_from_answer", "answer_masks", "resize_mask"]


@dataclass(frozen=True)
class AnswerMasks:
    """One completion after :func:`answer_masks`: its parse, one mask per object at ``size`` ((width, height),
    the GT's), and the frame its coordinates were written in."""

    parse: ParseResult
    masks: tuple[np.ndarray, ...]
    size: tuple[int, int]
    policy_frame: tuple[int, int]

    @property
    def prediction(self) -> np.ndarray:
        """The union of the object masks (HxW bool); empty when the answer failed or named no object."""
        out = np.zeros((self.size[1], self.size[0]), dtype=bool)
        for m in self.masks:
            out |= m
        return out


def prompts_from_answer(answer: Answer, policy_frame: Frame, image_frame: Frame) -> list[SegPrompt]:
    """One SegPrompt per object of a parsed answer, mapped from the policy's frame to the image's.

    The object's reference point (``point_2d``) is a positive point; labelled points
    (``points_2d`` / ``point_labels``) follow with their labels.
    """
    prompts = []
    for obj in answer.objects:
        obj = scale_object(obj, policy_frame, image_frame)
        pts, labels = obj.prompt_points()
        prompts.append(SegPrompt(box=obj.box, points=tuple(pts), labels=tuple(labels)))
    return prompts


def resize_mask(mask: np.ndarray, size: Frame) -> np.ndarray:
    """``mask`` (HxW bool) at ``size`` (width, height), nearest-exact (no half-pixel shift), unchanged if equal."""
    if (mask.shape[1], mask.shape[0]) == tuple(size):
        return mask
    return cv2.resize(mask.astype(np.uint8), tuple(int(v) for v in size), interpolation=cv2.INTER_NEAREST_EXACT) > 0


def answer_masks(
    completions: Sequence[Any], images: Sequence[Any], segmenter: Segmenter,
    policy_frames: Sequence[Frame] | None = None, sizes: Sequence[Frame] | None = None,
    required: Sequence[str] = REQUIRED_KEYS,
) -> list[AnswerMasks]:
    """Completion i, written in ``policy_frames[i]`` (default: image i's own size), segmented on ``images[i]``
    (what the segmenter sees: the original image in training and evaluation alike), its masks returned at
    ``sizes[i]`` (default: image i's size; give the GT's)."""
    n = len(completions)
    arrays = [as_rgb(im, f"image {i}") for i, im in enumerate(images)]
    if len(arrays) != n:
        raise ValueError(f"{len(arrays)} images for {n} completions")
    own = [(a.shape[1], a.shape[0]) for a in arrays]
    frames = [tuple(int(v) for v in f) for f in policy_frames] if policy_frames is not None else own
    outs = [tuple(int(v) for v in s) for s in sizes] if sizes is not None else own
    if len(frames) != n or len(outs) != n:
        raise ValueError(f"{len(frames)} policy frames and {len(outs)} sizes for {n} completions")
    parses = parse_many(completions, frames, required)
    prompts = [prompts_from_answer(p.answer, f, o) if p.ok else [] for p, f, o in zip(parses, frames, own)]
    masks = segment_many(segmenter, arrays, prompts)
    return [AnswerMasks(p, tuple(resize_mask(m, s) for m in ms), s, f)
            for p, ms, s, f in zip(parses, masks, outs, frames)]
