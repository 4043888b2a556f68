"""The toy world's pipeline: the whole SAM-R1 pipeline, scaled down until it learns on a 2-core CPU in minutes.

Nothing is swapped out except sizes: the same REFER on-disk layout and loader, the same prompt, Qwen2.5-VL classes
(a tiny one that was taught to see: the committed toy base, :mod:`samr1lib.experiments.base`), parser, rewards,
objective (Eq. 4), TRL trainer and evaluation. The segmenter is GrabCut (no SAM2 weights here). The world is :mod:`samr1lib.data.toy_world`; the
warm start is :mod:`samr1lib.experiments.warm_start`. One seed at a time: :func:`prepare` (world, tiny policy, warm
start, its held-out score) then :func:`run_variant` (GRPO with the ``toy`` preset + overrides, held-out score).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..config import load_config
from ..data.toy_world import HELDOUT_IMAGES, heldout_records, train_records, write_toy_world
from ..evaluate import evaluate
from ..metrics import giou_ciou_from_counts
from ..policy import HFPolicy, load_policy
from ..rewards import tiered_iou_reward
from ..segmenters import build_segmenter
from ..train import train
from .base import BaseRecipe
from .warm_start import WARM_START, build_fcot_dataset, build_sft_dataset, warm_start

__all__ = ["TOY_BASE", "toy_base", "RECIPES", "warm_start_kind", "tier_summary", "box_looseness", "samples", "evaluate_policy", "heldout_grid", "default_root",
           "ensure_world", "prepare", "run_variant"]


def tier_summary(rows: Sequence[dict], tiers=None) -> dict[str, float]:
    """Mean tier reward (Eq. 5 unless ``tiers``; a failed parse scores IoU 0), gIoU, cIoU, parse-failure rate."""
    if not rows:
        raise ValueError("no evaluation rows to summarise")
    giou, ciou = giou_ciou_from_counts([r["intersection"] for r in rows], [r["union"] for r in rows])
    return {
        "n": len(rows),
        "mean_tier": float(np.mean([tiered_iou_reward(r["iou"] if r["failure"] is None else 0.0, tiers) for r in rows])),
        "gIoU": float(giou),
        "cIoU": float(ciou),
        "parse_failure_rate": float(np.mean([r["failure"] is not None for r in rows])),
        "mean_box_iou": float(np.mean([r["box_iou"] or 0.0 for r in rows])),
    }


def box_looseness(rows: Sequence[dict]) -> dict[str, float]:
    """How loose the predicted boxes are: the median of sqrt(predicted area / GT area) (the side ratio; 1 = the GT
    box's size) and the share of answers whose box holds the GT box's centre (a failed parse holds nothing)."""
    ratios, holds = [], []
    for r in rows:
        p, g = r.get("pred_box"), r.get("gt_box")
        if not p or not g:
            holds.append(False)
            continue
        cx, cy = (g[0] + g[2]) / 2, (g[1] + g[3]) / 2
        holds.append(p[0] <= cx <= p[2] and p[1] <= cy <= p[3])
        ratios.append(np.sqrt(max(p[2] - p[0], 0) * max(p[3] - p[1], 0) / max((g[2] - g[0]) * (g[3] - g[1]), 1e-9)))
    return {"median_side_ratio": float(np.median(ratios)) if ratios else float("nan"),
            "holds_centre": float(np.mean(holds)) if holds else float("nan")}


def samples(eval_dir: str | os.PathLike) -> list[dict]:
    """The per-sample rows a finished evaluation wrote (``samples.jsonl``)."""
    with open(Path(eval_dir) / "samples.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


def evaluate_policy(policy_dir: str | os.PathLike, records: Sequence[dict], out_dir: str | os.PathLike,
                    size: int = 112, max_new_tokens: int = 64, batch_size: int = 64, grabcut_iterations: int = 3,
                    show_progress: bool = True, negative_points: bool = False) -> dict[str, float]:
    """Greedy evaluation on ``records`` (GrabCut masks); returns :func:`tier_summary` (+ written files).

    ``negative_points``: the prompt asks for labelled points too (use the prompt the policy was trained on)."""
    model, processor = load_policy(policy_dir)
    policy = HFPolicy(model, processor, max_new_tokens=max_new_tokens, greedy=True, negative_points=negative_points)
    evaluate(records, policy, build_segmenter("grabcut", iterations=grabcut_iterations), str(out_dir), "toy",
             "heldout", batch_size=batch_size, size=size, show_progress=show_progress)
    summary = tier_summary(samples(out_dir))
    (Path(out_dir) / "tier_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def heldout_grid(eval_dir: str | os.PathLike, records: Sequence[dict], out_png: str | os.PathLike, n: int = 6,
                 title: str = "held-out answers") -> Path:
    """The ``n`` best and ``n`` worst greedy answers of a finished evaluation (by mask IoU): image, GT outline,
    predicted mask outline and box (:func:`samr1lib.view.rollout_grid`). ``records``: the evaluated records, in
    order (a sample's key is its index)."""
    import pandas as pd

    from ..view.rollouts import rollout_grid

    rows = []
    for i, s in enumerate(samples(eval_dir)):
        r = records[int(s["key"])]
        ok = s["failure"] is None
        iou = float(s["iou"]) if ok and s["iou"] is not None else 0.0
        rows.append(dict(row_id=i, step=None, query=s["query"], image_path=s["image_path"], height=r["height"],
                         width=r["width"], gt_mask_rle=r["mask"], mask_rle=s.get("pred_mask"),
                         answer={"bbox_2d": s["pred_box"]} if s.get("pred_box") else None,
                         policy_frame=(r["width"], r["height"]), iou=iou, failure=s["failure"],
                         reward=tiered_iou_reward(iou), advantage=None))
    return rollout_grid(pd.DataFrame(rows), out_png, n=n, by="iou", title=title)


# --------------------------------------------------------------------------- the pipeline, one seed at a time


# The toy pipeline's recipes: the training preset (samr1lib.presets), the held-out size and the warm start.
# "toy" is the benchmark; "smoke" runs the same code in seconds (CI: wiring, logs, checkpoint, evaluation output;
# it learns nothing and is not read as a result).
RECIPES: dict[str, dict[str, Any]] = {
    "toy": dict(preset="toy", heldout=HELDOUT_IMAGES, warm_start=WARM_START),
    "smoke": dict(preset="toy_smoke", heldout=8, warm_start=dict(WARM_START, copies=1, batch_size=8)),
}
# The committed toy base (samr1lib.experiments.base): every seed's warm start starts from it, as SAM-R1's runs start
# from Qwen2.5-VL-7B-Instruct. Rebuild: python -m samr1lib.bench base --out samr1lib/experiments/toy_base
TOY_BASE = Path(__file__).resolve().parent / "toy_base"


def toy_base(path: str | os.PathLike = TOY_BASE) -> Path:
    """The toy base's folder, checked to hold the base of today's recipe (its key is in base.json)."""
    path = Path(path)
    info = path / "base.json"
    if not info.exists():
        raise FileNotFoundError(f"no toy base in {path}: build it with python -m samr1lib.bench base --out {path}")
    key = json.loads(info.read_text())["recipe_key"]
    if key != BaseRecipe().key():
        raise ValueError(f"{path} holds a toy base of recipe {key}, not today's {BaseRecipe().key()}: rebuild it with "
                         f"python -m samr1lib.bench base --out {path}")
    return path


def _recipe(scale: str) -> dict[str, Any]:
    if scale not in RECIPES:
        raise ValueError(f"unknown scale {scale!r} for the toy pipeline; choose one of {sorted(RECIPES)}")
    return RECIPES[scale]


def _cfg(root: Path, seed: int, name: str, control: str, overrides: Sequence[str], scale: str = "toy"):
    return load_config(_recipe(scale)["preset"], overrides=[
        f"data_root={root / 'world'}", f"seed={seed}", f"control={control}", f"output_dir={root / f'seed{seed}' / name}",
        *overrides])


def default_root(scale: str) -> str:
    """Where a scale's toy pipeline keeps its runs: ``runs/toy_bench`` (the benchmark's) or ``runs/smoke_toy``."""
    _recipe(scale)
    return "runs/toy_bench" if scale == "toy" else f"runs/{scale}_toy"


def _write_world(cfg, n_heldout: int) -> dict[str, Any]:
    return write_toy_world(cfg.data_root, n_train_images=cfg.world_images, n_heldout=n_heldout, size=cfg.world_image_size,
                           position_gradient=cfg.world_position_gradient, seed=cfg.data_seed)


def ensure_world(root: str | os.PathLike, scale: str = "toy", overrides: Sequence[str] = ()) -> Path:
    """Write (once) the toy world of ``scale`` under ``root/world``; returns that folder."""
    cfg = _cfg(Path(root), 0, "_", "none", overrides, scale)
    _write_world(cfg, _recipe(scale)["heldout"])
    return Path(cfg.data_root)


def _warm_kind(cfg) -> str:
    if cfg.seg_reward == "segr1":
        return "cold_start_fcot"
    return "warm_start_labelled_points" if cfg.labelled_points_prompt else "warm_start"


def warm_start_kind(root: str | os.PathLike, seed: int, overrides: Sequence[str] = (), scale: str = "toy") -> str:
    """Which warm start a variant starts from (runs sharing it share one cached warm start)."""
    return _warm_kind(_cfg(Path(root), seed, "_", "none", overrides, scale))


def _warm_start_for(cfg, base: Path, policy: Path, seed: int, recipe: dict[str, Any]) -> Path:
    """The warm start of one seed and prompt (cached). SAM-R1 / StAR start from an instruct model (here: the loose
    warm start); Seg-R1 from an SFT cold start on FCoT data (here the synthetic FCoT set). It is trained on the
    prompt the GRPO run will use, as an instruct model follows whichever instruction it is given: the
    labelled-points prompt for negative_points != none. The loose answers stay box + point + label there, so
    labelled points are left for the RL to discover (Appendix A.2)."""
    fcot, neg = cfg.seg_reward == "segr1", cfg.labelled_points_prompt
    warm = base / _warm_kind(cfg)
    info = warm / "warm_start.json"
    if info.exists():
        saved = json.loads(info.read_text()).get("recipe")
        if saved != _jsonable(recipe):
            raise ValueError(f"{warm} holds a warm start of another recipe ({saved}), not today's {_jsonable(recipe)}: "
                             "delete that folder (or use another --out) to rebuild it")
    else:
        if fcot:
            ds = build_fcot_dataset(train_records(cfg.data_root), base / "fcot_data", size=cfg.image_size)
        else:
            ds = build_sft_dataset(train_records(cfg.data_root), base / f"sft_data{'_labelled_points' if neg else ''}",
                                   size=cfg.image_size, copies=recipe["copies"], seed=seed, negative_points=neg,
                                   varied_reasoning=recipe["varied_reasoning"], points_share=recipe["points_share"],
                                   shift=recipe["shift"], enlarge=recipe["enlarge"])
        warm_start(policy, ds, warm, epochs=recipe["epochs"], learning_rate=recipe["learning_rate"],
                   batch_size=recipe["batch_size"], seed=seed, freeze_vision=recipe.get("freeze_vision", False),
                   recipe=_jsonable(recipe))
    return warm


def _jsonable(recipe: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(recipe))  # tuples -> lists, as read back from warm_start.json


def prepare(root: str | os.PathLike, seed: int = 0, overrides: Sequence[str] = (), show_progress: bool = True,
            scale: str = "toy") -> dict[str, Any]:
    """World (shared by every seed under ``root``), the warm start of ``seed`` from the toy base, and its held-out
    score.

    Everything is cached: a second call (another variant, the control) reuses it. Returns paths and the
    "before" summary."""
    root = Path(root)
    cfg = _cfg(root, seed, "_", "none", overrides, scale)
    t0 = time.time()
    world = _write_world(cfg, _recipe(scale)["heldout"])
    base = root / f"seed{seed}"
    policy = toy_base()
    warm = _warm_start_for(cfg, base, policy, seed, _recipe(scale)["warm_start"])
    before_path = base / f"eval_{warm.name}" / "tier_summary.json"
    if before_path.exists():
        before = json.loads(before_path.read_text())
    else:
        before = evaluate_policy(warm, heldout_records(cfg.data_root), before_path.parent, size=cfg.image_size,
                                 max_new_tokens=cfg.max_completion_length, show_progress=show_progress,
                                 negative_points=cfg.labelled_points_prompt)
    return {"world": world, "policy": str(policy), "warm_start": str(warm), "before": before,
            "warm_start_info": json.loads((warm / "warm_start.json").read_text()), "seconds": time.time() - t0}


def run_variant(root: str | os.PathLike, seed: int = 0, name: str = "grpo", overrides: Sequence[str] = (),
                control: str = "none", show_progress: bool = True, scale: str = "toy") -> dict[str, Any]:
    """Warm start (cached) -> GRPO with the ``toy`` preset + ``overrides`` -> greedy held-out evaluation.

    Writes ``root/seed{seed}/{name}/result.json`` (before/after summaries, timings, the config) and returns it;
    a finished variant is not rerun."""
    root = Path(root)
    out = root / f"seed{seed}" / name
    wanted = dataclasses.asdict(_cfg(root, seed, name, control, overrides, scale))
    wanted.pop("policy")
    if (out / "result.json").exists():
        saved = json.loads((out / "result.json").read_text())
        diff = {k: (saved.get("config", {}).get(k), v) for k, v in wanted.items() if saved.get("config", {}).get(k) != v}
        if diff:
            raise ValueError(f"{out} holds a finished run with another config (field: (saved, asked)) {diff}; "
                             "delete that folder to rerun it")
        return saved
    prep = prepare(root, seed, overrides, show_progress, scale)
    cfg = _cfg(root, seed, name, control, [*overrides, f"policy={prep['warm_start']}"], scale)
    t0 = time.time()
    train(cfg)
    t_train = time.time() - t0
    after = evaluate_policy(out / "final", heldout_records(cfg.data_root), out / "eval", size=cfg.image_size,
                            max_new_tokens=cfg.max_completion_length, show_progress=show_progress,
                            negative_points=cfg.labelled_points_prompt)
    result = {
        "seed": seed, "name": name, "scale": scale, "control": control, "overrides": list(overrides),
        "before": prep["before"], "after": after,
        "change_in_mean_tier": after["mean_tier"] - prep["before"]["mean_tier"],
        "seconds": {"warm_start": prep["warm_start_info"]["seconds"], "grpo": round(t_train, 1),
                    "total_this_call": round(time.time() - t0 + prep["seconds"], 1)},
        "steps": cfg.max_steps, "metrics": str(out / "metrics.jsonl"), "config": wanted,
        # CPU float sums depend on the thread count: runs are bitwise repeatable for the same count only
        "torch_threads": torch.get_num_threads(),
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))
    return result


