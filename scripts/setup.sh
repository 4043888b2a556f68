#!/usr/bin/env bash
# Create .venv (or $SAMR1_VENV) and install samr1lib with everything its tests and notebooks need.
# Idempotent: a second run only checks. Works offline apart from the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${SAMR1_VENV:-.venv}
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip "$@"; }
if ! "$VENV/bin/python" -c "import samr1lib, sam2, trl, torchvision" 2>/dev/null; then
  echo "[setup] installing torch, sam2 and samr1lib into $VENV (a few minutes on a fresh machine)"
  pip install -q --disable-pip-version-check "setuptools>=68" wheel
  # torch/torchvision: the CUDA build that also runs on CPU (local wheels on the project's machines).
  pip install -q --disable-pip-version-check "torch==2.14.1" "torchvision==0.29.1"
  # sam2 builds from source against the torch above; its CUDA extension is optional.
  SAM2_BUILD_CUDA=0 pip install -q --disable-pip-version-check --no-build-isolation "sam2>=1.1"
  pip install -q --disable-pip-version-check -e ".[dev,notebooks,metrics]"
fi
if ! "$VENV/bin/python" -c "import deepspeed" 2>/dev/null; then
  # DeepSpeed for the ZeRO-3 launch (the paper run's config, also tested on CPU with 2 processes);
  # no prebuilt ops: it JIT-compiles what it needs (ninja, a C++ compiler).
  echo "[setup] installing deepspeed (ZeRO-3 launches)"
  DS_BUILD_OPS=0 pip install -q --disable-pip-version-check --no-build-isolation "deepspeed>=0.16" ninja
fi
if ! "$VENV/bin/python" -c "import voila, playwright" 2>/dev/null; then
  echo "[setup] installing voila and playwright (the rollout viewer's browser test)"
  pip install -q --disable-pip-version-check -e ".[browser]"
fi
# The browser itself: Debian's chromium (Playwright cannot download its own here). Needs root or sudo; without
# it the browser test skips locally and fails under CI=true.
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if $SUDO true 2>/dev/null && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing chromium (apt)"
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
  else
    echo "[setup] chromium missing and no root to install it: the browser test will skip (CI=true: fail)"
  fi
fi
echo "[setup] ok: $("$VENV/bin/python" -c 'import torch, transformers, trl, sam2; print("torch", torch.__version__, "transformers", transformers.__version__, "trl", trl.__version__)')"
