"""Write notebooks/NN_*.ipynb from the cell sources below (outputs empty). Run after editing a notebook's source here:

    .venv/bin/python scripts/build_notebooks.py

The notebooks are the product; this script only keeps their shared parts (parameters, the final metrics cell)
consistent. Every cell calls samr1lib: no logic lives in a notebook.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

OUT = Path(__file__).resolve().parent.parent / "notebooks"

SCALE_DOC = ('scale = "smoke"  # "smoke": CPU, seconds (CI) | "toy": the toy world, CPU, minutes (issue 7) | '
             '"paper": real weights and data, 8 GPUs')
METRICS_DOC = 'metrics_path = ""  # where the final metrics JSON goes; empty: not written (papermill runs set it)'
FIG_DOC = 'figures_dir = "figures"  # PNGs are written here, named after this notebook and the scale'

SETUP = """from pathlib import Path
from IPython.display import Image, Markdown, display
import pandas as pd
from samr1lib import notebooks
Path(figures_dir).mkdir(parents=True, exist_ok=True)
pd.set_option("display.max_colwidth", 80)"""

FINAL = """notebooks.write_metrics(metrics_path, metrics)"""


def params(*lines: str) -> nbformat.NotebookNode:
    cell = new_code_cell("# Parameters (papermill overrides them: python -m samr1lib.notebooks --params FILE.yaml)\n"
                         + "\n".join([SCALE_DOC, *lines, FIG_DOC, METRICS_DOC]))
    cell.metadata["tags"] = ["parameters"]
    return cell


def nb(title: str, intro: str, param_lines: list[str], cells: list[str | tuple[str, str]]) -> nbformat.NotebookNode:
    book = new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    book.cells = [new_markdown_cell(f"# {title}\n\n{intro}"), params(*param_lines), new_code_cell(SETUP)]
    for c in cells:
        if isinstance(c, tuple):
            book.cells.append(new_markdown_cell(c[0]))
            book.cells.append(new_code_cell(c[1]))
        else:
            book.cells.append(new_code_cell(c))
    book.cells.append(new_markdown_cell("The metrics this notebook reports (the tests read them)."))
    book.cells.append(new_code_cell(FINAL))
    return book


ABLATION_INTRO = {
    "threshold": ("04_ablation_threshold", "Ablation: tiered reward vs fixed thresholds (SAM-R1 Table 3)",
                  "Eq. 5's tiered IoU reward against Table 3's fixed thresholds 0.5 / 0.7 / 0.8 (4 above the threshold, "
                  "0 below)."),
    "token_level": ("05_ablation_token_level", "Ablation: token-level normalisation (SAM-R1 Table 4)",
                    "Eq. 2's per-sequence normalisation against Eq. 4's group-level token normalisation."),
    "clip_higher": ("06_ablation_clip_higher", "Ablation: clip-higher (SAM-R1 Table 4)",
                    "Symmetric clipping (eps_high = eps_low = 0.2) against SAM-R1's eps_high = 0.3 (§3.2)."),
    "kl_removal": ("07_ablation_kl_removal", "Ablation: removing the KL term (SAM-R1 Appendix A.1)",
                   "beta = 0.04 (the KL kept) against beta = 0. At paper scale A.1 reports a collapse after about 100 "
                   "steps; the KL panel of the figure is the one to read."),
    "related_systems": ("11_related_systems", "Related systems: Seg-R1 and StAR beside SAM-R1",
                        "The same pipeline configured as SAM-R1, as Seg-R1 (answers with fg/bg labelled points, reward "
                        "0.7 IoU + 0.3 S-measure, an SFT cold start on a synthetic FCoT set) and as StAR (a list of "
                        "objects scored by Hungarian matching, the non-repeat and label rewards, REST). Each is trained "
                        "and evaluated on the toy world's held-out set; the published numbers (PAPER.md §7-8) are "
                        "beside ours. Seg-R1's row starts from its own cold start, so its change is against that."),
    "negative_points": ("08_ablation_negative_points", "Ablation: negative points (SAM-R1 Appendix A.2)",
                        "Labelled points allowed with no reward for them (A.2a), the point-value reward (A.2b) and the "
                        "in-box reward (A.2c), against the final method (no negative points)."),
}

ABLATION_COMMON = """Every variant is the `toy` preset (`samr1lib.config.PRESETS`) with ONE field changed; nothing is tuned per
variant. Each (variant, seed) is: the shared warm start of that seed, GRPO, greedy evaluation on the held-out set
(`samr1lib.toy.run_variant`; finished runs are read back, not retrained). At `smoke` scale the numbers mean nothing
(2 GRPO steps): that scale checks the wiring. At `paper` scale this notebook prints the 8-GPU commands instead."""


def ablation(name: str) -> tuple[str, nbformat.NotebookNode]:
    stem, title, what = ABLATION_INTRO[name]
    cells: list = [
        ("## Train and evaluate every variant", f"""from samr1lib import ablations, toy
