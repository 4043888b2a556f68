#!/usr/bin/env bash
# The project's GPU check, one prepared run of a few minutes on one H100 / H200 (nothing else needs a GPU):
# SAM2.1-L at random init in bf16, the reward at G = 8 on 840x840 images (batched vs per-completion), GRPO steps of
# the tiny policy in bf16 on CUDA (fp32 master weights, off-policy clip ratios), vLLM colocate if vLLM is
# installed, peak memory of each; all in one JSON (samr1lib/experiments/gpu_check.py says what each check does).
#
#   bash scripts/gpu_check.sh [OUT.json]          # default runs/gpu_check.json
#
# On a GPU machine whose Python lacks some of the project's packages and cannot reach a registry, put their wheels
# in .whl/ (pip download / pip wheel on a machine that can); they are installed to a private folder first.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/samr1_site .whl/*.whl
  export PYTHONPATH="/tmp/samr1_site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -m samr1lib.experiments.gpu_check --out "${1:-runs/gpu_check.json}"
