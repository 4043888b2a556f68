"""The toy world: the whole SAM-R1 pipeline, scaled down until it learns on a 2-core CPU in minutes.

Nothing is swapped out except sizes: the same REFER on-disk layout and loader, the same prompt,
Qwen2.5-VL classes (tiny and random, :func:`samr1lib.policy.build_tiny_policy`), parser, rewards,
objective (Eq. 4), TRL trainer and evaluation. The segmenter is GrabCut (no SAM2 weights here).

The task (properties of the WORLD, to state when reading its results):

* images are ``size`` x ``size`` (112 by default) with 1-3 coloured shapes on blurred colour noise
  (:func:`samr1lib.synthetic.write_refer_world`); each query is a RefCOCO-style expression that
  singles out one shape by colour, shape and/or position ("red circle", "left star", ...);
* every background carries a faint position gradient (``position_gradient``, default 0.5: up to
  +-20 grey levels, red growing left to right, blue top to bottom). It is an absolute-position cue
  a ~0.3M-parameter vision tower can pick up; without it, a probe found localisation unreliable;
* the held-out set is a separate world of 512 images written with a fixed seed
  (:data:`HELDOUT_SEED`), one query per image; the training world never shares an image with it.

The warm start (:func:`warm_start`) plays the role of the instruct model SAM-R1 starts from: a
short supervised fine-tune with TRL's ``SFTTrainer`` on answers in our schema whose boxes are
deliberately LOOSE (centre jittered by N(0, ``shift`` x size), then enlarged by U(``enlarge``)), so the
warm-started policy answers in format but earns low tiers, leaving the RL room to improve.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .schema import ObjectAnswer, format_completion

__all__ = [
    "HELDOUT_IMAGES",
    "HELDOUT_SEED",
    "write_toy_world",
    "train_records",
    "heldout_records",
    "loose_answer",
    "build_sft_dataset",
    "warm_start",
    "evaluate_policy",
    "tier_summary",
    "SCALES",
    "default_root",
    "ensure_world",
    "prepare",
    "run_variant",
    "box_centre_correlation",
    "image_dependence",
    "localisation_probe",
]

HELDOUT_IMAGES = 512  # issue 7: a fixed held-out set of 512 images
HELDOUT_SEED = 10_000  # fixed: every run, seed and control is scored on the same 512 images
TOY_DATASET = "refcoco"  # RefCOCO-style expressions: colour, shape, absolute position words


def write_toy_world(
    root: str | os.PathLike, n_train_images: int = 1000, n_heldout: int | None = HELDOUT_IMAGES, size: int = 112,
    position_gradient: float = 0.5, max_objects: int = 3, seed: int = 0,
) -> dict[str, Any]:
    """Write ``root/train`` and ``root/heldout`` (two REFER folders); reuse them when already written alike.

    Returns the parameters and the counts (also saved as ``root/toy_world.json``).
    """
    from .synthetic import write_refer_world

    root = Path(root)
    marker = root / "toy_world.json"
    saved = json.loads(marker.read_text()) if marker.exists() else None
    if n_heldout is None:  # the caller only needs the training world (the trainer): keep whatever held-out set exists
        n_heldout = saved["params"]["n_heldout"] if saved else HELDOUT_IMAGES
    params = dict(n_train_images=n_train_images, n_heldout=n_heldout, size=size, position_gradient=position_gradient,
                  max_objects=max_objects, seed=seed, heldout_seed=HELDOUT_SEED)
    if saved is not None:
        if saved["params"] == params:
            return saved
        raise ValueError(f"{root} holds a toy world written with other parameters ({saved['params']}, asked {params}); "
                         "use another folder or delete it")
    kw = dict(size=(size, size), position_gradient=position_gradient, max_objects=max_objects, datasets=(TOY_DATASET,))
    counts = {
        "train": write_refer_world(str(root / "train"), n_images=n_train_images, seed=seed, **kw),
        "heldout": write_refer_world(str(root / "heldout"), n_images=n_heldout, seed=HELDOUT_SEED, **kw),
    }
    saved = {"params": params, "counts": counts}
    marker.write_text(json.dumps(saved, indent=2))
    return saved


def train_records(root: str | os.PathLike) -> list[dict]:
    """Every expression of every image of the training world (all REFER splits of ``root/train``)."""
    from .data import load_refer

    return list(load_refer(str(Path(root) / "train"), TOY_DATASET, "all"))


def heldout_records(root: str | os.PathLike) -> list[dict]:
    """The held-out set: one query per image (its first ref's first expression), in image-id order."""
    from .data import load_refer

    seen, out = set(), []
    for r in sorted(load_refer(str(Path(root) / "heldout"), TOY_DATASET, "all"), key=lambda r: (r["image_id"], r["ref_id"],
                                                                                               r["sent_id"])):
        if r["image_id"] not in seen:
            seen.add(r["image_id"])
            out.append(r)
    return out


def loose_answer(
    box: Sequence[float], frame: tuple[int, int], rng: np.random.Generator, label: str,
    shift: float = 0.15, enlarge: tuple[float, float] = (1.4, 2.0),
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


def build_sft_dataset(records: Sequence[dict], out_dir: str | os.PathLike, size: int = 112, copies: int = 2,
                      seed: int = 0, negative_points: bool = False, **loose_kw):
    """The policy dataset of ``records`` with a ``completion`` column: ``copies`` loose answers per record
    (different jitters, so SFT learns the loose distribution rather than one box per image).

    ``negative_points``: the prompts ask for labelled points too (the prompt of the negative-points variants); the
    answers stay box + point + label, as an instruct model that follows the format but emits no labelled points."""
    from datasets import concatenate_datasets

    from .data import build_policy_dataset

    base = build_policy_dataset(records, str(Path(out_dir) / "policy"), size=size, negative_points=negative_points)
    rng = np.random.default_rng(seed)
    parts = []
    for c in range(copies):
        answers = []
        for row in base.select_columns(["policy_box", "policy_frame", "category", "query"]):
            ans = loose_answer(row["policy_box"], tuple(row["policy_frame"]), rng, str(row["category"]), **loose_kw)
            answers.append([{"role": "assistant",
                             "content": [{"type": "text", "text": format_completion(ans, think=row["query"])}]}])
        parts.append(base.add_column("completion", answers))
    ds = concatenate_datasets(parts).shuffle(seed=seed)
    return ds.select_columns(["image", "prompt", "completion"])


def fcot_completion(record: dict, policy_box: Sequence[float], frame: tuple[int, int], mask=None) -> str:
    """A Seg-R1-style FCoT target (PAPER.md §7: reasoning, then a box, points and fg/bg labels), made from the
    synthetic world's GT: the exact box, one foreground point on the object (a mask pixel near its centre, or
    the box centre) and one background point just outside the box on its wider side."""
    from .frames import scale_point
    from .masks import as_mask
    from .schema import ObjectAnswer

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
    from .data import build_policy_dataset

    base = build_policy_dataset(records, str(Path(out_dir) / "policy"), size=size, negative_points=True)
    comps = [[{"role": "assistant", "content": [{"type": "text", "text": fcot_completion(r, row["policy_box"],
                                                                                         tuple(row["policy_frame"]),
                                                                                         r["mask"])}]}]
             for r, row in zip(records, base.select_columns(["policy_box", "policy_frame"]))]
    return base.add_column("completion", comps).select_columns(["image", "prompt", "completion"])


def warm_start(
    policy_dir: str | os.PathLike, dataset, out_dir: str | os.PathLike, epochs: float = 1.0, learning_rate: float = 2e-3,
    batch_size: int = 16, seed: int = 0, max_steps: int = -1,
) -> Path:
    """Supervised warm start with TRL's ``SFTTrainer`` (loss on the completion only); saves model and
    processor to ``out_dir`` and returns it. Skips the work when ``out_dir`` already holds the result.
    ``max_steps`` > 0 trains exactly that many steps (cycling the data) instead of ``epochs``."""
    out = Path(out_dir)
    if (out / "warm_start.json").exists():
        return out
    import time

    import torch
    from transformers import AutoProcessor
    from trl import SFTConfig, SFTTrainer

    from .policy import load_policy

    model, processor = load_policy(policy_dir)
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
        "learning_rate": learning_rate,
        "batch_size": batch_size, "steps": int(trainer.state.global_step), "seconds": round(time.time() - t0, 1),
        "final_loss": history[-1]["loss"] if history else None, "train_loss": result.training_loss, "loss_curve": history,
    }, indent=2))
    return out