ABLATION = {name!r}
if scale == "paper":
    for cmd in ablations.paper_commands(ABLATION):
        print(cmd)
    result = None
else:
    result = ablations.run_ablation(ABLATION, scale=scale, seeds=seeds, root=root or toy.default_root(scale),
                                    figures_dir=figures_dir, show_progress=False)
    display(Markdown(f"**Ours: {{scale}} scale** (toy world, 0.3M-parameter policy, GrabCut masks, held-out "
                     f"set of {{result.runs[0]['after']['n']}} images, seeds {{list(seeds)}}; mean ± std over seeds). "
                     "**Paper: ReasonSeg test (RS) and RefCOCOg test (Rcg), Qwen2.5-VL-7B + SAM2-L, 8 GPUs.** "
                     "Not the same experiment: read the ordering, not the values."))
    display(result.table)"""),
        ("## Training curves (mean ± std over seeds)", """if result is not None:
    display(Image(str(result.figure)))"""),
    ]
    if name == "negative_points":
        cells.append(("## Where the labelled points land (A.2's observation)", """if result is not None:
    positions = ablations.negative_point_summary(result, Path(figures_dir) / f"08_negative_points_{scale}.png")
    display(pd.DataFrame(positions).T)
    display(Image(str(Path(figures_dir) / f"08_negative_points_{scale}.png")))"""))
    cells.append("""metrics = result.metrics() if result is not None else {"ablation": ABLATION, "scale": scale,
                                                          "commands": ablations.paper_commands(ABLATION)}""")
    book = nb(title, f"{what}\n\n{ABLATION_COMMON}",
              ["seeds = [0]  # seeds per variant (the committed toy-scale results use [0, 1, 2])",
               'root = ""  # run folder (empty: samr1lib.toy.default_root(scale): runs/toy_bench at toy scale)'], cells)
    return stem, book


def build() -> dict[str, nbformat.NotebookNode]:
    books: dict[str, nbformat.NotebookNode] = {}
    books["01_data_sampling"] = nb(
        "Data sampling",
        "SAM-R1 trains on 3,000 RefCOCOg instances drawn at random (§4.1). At `paper` scale this notebook draws them "
        "from a REFER folder and writes the manifest that fixes the draw; at `smoke` / `toy` scale it draws from the "
        "synthetic toy world (same REFER layout, same loader). Then it shows the categories, expression lengths and "
        "object sizes, and a grid of samples with their masks and boxes.",
        ['refer_root = "data/refer"  # paper scale: the REFER folder (refcocog/refs(umd).p, instances.json, images/)',
         "n_samples = 3000  # SAM-R1 §4.1: 3,000 instances", "seed = 0  # seed of the draw"],
        [("## Draw the sample", """from samr1lib import data, plots, toy
if scale == "paper":
    records = data.load_refer(refer_root, "refcocog", "train")
    source = refer_root
else:
    world = toy.ensure_world(toy.default_root(scale), scale)
    records, source = toy.train_records(world), str(world)
