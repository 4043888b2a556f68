"""The five ablations of SAM-R1 (Tables 3-4, Appendix A), run through the toy pipeline and set beside the paper.

    res = run_ablation("threshold", scale="toy", seeds=(0, 1, 2), root="runs/toy_bench")
    res.table        # pandas DataFrame: one row per variant, ours as mean [95 % interval] over seeds, the paper's beside
    res.figure       # PNG of the training curves (mean +- std band over seeds)

Every variant changes ONE field of the ``toy`` preset (samr1lib.presets) and nothing is tuned per variant.
Our numbers are held-out mean tier / gIoU / cIoU of the toy world (512 images, GrabCut masks, a 0.7M
policy); the paper's are ReasonSeg test and RefCOCOg test with Qwen2.5-VL-7B and SAM2-L. The two are
never the same experiment: the table says at which scale ours were obtained.

At ``scale="paper"`` nothing is trained here: :func:`paper_commands` gives the 8-GPU launch of each variant.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..presets import SEGR1, STAR
from ..train import paper_launch_command
from ..view.plots import pyplot, save_figure, training_curves
from .parallel import in_parallel
from .toy import ensure_world, prepare, run_variant, warm_start_kind

__all__ = ["ABLATIONS", "Variant", "AblationResult", "run_ablation", "run_batch", "paper_commands", "variant_name",
           "negative_point_positions", "negative_point_summary"]


def as_overrides(values: dict[str, Any]) -> tuple[str, ...]:
    """A preset fragment (samr1lib.presets) as ``key=value`` overrides, booleans in lower case."""
    return tuple(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in values.items())


@dataclass(frozen=True)
class Variant:
    label: str
    overrides: tuple[str, ...] = ()
    # the paper's numbers for this variant: {"RS gIoU": .., "RS cIoU": .., "Rcg gIoU": .., "Rcg cIoU": ..} or a sentence
    paper: dict[str, float] | str = field(default_factory=dict)


_SAMR1 = {"RS gIoU": 60.2, "RS cIoU": 54.3, "Rcg gIoU": 75.4, "Rcg cIoU": 73.1}  # Tables 3-4, last row

ABLATIONS: dict[str, dict[str, Any]] = {
    "threshold": dict(
        title="Tiered reward (Eq. 5) vs fixed IoU thresholds", source="SAM-R1 Table 3",
        variants=[
            Variant("fixed 0.5", ("tiers=fixed0.5",), {"RS gIoU": 56.5, "RS cIoU": 51.9, "Rcg gIoU": 74.7, "Rcg cIoU": 72.8}),
            Variant("fixed 0.7", ("tiers=fixed0.7",), {"RS gIoU": 56.2, "RS cIoU": 51.6, "Rcg gIoU": 74.9, "Rcg cIoU": 72.6}),
            Variant("fixed 0.8", ("tiers=fixed0.8",), {"RS gIoU": 58.6, "RS cIoU": 50.8, "Rcg gIoU": 74.6, "Rcg cIoU": 71.9}),
            Variant("tiered (Eq. 5)", (), _SAMR1),
        ]),
    "token_level": dict(
        title="Sequence-level (Eq. 2) vs group token-level (Eq. 4) normalisation", source="SAM-R1 Table 4",
        variants=[
            # Table 4 "+ clip-higher" row: clip-higher on, token-level off
            Variant("sequence (Eq. 2)", ("normalization=sequence",),
                    {"RS gIoU": 59.1, "RS cIoU": 52.8, "Rcg gIoU": 74.9, "Rcg cIoU": 72.5}),
            Variant("group token-level (Eq. 4)", (), _SAMR1),
        ]),
    "clip_higher": dict(
        title="Symmetric clipping (eps_high 0.2) vs clip-higher (eps_high 0.3)", source="SAM-R1 Table 4",
        variants=[
            # Table 4 "+ token-level" row: token-level on, clip-higher off
            Variant("eps_high 0.2", ("epsilon_high=0.2",),
                    {"RS gIoU": 58.0, "RS cIoU": 51.7, "Rcg gIoU": 74.5, "Rcg cIoU": 72.4}),
            Variant("eps_high 0.3 (clip-higher)", (), _SAMR1),
        ]),
    "kl_removal": dict(
        title="KL kept (beta 0.04) vs removed (beta 0)", source="SAM-R1 Appendix A.1",
        variants=[
            Variant("beta 0.04 (KL kept)", (), "final method: " + ", ".join(f"{k} {v}" for k, v in _SAMR1.items())),
            Variant("beta 0 (KL removed)", ("beta=0",),
                    "A.1: learns well at first, then after ~100 steps the reward fluctuates and training collapses"),
        ]),
    "related_systems": dict(
        title="SAM-R1, Seg-R1 and StAR as configurations of one pipeline", source="docs/papers.md",
        variants=[
            Variant("SAM-R1 (Eq. 5 tiers, Eq. 4)", (), "ReasonSeg test 60.2 / 54.3 (gIoU / cIoU, 7B, Table 1)"),
            Variant("Seg-R1 (fg/bg points, 0.7 IoU + 0.3 S, FCoT cold start)", as_overrides(SEGR1),
                    "ReasonSeg test gIoU 56.7, RefCOCOg test cIoU 71.4 (7B)"),
            Variant("StAR (matched multi-object reward, non-repeat, label, REST)",
                    as_overrides(STAR),
                    "ReasonSeg test 67.5 / 61.3 (7B); 68.5 / 65.0 with voting"),
        ]),
    "negative_points": dict(
        title="Negative points: none, free labels, point-value reward, in-box reward", source="SAM-R1 Appendix A.2",
        variants=[
            Variant("none (final method)", (), "final method: " + ", ".join(f"{k} {v}" for k, v in _SAMR1.items())),
            Variant("free labels", ("negative_points=free",), "A.2a: the model emits almost only positive points"),
            Variant("point-value reward", ("negative_points=point_value",),
                    "A.2b: negatives appear, but at the image borders, far outside the box"),
            Variant("in-box reward", ("negative_points=in_box",),
                    "A.2c: all points cluster on the object; the contrast disappears, masks get noisier"),
        ]),
}


def variant_name(overrides: Sequence[str]) -> str:
    """The run folder of a variant: ``grpo`` for the preset itself (shared by every ablation and the learning
    benchmark), else ``grpo_<field>-<value>...``."""
    if not overrides:
        return "grpo"
    return "grpo_" + "_".join(o.replace("=", "-") for o in overrides)


@dataclass
class AblationResult:
    name: str
    scale: str
    seeds: tuple[int, ...]
    runs: list[dict]  # one toy.run_variant result per (variant, seed)
    table: Any  # pandas DataFrame
    figure: Path | None
    seconds: float

    def caption(self) -> str:
        """What the table is and is not: markdown for the notebook."""
        return (f"**Ours: {self.scale} scale** (toy world, the 0.7M-parameter toy base, GrabCut masks, held-out set of "
                f"{self.runs[0]['after']['n']} images, seeds {list(self.seeds)}; mean [95 % t-interval] over seeds). **Paper: "
                "ReasonSeg test (RS) and RefCOCOg test (Rcg), Qwen2.5-VL-7B + SAM2-L, 8 GPUs.** Not the same "
                "experiment: read the ordering, not the values.")

    def metrics(self) -> dict[str, Any]:
        """What the notebook writes as its final metrics JSON."""
        rows = self.table.to_dict(orient="records")
        # GRPO time as recorded when each run was trained (a cached run is read back in no time, so the notebook's
        # own wall time says little about what training cost)
        grpo = sum(r["seconds"]["grpo"] for r in self.runs)
        threads = sorted({r["torch_threads"] for r in self.runs if "torch_threads" in r})  # older runs lack it
        return {"ablation": self.name, "scale": self.scale, "seeds": list(self.seeds), "seconds": round(self.seconds, 1),
                "grpo_seconds": round(grpo, 1), "runs": len(self.runs), "torch_threads": threads,
                "variants": rows, "figure": str(self.figure) if self.figure else None}


def ci95(vals: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its 95 % t-interval over seeds (low = high = mean for one seed)."""
    from scipy.stats import t

    v = np.asarray(vals, dtype=float)
    if len(v) < 2:
        return float(v.mean()), float(v.mean()), float(v.mean())
    half = float(t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def _fmt(vals: Sequence[float]) -> str:
    m, lo, hi = ci95(vals)
    return f"{m:.3f} [{lo:.3f}, {hi:.3f}]" if len(vals) > 1 else f"{m:.3f}"


def verdict(final: Sequence[float], variant: Sequence[float]) -> str:
    """Does the final method beat the variant, as the paper says (Tables 3-4, Appendix A)? From the paired
    differences of held-out mean tier over seeds: "reproduced" when their 95 % interval lies above 0, "reversed"
    below 0, "tied" when it holds 0 (not resolved at this scale)."""
    diff = np.asarray(final, dtype=float) - np.asarray(variant, dtype=float)
    m, lo, hi = ci95(diff)
    if len(diff) < 2:
        return f"{m:+.2f} (one seed: no interval)"
    word = "reproduced" if lo > 0 else "reversed" if hi < 0 else "tied"
    return f"{word}: final method {m:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def run_ablation(name: str, scale: str = "toy", seeds: Sequence[int] = (0, 1, 2), root: str = "runs/toy_bench",
                 figures_dir: str | None = "figures", show_progress: bool = True) -> AblationResult:
    """Train every variant of ablation ``name`` for every seed through :func:`samr1lib.toy.run_variant` (cached:
    a finished (variant, seed) is read back, not retrained), then tabulate and plot."""
    if name not in ABLATIONS:
        raise ValueError(f"unknown ablation {name!r}; choose one of {sorted(ABLATIONS)}")
    if scale == "paper":
        raise ValueError("scale='paper' trains on 8 GPUs: run the commands of paper_commands(name) and read their "
                         "evaluation summaries; nothing is trained from a notebook at that scale")
    spec = ABLATIONS[name]
    t0 = time.time()
    runs, rows, curves = [], [], {}
    for v in spec["variants"]:
        results = []
        for seed in seeds:
            r = run_variant(root, seed=seed, name=variant_name(v.overrides), overrides=v.overrides, scale=scale,
                            show_progress=show_progress)
            results.append({**r, "variant": v.label})
        runs += results
        curves[v.label] = [r["metrics"] for r in results]
        row: dict[str, Any] = {"variant": v.label, "overrides": " ".join(v.overrides) or "(toy preset)",
                               "seeds": len(results), "scale": scale}
        for key, col in (("mean_tier", "mean tier"), ("gIoU", "gIoU"), ("cIoU", "cIoU"),
                         ("parse_failure_rate", "parse failures")):
            row[f"ours {col}"] = _fmt([r["after"][key] for r in results])
        row["ours Δ mean tier"] = _fmt([r["change_in_mean_tier"] for r in results])
        row["ours Δ per seed"] = " / ".join(f"{r['change_in_mean_tier']:+.2f}" for r in results)  # the noise, visible
        row["_after"] = [r["after"]["mean_tier"] for r in results]
        if isinstance(v.paper, dict):
            row.update({f"paper {k}": val for k, val in v.paper.items()})
            row["paper (7B, 8 GPUs)"] = ""
        else:
            row["paper (7B, 8 GPUs)"] = v.paper
        rows.append(row)
    _add_verdicts(name, spec, rows)
    table = pd.DataFrame(rows)
    fig = None
    if figures_dir:
        keys = {"rewards/segmentation_reward/mean": "segmentation reward (tier)", "seg/mean_iou": "rollout mask IoU",
                "kl": "KL to the reference", "completions/mean_length": "completion length"}
        if name == "negative_points":
            keys["parse/failure_rate"] = "parse-failure rate"
        if name == "clip_higher":
            keys["clip_ratio/region_mean"] = "clipped share of tokens"
        fig = training_curves(curves, Path(figures_dir) / f"ablation_{name}_{scale}.png", keys=keys,
                              title=f"{spec['title']} ({scale} scale, seeds {list(seeds)})")
    return AblationResult(name, scale, tuple(seeds), runs, table, fig, time.time() - t0)


