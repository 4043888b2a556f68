"""Segmenters behind one protocol: ``segment(image, prompts) -> masks`` for many prompts on one image.

Backends:
- ``sam2``: the ``sam2`` package's SAM2ImagePredictor (SAM-R1 §3.1 uses a frozen SAM2-Large);
- ``grabcut``: OpenCV's classical GrabCut from a box and fg/bg points. It needs no weights and is
  the default where no SAM2 checkpoint is given: a stand-in, not SAM2 (see ../shared/NOTES.md for
  how it behaves on the toy world).

:func:`segment_many` groups the completions of a reward call by image, so that each distinct
image is encoded once (a GRPO group of G rollouts shares one image).
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import numpy as np

from .base import SegPrompt, Segmenter, as_rgb, prompts_from_answer


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


def image_key(image: np.ndarray) -> bytes:
    """A content key: equal pixels give equal keys (rows of a dataset decode to new objects)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(image.shape).encode())
    h.update(np.ascontiguousarray(image).data)
    return h.digest()


def segment_many(
    segmenter: Segmenter, images: Sequence[Any], prompts: Sequence[Sequence[SegPrompt]]
) -> list[list[np.ndarray]]:
    """Segment item i's ``prompts[i]`` on ``images[i]``, calling the segmenter once per distinct image.

    Returns, per item, one HxW bool mask per prompt. Items with no prompts get an empty list.
    """
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images for {len(prompts)} prompt lists")
    arrays = [as_rgb(img, f"image {i}") for i, img in enumerate(images)]
    groups: dict[bytes, list[int]] = {}
    for i, arr in enumerate(arrays):
        if prompts[i]:
            groups.setdefault(image_key(arr), []).append(i)
    out: list[list[np.ndarray]] = [[] for _ in images]
    for items in groups.values():
        flat = [p for i in items for p in prompts[i]]
        masks = segmenter.segment(arrays[items[0]], flat)
        k = 0
        for i in items:
            out[i] = masks[k : k + len(prompts[i])]
            k += len(prompts[i])
    return out


__all__ = ["SegPrompt", "Segmenter", "as_rgb", "build_segmenter", "image_key", "prompts_from_answer", "segment_many"]