sample = data.sample_refer(records, n=min(n_samples, len(records)), seed=seed)
manifest = data.write_manifest(f"runs/notebooks/01_{scale}_manifest.json", sample, seed=seed, source=source)
print(f"{len(sample)} of {len(records)} expressions drawn from {source} (seed {seed})")"""),
         ("## Categories, expression lengths, object sizes", """overview, stats = plots.data_overview(sample, Path(figures_dir) / f"01_data_overview_{scale}.png",
                                     title=f"{len(sample)} samples, {scale} scale")
display(Image(str(overview)))"""),
         ("## Samples with their GT masks (green) and boxes (cyan)", """grid = plots.sample_grid(sample, Path(figures_dir) / f"01_samples_{scale}.png", n=8, seed=seed)
display(Image(str(grid)))"""),
         """metrics = {"scale": scale, "n_sample": len(sample), "n_records": len(records), **stats,
           "figures": [str(overview), str(grid)]}"""],
    )
    books["02_reward_sanity_checks"] = nb(
        "Reward sanity checks",
        "Before training on a reward, look at it: Eq. 5's tiers against IoU beside Table 3's fixed thresholds; the "
        "format rewards and the parser on a gallery of good and malformed answers; the masks a segmenter returns for "
        "perturbed GT boxes and the reward each earns.",
        ['segmenter = "grabcut"  # "grabcut" (no weights) | "sam2" (give sam2_checkpoint)',
         'sam2_config = "sam2.1_hiera_l"  # SAM-R1 §4.1: SAM2-Large',
         'sam2_checkpoint = ""  # path of the SAM2 weights when segmenter == "sam2"',
         'refer_root = "data/refer"  # paper scale: the REFER folder (RefCOCOg val is used)',
         "n_records = 8  # records in the perturbation study", "noise = [0.0, 0.1, 0.2, 0.35]  # box noise levels"],
        [("## The tiered reward (Eq. 5) against IoU", """from samr1lib import data, plots, rewards, sanity, toy
from samr1lib.segmenters import build_segmenter
display(Image(str(plots.reward_vs_iou(Path(figures_dir) / f"02_reward_vs_iou_{scale}.png"))))
boundaries = [0.0, 0.5, 0.5000001, 0.6, 0.7, 0.7000001, 0.8, 0.8000001, 1.0]
tiers = {str(v): rewards.tiered_iou_reward(v) for v in boundaries}
display(pd.DataFrame({"IoU": boundaries, "tier (Eq. 5)": list(tiers.values())}))"""),
         ("## Format rewards and the parser on a gallery of answers", """gallery = sanity.gallery_table()
display(gallery)"""),
         ("## Masks from perturbed GT boxes, and the reward they earn", """if scale == "paper":
    records = data.load_refer(refer_root, "refcocog", "val")[:n_records]
else:
    records = toy.heldout_records(toy.ensure_world(toy.default_root(scale), scale))[:n_records]
seg = (build_segmenter("sam2", config=sam2_config, checkpoint=sam2_checkpoint) if segmenter == "sam2"
       else build_segmenter("grabcut"))
study = sanity.perturbation_study(records, seg, noise=noise)
by_noise = study.groupby("noise")[["box_iou", "mask_iou", "tier"]].mean()
display(by_noise)
display(Image(str(plots.perturbation_figure(study, Path(figures_dir) / f"02_perturbation_{scale}.png"))))"""),
         ("## Parse-failure reasons in the gallery", """failures = rewards.failure_counts([t for _, t in sanity.GALLERY])
display(pd.Series(failures, name="count").to_frame())"""),
         """metrics = {"scale": scale, "tiers_at_boundaries": tiers, "gallery": gallery.to_dict(orient="records"),
           "perturbation": {str(k): v for k, v in by_noise.to_dict(orient="index").items()},
           "failure_counts": failures, "segmenter": segmenter}"""],
    )
    books["03_training_launch"] = nb(
        "Training launch",
        "The paper run is 8 GPUs under accelerate with DeepSpeed ZeRO-3 (§4.1). This notebook writes the accelerate "
        "config and the exact launch command; at `smoke` scale it runs the smoke preset in two CPU processes (the same "
        "launcher, gloo instead of NCCL); at `toy` scale it runs the toy pipeline for one seed. Then it plots the "
        "reward, IoU, KL, completion length and clip ratios from the run's logs.",
        ["num_processes = 2  # smoke scale: CPU processes (accelerate launch --multi_gpu on a machine without GPUs)",
         'output_dir = ""  # run folder (empty: runs/notebooks/03_<scale>); paper scale: a finished run to plot, if any',
         "seed = 0"],
        [("## The accelerate config and the 8-GPU command", """import shutil, subprocess, json