def run_batch(names: Sequence[str], seeds: Sequence[int], scale: str = "toy", root: str = "runs/toy_bench",
              workers: int = 2, threads: int = 1) -> list[tuple[str, int, tuple[str, ...]]]:
    """Train every (variant, seed) of the ablations ``names`` in ``workers`` processes side by side, so that
    :func:`run_ablation` (and the notebooks) then only read them back: the warm starts first (one per seed and
    prompt), then the GRPO runs. Each run records its torch thread count (``threads``; runs are bitwise repeatable
    only for the same count). Raises after the batch, listing every run that failed; the others are kept."""
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown:
        raise ValueError(f"unknown ablation(s) {unknown}; choose from {sorted(ABLATIONS)}")
    runs = {(variant_name(v.overrides), seed, v.overrides) for n in names for v in ABLATIONS[n]["variants"]
            for seed in seeds}
    ensure_world(root, scale)
    warm = {(seed, warm_start_kind(root, seed, overrides, scale)): overrides for _, seed, overrides in runs}
    failed = in_parallel(_prepare_quietly, [(root, seed, o, scale) for (seed, _), o in sorted(warm.items())],
                         workers, threads, "warm starts")
    by_seed = sorted(runs, key=lambda r: (r[1], r[0]))  # whole seeds first: a batch cut short leaves whole seeds
    failed += in_parallel(_run_quietly, [(root, seed, name, o, scale) for name, seed, o in by_seed], workers,
                          threads, "GRPO runs")
    if failed:
        raise RuntimeError(f"{len(failed)} job(s) of the batch failed (the others are cached under {root}):\n"
                           + "\n".join(failed))
    return by_seed


