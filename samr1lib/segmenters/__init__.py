"""Segmenters behind one protocol: ``segment(image, prompts) -> masks`` for many prompts on one image.

Backends:
- ``sam2``: the ``sam2`` package's SAM2ImagePredictor (SAM-R1 §3.1 uses a frozen SAM2-Large);
- ``grabcut``: OpenCV's classical GrabCut from a box and fg/bg points. It needs no weights and is
  the default where no SAM2 checkpoint is given: a stand-in, not SAM2 (it punishes a box that cuts the
  object much harder than SAM2 would).

:func:`segment_many` groups the completions of a reward call by image, so that each distinct
image is encoded once (a GRPO group of G rollouts shares one image).
"""

from __future__ import annotations

from typing import Any

from .answers import AnswerMasks, answer_masks, prompts_from_answer, resize_mask
from .base import SegPrompt, Segmenter, as_rgb
from .batch import image_key, segment_many


def build_segmenter(name: str = "grabcut", **kwargs: Any) -> Segmenter:
    """``build_segmenter("sam2", config="sam2.1_hiera_l", checkpoint=..., device="cuda")`` or
    ``build_segmenter("grabcut", iterations=5)``."""
    if name == "sam2":
        from .sam2_backend import SAM2Segmenter

        return SAM2Segmenter(**kwargs)
    if name == "grabcut":
        from .grabcut import GrabCutSegmenter

        return GrabCutSegmenter(**kwargs)
    raise ValueError(f"unknown segmenter {name!r}; choose 'sam2' or 'grabcut'")


__all__ = ["SegPrompt", "Segmenter", "as_rgb", "build_segmenter", "image_key", "segment_many", "AnswerMasks",
           "answer_masks", "prompts_from_answer", "resize_mask"]
