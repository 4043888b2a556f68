"""Can the tiny policy localise at all? Probes under the learning benchmark: box-centre correlation, the loss with
its own vs another image, which object an answer points at by the kind of expression, and an exact-box SFT probe
(``python -m samr1lib.bench localisation``)."""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..data.synthetic import expression_kind
from ..data.toy_world import heldout_objects, heldout_records, train_records, write_toy_world
from ..policy import build_tiny_policy, load_policy
from .toy import evaluate_policy, samples
from .warm_start import build_sft_dataset, warm_start

__all__ = ["TOY_POLICY", "box_centre_correlation", "image_dependence", "localisation_probe", "looseness_probe",
           "base_heldout_probe", "object_picks"]

# The random tiny policy the probe fine-tunes (samr1lib.policy.build_tiny_policy's arguments).
TOY_POLICY: dict[str, int] = dict(hidden_size=64, num_layers=2, intermediate_size=128, vision_hidden_size=32,
                                  vision_depth=1)


def box_centre_correlation(rows: Sequence[dict]) -> dict[str, float]:
    """Pearson correlation of predicted and GT box centres, in x and in y, over the evaluation rows that have
    both boxes: how much image-dependent position the answers carry (about 0: image-blind). A prediction that
    does not vary carries no position: 0. ``n`` is the number of rows used."""
    pairs = [(r["pred_box"], r["gt_box"]) for r in rows if r.get("pred_box") and r.get("gt_box")]
    out: dict[str, float] = {"n": len(pairs)}
    for axis, (a, b) in (("x", (0, 2)), ("y", (1, 3))):
        pred = np.array([(p[a] + p[b]) / 2 for p, _ in pairs], dtype=float)
        gt = np.array([(g[a] + g[b]) / 2 for _, g in pairs], dtype=float)
        ok = len(pairs) >= 2 and pred.std() > 0 and gt.std() > 0
        out[f"corr_{axis}"] = float(np.corrcoef(pred, gt)[0, 1]) if ok else 0.0
    return out


def object_picks(rows: Sequence[dict],
                 objects: Mapping[str, Sequence[Sequence[float]]]) -> dict[str, dict[str, float]]:
    """Does an answer point at the object its expression names? For the evaluation ``rows`` whose image holds
    more than one object (``objects``: every object's box by image path,
    :func:`samr1lib.data.toy_world.heldout_objects`): the object an answer points at is the one whose box centre
    lies nearest the predicted box's centre (a loose box still points somewhere; no box points at nothing).
    Returns, per expression kind (:func:`samr1lib.data.synthetic.expression_kind`) and for "all": ``n`` rows,
    the share ``on_target`` and the share a random pick would have (``chance``, the mean of 1 / objects)."""
    tally: dict[str, list[tuple[bool, float]]] = {}
    for row in rows:
        boxes = objects.get(row["image_path"], ())
        if len(boxes) < 2 or not row.get("gt_box"):
            continue
        p, hit = row.get("pred_box"), False
        if p:
            nearest = min(boxes, key=lambda b: (b[0] + b[2] - p[0] - p[2]) ** 2 + (b[1] + b[3] - p[1] - p[3]) ** 2)
            hit = bool(np.allclose(nearest, row["gt_box"], atol=1e-6))
        for key in (expression_kind(row["query"]), "all"):
            tally.setdefault(key, []).append((hit, 1.0 / len(boxes)))
    return {k: {"n": len(v), "on_target": float(np.mean([h for h, _ in v])),
                "chance": float(np.mean([c for _, c in v]))} for k, v in sorted(tally.items())}


