"""Load a policy, the real one or the tiny offline fixture, the same way: ``(model, processor)`` from a path or hub id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["load_policy", "check_policy_dir"]

_PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json")


def check_policy_dir(path_or_hub_id: str | Path) -> None:
    """If ``path_or_hub_id`` is a local path, it must be a saved model directory WITH its processor (a bare model
    checkpoint cannot build prompts with images); a hub id is left to transformers. Raises naming what is missing."""
    path = Path(path_or_hub_id)
    if not path.exists():
        return
    if not path.is_dir():
        raise NotADirectoryError(f"policy {path} is not a directory")
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"policy {path} has no config.json: not a saved model directory")
    missing = [f for f in _PROCESSOR_FILES if not (path / f).exists()]
    if "tokenizer.json" in missing or not ({"processor_config.json", "preprocessor_config.json"} - set(missing)):
        raise FileNotFoundError(
            f"policy {path} has no processor files (missing {', '.join(missing)}); save the processor with "
            "processor.save_pretrained(dir) next to the model, or build one with `python -m samr1lib.policy build DIR`."
        )


def load_policy(path_or_hub_id: str | Path, device: Any = "cpu", dtype: Any = "auto"):
    """Load ``(model, processor)`` from a directory (e.g. :func:`samr1lib.policy.build_tiny_policy`'s) or a hub id.

    ``dtype`` is a torch dtype, a name ("bfloat16", "float32") or "auto" (the checkpoint's).
    """
    import torch
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    check_policy_dir(path_or_hub_id)
    if isinstance(dtype, str) and dtype != "auto":
        dtype = getattr(torch, dtype)
    processor = AutoProcessor.from_pretrained(str(path_or_hub_id))
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(path_or_hub_id), dtype=dtype)
    model.to(device)
    return model, processor
