# %% [markdown]
# # Data sampling
#
# SAM-R1 trains on 3,000 RefCOCOg instances drawn at random (§4.1). At `paper` scale this notebook draws them from a
# REFER folder and writes the manifest that fixes the draw; at `smoke` / `toy` scale it draws from the synthetic toy
# world (same REFER layout, same loader). Then it shows the categories, expression lengths and object sizes, and a
# grid of samples with their masks and boxes.

# %% tags=["parameters"]
# Parameters (papermill overrides them: python -m samr1lib.notebooks --params FILE.yaml)
scale = "smoke"  # "smoke": CPU, seconds (CI) | "toy": the toy world, CPU, minutes | "paper": real weights and data, 8 GPUs
refer_root = "data/refer"  # paper scale: the REFER folder (refcocog/refs(umd).p, instances.json, images/)
n_samples = 3000  # SAM-R1 §4.1: 3,000 instances
seed = 0  # seed of the draw
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
# ## Draw the sample

# %%
from samr1lib import data
from samr1lib.view import plots

records, source = steps.training_records(scale, refer_root)
sample = data.sample_refer(records, n=min(n_samples, len(records)), seed=seed)
manifest = data.write_manifest(str(steps.work_dir("01", scale, "manifest.json")), sample, seed=seed, source=source)
print(f"{len(sample)} of {len(records)} expressions drawn from {source} (seed {seed})")

# %% [markdown]
# ## Categories, expression lengths, object sizes

# %%
overview, stats = plots.data_overview(sample, Path(figures_dir) / f"01_data_overview_{scale}.png",
                                     title=f"{len(sample)} samples, {scale} scale")
display(Image(str(overview)))

# %% [markdown]
# ## Samples with their GT masks and boxes

# %%
grid = plots.sample_grid(sample, Path(figures_dir) / f"01_samples_{scale}.png", n=8, seed=seed)
display(Image(str(grid)))

# %%
metrics = {"scale": scale, "n_sample": len(sample), "n_records": len(records), **stats,
           "figures": [str(overview), str(grid)]}

# %% [markdown]
# The metrics this notebook reports (the tests read them).

# %%
notebooks.write_metrics(metrics_path, metrics)
