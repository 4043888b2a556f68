#!/usr/bin/env bash
# The main job, on the embedded defaults: set up, then run the pipeline end to end on the synthetic
# world with the tiny offline policy and GrabCut, and the reward benchmark at a small size.
# Outputs go to runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY="${SAMR1_VENV:-.venv}/bin/python"
OUT=runs/demo
mkdir -p "$OUT"
"$PY" -m samr1lib.data synth --out "$OUT/world" --kind both --seed 0
"$PY" -m samr1lib.policy build "$OUT/tiny_policy"
"$PY" -m samr1lib.evaluate --policy "$OUT/tiny_policy" --dataset refcocog --root "$OUT/world/refer" \
    --split test --out "$OUT/eval_refcocog_test" --segmenter grabcut --max-new-tokens 48
"$PY" -m samr1lib.bench reward --image-size 512 --groups 2
