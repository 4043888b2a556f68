#!/usr/bin/env bash
# The main job, on the embedded defaults: set up, then run the toy end-to-end pipeline for one seed (issue 7):
# toy world -> tiny Qwen2.5-VL -> SFT warm start (TRL SFTTrainer, loose boxes) -> GRPO with the paper's objective
# and the GrabCut segmentation reward (300 steps) -> greedy evaluation on the 512 held-out images.
# Ends with the before/after table, the path of the reward/IoU curves figure, and "change in mean tier: ...".
# About 10 minutes on a 2-core CPU; outputs in runs/toy_bench/ (a rerun reuses what is finished).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY="${SAMR1_VENV:-.venv}/bin/python"
"$PY" -m samr1lib.bench learning --seed "${SEED:-0}" "$@"
