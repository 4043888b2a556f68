"""Warm starts: the supervised fine-tunes that play the role of the instruct model a run starts from.

SAM-R1 starts from Qwen2.5-VL-7B-Instruct, which already answers in a grounding format. The toy world's tiny
policy starts from nothing, so :func:`warm_start` fine-tunes it with TRL's ``SFTTrainer`` on answers in our schema
whose boxes are deliberately LOOSE (:func:`loose_answer`: centre jittered by N(0, ``shift`` x size), then enlarged
by U(``enlarge``)): the warm-started policy answers in format but earns low tiers, leaving the RL room to improve.
Seg-R1's SFT cold start on FCoT data is :func:`build_fcot_dataset` (a synthetic stand-in, docs/papers.md).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from datasets import concatenate_datasets
from transformers import AutoProcessor
from trl import SFTConfig, SFTTrainer

from ..data import build_policy_dataset
from ..frames import scale_point
from ..masks import as_mask
from ..parse import ObjectAnswer, format_completion
from ..policy import load_policy

__all__ = ["WARM_START", "loose_answer", "reasoning", "with_points", "build_sft_dataset", "fcot_completion", "build_fcot_dataset", "warm_start"]

# The warm start recipe. Not the paper's (SAM-R1 starts from Qwen2.5-VL-7B-Instruct): a stand-in chosen on this
# project's CPU machines so that the warm-started policy answers in format with loose boxes. Untuned per variant.
WARM_START = dict(
    copies=2,  # loose answers per training expression (two jitters each)
    epochs=1.0,  # one pass over them (515 steps of 16)
    # AdamW, cosine, the vision tower frozen: at 2e-3 (the step a random-init policy needed) the SFT on loose boxes
    # wiped out the toy base's grounding (held-out box-centre correlation 0.65 -> 0.12 / 0.20); at 5e-4 with the
    # tower frozen it keeps it (0.60 / 0.62); at 2e-4 the new answer format is not learned (16 % parse failures)
    learning_rate=5e-4,
    freeze_vision=True,
    batch_size=16,
    shift=0.15,  # loose box: centre ~ N(0, 0.15 x side) off
    # and sides x U(3.0, 4.5): as loose as the reward can see. GrabCut forgives a box up to ~2.5x the object's sides
    # (`python -m samr1lib.bench looseness`, 200 held-out expressions: mean tier 3.92 at 1.5x, 3.67 at 2.5x, 3.23 at
    # 3x, 2.00 at 4x); at the former U(1.4, 2.0) the warm start's greedy answers already scored the base's tier
    # (2.70 vs 2.78) and GRPO had nothing to improve (docs/measurements/toy_grpo_on_base_2026-12-04.md)
    enlarge=(3.0, 4.5),
    varied_reasoning=True,  # reasonings of ~5-60 tokens, so completions vary in length (Eq. 2 vs Eq. 4)
    points_share=0.5,  # labelled-points prompt: half of the answers carry labelled points (Appendix A.2)
)


def loose_answer(
    box: Sequence[float], frame: tuple[int, int], rng: np.random.Generator, label: str,
    shift: float = WARM_START["shift"], enlarge: tuple[float, float] = WARM_START["enlarge"],
) -> ObjectAnswer:
    """A deliberately loose answer for ``box`` (x1, y1, x2, y2 in ``frame``): centre moved by N(0, shift x side),
    sides scaled by U(enlarge), clipped to the frame; the point is the loose box's centre."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    cx, cy = (x1 + x2) / 2 + rng.normal(0, shift * w), (y1 + y2) / 2 + rng.normal(0, shift * h)
    s = rng.uniform(*enlarge)
    W, H = frame
    bx1, by1 = np.clip(cx - s * w / 2, 0, W - 1), np.clip(cy - s * h / 2, 0, H - 1)
    bx2, by2 = np.clip(cx + s * w / 2, bx1 + 1, W - 1), np.clip(cy + s * h / 2, by1 + 1, H - 1)
    point = (float(np.clip(cx, bx1, bx2)), float(np.clip(cy, by1, by2)))
    return ObjectAnswer(box=(float(bx1), float(by1), float(bx2), float(by2)), point=point, label=label)


