"""The policy: load it (the real Qwen2.5-VL or the tiny offline fixture, by path or hub id), and generate with it.

SAM-R1 trains Qwen2.5-VL-7B-Instruct (SAM-R1 §4.1). :func:`build_tiny_policy` writes a directory with the same
layout and classes, only tiny and random, so tests and CPU runs exercise the paper-scale code paths.

CLI: ``python -m samr1lib.policy build OUT_DIR [--seed N]``.
"""

from .generate import HFPolicy, Policy, VLLMPolicy, prompt_text
from .load import check_policy_dir, load_policy
from .tiny import TINY_POLICY, build_tiny_policy, build_tiny_tokenizer, ensure_tiny_policy

__all__ = ["Policy", "HFPolicy", "VLLMPolicy", "prompt_text", "load_policy", "check_policy_dir", "TINY_POLICY",
           "build_tiny_policy", "build_tiny_tokenizer", "ensure_tiny_policy"]