def tier_summary(rows: Sequence[dict], tiers=None) -> dict[str, float]:
    """Mean tier reward (Eq. 5 unless ``tiers``; a failed parse scores IoU 0), gIoU, cIoU, parse-failure rate."""
    from .metrics import giou_ciou_from_counts
    from .rewards import tiered_iou_reward

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


def _samples(eval_dir: str | os.PathLike) -> list[dict]:
    """The per-sample rows an evaluation wrote (``samples.jsonl``)."""
    with open(Path(eval_dir) / "samples.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


def evaluate_policy(policy_dir: str | os.PathLike, records: Sequence[dict], out_dir: str | os.PathLike,
                    size: int = 112, max_new_tokens: int = 64, batch_size: int = 64, grabcut_iterations: int = 3,
                    show_progress: bool = True, negative_points: bool = False) -> dict[str, float]:
    """Greedy evaluation on ``records`` (GrabCut masks); returns :func:`tier_summary` (+ written files).

    ``negative_points``: the prompt asks for labelled points too (use the prompt the policy was trained on)."""
    from .evaluate import HFPolicy, evaluate
    from .policy import load_policy
    from .segmenters import build_segmenter

    model, processor = load_policy(policy_dir)
    policy = HFPolicy(model, processor, max_new_tokens=max_new_tokens, greedy=True, negative_points=negative_points)
    evaluate(records, policy, build_segmenter("grabcut", iterations=grabcut_iterations), str(out_dir), "toy",
             "heldout", batch_size=batch_size, size=size, show_progress=show_progress)
    summary = tier_summary(_samples(out_dir))
    (Path(out_dir) / "tier_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


# --------------------------------------------------------------------------- the pipeline, one seed at a time

# The warm start recipe (issue 7). Not the paper's (SAM-R1 starts from Qwen2.5-VL-7B-Instruct): a stand-in
# chosen on this machine so that the warm-started policy answers in format with loose boxes. Untuned per variant.
WARM_START = dict(
    copies=2,  # loose answers per training expression (two jitters each)
    epochs=1.0,  # one pass over them (515 steps of 16)
    learning_rate=2e-3,  # AdamW, cosine; a random-init 0.3M model needs a large step
    batch_size=16,
    shift=0.15,  # loose box: centre ~ N(0, 0.15 x side) off
    enlarge=(1.4, 2.0),  # and sides x U(1.4, 2.0)
)
# The tiny policy's shape for the toy world (samr1lib.policy.build_tiny_policy's arguments).
TOY_POLICY: dict[str, int] = dict(hidden_size=64, num_layers=2, intermediate_size=128, vision_hidden_size=32,
                                  vision_depth=1)


# Scales of the toy pipeline. "toy" is the benchmark (issue 7); "smoke" runs the same code in seconds (CI:
# wiring, logs, checkpoint, evaluation output; it learns nothing and is not read as a result).
SCALES: dict[str, dict[str, Any]] = {
    "toy": dict(heldout=HELDOUT_IMAGES, warm_start=WARM_START, overrides=()),
    "smoke": dict(
        heldout=8,
        warm_start=dict(WARM_START, copies=1, batch_size=8),
        overrides=("synthetic_images=16", "n_train=16", "max_steps=2", "save_steps=1", "max_completion_length=24",
                   "per_device_train_batch_size=8", "num_generations=4", "grabcut_iterations=1"),
    ),
}


def _scale(scale: str) -> dict[str, Any]:
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r} for the toy pipeline; choose one of {sorted(SCALES)}")
    return SCALES[scale]


def _cfg(root: Path, seed: int, name: str, control: str, overrides: Sequence[str], scale: str = "toy"):
    from .config import load_config

    return load_config("toy", overrides=[*_scale(scale)["overrides"], f"data_root={root / 'world'}", f"seed={seed}",
                                         f"control={control}", f"output_dir={root / f'seed{seed}' / name}", *overrides])


def default_root(scale: str) -> str:
    """Where a scale's toy pipeline keeps its runs: ``runs/toy_bench`` (the benchmark's) or ``runs/smoke_toy``."""
    _scale(scale)
    return "runs/toy_bench" if scale == "toy" else f"runs/{scale}_toy"


def write_world_for(cfg, n_heldout: int | None = HELDOUT_IMAGES) -> dict[str, Any]:
    """:func:`write_toy_world` for a :class:`samr1lib.config.TrainConfig` (its data_root, synthetic_images,
    synthetic_size, position_gradient and data_seed); ``n_heldout=None`` keeps whatever held-out set exists."""
    return write_toy_world(cfg.data_root, n_train_images=cfg.synthetic_images, n_heldout=n_heldout,
                           size=cfg.synthetic_size, position_gradient=cfg.position_gradient, seed=cfg.data_seed)


def ensure_world(root: str | os.PathLike, scale: str = "toy", overrides: Sequence[str] = ()) -> Path:
    """Write (once) the toy world of ``scale`` under ``root/world``; returns that folder."""
    cfg = _cfg(Path(root), 0, "_", "none", overrides, scale)
    write_world_for(cfg, _scale(scale)["heldout"])
    return Path(cfg.data_root)


def prepare(root: str | os.PathLike, seed: int = 0, overrides: Sequence[str] = (), show_progress: bool = True,
            scale: str = "toy") -> dict[str, Any]:
    """World (shared by every seed under ``root``), tiny policy, warm start and its held-out score for ``seed``.

    Everything is cached: a second call (another variant, the control) reuses it. Returns paths and the
    "before" summary."""
    import time

    from .policy import build_tiny_policy

    root = Path(root)
    cfg = _cfg(root, seed, "_", "none", overrides, scale)
    t0 = time.time()
    world = write_world_for(cfg, _scale(scale)["heldout"])
    base = root / f"seed{seed}"
    policy = base / "tiny_policy"
    if not (policy / "tiny_policy.json").exists():
        build_tiny_policy(policy, seed=seed, **TOY_POLICY)
    # SAM-R1 / StAR start from an instruct model (here: the loose warm start); Seg-R1 from an SFT cold start on
    # FCoT data (PAPER.md §7; here the synthetic FCoT set of build_fcot_dataset)
    # The warm start is trained on the prompt the GRPO run will use (as an instruct model follows whichever
    # instruction it is given): the labelled-points prompt for negative_points != none. The loose answers stay
    # box + point + label there, so labelled points are left for the RL to discover (Appendix A.2).
    fcot, neg = cfg.seg_reward == "segr1", cfg.labelled_points_prompt
    warm = base / ("cold_start_fcot" if fcot else "warm_start_labelled_points" if neg else "warm_start")
    if not (warm / "warm_start.json").exists():
        rec = _scale(scale)["warm_start"]
        if fcot:
            ds = build_fcot_dataset(train_records(cfg.data_root), base / "fcot_data", size=cfg.image_size)
        else:
            ds = build_sft_dataset(train_records(cfg.data_root), base / f"sft_data{'_labelled_points' if neg else ''}",
                                   size=cfg.image_size, copies=rec["copies"], seed=seed, negative_points=neg,
                                   shift=rec["shift"], enlarge=rec["enlarge"])
        warm_start(policy, ds, warm, epochs=rec["epochs"], learning_rate=rec["learning_rate"],
                   batch_size=rec["batch_size"], seed=seed)
    before_path = base / f"eval_{warm.name}" / "tier_summary.json"
    if before_path.exists():
        before = json.loads(before_path.read_text())
    else:
        before = evaluate_policy(warm, heldout_records(cfg.data_root), before_path.parent, size=cfg.image_size,
                                 max_new_tokens=cfg.max_completion_length, show_progress=show_progress,
                                 negative_points=neg)
    return {"world": world, "policy": str(policy), "warm_start": str(warm), "before": before,
            "warm_start_info": json.loads((warm / "warm_start.json").read_text()), "seconds": time.time() - t0}


def run_variant(root: str | os.PathLike, seed: int = 0, name: str = "grpo", overrides: Sequence[str] = (),
                control: str = "none", show_progress: bool = True, scale: str = "toy") -> dict[str, Any]:
    """Warm start (cached) -> GRPO with the ``toy`` preset + ``overrides`` -> greedy held-out evaluation.

    Writes ``root/seed{seed}/{name}/result.json`` (before/after summaries, timings, the config) and returns it;
    a finished variant is not rerun."""
    import dataclasses
    import time

    import torch

    from .train import train

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


# --------------------------------------------------------------------------- can the tiny policy localise at all?

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


def image_dependence(policy_dir: str | os.PathLike, dataset, n: int = 64) -> dict[str, float]:
    """Does the policy's answer depend on its image at all? The mean completion loss (teacher-forced, per token)
    of the first ``n`` rows of ``dataset`` (columns image / prompt / completion, as :func:`build_sft_dataset`
    writes) with each row's own image, and with the image of the next row instead (rotated by one). Equal losses:
    the answers ignore the image, whatever generation shows; ``loss_gap`` = other - own."""
    import torch

    from .policy import load_policy

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
    """Does supervised training on EXACT boxes make the tiny policy localise? The question under issue 7's
    target: GRPO can only sharpen what the policy can express, and a policy whose boxes ignore the image can
    only learn image-independent boxes.

    Writes a toy world (``max_objects`` = 1: one shape per image, so the query need not be read), builds the
    tiny policy (:data:`TOY_POLICY` updated by ``policy``), fine-tunes it for ``steps`` steps on exact answers
    (:func:`build_sft_dataset` with no jitter and no enlargement), evaluates greedily on the held-out images
    and returns :func:`tier_summary` + :func:`box_centre_correlation` + :func:`image_dependence` on the held-out
    exact answers + timings (saved as ``root/probe.json``; a finished probe is read back, not rerun)."""
    import inspect

    import torch

    from .policy import build_tiny_policy

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
        **summary, **{k: v for k, v in box_centre_correlation(_samples(root / "eval")).items() if k != "n"},
        **dependence,
        "torch_threads": torch.get_num_threads(), "asked": asked,
    }
    done.write_text(json.dumps(result, indent=2))
    return result
