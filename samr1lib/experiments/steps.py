"""What each notebook does at each scale: the scale dispatch and the paths that would otherwise sit in notebook
cells. ``smoke`` checks wiring on a CPU in seconds (CI), ``toy`` runs the toy world on a CPU, ``paper`` uses the
real data and weights (8 GPUs for training). Every notebook's working files go under ``runs/notebooks/``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from ..config import load_config
from ..data import load_refer
from ..data.synthetic import write_reasonseg_world, write_refer_world
from ..data.toy_world import heldout_records, train_records
from ..evaluate import diff_runs, select_checkpoint
from ..policy import HFPolicy, build_tiny_policy, load_policy
from ..segmenters import build_segmenter
from ..train import accelerate_config_path, local_launch_command, train
from ..view.plots import training_curves
from .ablations import paper_commands, run_ablation
from .toy import default_root, ensure_world, run_variant

__all__ = ["SCALES", "work_dir", "training_records", "sanity_records", "segmenter", "launch", "launch_curves", "evaluation_inputs", "training_run", "select_and_diff",
           "rollout_source", "ablation"]

SCALES = ("smoke", "toy", "paper")
PAPER_POLICY = "Qwen/Qwen2.5-VL-7B-Instruct"  # SAM-R1 §4.1


def _check(scale: str) -> str:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    return scale


def work_dir(notebook: str, scale: str, what: str = "") -> Path:
    """``runs/notebooks/<notebook>_<scale>[_<what>]``: where a notebook keeps its working files."""
    return Path("runs/notebooks") / "_".join(p for p in (notebook, _check(scale), what) if p)


def training_records(scale: str, refer_root: str) -> tuple[list[dict], str]:
    """The records the training draw is made from, and where they came from: RefCOCOg umd train (SAM-R1 §4.1)
    at paper scale, the toy world's training half otherwise."""
    if _check(scale) == "paper":
        return list(load_refer(refer_root, "refcocog", "train")), refer_root
    world = ensure_world(default_root(scale), scale)
    return train_records(world), str(world)


def sanity_records(scale: str, refer_root: str, n: int) -> list[dict]:
    """Records for the reward sanity checks: RefCOCOg val at paper scale, the toy world's held-out set otherwise."""
    if _check(scale) == "paper":
        return list(load_refer(refer_root, "refcocog", "val"))[:n]
    return heldout_records(ensure_world(default_root(scale), scale))[:n]


def segmenter(name: str, sam2_config: str = "sam2.1_hiera_l", sam2_checkpoint: str = "", device: str = "cpu"):
    """``grabcut`` (no weights) or ``sam2`` (SAM-R1 §4.1's SAM2-Large; give its checkpoint)."""
    if name == "sam2":
        return build_segmenter("sam2", config=sam2_config, checkpoint=sam2_checkpoint or None, device=device)
    if name == "grabcut":
        return build_segmenter("grabcut")
    raise ValueError(f"segmenter must be 'grabcut' or 'sam2', got {name!r}")