def image_dependence(policy_dir: str | os.PathLike, dataset, n: int = 64) -> dict[str, float]:
    """Does the policy's answer depend on its image at all? The mean completion loss (teacher-forced, per token)
    of the first ``n`` rows of ``dataset`` (columns image / prompt / completion, as :func:`build_sft_dataset`
    writes) with each row's own image, and with the image of the next row instead (rotated by one). Equal losses:
    the answers ignore the image, whatever generation shows; ``loss_gap`` = other - own."""
    rows = list(dataset.select(range(min(n, len(dataset)))))
    if len(rows) < 2:
        raise ValueError(f"image_dependence needs at least 2 rows to swap images, got {len(rows)}")
    model, processor = load_policy(policy_dir)
    model.eval()

    def mean_loss(images) -> float:
        total = tokens = 0.0
        for row, image in zip(rows, images):
            prompt = processor.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
            full = processor(text=[prompt + row["completion"][0]["content"][0]["text"]], images=[image],
                             return_tensors="pt")
            n_prompt = processor(text=[prompt], images=[image], return_tensors="pt")["input_ids"].shape[1]
            labels = full["input_ids"].clone()
            labels[:, :n_prompt] = -100
            with torch.no_grad():
                loss = model(**full, labels=labels).loss
            k = int((labels[:, 1:] != -100).sum())  # the loss is the mean over the shifted labels
            total, tokens = total + float(loss) * k, tokens + k
        return total / tokens

    images = [r["image"] for r in rows]
    own, other = mean_loss(images), mean_loss(images[1:] + images[:1])
    return {"loss_own_image": own, "loss_other_image": other, "loss_gap": other - own, "rows": len(rows)}


def localisation_probe(
    root: str | os.PathLike, steps: int = 500, max_objects: int = 1, position_gradient: float = 0.5, seed: int = 0,
    policy: dict[str, int] | None = None, n_train_images: int = 1000, n_heldout: int = 128,
    learning_rate: float = 2e-3, batch_size: int = 16, show_progress: bool = True,
) -> dict[str, Any]:
    """Does supervised training on EXACT boxes make the tiny policy localise? The question under the learning
    benchmark: GRPO can only sharpen what the policy can express, and a policy whose boxes ignore the image can
    only learn image-independent boxes.

    Writes a toy world (``max_objects`` = 1: one shape per image, so the query need not be read), builds the
    tiny policy (:data:`TOY_POLICY` updated by ``policy``), fine-tunes it for ``steps`` steps on exact answers
    (:func:`build_sft_dataset` with no jitter and no enlargement), evaluates greedily on the held-out images
    and returns :func:`tier_summary` + :func:`box_centre_correlation` + :func:`image_dependence` on the held-out
    exact answers + timings (saved as ``root/probe.json``; a finished probe is read back, not rerun)."""
    root = Path(root)
    shape = dict(TOY_POLICY, **(policy or {}))
    asked = dict(steps=steps, max_objects=max_objects, position_gradient=position_gradient, seed=seed, policy=shape,
                 n_train_images=n_train_images, n_heldout=n_heldout, learning_rate=learning_rate,
                 batch_size=batch_size)
    done = root / "probe.json"
    if done.exists():
        saved = json.loads(done.read_text())
        if saved.get("asked") != asked:
            raise ValueError(f"{root} holds a probe run with other settings ({saved.get('asked')}, asked {asked}); "
                             "use another folder or delete it")
        return saved
    known = set(inspect.signature(build_tiny_policy).parameters) - {"out_dir", "seed"}
    bad = sorted(set(shape) - known)
    if bad:
        raise ValueError(f"unknown tiny-policy argument(s) {bad}; build_tiny_policy takes {sorted(known)}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    write_toy_world(root / "world", n_train_images=n_train_images, n_heldout=n_heldout,
                    position_gradient=position_gradient, max_objects=max_objects, seed=seed)
    pol = root / "tiny_policy"
    if not (pol / "tiny_policy.json").exists():
        build_tiny_policy(pol, seed=seed, **shape)
    ds = build_sft_dataset(train_records(root / "world"), root / "sft_data", copies=1, seed=seed, shift=0.0,
                           enlarge=(1.0, 1.0))
    ws = warm_start(pol, ds, root / "exact_sft", max_steps=steps, learning_rate=learning_rate, batch_size=batch_size,
                    seed=seed)
    info = json.loads((ws / "warm_start.json").read_text())
    summary = evaluate_policy(ws, heldout_records(root / "world"), root / "eval", show_progress=show_progress)
    heldout_answers = build_sft_dataset(heldout_records(root / "world"), root / "heldout_data", copies=1, seed=seed,
                                        shift=0.0, enlarge=(1.0, 1.0))
    dependence = {k: v for k, v in image_dependence(ws, heldout_answers).items() if k != "rows"}
    result = {
        "sft_steps": info["steps"], "max_objects": max_objects, "position_gradient": position_gradient, "seed": seed,
        "policy": shape, "n_train_rows": len(ds), "sft_seconds": info["seconds"], "final_loss": info["final_loss"],
        **summary, **{k: v for k, v in box_centre_correlation(samples(root / "eval")).items() if k != "n"},
        **dependence,
        "torch_threads": torch.get_num_threads(), "asked": asked,
    }
    done.write_text(json.dumps(result, indent=2))
    return result


