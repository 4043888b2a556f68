# %% [markdown]
# # Reward sanity checks
#
# Before training on a reward, look at it: Eq. 5's tiers against IoU beside Table 3's fixed thresholds; the format
# rewards and the parser on a gallery of good and malformed answers; the masks a segmenter returns for perturbed GT
# boxes and the reward each earns.

# %% tags=["parameters"]
# Parameters (papermill overrides them: python -m samr1lib.notebooks --params FILE.yaml)
scale = "smoke"  # "smoke": CPU, seconds (CI) | "toy": the toy world, CPU, minutes | "paper": real weights and data, 8 GPUs
segmenter = "grabcut"  # "grabcut" (no weights) | "sam2" (give sam2_checkpoint)
sam2_config = "sam2.1_hiera_l"  # SAM-R1 §4.1: SAM2-Large
sam2_checkpoint = ""  # path of the SAM2 weights when segmenter == "sam2"
refer_root = "data/refer"  # paper scale: the REFER folder (RefCOCOg val is used)
n_records = 8  # records in the perturbation study
noise = [0.0, 0.1, 0.2, 0.35]  # box noise levels
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
# ## The tiered reward (Eq. 5) against IoU

# %%
from samr1lib import rewards
from samr1lib.experiments import sanity
from samr1lib.view import plots

display(Image(str(plots.reward_vs_iou(Path(figures_dir) / f"02_reward_vs_iou_{scale}.png"))))
boundaries = [0.0, 0.5, 0.5000001, 0.6, 0.7, 0.7000001, 0.8, 0.8000001, 1.0]
tiers = {str(v): rewards.tiered_iou_reward(v) for v in boundaries}
display(pd.DataFrame({"IoU": boundaries, "tier (Eq. 5)": list(tiers.values())}))

# %% [markdown]
# ## Format rewards and the parser on a gallery of answers

# %%
gallery = sanity.gallery_table()
display(gallery)

# %% [markdown]
# ## Masks from perturbed GT boxes, and the reward they earn

# %%
records = steps.sanity_records(scale, refer_root, n_records)
seg = steps.segmenter(segmenter, sam2_config, sam2_checkpoint)
study = sanity.perturbation_study(records, seg, noise=noise)
by_noise = study.groupby("noise")[["box_iou", "mask_iou", "tier"]].mean()
display(by_noise)
display(Image(str(plots.perturbation_figure(study, Path(figures_dir) / f"02_perturbation_{scale}.png"))))

# %% [markdown]
# ## Parse-failure reasons in the gallery

# %%
failures = rewards.failure_counts([t for _, t in sanity.GALLERY])
display(pd.Series(failures, name="count").to_frame())

# %%
metrics = {"scale": scale, "tiers_at_boundaries": tiers, "gallery": gallery.to_dict(orient="records"),
           "perturbation": {str(k): v for k, v in by_noise.to_dict(orient="index").items()},
           "failure_counts": failures, "segmenter": segmenter}

# %% [markdown]
# The metrics this notebook reports (the tests read them).

# %%
notebooks.write_metrics(metrics_path, metrics)
