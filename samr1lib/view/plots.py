"""Plotting helpers for the notebooks and the toy run (matplotlib, Agg-safe: every function saves a PNG).

    read_metrics(path) -> list of dicts (one per logged step, from a run's metrics.jsonl)
    training_curves({"label": [metrics.jsonl, ...]}, out_png, keys=CURVE_KEYS)  # mean +- std band over seeds
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..data import open_image
from ..masks import as_mask
from ..rewards import fixed_threshold_tiers, tiered_iou_reward

__all__ = ["CURVE_KEYS", "read_metrics", "curve", "training_curves", "smooth", "pyplot", "save_figure", "data_overview",
           "sample_grid", "reward_vs_iou", "perturbation_figure"]

# metric key -> panel title (keys as TRL / samr1lib.rewards log them into metrics.jsonl)
CURVE_KEYS: dict[str, str] = {
    "rewards/segmentation_reward/mean": "segmentation reward (Eq. 5 tier, 0-4)",
    "seg/mean_iou": "IoU of rollout masks",
    "kl": "KL to the reference",
    "completions/mean_length": "completion length (tokens)",
}


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """The per-step rows of a ``metrics.jsonl`` (training rows only: the final summary row is skipped)."""
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not a JSON line ({e})") from None
            if "train_runtime" not in row:
                rows.append(row)
    return rows


def curve(rows: Sequence[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of ``key`` (rows without it are skipped)."""
    pts = [(r["step"], float(r[key])) for r in rows if key in r and r[key] is not None]
    if not pts:
        return np.zeros(0), np.zeros(0)
    s, v = zip(*pts)
    return np.asarray(s), np.asarray(v)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (the first points average what exists so far)."""
    if window <= 1 or len(values) == 0:
        return values
    c = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def training_curves(
    runs: Mapping[str, Sequence[str | os.PathLike] | str | os.PathLike], out_png: str | os.PathLike,
    keys: Mapping[str, str] | Sequence[str] = CURVE_KEYS, window: int = 10, title: str | None = None,
) -> Path:
    """One panel per metric; one line per run label (mean over its seeds, smoothed over ``window`` steps),
    with a band of +- one std over seeds when a label has several metrics files. Saves ``out_png``."""
    plt = pyplot()
    keys = dict(keys) if isinstance(keys, Mapping) else {k: k for k in keys}
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.3), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    legend: dict[str, Any] = {}  # label -> a line, from whichever panel has that run (not every run logs every key)
    for i, (label, paths) in enumerate(runs.items()):
        paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        per_seed = [read_metrics(p) for p in paths]
        for ax, (key, name) in zip(axes[0], keys.items()):
            series = [curve(rows, key) for rows in per_seed]
            series = [(s, smooth(v, window)) for s, v in series if len(s)]
            if not series:
                continue
            n = min(len(s) for s, _ in series)
            steps = series[0][0][:n]
            vals = np.stack([v[:n] for _, v in series])
            mean = vals.mean(0)
            text = f"{label}" + (f" (n={len(series)})" if len(series) > 1 else "")
            # a short run (a smoke test) gets markers: one logged point would draw no line at all
            (line,) = ax.plot(steps, mean, color=colours[i % len(colours)], label=text,
                              marker="o" if len(steps) < 20 else None, markersize=4)
            legend.setdefault(text, line)
            if len(series) > 1:
                sd = vals.std(0)
                ax.fill_between(steps, mean - sd, mean + sd, color=line.get_color(), alpha=0.2, linewidth=0)
            ax.set_title(name, fontsize=10)
            ax.set_xlabel("GRPO step")
            ax.grid(alpha=0.3)
    labels, handles = list(legend), list(legend.values())
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=9, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, out_png, dpi=110, rect=(0, 0.1 if handles else 0, 1, 0.95 if title else 1))


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out_png, dpi: int = 100, rect=(0, 0, 1, 1)) -> Path:
    """Lay out, write ``out_png`` (creating its folder), close the figure."""
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout(rect=rect)
    fig.savefig(out, dpi=dpi)
    pyplot().close(fig)
    return out


def data_overview(records: Sequence[dict], out_png: str | os.PathLike, title: str = "") -> tuple[Path, dict]:
    """Histograms of categories, expression lengths (words) and object sizes (mask area / image area)."""
    plt = pyplot()
    cats = Counter(str(r.get("category")) for r in records)
    lengths = [len(str(r["query"]).split()) for r in records]
    sizes = [float(as_mask(r["mask"], "mask").mean()) for r in records]
    fig, ax = plt.subplots(1, 3, figsize=(12, 3.2))
    names = [c for c, _ in cats.most_common(20)]
    ax[0].barh(names[::-1], [cats[c] for c in names][::-1], color="tab:blue")
    ax[0].set_title(f"categories (top {len(names)} of {len(cats)})", fontsize=10)
    ax[1].hist(lengths, bins=range(1, max(lengths) + 2), color="tab:orange", align="left")
    ax[1].set_title("expression length (words)", fontsize=10)
    ax[2].hist(sizes, bins=30, color="tab:green")
    ax[2].set_title("object size (mask area / image area)", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    stats = {"records": len(records), "categories": dict(cats), "mean_words": float(np.mean(lengths)),
             "mean_object_area": float(np.mean(sizes))}
    return save_figure(fig, out_png), stats


def sample_grid(records: Sequence[dict], out_png: str | os.PathLike, n: int = 8, seed: int = 0) -> Path:
    """A grid of ``n`` random samples: image, GT mask outline (green), GT box (cyan), the query as title."""
    import matplotlib.patches as mpatches

    plt = pyplot()
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(records), size=min(n, len(records)), replace=False)
    cols = min(4, len(pick))
    rows = int(np.ceil(len(pick) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, pick):
        r = records[int(i)]
        img = np.asarray(open_image(r).convert("RGB"))
        m = as_mask(r["mask"], "mask")
        ax.imshow(img)
        if m.any():  # an outline keeps the target's own colour visible
            ax.contour(m.astype(float), levels=[0.5], colors=["lime"], linewidths=1.6)
        if r.get("box"):
            x1, y1, x2, y2 = r["box"]
            ax.add_patch(mpatches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="cyan", linewidth=1.5))
        ax.set_title(str(r["query"])[:38], fontsize=8)
    fig.suptitle("query above each image; GT mask outlined green, GT box cyan", fontsize=9)
    return save_figure(fig, out_png)


def reward_vs_iou(out_png: str | os.PathLike) -> Path:
    """Eq. 5's tiered reward against IoU, beside Table 3's fixed thresholds 0.5 / 0.7 / 0.8."""
    plt = pyplot()
    iou = np.linspace(0, 1, 1001)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(iou, [tiered_iou_reward(v) for v in iou], lw=2.5, label="tiered (Eq. 5)")
    for t, ls in ((0.5, "--"), (0.7, "-."), (0.8, ":")):
        ax.plot(iou, [tiered_iou_reward(v, fixed_threshold_tiers(t)) for v in iou], ls=ls, label=f"fixed {t} (Table 3)")
    ax.set_xlabel("IoU of the SAM2 mask with the GT")
    ax.set_ylabel("segmentation reward")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, out_png)


def perturbation_figure(df, out_png: str | os.PathLike) -> Path:
    """Mask IoU and tier reward against the box perturbation level (from :func:`samr1lib.experiments.sanity.perturbation_study`)."""
    plt = pyplot()
    g = df.groupby("noise")
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    for a, col, name in ((ax[0], "mask_iou", "mask IoU"), (ax[1], "tier", "tier reward (Eq. 5)")):
        m, s = g[col].mean(), g[col].std().fillna(0)
        a.errorbar(m.index, m.values, yerr=s.values, marker="o", capsize=3)
        a.set_xlabel("box noise (std as a fraction of the object's size)")
        a.set_title(name, fontsize=10)
        a.grid(alpha=0.3)
    ax[0].plot(g["box_iou"].mean().index, g["box_iou"].mean().values, marker="s", ls="--", label="box IoU")
    ax[0].legend(fontsize=8)
    return save_figure(fig, out_png)
