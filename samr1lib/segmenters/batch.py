"""Batching: the completions of a reward call grouped by image, so that each distinct image is encoded once (a GRPO
group of G rollouts shares one image)."""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import numpy as np

from .base import SegPrompt, Segmenter, as_rgb

__all__ = ["image_key", "segment_many"]


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