def reasoning(query: str, label: str, box: Sequence[float], frame: tuple[int, int], rng: np.random.Generator,
              varied: bool = True) -> str:
    """The ``<think>`` text of a warm-start answer: the query alone, or (``varied``) one of three reasonings of
    different lengths (about 5 to 60 tokens), so that completions vary in length as a real model's do and the
    per-sequence (Eq. 2) and per-group (Eq. 4) normalisations weigh them differently."""
    if not varied:
        return query
    cx, cy = (box[0] + box[2]) / 2 / frame[0], (box[1] + box[3]) / 2 / frame[1]
    where = f"{'top' if cy < 1 / 3 else 'bottom' if cy > 2 / 3 else 'middle'} " \
            f"{'left' if cx < 1 / 3 else 'right' if cx > 2 / 3 else 'centre'}"
    options = (
        query,
        f"The query asks for {query}. It is the {label}.",
        f"The query asks for {query}. I look at the shapes in the image, their colours and where they are. The "
        f"{label} in the {where} of the image matches, so I box it and put a point on it.",
    )
    return options[int(rng.integers(len(options)))]


def with_points(ans: ObjectAnswer, frame: tuple[int, int], rng: np.random.Generator) -> ObjectAnswer:
    """The answer with labelled points (Appendix A.2's format): a positive point at the answer's own point and,
    half of the time, a negative point just outside its box (the contrast A.2 hoped for)."""
    points, labels = [ans.point], [1]
    if rng.random() < 0.5:
        x1, y1, x2, y2 = ans.box
        gap = 3.0
        x = x2 + gap if frame[0] - x2 > x1 else x1 - gap
        points.append((float(np.clip(x, 0, frame[0] - 1)), float(np.clip((y1 + y2) / 2, 0, frame[1] - 1))))
        labels.append(0)
    return replace(ans, points=tuple(points), point_labels=tuple(labels))


def build_sft_dataset(records: Sequence[dict], out_dir: str | os.PathLike, size: int = 112, copies: int = 2,
                      seed: int = 0, negative_points: bool = False, varied_reasoning: bool = False,
                      points_share: float = 0.0, **loose_kw):
    """The policy dataset of ``records`` with a ``completion`` column: ``copies`` loose answers per record
    (different jitters, so SFT learns the loose distribution rather than one box per image).

    ``negative_points``: the prompts ask for labelled points too (the prompt of the negative-points variants).
    ``points_share``: the share of those answers that carry labelled points (:func:`with_points`; 0: box + point +
    label only, an instruct model that follows the format but emits no labelled points). ``varied_reasoning``:
    reasonings of different lengths (:func:`reasoning`) instead of the query alone."""
    base = build_policy_dataset(records, str(Path(out_dir) / "policy"), size=size, negative_points=negative_points)
    rng = np.random.default_rng(seed)
    parts = []
    for c in range(copies):
        answers = []
        for row in base.select_columns(["policy_box", "policy_frame", "category", "query"]):
            frame, label = tuple(row["policy_frame"]), str(row["category"])
            ans = loose_answer(row["policy_box"], frame, rng, label, **loose_kw)
            if negative_points and rng.random() < points_share:
                ans = with_points(ans, frame, rng)
            think = reasoning(row["query"], label, row["policy_box"], frame, rng, varied_reasoning)
            answers.append([{"role": "assistant", "content": [{"type": "text",
                                                               "text": format_completion(ans, think=think)}]}])
        parts.append(base.add_column("completion", answers))
    ds = concatenate_datasets(parts).shuffle(seed=seed)
    return ds.select_columns(["image", "prompt", "completion"])