from samr1lib import plots, toy, train
run_dir = Path(output_dir or f"runs/notebooks/03_{scale}")
run_dir.mkdir(parents=True, exist_ok=True)
config_copy = run_dir / "accelerate_zero3_8gpu.yaml"
shutil.copy(train.accelerate_config_path("zero3"), config_copy)
print(config_copy.read_text())
print("launch the paper run with:\\n  " + " ".join(train.paper_launch_command()))"""),
         ("## Run", """if scale == "smoke":
    cmd = train.local_launch_command(num_processes, "smoke", ["--no-resume", f"output_dir={run_dir}"])
    print(" ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the smoke launch failed (exit {proc.returncode}):\\n{proc.stderr[-3000:]}")
elif scale == "toy":
    result = toy.run_variant(toy.default_root(scale), seed=seed, show_progress=False)
    run_dir = Path(result["metrics"]).parent
logs = run_dir / "metrics.jsonl"
print(f"logs: {logs} ({'present' if logs.exists() else 'absent: nothing to plot'})")"""),
         ("## Reward, IoU, KL, completion length, clip ratios", """keys = {"rewards/segmentation_reward/mean": "segmentation reward", "seg/mean_iou": "rollout IoU", "kl": "KL",
        "completions/mean_length": "completion length", "clip_ratio/region_mean": "clip ratio (region)"}
curves = None
if logs.exists():
    curves = plots.training_curves({f"{scale} run": [logs]}, Path(figures_dir) / f"03_training_curves_{scale}.png",
                                   keys=keys, window=1 if scale == "smoke" else 10)
    display(Image(str(curves)))
cfg_file = run_dir / "train_config.json"
run_cfg = json.loads(cfg_file.read_text()) if cfg_file.exists() else {}"""),
         """rows = plots.read_metrics(logs) if logs.exists() else []
metrics = {"scale": scale, "launch": train.paper_launch_command(), "world_size": run_cfg.get("world_size"),
           "steps_logged": len(rows), "last": rows[-1] if rows else None, "figure": str(curves) if curves else None}"""],
    )
    for name in ABLATION_INTRO:
        stem, book = ablation(name)
        books[stem] = book
    books["09_evaluation"] = nb(
        "Evaluation",
        "Evaluates a policy on the paper's suite: RefCOCO testA, RefCOCO+ testA, RefCOCOg test (cIoU, Table 2) and "
        "ReasonSeg val / test (gIoU and cIoU, Table 1), with the paper's numbers beside ours. At `smoke` / `toy` scale "
        "the datasets are synthetic stand-ins in the real layouts, so the paper's numbers are context, not a target.",
        ['policy = ""  # a model folder or hub id (empty: smoke: a tiny random policy; toy: the toy GRPO policy of seed 0; '
         'paper: Qwen/Qwen2.5-VL-7B-Instruct)',
         'refer_root = "data/refer"  # paper scale: REFER folder', 'reasonseg_root = "data/reasonseg"  # paper scale',
         "limit = 8  # samples per split (None = all)", 'segmenter = "grabcut"  # "grabcut" | "sam2"',
         'sam2_checkpoint = ""', "max_new_tokens = 64  # paper scale: 1024"],
        [("## Data and policy", """from samr1lib import evaluate, policy as policies, synthetic, toy
