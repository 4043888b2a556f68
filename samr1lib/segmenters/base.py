"""The segmenter protocol, its prompt type and input checks shared by every backend.

A segmenter knows images and prompts (boxes, labelled points) in pixels of the image it is given; it knows
nothing of the answer schema (:mod:`samr1lib.segmenters.answers` maps answers to prompts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np


@dataclass(frozen=True)
class SegPrompt:
    """Prompts for one mask, in pixels of the segmenter's image: an optional box [x1, y1, x2, y2]
    and points with labels (1 foreground, 0 background)."""

    box: tuple[float, float, float, float] | None = None
    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] = ()

    def __post_init__(self):
        if len(self.points) != len(self.labels):
            raise ValueError(f"SegPrompt has {len(self.points)} points but {len(self.labels)} labels")
        if self.box is None and not self.points:
            raise ValueError("SegPrompt needs a box or at least one point")

    @property
    def structure(self) -> tuple[bool, int]:
        """Prompts with equal structure (box or not, number of points) batch together."""
        return self.box is not None, len(self.points)


class Segmenter(Protocol):
    """``segment(image, prompts)``: one HxW bool mask per prompt, for an HxWx3 uint8 RGB image."""

    def segment(self, image: np.ndarray, prompts: Sequence[SegPrompt]) -> list[np.ndarray]: ...


def as_rgb(image: Any, name: str = "image") -> np.ndarray:
    """PIL image or HxWx3 uint8 array -> contiguous HxWx3 uint8 RGB array; anything else raises."""
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL.Image
        image = np.array(image.convert("RGB"))  # a writable copy
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a PIL image or an HxWx3 uint8 array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{name} must have shape HxWx3, got {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 RGB, got dtype {image.dtype}")
    return np.ascontiguousarray(image)