def _prepare_quietly(root, seed, overrides, scale):
    prepare(root, seed, overrides, show_progress=False, scale=scale)


def _run_quietly(root, seed, name, overrides, scale):
    run_variant(root, seed=seed, name=name, overrides=overrides, scale=scale, show_progress=False)


def _add_verdicts(name: str, spec: dict, rows: list[dict]) -> None:
    """Each variant against the final method (the variant with no override), paired by seed; no verdict for the
    related systems (the paper ranks no direction among them)."""
    afters = [row.pop("_after") for row in rows]
    if name == "related_systems":
        return
    final = afters[next(i for i, v in enumerate(spec["variants"]) if not v.overrides)]
    for row, v, after in zip(rows, spec["variants"], afters):
        row["paper's direction at this scale"] = verdict(final, after) if v.overrides else "(the final method)"


def paper_commands(name: str, config: str = "zero3") -> list[str]:
    """The 8-GPU ``accelerate launch`` command of each variant of ablation ``name`` (preset ``paper``)."""
    spec = ABLATIONS[name]
    return [" ".join(paper_launch_command(config, [*v.overrides, f"output_dir=runs/paper_{name}_{variant_name(v.overrides)}"]))
            for v in spec["variants"]]


def negative_point_positions(rollout_paths: Sequence[str]) -> dict[str, Any]:
    """Where labelled points land relative to the answer's own box (A.2's observation): counts of positive /
    negative points inside / outside the box, and at the image border (within 5 % of a side)."""
    out = {"positive_in_box": 0, "positive_out_box": 0, "negative_in_box": 0, "negative_out_box": 0,
           "negative_at_border": 0, "answers": 0}
    xs: dict[str, list] = {"pos": [], "neg": []}
    for path in rollout_paths:
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                ans = row.get("answer")
                if not isinstance(ans, dict) or "points_2d" not in ans:
                    continue
                out["answers"] += 1
                x1, y1, x2, y2 = ans["bbox_2d"]
                fw, fh = row.get("policy_frame") or (row.get("width") or 0, row.get("height") or 0)
                for (px, py), lab in zip(ans["points_2d"], ans.get("point_labels", [])):
                    inside = x1 <= px <= x2 and y1 <= py <= y2
                    w, h = max(x2 - x1, 1e-6), max(y2 - y1, 1e-6)
                    rel = ((px - x1) / w, (py - y1) / h)
                    if lab == 1:
                        out["positive_in_box" if inside else "positive_out_box"] += 1
                        xs["pos"].append(rel)
                    else:
                        out["negative_in_box" if inside else "negative_out_box"] += 1
                        xs["neg"].append(rel)
                        if fw and fh and (min(px, fw - px) <= 0.05 * fw or min(py, fh - py) <= 0.05 * fh):
                            out["negative_at_border"] += 1
    out["relative_positions"] = xs
    return out