def looseness_probe(records: Sequence[dict], enlarges: Sequence[float] = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5),
                    shifts: Sequence[float] = (0.0, 0.15, 0.3), iterations: int = 3, seed: int = 0) -> list[dict]:
    """What the reward sees of a loose box: GrabCut (the toy's segmenter) prompted with each GT box enlarged by
    ``enlarge`` (sides, about its centre) after moving the centre by N(0, ``shift`` x side), clipped to the image,
    the point at the moved centre. Returns one row per (enlarge, shift): mean mask IoU, mean Eq. 5 tier, mean box
    IoU. Chooses the warm start's looseness: a loose box the segmenter forgives leaves the reward nothing to
    prefer."""
    from PIL import Image

    from ..masks import as_mask
    from ..metrics import box_iou, mask_iou
    from ..rewards import tiered_iou_reward
    from ..segmenters import SegPrompt, build_segmenter

    if not records:
        raise ValueError("looseness_probe needs at least one record")
    seg = build_segmenter("grabcut", iterations=iterations)
    images = {p: np.asarray(Image.open(p).convert("RGB")) for p in {r["image_path"] for r in records}}
    gts = [as_mask(r["mask"], f"mask of {r.get('sample_id')}") for r in records]  # decoded once, used per setting
    rows = []
    for enlarge in enlarges:
        for shift in shifts:
            rng = np.random.default_rng(seed)
            ious, tiers, boxes = [], [], []
            for r, gt in zip(records, gts):
                x1, y1, x2, y2 = r["box"]
                w, h = x2 - x1, y2 - y1
                cx, cy = (x1 + x2) / 2 + rng.normal(0, shift * w), (y1 + y2) / 2 + rng.normal(0, shift * h)
                H, W = gt.shape
                box = (max(cx - enlarge * w / 2, 0.0), max(cy - enlarge * h / 2, 0.0),
                       min(cx + enlarge * w / 2, W - 1.0), min(cy + enlarge * h / 2, H - 1.0))
                mask = seg.segment(images[r["image_path"]], [SegPrompt(box=box, points=((cx, cy),), labels=(1,))])[0]
                iou = mask_iou(mask, gt)
                ious.append(iou)
                tiers.append(tiered_iou_reward(iou))
                boxes.append(box_iou(box, r["box"]))
            rows.append({"enlarge": enlarge, "shift": shift, "n": len(records), "mask_iou": float(np.mean(ious)),
                         "mean_tier": float(np.mean(tiers)), "box_iou": float(np.mean(boxes))})
    return rows


def base_heldout_probe(policy_dir: str | os.PathLike, root: str | os.PathLike, show_progress: bool = True) -> dict:
    """The toy base (or any policy) on the toy world's held-out set, before any warm start: greedy answers to the
    full prompt (:func:`tier_summary`), the box-centre correlation with the GT (on every image, and under
    ``one_object_images`` on those with one object), which object the answers point at on the others
    (:func:`object_picks`, under ``object_picks``) and the completion loss of the exact answers with each image vs
    another (:func:`image_dependence`, 64 rows). ``root`` holds the world (written if missing) and the evaluation
    (``base_eval/``, resumable)."""
    from .toy import ensure_world

    root = Path(root)
    world = ensure_world(root)
    records = heldout_records(world)
    out = root / "base_eval"
    summary = evaluate_policy(policy_dir, records, out, show_progress=show_progress)
    exact = build_sft_dataset(records, root / "base_heldout_answers", copies=1, shift=0.0, enlarge=(1.0, 1.0))
    rows, objects = samples(out), heldout_objects(world)
    alone = [r for r in rows if len(objects.get(r["image_path"], ())) == 1]
    return {**summary, **{k: v for k, v in box_centre_correlation(rows).items() if k != "n"},
            "one_object_images": box_centre_correlation(alone), "object_picks": object_picks(rows, objects),
            **{k: v for k, v in image_dependence(policy_dir, exact).items() if k != "rows"}}