from samr1lib.segmenters import build_segmenter
size = 840 if scale == "paper" else 112  # SAM-R1 §4.1: 840 x 840; the toy world: 112
if scale != "paper":
    stand_in = Path(f"runs/notebooks/09_{scale}_data")
    if not (stand_in / "refer" / "refcocog" / "instances.json").exists():
        synthetic.write_refer_world(str(stand_in / "refer"), n_images=40, seed=1, position_gradient=0.5)
        synthetic.write_reasonseg_world(str(stand_in / "reasonseg"), n_per_split=max(limit or 8, 8), seed=1,
                                        position_gradient=0.5)
    refer_root, reasonseg_root = str(stand_in / "refer"), str(stand_in / "reasonseg")
if not policy:
    if scale == "paper":
        policy = "Qwen/Qwen2.5-VL-7B-Instruct"
    elif scale == "toy":
        policy = toy.run_variant(toy.default_root("toy"), seed=0, show_progress=False)["metrics"].replace("metrics.jsonl", "final")
    else:
        policy = str(policies.build_tiny_policy(f"runs/notebooks/09_{scale}_tiny_policy"))
model, processor = policies.load_policy(policy)
seg = build_segmenter("sam2", checkpoint=sam2_checkpoint) if segmenter == "sam2" else build_segmenter("grabcut")
print(f"policy {policy}; segmenter {segmenter}; refer {refer_root}; reasonseg {reasonseg_root}")"""),
         ("## The suite", """out = f"runs/notebooks/09_{scale}_eval"
summaries = evaluate.evaluate_suite(evaluate.HFPolicy(model, processor, max_new_tokens=max_new_tokens), seg,
                                    refer_root, reasonseg_root, out, size=size, limit=limit, show_progress=False)
display(Markdown(f"**Ours: {scale} scale, policy `{policy}`.** Paper: SAM-R1 Tables 1-2 (Qwen2.5-VL-7B + SAM2-L)."))
display(Markdown(evaluate.markdown_table(summaries)))"""),
         """metrics = {"scale": scale, "policy": policy, "splits": summaries}"""],
    )
    books["10_rollout_viewer"] = nb(
        "Rollout viewer",
        "Browse the rollouts of a training run: filter by step, reward and parse failure, sort by reward or advantage, "
        "and see each rollout's image with the GT mask (green), the predicted mask (red; overlap yellow), box (cyan) and "
        "points, its think text and every reward component. A static grid of the best and worst rollouts is saved for "
        "headless runs.",
        ['rollouts = ""  # a rollouts.rank*.jsonl or a run folder (empty: $SAMR1_ROLLOUTS, else smoke: a 2-step smoke run; '
         'toy: the toy GRPO run of seed 0)'],
        [("## Load the rollout log", """import os
from samr1lib import config, toy, train, viewer
source = rollouts or os.environ.get("SAMR1_ROLLOUTS", "")
if not source:
    if scale == "toy":
        source = str(Path(toy.run_variant(toy.default_root("toy"), seed=0, show_progress=False)["metrics"]).parent)
    else:
        source = f"runs/notebooks/10_{scale}_run"
        if not list(Path(source).glob("rollouts.rank*.jsonl")):
            train.train(config.load_config("smoke", overrides=[f"output_dir={source}"]))
df = viewer.load_rollouts(source)
print(f"{len(df)} rollouts from {source}, steps {df['step'].min()}-{df['step'].max()}")"""),
         ("## The viewer (live kernel)", """v = viewer.RolloutViewer(df)
display(v.widget)"""),
         ("## Best and worst rollouts (static, for headless runs)", """grid = viewer.rollout_grid(df, Path(figures_dir) / f"10_rollouts_{scale}.png", n=4)
display(Image(str(grid)))"""),
         """ok = viewer.filter_rollouts(df, failure="ok")
metrics = {"scale": scale, "source": source, "rollouts": len(df), "parsed": len(ok),
           "failure_choices": viewer.failure_choices(df), "shown_row": int(v.current["row_id"]) if v.current else None,
           "best_reward": float(viewer.sort_rollouts(df).iloc[0]["reward"]), "figure": str(grid)}"""],
    )
    return books


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for stem, book in build().items():
        nbformat.validate(book)
        (OUT / f"{stem}.ipynb").write_text(nbformat.writes(book))
        print(f"wrote notebooks/{stem}.ipynb")


if __name__ == "__main__":
    main()
