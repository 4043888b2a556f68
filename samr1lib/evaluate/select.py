"""``python -m samr1lib.evaluate select RUN_DIR ...``: one checkpoint for every benchmark, chosen on a val split.

The peers' tables took each benchmark's best number from a different checkpoint. Here every saved checkpoint of a
training run (``checkpoint-N/`` and ``final/``) is evaluated on one val split, the best by a stated metric is
chosen (ties: the earliest step), and that one checkpoint is evaluated on every benchmark, into one table laid out
as SAM-R1's Tables 1-2 with the chosen step. Every evaluation resumes, so an interrupted selection continues.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from ..policy import Policy
from ..segmenters import Segmenter
from .protocol import PAPER_NUMBERS
from .run import SUITE, evaluate, load_split, split_dir

__all__ = ["checkpoints", "select_checkpoint", "selection_table"]

METRICS = ("gIoU", "cIoU")


def checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, folder) of every saved checkpoint of a training run, ``final/`` last (its step from the run's
    trainer_state.json; dropped when it equals the last checkpoint's, whose weights it is)."""
    run = Path(run_dir)
    found = sorted((int(p.name.split("-")[1]), p) for p in run.glob("checkpoint-*")
                   if p.name.split("-")[1].isdigit() and (p / "config.json").exists())
    final = run / "final"
    if (final / "config.json").exists():
        state = run / "trainer_state.json"
        step = json.loads(state.read_text())["global_step"] if state.exists() else (found[-1][0] + 1 if found else 0)
        if not found or found[-1][0] != step:
            found.append((step, final))
    if not found:
        raise ValueError(f"{run} holds no saved checkpoint (checkpoint-N/ or final/ with a config.json)")
    return found


def select_checkpoint(
    run_dir: str | os.PathLike, make_policy: Callable[[str], Policy], segmenter: Segmenter, roots: dict[str, str],
    out_dir: str | os.PathLike, val: tuple[str, str] = ("reasonseg", "val"),
    benchmarks: Sequence[tuple[str, str]] = SUITE, metric: str = "gIoU", limit: int | None = None,
    size: int = 840, batch_size: int = 8, show_progress: bool = True,
) -> dict[str, Any]:
    """Evaluate every checkpoint on ``val``, choose the best by ``metric``, evaluate it on ``benchmarks``.
    ``roots``: data root per dataset ("reasonseg" -> LISA folder, REFER datasets -> the REFER folder)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    out = Path(out_dir)
    kw = dict(batch_size=batch_size, size=size, show_progress=show_progress)

    def run(path: Path, dataset: str, split: str, where: Path) -> dict[str, Any]:
        records = load_split(dataset, roots[dataset], split)
        return evaluate(records[:limit], make_policy(str(path)), segmenter, str(where), dataset, split,
                        report=getattr(records, "report", None), **kw)

    scores = []
    for step, path in checkpoints(run_dir):
        s = run(path, *val, out / "val" / f"step{step}")
        scores.append({"step": step, "checkpoint": str(path), "gIoU": s["gIoU"], "cIoU": s["cIoU"]})
    best = max(scores, key=lambda r: (r[metric], -r["step"]))
    results = [run(Path(best["checkpoint"]), d, s, out / "benchmarks" / split_dir(d, s)) for d, s in benchmarks]
    selection = {"run": str(run_dir), "val": list(val), "metric": metric, "limit": limit, "checkpoints": scores,
                 "chosen": best, "benchmarks": results}
    (out / "selection.json").write_text(json.dumps(selection, indent=2))
    (out / "table.md").write_text(selection_table(selection))
    return selection


def selection_table(sel: dict[str, Any]) -> str:
    """Tables 1-2's layout for the chosen checkpoint, then the val scores that chose it."""
    best = sel["chosen"]
    lines = [f"# One checkpoint for every benchmark: step {best['step']} ({best['checkpoint']})", "",
             f"Chosen by {sel['metric']} on {sel['val'][0]} {sel['val'][1]}"
             + (f" (first {sel['limit']} samples of each split)" if sel["limit"] else "") + ".", "",
             "| benchmark | n | gIoU | cIoU | paper gIoU | paper cIoU |", "|---|---:|---:|---:|---:|---:|"]
    for s in sel["benchmarks"]:
        p = PAPER_NUMBERS.get((s["dataset"], s["split"])) or {}
        paper = [f"{p[m]:.1f}" if m in p else "-" for m in METRICS]
        lines.append(f"| {s['dataset']} {s['split']} | {s['n']} | {s['gIoU']:.1f} | {s['cIoU']:.1f} | "
                     f"{paper[0]} | {paper[1]} |")
    lines += ["", f"Every checkpoint on {sel['val'][0]} {sel['val'][1]}:", "", "| step | gIoU | cIoU | chosen |",
              "|---:|---:|---:|---|"]
    lines += [f"| {r['step']} | {r['gIoU']:.1f} | {r['cIoU']:.1f} | {'yes' if r is best or r == best else ''} |"
              for r in sel["checkpoints"]]
    return "\n".join(lines) + "\n"
