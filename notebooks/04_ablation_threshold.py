# %% [markdown]
# # Ablation: tiered reward vs fixed thresholds (SAM-R1 Table 3)
#
# Eq. 5's tiered IoU reward against Table 3's fixed thresholds 0.5 / 0.7 / 0.8 (4 above the threshold, 0 below).
#
# Every variant is the `toy` preset (`samr1lib.presets`) with ONE field changed; nothing is tuned per
# variant. Each (variant, seed) is: the shared warm start of that seed, GRPO, greedy evaluation on the held-out set
# (`samr1lib.experiments.toy.run_variant`; finished runs are read back, not retrained). At `smoke` scale the numbers
# mean nothing (2 GRPO steps): that scale checks the wiring. At `paper` scale this notebook prints the 8-GPU
# commands instead.

# %% tags=["parameters"]
# Parameters (papermill overrides them: python -m samr1lib.notebooks --params FILE.yaml)
scale = "smoke"  # "smoke": CPU, seconds (CI) | "toy": the toy world, CPU, minutes | "paper": real weights and data, 8 GPUs
seeds = [0]  # seeds per variant (the committed toy-scale results, figures/ablations_toy.md, use [0, 1, 2, 3, 4])
root = ""  # run folder (empty: runs/toy_bench at toy scale, runs/smoke_toy at smoke scale)
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
# ## Train and evaluate every variant

# %%
result, commands = steps.ablation('threshold', scale, seeds, root, figures_dir)
print("\n".join(commands))
if result is not None:
    display(Markdown(result.caption()))
    display(result.table)

# %% [markdown]
# ## Training curves (mean ± std over seeds)

# %%
if result is not None:
    display(Image(str(result.figure)))

# %%
metrics = result.metrics() if result is not None else {"ablation": 'threshold', "scale": scale, "commands": commands}

# %% [markdown]
# The metrics this notebook reports (the tests read them).

# %%
notebooks.write_metrics(metrics_path, metrics)