def launch(scale: str, run_dir: str | Path, num_processes: int = 2, seed: int = 0) -> Path:
    """Notebook 03's run; returns the run folder (its ``metrics.jsonl`` is what the notebook plots). The shipped
    ZeRO-3 accelerate config is copied there. smoke: the smoke preset in ``num_processes`` CPU processes (the same
    launcher as the paper run, gloo instead of NCCL); toy: the toy pipeline for ``seed``; paper: nothing is
    launched from a notebook (the 8-GPU command is printed by the notebook), an existing run is plotted."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(accelerate_config_path("zero3"), run_dir / "accelerate_zero3_8gpu.yaml")
    if _check(scale) == "smoke":
        cmd = local_launch_command(num_processes, "smoke", ["--no-resume", f"output_dir={run_dir}"])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"the smoke launch {' '.join(cmd)} failed (exit {proc.returncode}):\n"
                               f"{proc.stderr[-3000:]}")
    elif scale == "toy":
        run_dir = Path(run_variant(default_root(scale), seed=seed, show_progress=False)["metrics"]).parent
    return run_dir


LAUNCH_CURVES = {"rewards/segmentation_reward/mean": "segmentation reward", "seg/mean_iou": "rollout IoU",
                 "kl": "KL", "completions/mean_length": "completion length",
                 "clip_ratio/region_mean": "clip ratio (region)"}


def launch_curves(scale: str, run_dir: str | Path, figures_dir: str | Path) -> Path | None:
    """Notebook 03's figure of a run's logged reward, IoU, KL, completion length and clip ratio (None: no logs)."""
    logs = Path(run_dir) / "metrics.jsonl"
    if not logs.exists():
        return None
    return training_curves({f"{scale} run": [logs]}, Path(figures_dir) / f"03_training_curves_{scale}.png",
                           keys=LAUNCH_CURVES, window=1 if _check(scale) == "smoke" else 10)


def evaluation_inputs(scale: str, policy: str, refer_root: str, reasonseg_root: str,
                      limit: int | None) -> dict[str, Any]:
    """Notebook 09's policy, data roots and policy image size. At smoke / toy scale the datasets are synthetic
    stand-ins in the real layouts; the policy defaults to a tiny random one (smoke), the toy GRPO policy of seed 0
    (toy) or Qwen2.5-VL-7B-Instruct (paper)."""
    if _check(scale) != "paper":
        stand_in = work_dir("09", scale, "data")
        if not (stand_in / "refer" / "refcocog" / "instances.json").exists():
            write_refer_world(str(stand_in / "refer"), n_images=40, seed=1, position_gradient=0.5)
            write_reasonseg_world(str(stand_in / "reasonseg"), n_per_split=max(limit or 8, 8), seed=1,
                                  position_gradient=0.5)
        refer_root, reasonseg_root = str(stand_in / "refer"), str(stand_in / "reasonseg")
    if not policy:
        if scale == "paper":
            policy = PAPER_POLICY
        elif scale == "toy":
            policy = str(Path(run_variant(default_root("toy"), seed=0, show_progress=False)["metrics"]).parent / "final")
        else:
            policy = str(build_tiny_policy(work_dir("09", scale, "tiny_policy")))
    size = 840 if scale == "paper" else 112  # SAM-R1 §4.1: 840 x 840; the toy world: 112
    return {"policy": policy, "refer_root": refer_root, "reasonseg_root": reasonseg_root, "size": size}


def training_run(scale: str, run_dir: str) -> Path:
    """A training run with several checkpoints for notebook 09's selection: the given one, else a 2-step smoke run
    saving every step (smoke) or the toy GRPO run of seed 0 (toy)."""
    if run_dir:
        return Path(run_dir)
    if _check(scale) == "paper":
        raise ValueError("at paper scale give the training run to choose a checkpoint from (run_dir=RUN_DIR)")
    if scale == "toy":
        return Path(run_variant(default_root("toy"), seed=0, show_progress=False)["metrics"]).parent
    run = work_dir("09", scale, "run")
    if not (run / "final" / "config.json").exists():
        train(load_config("smoke", overrides=[f"output_dir={run}", "save_steps=1", "max_steps=2"]))
    return run


def select_and_diff(scale: str, run_dir: Path, inputs: dict[str, Any], seg, limit: int | None,
                    max_new_tokens: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Notebook 09's checkpoint selection (every checkpoint on ReasonSeg val, the best by gIoU on the paper's suite)
    and the diff of the first and last checkpoints' val runs."""
    def make_policy(path: str):
        model, processor = load_policy(path)
        return HFPolicy(model, processor, max_new_tokens=max_new_tokens)

    roots = {"reasonseg": inputs["reasonseg_root"], "refcoco": inputs["refer_root"], "refcoco+": inputs["refer_root"],
             "refcocog": inputs["refer_root"]}
    out = work_dir("09", scale, "select")
    sel = select_checkpoint(run_dir, make_policy, seg, roots, str(out), limit=limit, size=inputs["size"],
                            show_progress=False)
    steps = [c["step"] for c in sel["checkpoints"]]
    diff = diff_runs(out / "val" / f"step{steps[0]}", out / "val" / f"step{steps[-1]}") if len(steps) > 1 else {}
    return sel, diff


def rollout_source(scale: str, rollouts: str) -> str:
    """Notebook 10's rollout log: the given one, else the toy GRPO run of seed 0 (toy) or a 2-step smoke run."""
    if rollouts:
        return rollouts
    if _check(scale) == "toy":
        return str(Path(run_variant(default_root("toy"), seed=0, show_progress=False)["metrics"]).parent)
    if scale == "paper":
        raise ValueError("at paper scale give the rollout log of a training run (rollouts=RUN_DIR)")
    source = work_dir("10", scale, "run")
    if not list(source.glob("rollouts.rank*.jsonl")):
        train(load_config("smoke", overrides=[f"output_dir={source}"]))
    return str(source)


def ablation(name: str, scale: str, seeds, root: str, figures_dir: str):
    """Notebooks 04-08 and 11: every variant trained and evaluated (smoke / toy), or the 8-GPU commands (paper).
    Returns (result or None, commands)."""
    if _check(scale) == "paper":
        return None, paper_commands(name)
    result = run_ablation(name, scale=scale, seeds=seeds, root=root or default_root(scale), figures_dir=figures_dir,
                          show_progress=False)
    return result, []
