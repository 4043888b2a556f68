# %% [markdown]
# # Rollout viewer
#
# Browse the rollouts of a training run: filter by step, reward and parse failure, sort by reward or advantage, and
# see each rollout's image with the GT mask, the predicted mask, box and points, its think text and every reward
# component. A static grid of the best and worst rollouts is saved for headless runs.

# %% tags=["parameters"]
# Parameters (papermill overrides them: python -m samr1lib.notebooks --params FILE.yaml)
scale = "smoke"  # "smoke": CPU, seconds (CI) | "toy": the toy world, CPU, minutes | "paper": real weights and data, 8 GPUs
rollouts = ""  # a rollouts.rank*.jsonl or a run folder (empty: $SAMR1_ROLLOUTS, else smoke: a 2-step smoke run; toy: the toy GRPO run of seed 0)
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
# ## Load the rollout log

# %%
import os

from samr1lib.view import rollouts as viewer

source = steps.rollout_source(scale, rollouts or os.environ.get("SAMR1_ROLLOUTS", ""))
df = viewer.load_rollouts(source)
print(f"{len(df)} rollouts from {source}, steps {df['step'].min()}-{df['step'].max()}")

# %% [markdown]
# ## The viewer (live kernel)

# %%
v = viewer.RolloutViewer(df)
display(v.widget)

# %% [markdown]
# ## Best and worst rollouts (static, for headless runs)

# %%
grid = viewer.rollout_grid(df, Path(figures_dir) / f"10_rollouts_{scale}.png", n=4)
display(Image(str(grid)))

# %%
ok = viewer.filter_rollouts(df, failure="ok")
metrics = {"scale": scale, "source": source, "rollouts": len(df), "parsed": len(ok),
           "failure_choices": viewer.failure_choices(df), "shown_row": int(v.current["row_id"]) if v.current else None,
           "best_reward": float(viewer.sort_rollouts(df).iloc[0]["reward"]), "figure": str(grid)}

# %% [markdown]
# The metrics this notebook reports (the tests read them).

# %%
notebooks.write_metrics(metrics_path, metrics)
