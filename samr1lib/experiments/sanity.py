"""Reward sanity checks (notebook 02): the rewards on a gallery of answers, and masks from perturbed GT prompts.

    gallery_table()                                  # format rewards + parse outcome of good and malformed answers
    perturbation_study(records, segmenter, noise=(0, .1, .2, .35))  # mask IoU and tier vs box noise
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

import pandas as pd

from ..data import open_image
from ..masks import as_mask, mask_to_box
from ..metrics import box_iou, mask_iou
from ..parse import parse_completion
from ..prompt import POLICY_FRAME
from ..rewards import reasoning_format_reward, segmentation_format_reward, tiered_iou_reward
from ..segmenters import SegPrompt

__all__ = ["GALLERY", "gallery_table", "perturbation_study"]

# (description, completion): what a policy may emit, well-formed and not
GALLERY: list[tuple[str, str]] = [
    ("good", '<think>the red one is left</think><answer>{"bbox_2d": [10, 20, 200, 300], "point_2d": [100, 150], '
             '"label": "red circle"}</answer>'),
    ("good, list of one", '<think>ok</think><answer>[{"bbox_2d": [10, 20, 200, 300], "point_2d": [100, 150], '
                          '"label": "car"}]</answer>'),
    ("no think", '<answer>{"bbox_2d": [10, 20, 200, 300], "point_2d": [100, 150], "label": "car"}</answer>'),
    ("no answer tag", "<think>I think it is the car</think> the car at 10, 20"),
    ("bad JSON", '<think>x</think><answer>{"bbox_2d": [10, 20, 200, 300], "point_2d": [100, 150</answer>'),
    ("missing point", '<think>x</think><answer>{"bbox_2d": [10, 20, 200, 300], "label": "car"}</answer>'),
    ("box inverted", '<think>x</think><answer>{"bbox_2d": [200, 300, 10, 20], "point_2d": [100, 150], '
                     '"label": "car"}</answer>'),
    ("box not numbers", '<think>x</think><answer>{"bbox_2d": ["a", 20, 200, 300], "point_2d": [100, 150], '
                        '"label": "car"}</answer>'),
    ("text after answer", '<think>x</think><answer>{"bbox_2d": [10, 20, 200, 300], "point_2d": [100, 150], '
                          '"label": "car"}</answer> and more'),
    ("empty", ""),
]


def gallery_table(gallery: Sequence[tuple[str, str]] = GALLERY, frame: tuple[int, int] = POLICY_FRAME):
    """One row per completion: both format rewards and the parser's outcome (failure reason and detail)."""
    texts = [t for _, t in gallery]
    fmt, seg = reasoning_format_reward(texts), segmentation_format_reward(texts)
    rows = []
    for (name, text), a, b in zip(gallery, fmt, seg):
        res = parse_completion(text, frame)
        rows.append({"case": name, "reasoning format": a, "segmentation format": b, "parsed": res.ok,
                     "failure": res.failure.value if res.failure else "", "detail": res.detail or ""})
    return pd.DataFrame(rows)


def _perturb(box, noise: float, rng: np.random.Generator, w: int, h: int):
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    d = rng.normal(0, noise, 4) * np.array([bw, bh, bw, bh])
    nb = np.array([x1, y1, x2, y2]) + d
    nb[[0, 2]] = np.clip(np.sort(nb[[0, 2]]), 0, w - 1)
    nb[[1, 3]] = np.clip(np.sort(nb[[1, 3]]), 0, h - 1)
    return [float(v) for v in nb]


def perturbation_study(records: Sequence[dict], segmenter, noise: Sequence[float] = (0.0, 0.1, 0.2, 0.35),
                       seed: int = 0):
    """Each record's GT box perturbed by Gaussian noise (std = ``noise`` x the box's size), the centre of the GT
    box as point; the segmenter's mask scored against the GT: one row per (record, noise) with box IoU, mask
    IoU and its Eq. 5 tier."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, r in enumerate(records):
        img = np.asarray(open_image(r).convert("RGB"))
        gt = as_mask(r["mask"], f"GT mask of record {i}")
        h, w = gt.shape
        box = list(r.get("box") or mask_to_box(gt))
        ys, xs = np.nonzero(gt)
        k = len(xs) // 2
        point = (float(xs[k]), float(ys[k])) if len(xs) else ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        for s in noise:
            pb = _perturb(box, s, rng, w, h)
            (m,) = segmenter.segment(img, [SegPrompt(box=pb, points=[point], labels=[1])])
            iou = mask_iou(m, gt)
            rows.append({"record": i, "noise": s, "box_iou": box_iou(pb, box), "mask_iou": iou,
                         "tier": tiered_iou_reward(iou)})
    return pd.DataFrame(rows)
