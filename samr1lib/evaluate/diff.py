"""``python -m samr1lib.evaluate diff RUN_A RUN_B``: two evaluation runs of the same split, sample by sample.

Which samples flipped across IoU 0.5, the largest IoU gains and losses with their queries, a histogram of the IoU
deltas (a figure), and a paired bootstrap interval for the gIoU and cIoU difference (B - A). Runs of different
datasets, splits or sample sets are refused, and an unfinished run is named as such.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..view.plots import pyplot, save_figure
from .run import read_samples

__all__ = ["load_run", "diff_runs", "diff_markdown"]


def load_run(path: str | os.PathLike) -> tuple[dict, list[dict]]:
    """(summary, rows in key order) of a finished evaluation run; ValueError naming an unfinished or missing one."""
    path = Path(path)
    summary_path = path / "summary.json"
    rows = read_samples(str(path))
    if not summary_path.exists():
        what = f"{len(rows)} samples scored so far and no summary.json" if rows else "no samples and no summary.json"
        raise ValueError(f"{path} is not a finished evaluation run ({what}): finish it (rerun its evaluate command, "
                         "which resumes) before comparing it")
    return json.loads(summary_path.read_text()), [rows[k] for k in sorted(rows)]


def _check_same_samples(a: tuple[dict, list[dict]], b: tuple[dict, list[dict]], names: tuple[str, str]) -> None:
    (sa, ra), (sb, rb) = a, b
    if (sa["dataset"], sa["split"]) != (sb["dataset"], sb["split"]):
        raise ValueError(f"{names[0]} evaluated {sa['dataset']} {sa['split']} but {names[1]} {sb['dataset']} "
                         f"{sb['split']}: a diff needs two runs of the same split")
    if len(ra) != len(rb) or [r["key"] for r in ra] != [r["key"] for r in rb]:
        raise ValueError(f"{names[0]} has {len(ra)} samples and {names[1]} {len(rb)}: not the same sample set "
                         "(another --limit?)")
    for x, y in zip(ra, rb):
        if (x["query"], x["image_path"]) != (y["query"], y["image_path"]):
            raise ValueError(f"sample {x['key']} differs between the runs ({x['query']!r} on {x['image_path']} vs "
                             f"{y['query']!r} on {y['image_path']}): not the same sample set")


def _bootstrap(ra: list[dict], rb: list[dict], n_boot: int, seed: int) -> dict[str, list[float]]:
    """95 % paired bootstrap intervals of gIoU(B) - gIoU(A) and cIoU(B) - cIoU(A), in points (percent)."""
    ia, ib = np.array([r["iou"] for r in ra]), np.array([r["iou"] for r in rb])
    inter = np.array([[r["intersection"] for r in ra], [r["intersection"] for r in rb]], dtype=float)
    union = np.array([[r["union"] for r in ra], [r["union"] for r in rb]], dtype=float)
    idx = np.random.default_rng(seed).integers(0, len(ra), size=(n_boot, len(ra)))
    dg = 100 * (ib[idx].mean(1) - ia[idx].mean(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        ci = inter[:, idx].sum(2) / union[:, idx].sum(2)
    dc = 100 * (ci[1] - ci[0])
    q = lambda v: [float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))]  # noqa: E731
    return {"gIoU": q(dg), "cIoU": q(dc), "resamples": n_boot}


def diff_runs(run_a: str | os.PathLike, run_b: str | os.PathLike, out_dir: str | os.PathLike | None = None,
              top: int = 10, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Compare two finished runs of one split; writes diff.json, diff.md and iou_delta.png into ``out_dir``
    (default ``RUN_B/diff_vs_<RUN_A's name>``) and returns the diff."""
    names = (str(run_a), str(run_b))
    a, b = load_run(run_a), load_run(run_b)
    _check_same_samples(a, b, names)
    (sa, ra), (sb, rb) = a, b
    delta = [{"key": x["key"], "query": x["query"], "iou_a": x["iou"], "iou_b": y["iou"], "delta": y["iou"] - x["iou"]}
             for x, y in zip(ra, rb)]
    order = sorted(delta, key=lambda d: d["delta"])
    out = Path(out_dir or Path(run_b) / f"diff_vs_{Path(run_a).name}")
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "run_a": names[0], "run_b": names[1], "dataset": sa["dataset"], "split": sa["split"], "n": len(ra),
        "gIoU": {"a": sa["gIoU"], "b": sb["gIoU"], "b_minus_a": sb["gIoU"] - sa["gIoU"]},
        "cIoU": {"a": sa["cIoU"], "b": sb["cIoU"], "b_minus_a": sb["cIoU"] - sa["cIoU"]},
        "bootstrap_95": _bootstrap(ra, rb, n_boot, seed),
        "flipped_up": [d for d in delta if d["iou_a"] < 0.5 <= d["iou_b"]],  # crossed IoU 0.5 upwards in B
        "flipped_down": [d for d in delta if d["iou_b"] < 0.5 <= d["iou_a"]],
        "largest_gains": [d for d in order[::-1][:top] if d["delta"] > 0],
        "largest_losses": [d for d in order[:top] if d["delta"] < 0],
        "unchanged": sum(1 for d in delta if d["delta"] == 0),
        "figure": str(_histogram([d["delta"] for d in delta], out / "iou_delta.png", names)),
    }
    (out / "diff.json").write_text(json.dumps(result, indent=2))
    (out / "diff.md").write_text(diff_markdown(result))
    return result


def _histogram(deltas: list[float], path: Path, names: tuple[str, str]) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(deltas, bins=np.linspace(-1, 1, 41), color="tab:blue")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("IoU(B) - IoU(A), per sample")
    ax.set_ylabel("samples")
    ax.set_title(f"A = {Path(names[0]).name}, B = {Path(names[1]).name} ({len(deltas)} samples)", fontsize=9)
    return save_figure(fig, path)


def diff_markdown(d: dict[str, Any]) -> str:
    """The diff as a short report."""
    bs = d["bootstrap_95"]
    lines = [f"# {d['dataset']} {d['split']}: B = {d['run_b']} against A = {d['run_a']} ({d['n']} samples)", "",
             "| metric | A | B | B - A | 95 % paired bootstrap |", "|---|---:|---:|---:|---|"]
    for m in ("gIoU", "cIoU"):
        lines.append(f"| {m} | {d[m]['a']:.2f} | {d[m]['b']:.2f} | {d[m]['b_minus_a']:+.2f} | "
                     f"[{bs[m][0]:+.2f}, {bs[m][1]:+.2f}] |")
    lines += ["", f"Crossed IoU 0.5: {len(d['flipped_up'])} up, {len(d['flipped_down'])} down; "
                  f"{d['unchanged']} samples unchanged.", ""]
    for title, key in (("Largest gains", "largest_gains"), ("Largest losses", "largest_losses")):
        lines += [f"{title}:", "", "| key | query | IoU A | IoU B |", "|---|---|---:|---:|"]
        lines += [f"| {x['key']} | {x['query']} | {x['iou_a']:.3f} | {x['iou_b']:.3f} |" for x in d[key]] or ["| - | | | |"]
        lines.append("")
    lines.append(f"![IoU deltas]({Path(d['figure']).name})")
    return "\n".join(lines) + "\n"