def fcot_completion(record: dict, policy_box: Sequence[float], frame: tuple[int, int], mask=None) -> str:
    """A Seg-R1-style FCoT target (docs/papers.md: reasoning, then a box, points and fg/bg labels), made from the
    synthetic world's GT: the exact box, one foreground point on the object (a mask pixel near its centre, or
    the box centre) and one background point just outside the box on its wider side."""
    W, H = frame
    x1, y1, x2, y2 = (float(v) for v in policy_box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    fg = (cx, cy)
    if mask is not None:
        m = as_mask(mask, "mask")
        ys, xs = np.nonzero(m)
        if len(xs):
            k = int(np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2))
            fg = scale_point((float(xs[k]), float(ys[k])), (m.shape[1], m.shape[0]), frame)
    gap = 3.0
    bg_x = x2 + gap if (W - x2) > x1 else x1 - gap
    bg = (float(np.clip(bg_x, 0, W - 1)), float(np.clip(cy, 0, H - 1)))
    side = ("left" if cx < W / 3 else "right" if cx > 2 * W / 3 else "middle",
            "top" if cy < H / 3 else "bottom" if cy > 2 * H / 3 else "centre")
    think = (f"The query asks for {record['query']}. That is the {record.get('category') or 'object'} in the "
             f"{side[1]} {side[0]} of the image. I box it, put a point on it and a background point beside it.")
    ans = ObjectAnswer(box=(x1, y1, x2, y2), point=(float(fg[0]), float(fg[1])), label=str(record.get("category")),
                       points=((float(fg[0]), float(fg[1])), bg), point_labels=(1, 0))
    return format_completion(ans, think=think)


def build_fcot_dataset(records: Sequence[dict], out_dir: str | os.PathLike, size: int = 112):
    """Seg-R1's SFT cold start data (an FCoT-style synthetic set): the policy dataset of ``records`` (prompt with
    the labelled-points suffix) with a ``completion`` column from :func:`fcot_completion`."""
    base = build_policy_dataset(records, str(Path(out_dir) / "policy"), size=size, negative_points=True)
    comps = [[{"role": "assistant", "content": [{"type": "text", "text": fcot_completion(r, row["policy_box"],
                                                                                         tuple(row["policy_frame"]),
                                                                                         r["mask"])}]}]
             for r, row in zip(records, base.select_columns(["policy_box", "policy_frame"]))]
    return base.add_column("completion", comps).select_columns(["image", "prompt", "completion"])


def warm_start(
    policy_dir: str | os.PathLike, dataset, out_dir: str | os.PathLike, epochs: float = 1.0, learning_rate: float = 2e-3,
    batch_size: int = 16, seed: int = 0, max_steps: int = -1, freeze_vision: bool = False,
    recipe: dict | None = None,
) -> Path:
    """Supervised warm start with TRL's ``SFTTrainer`` (loss on the completion only); saves model and
    processor to ``out_dir`` and returns it. Skips the work when ``out_dir`` already holds the result.
    ``max_steps`` > 0 trains exactly that many steps (cycling the data) instead of ``epochs``. ``recipe``: what
    made ``dataset``, recorded in ``warm_start.json`` with the rest (so a cached warm start can be checked)."""
    out = Path(out_dir)
    if (out / "warm_start.json").exists():
        return out
    model, processor = load_policy(policy_dir)
    if freeze_vision:  # keep a pretrained vision tower's features (the toy base's) as they are
        model.model.visual.requires_grad_(False)
    args = SFTConfig(
        output_dir=str(out / "trainer"), num_train_epochs=epochs, max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate, lr_scheduler_type="cosine", warmup_steps=10, logging_steps=10,
        save_strategy="no", report_to="none", seed=seed, use_cpu=not torch.cuda.is_available(), bf16=False,
        max_length=None, completion_only_loss=True, dataloader_num_workers=0,
    )
    t0 = time.time()
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor)
    result = trainer.train()
    trainer.save_model(str(out))
    AutoProcessor.from_pretrained(policy_dir).save_pretrained(str(out))
    history = [h for h in trainer.state.log_history if "loss" in h]
    (out / "warm_start.json").write_text(json.dumps({
        "from": str(policy_dir), "rows": len(dataset), "epochs": epochs, "max_steps": max_steps,
        "learning_rate": learning_rate, "freeze_vision": freeze_vision,
        "batch_size": batch_size, "steps": int(trainer.state.global_step), "seconds": round(time.time() - t0, 1),
        "final_loss": history[-1]["loss"] if history else None, "train_loss": result.training_loss, "loss_curve": history,
        "recipe": recipe,
    }, indent=2))
    return out


