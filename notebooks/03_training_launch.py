# %% [markdown]
# # Training launch
#
# The paper run is 8 GPUs under accelerate with DeepSpeed ZeRO-3 (§4.1). This notebook shows the accelerate config and
# the exact launch command; at `smoke` scale it runs the smoke preset in two CPU processes (the same launcher, gloo
# instead of NCCL); at `toy` scale it runs the toy pipeline for one seed. Then it plots the reward, IoU, KL,
# completion length and clip ratios from the run's logs.

# %% tags=["parameters"]
# Parameters (papermill overrides them: python -m samr1lib.notebooks --params FILE.yaml)
scale = "smoke"  # "smoke": CPU, seconds (CI) | "toy": the toy world, CPU, minutes | "paper": real weights and data, 8 GPUs
num_processes = 2  # smoke scale: CPU processes (accelerate launch --multi_gpu on a machine without GPUs)
output_dir = ""  # run folder (empty: runs/notebooks/03_<scale>); paper scale: a finished run to plot, if any
seed = 0
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
# ## The accelerate config and the 8-GPU command

# %%
import json

from samr1lib import train
from samr1lib.view import plots

print(train.accelerate_config_path("zero3").read_text())
print("launch the paper run with:\n  " + " ".join(train.paper_launch_command()))

# %% [markdown]
# ## Run

# %%
run_dir = steps.launch(scale, output_dir or steps.work_dir("03", scale), num_processes, seed)
logs = run_dir / "metrics.jsonl"
print(f"logs: {logs} ({'present' if logs.exists() else 'absent: nothing to plot'})")

# %% [markdown]
# ## Reward, IoU, KL, completion length, clip ratios

# %%
curves = steps.launch_curves(scale, run_dir, figures_dir)
if curves is not None:
    display(Image(str(curves)))
cfg_file = run_dir / "train_config.json"
run_cfg = json.loads(cfg_file.read_text()) if cfg_file.exists() else {}

# %%
rows = plots.read_metrics(logs) if logs.exists() else []
metrics = {"scale": scale, "launch": train.paper_launch_command(), "world_size": run_cfg.get("launch", {}).get("world_size"),
           "steps_logged": len(rows), "last": rows[-1] if rows else None, "figure": str(curves) if curves else None}

# %% [markdown]
# The metrics this notebook reports (the tests read them).

# %%
notebooks.write_metrics(metrics_path, metrics)
