"""Coordinate frames: from the image the policy sees to the image the segmenter sees, and back.

A frame is ``(width, height)`` in pixels; coordinates are continuous pixel coordinates (x right,
y down, the top-left corner of the image at 0, the bottom-right at (width, height)), the
convention of Qwen2.5-VL's absolute grounding coordinates and of SAM2's prompts.

Qwen2.5-VL resizes an image to multiples of 28 (patch 14 x spatial merge 2) within a pixel
budget before the vision tower, and its coordinates are pixels of that resized image. SAM-R1
resizes every image to 840 x 840 first (§4.1); 840 = 30 x 28, so the processor keeps it and the
policy's frame is 840 x 840. :func:`qwen_frame` gives the frame for any image size.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from .parse import Answer, ObjectAnswer

Frame = tuple[int, int]  # (width, height)


def _check_frame(frame: Sequence[int], name: str) -> tuple[float, float]:
    if len(frame) != 2 or not all(float(v) > 0 for v in frame):
        raise ValueError(f"{name} must be (width, height) with positive sides, got {tuple(frame)!r}")
    return float(frame[0]), float(frame[1])


def scale_point(point: Sequence[float], src: Frame, dst: Frame) -> tuple[float, float]:
    """Map (x, y) from frame ``src`` to frame ``dst`` (both (width, height))."""
    sw, sh = _check_frame(src, "src frame")
    dw, dh = _check_frame(dst, "dst frame")
    return float(point[0]) * dw / sw, float(point[1]) * dh / sh


def scale_box(box: Sequence[float], src: Frame, dst: Frame) -> tuple[float, float, float, float]:
    """Map [x1, y1, x2, y2] from frame ``src`` to frame ``dst``."""
    x1, y1 = scale_point(box[:2], src, dst)
    x2, y2 = scale_point(box[2:4], src, dst)
    return x1, y1, x2, y2


def scale_object(obj: ObjectAnswer, src: Frame, dst: Frame) -> ObjectAnswer:
    """The same object with its box and every point mapped from ``src`` to ``dst``."""
    return replace(
        obj,
        box=None if obj.box is None else scale_box(obj.box, src, dst),
        point=None if obj.point is None else scale_point(obj.point, src, dst),
        points=tuple(scale_point(p, src, dst) for p in obj.points),
    )


def scale_answer(answer: Answer, src: Frame, dst: Frame) -> Answer:
    """Map every object of an answer from ``src`` to ``dst``."""
    return replace(answer, objects=tuple(scale_object(o, src, dst) for o in answer.objects))


def qwen_frame(
    width: int, height: int, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 1280, factor: int = 28
) -> Frame:
    """The (width, height) Qwen2.5-VL's image processor resizes an image to (its ``smart_resize``).

    Defaults are Qwen2.5-VL-7B-Instruct's processor settings (min 3136, max 1003520 pixels).
    An 840 x 840 image keeps its size (§4.1).
    """
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    h, w = smart_resize(int(height), int(width), factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    return int(w), int(h)
