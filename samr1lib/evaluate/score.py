"""Scoring one batch of samples: generate -> the shared parse -> frame -> segment step -> one row per sample.

Each image is resized to 840 x 840 for the policy (SAM-R1 §4.1); its answer is mapped back to the original image,
which the segmenter sees (:func:`samr1lib.segmenters.answer_masks`, the step the training reward uses too); IoU is
taken against the GT mask at the original size, ignore regions excluded. A segmenter that fails on one sample's
prompts costs that sample its prediction (scored empty, the error kept in its row), not the batch its scores;
``strict`` raises instead (to debug the segmenter).
"""

from __future__ import annotations

import numpy as np

from ..data import open_image
from ..frames import scale_box
from ..masks import as_mask, encode_rle, mask_to_box
from ..metrics import box_iou, intersection_union
from ..parse import parse_many
from ..policy import Policy
from ..segmenters import AnswerMasks, Segmenter, answer_masks
from .vote import majority_vote

__all__ = ["score_batch", "segment_or_record"]


def segment_or_record(texts, originals, segmenter: Segmenter, frames, strict: bool = False):
    """:func:`answer_masks` of a batch, and per sample the segmenter's error (None when it segmented). When the
    batch fails, each sample is segmented alone, so only the failing ones lose their masks."""
    try:
        return answer_masks(texts, originals, segmenter, frames), [None] * len(texts)
    except Exception:  # noqa: BLE001 - isolated per sample below, recorded in its row, counted in the summary
        if strict:
            raise
    outcomes, errors = [], []
    for text, image, frame in zip(texts, originals, frames):
        try:
            outcomes.append(answer_masks([text], [image], segmenter, [frame])[0])
            errors.append(None)
        except Exception as e:  # noqa: BLE001 - the sample is scored empty and counted, never dropped
            parse = parse_many([text], [frame])[0]
            outcomes.append(AnswerMasks(parse, (), (image.size[0], image.size[1]), tuple(frame)))
            errors.append(f"{type(e).__name__}: {str(e)[:300]}")
    return outcomes, errors


def _row(key: str, rec: dict, text: str, outcome: AnswerMasks, pred: np.ndarray, error: str | None,
         empty_score: float) -> dict:
    gt = as_mask(rec["mask"], f"GT mask of sample {key}")
    inter, union = intersection_union(pred, gt, rec.get("ignore"))
    gt_box = rec.get("box") or mask_to_box(gt)
    res = outcome.parse
    first = res.answer.first if res.ok else None  # box accuracy scores the first object's box
    pred_box = list(scale_box(first.box, outcome.policy_frame, outcome.size)) if first and first.box else None
    return {
        "key": key, "query": rec["query"], "image_path": rec["image_path"], "completion": text,
        "answer": res.answer.to_json() if res.ok else None,
        "failure": res.failure.value if res.failure else None, "failure_detail": res.detail,
        "segmenter_error": error, "empty_gt": not gt.any(),
        "iou": empty_score if union == 0 else inter / union, "intersection": inter, "union": union,
        "pred_box": pred_box, "gt_box": list(gt_box) if gt_box else None,
        "box_iou": box_iou(pred_box, gt_box), "pred_mask": encode_rle(pred),
    }


def score_batch(batch, policy: Policy, segmenter: Segmenter, size: int, vote: int = 0,
                vote_kwargs: dict | None = None, empty_score: float = 1.0, strict: bool = False) -> list[dict]:
    """One row per ``(key, record)`` of ``batch``."""
    originals = [open_image(rec) for _, rec in batch]
    policy_images = [im.resize((size, size)) for im in originals]  # §4.1: 840 x 840 for the policy
    queries = [rec["query"] for _, rec in batch]
    frames = [(size, size)] * len(batch)
    completions = policy.generate(policy_images, queries)
    outcomes, errors = segment_or_record(completions, originals, segmenter, frames, strict)
    preds = [o.prediction for o in outcomes]
    if vote:  # StAR's mask-level majority voting (docs/papers.md): N sampled answers per sample
        samples = [[list(o.masks)] for o in outcomes]
        for _ in range(vote - 1):
            more, _ = segment_or_record(policy.generate(policy_images, queries), originals, segmenter, frames, strict)
            for j, o in enumerate(more):
                samples[j].append(list(o.masks))
        voted = [majority_vote(s, **(vote_kwargs or {})) for s in samples]
        preds = [v if v is not None else np.zeros_like(p) for v, p in zip(voted, preds)]
    return [_row(key, rec, text, o, p, e, empty_score)
            for (key, rec), text, o, p, e in zip(batch, completions, outcomes, preds, errors)]
