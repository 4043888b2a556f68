"""StAR's mask-level majority voting at test time (docs/papers.md): N sampled answers per sample -> one mask."""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

import numpy as np

from ..masks import as_mask
from ..metrics import mask_iou

__all__ = ["majority_vote"]


def _sample_masks(sample: Any) -> list[np.ndarray]:
    """One sample's object masks: ``None`` or ``[]`` = no object; a single HxW mask or RLE = one
    object; a list of masks = that many objects."""
    if sample is None:
        return []
    if isinstance(sample, dict) or (isinstance(sample, np.ndarray) and sample.ndim == 2):
        return [as_mask(sample, "candidate mask")]
    return [as_mask(m, "candidate mask") for m in sample]


def majority_vote(
    samples: Sequence[Any],
    iou_threshold: float = 0.85,
    min_vote_ratio: float = 0.2,
    no_object_ratio: float = 0.5,
) -> np.ndarray | None:
    """StAR's mask-level majority voting over N sampled answers (docs/papers.md).

    ``samples[i]``: the object masks of sample i, a list (``[]`` or ``None`` = a "no object"
    vote; a bare HxW mask counts as one object). Returns the voted mask (bool HxW) or ``None``
    for "no object".

    1. If the no-object votes are >= ``no_object_ratio`` * N, return ``None``.
    2. Greedy clustering, candidates in sample order then object order: a candidate joins the
       first cluster whose seed (its first member) has mask IoU >= ``iou_threshold`` with it,
       else it seeds a new cluster.
    3. A cluster's votes = the number of distinct samples among its members; keep clusters
       with votes / N >= ``min_vote_ratio`` (N counts all samples, no-object ones included).
    4. K = the most common object count among the object-voting samples (ties -> the smaller
       K); keep the top K kept clusters by votes (ties -> the earlier-created cluster).
    5. Each cluster's best mask = the member with the highest mean IoU to the cluster's members
       (ties -> the earlier member); return the OR of those masks.
    If no cluster reaches ``min_vote_ratio`` we return ``None`` (no candidate has support).
    """
    n = len(samples)
    if n == 0:
        return None
    per_sample = [_sample_masks(s) for s in samples]
    n_none = sum(1 for m in per_sample if not m)
    if n_none >= no_object_ratio * n:
        return None

    clusters: list[list[tuple[int, np.ndarray]]] = []
    for i, masks in enumerate(per_sample):
        for m in masks:
            for c in clusters:
                if mask_iou(m, c[0][1]) >= iou_threshold:
                    c.append((i, m))
                    break
            else:
                clusters.append([(i, m)])

    votes = [len({i for i, _ in c}) for c in clusters]
    kept = [j for j in range(len(clusters)) if votes[j] / n >= min_vote_ratio]
    if not kept:
        return None
    counts = Counter(len(m) for m in per_sample if m)
    top = max(counts.values())
    k = min(c for c, v in counts.items() if v == top)
    kept = sorted(kept, key=lambda j: (-votes[j], j))[:k]

    out: np.ndarray | None = None
    for j in kept:
        members = [m for _, m in clusters[j]]
        mean_iou = [np.mean([mask_iou(a, b) for b in members]) for a in members]
        best = members[int(np.argmax(mean_iou))]
        out = best.copy() if out is None else (out | best)
    return out