def negative_point_summary(result: AblationResult, out_png: str | Path) -> dict[str, dict[str, int]]:
    """Per negative-points variant: where its labelled points landed in training rollouts (counts), and a figure
    of their positions relative to the answer's own box (the box is the unit square)."""
    from matplotlib.patches import Rectangle

    plt = pyplot()
    by_variant: dict[str, list[str]] = {}
    for r in result.runs:
        by_variant.setdefault(r["variant"], []).extend(str(p) for p in Path(r["metrics"]).parent.glob("rollouts.rank*.jsonl"))
    fig, axes = plt.subplots(1, len(by_variant), figsize=(3.3 * len(by_variant), 3.4), squeeze=False)
    counts = {}
    for ax, (label, paths) in zip(axes[0], by_variant.items()):
        pos = negative_point_positions(paths)
        rel = pos.pop("relative_positions")
        counts[label] = pos
        for key, colour, marker in (("pos", "green", "o"), ("neg", "red", "x")):
            if rel[key]:
                xy = np.clip(np.asarray(rel[key]), -1.5, 2.5)
                ax.scatter(xy[:, 0], xy[:, 1], s=10, c=colour, marker=marker, alpha=0.5,
                           label=f"{'positive' if key == 'pos' else 'negative'} ({len(xy)})")
        ax.add_patch(Rectangle((0, 0), 1, 1, fill=False, edgecolor="cyan"))
        ax.set_xlim(-1.6, 2.6)
        ax.set_ylim(2.6, -1.6)
        ax.set_title(f"{label}\n{pos['answers']} answers with labelled points", fontsize=9)
        if rel["pos"] or rel["neg"]:
            ax.legend(fontsize=7, loc="lower right")
        else:
            ax.text(0.5, 0.1, "no labelled points in any rollout", ha="center", va="center", fontsize=8,
                    color="grey", transform=ax.transAxes)
    fig.suptitle("labelled points relative to the answer's box (box = unit square, clipped at -1.5 / 2.5)", fontsize=9)
    save_figure(fig, out_png)
    return counts
