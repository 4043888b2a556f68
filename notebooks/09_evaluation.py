# %% [markdown]
# # Evaluation
#
# Evaluates a policy on the paper's suite: RefCOCO testA, RefCOCO+ testA, RefCOCOg test (cIoU, Table 2) and ReasonSeg
# val / test (gIoU and cIoU, Table 1), with the paper's numbers beside ours. At `smoke` / `toy` scale the datasets
# are synthetic stand-ins in the real layouts, so the paper's numbers are context, not a target.

# %% tags=["parameters"]
# Parameters (papermill overrides them: python -m samr1lib.notebooks --params FILE.yaml)
scale = "smoke"  # "smoke": CPU, seconds (CI) | "toy": the toy world, CPU, minutes | "paper": real weights and data, 8 GPUs
policy = ""  # a model folder or hub id (empty: smoke: a tiny random policy; toy: the toy GRPO policy of seed 0; paper: Qwen/Qwen2.5-VL-7B-Instruct)
refer_root = "data/refer"  # paper scale: REFER folder
reasonseg_root = "data/reasonseg"  # paper scale
limit = 8  # samples per split (None = all)
segmenter = "grabcut"  # "grabcut" | "sam2"
sam2_checkpoint = ""
max_new_tokens = 64  # paper scale: 1024
run_dir = ""  # a training run to choose one checkpoint from (empty: smoke: a 2-step smoke run; toy: the toy GRPO run of seed 0)
figures_dir = "figures"  # PNGs are written here, named after this notebook and the scale
metrics_path = ""  # where the final metrics JSON goes; empty: not written (papermill runs set it)

# %%
from pathlib import Path

import pandas as pd
from IPython.display import Image, Markdown, display

from samr1lib.experiments import notebooks, steps

Path(figures_dir).mkdir(parents=True, exist_ok=True)
pd.set_option("display.max_colwidth", 80)

# %% [markdown]
# ## Data and policy

# %%
from samr1lib import evaluate
from samr1lib.policy import HFPolicy, load_policy

inputs = steps.evaluation_inputs(scale, policy, refer_root, reasonseg_root, limit)
model, processor = load_policy(inputs["policy"])
seg = steps.segmenter(segmenter, sam2_checkpoint=sam2_checkpoint)
print(inputs)

# %% [markdown]
# ## The suite

# %%
summaries = evaluate.evaluate_suite(HFPolicy(model, processor, max_new_tokens=max_new_tokens), seg,
                                    inputs["refer_root"], inputs["reasonseg_root"], str(steps.work_dir("09", scale, "eval")),
                                    size=inputs["size"], limit=limit, show_progress=False)
display(Markdown(f"**Ours: {scale} scale, policy `{inputs['policy']}`.** Paper: SAM-R1 Tables 1-2 "
                 "(Qwen2.5-VL-7B + SAM2-L)."))
display(Markdown(evaluate.markdown_table(summaries)))

# %% [markdown]
# ## One checkpoint for every benchmark, chosen on val
#
# Every saved checkpoint of a training run is evaluated on ReasonSeg val, the best by gIoU is chosen, and that one
# checkpoint is evaluated on every benchmark (`python -m samr1lib.evaluate select RUN_DIR ...`).

# %%
selection, diff = steps.select_and_diff(scale, steps.training_run(scale, run_dir), inputs, seg, limit, max_new_tokens)
display(Markdown(evaluate.selection_table(selection)))

# %% [markdown]
# ## Two evaluation runs, sample by sample
#
# The first and the last checkpoint on ReasonSeg val (`python -m samr1lib.evaluate diff RUN_A RUN_B`): which samples
# crossed IoU 0.5, the largest gains and losses, the IoU deltas, a paired bootstrap interval for the difference.

# %%
if diff:
    display(Markdown(evaluate.diff_markdown(diff)))
    display(Image(diff["figure"]))

# %%
metrics = {"scale": scale, "policy": inputs["policy"], "splits": summaries, "selection": selection,
           "diff": {k: diff[k] for k in ("gIoU", "cIoU", "bootstrap_95", "n")} if diff else None}

# %% [markdown]
# The metrics this notebook reports (the tests read them).

# %%
notebooks.write_metrics(metrics_path, metrics)
