"""``python -m samr1lib.train --preset paper --estimate-memory``: GPU memory of the paper run per GPU, item by item.

Counted, not guessed where a tool can count: the policy's parameters on the meta device (Qwen2.5-VL-7B's config,
written here so that no hub access is needed; a local policy folder's own config.json is used when given), the
model states per GPU from DeepSpeed's ZeRO-3 estimator, SAM2's parameters from the sam2 package's config. The
vLLM share is the config's fraction of the card; activations are a formula with its assumptions stated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import TrainConfig

__all__ = ["QWEN2_5_VL_7B", "policy_parameters", "sam2_parameters", "estimate_memory", "memory_table"]

GIB = 2**30
# Qwen2.5-VL-7B-Instruct's config.json (the values that set its size): 8,292,166,656 parameters.
QWEN2_5_VL_7B: dict[str, Any] = dict(
    text_config=dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                     num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=128000,
                     rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
                     tie_word_embeddings=False),
    vision_config=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                       patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                       fullatt_block_indexes=[7, 15, 23, 31]),
    tie_word_embeddings=False,
)
PROMPT_TOKENS = 150  # system prompt + instruction + query + chat tokens, besides the image's (an estimate)


def policy_parameters(policy: str) -> dict[str, Any]:
    """Total and largest-tensor parameter counts of the policy, built on the meta device (no memory, no weights):
    a local folder's config.json, else Qwen2.5-VL-7B's."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    local = Path(policy) / "config.json"
    config = Qwen2_5_VLConfig.from_pretrained(str(local.parent)) if local.exists() else Qwen2_5_VLConfig(**QWEN2_5_VL_7B)
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(config)
    sizes = {name: p.numel() for name, p in model.named_parameters()}
    largest = max(sizes, key=sizes.get)
    return {"source": str(local) if local.exists() else "Qwen2.5-VL-7B-Instruct's config", "total": sum(sizes.values()),
            "largest": sizes[largest], "largest_name": largest, "hidden": config.text_config.hidden_size,
            "intermediate": config.text_config.intermediate_size, "layers": config.text_config.num_hidden_layers}


def sam2_parameters(config: str) -> int:
    """SAM2's parameter count, built from the sam2 package's config at random init on the CPU (a few seconds)."""
    from sam2.build_sam import build_sam2

    from ..segmenters.sam2_backend import resolve_config

    return sum(p.numel() for p in build_sam2(resolve_config(config), ckpt_path=None, device="cpu").parameters())


def _zero3_model_states(total: int, largest: int, gpus: int) -> float:
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs

    _, gpu, _ = estimate_zero3_model_states_mem_needs(total, largest, num_gpus_per_node=gpus, num_nodes=1,
                                                      cpu_offload=False, cpu_offload_params=False, zero_init=True)
    return gpu


def estimate_memory(cfg: TrainConfig, card_gib: float = 80.0, sam2_params: int | None = None) -> list[dict[str, Any]]:
    """One row per item, GiB per GPU, with how each was obtained. ``card_gib``: the card (SAM-R1 §4.1: A100;
    80 GB assumed)."""
    p = policy_parameters(cfg.policy)
    gpus = cfg.num_processes
    rows = [dict(item="policy model states (ZeRO-3: bf16 weights and grads, fp32 master weights and Adam moments)",
                 gib=_zero3_model_states(p["total"], p["largest"], gpus) / GIB,
                 how=f"DeepSpeed's estimate_zero3_model_states_mem_needs({p['total']:,} params, largest tensor "
                     f"{p['largest']:,} = {p['largest_name']}, {gpus} GPUs)")]
    if cfg.beta:
        rows.append(dict(item="reference policy (bf16, sharded)", gib=2 * p["total"] / gpus / GIB,
                         how="2 bytes x parameters / GPUs"))
    if cfg.use_vllm and cfg.vllm_mode == "colocate":
        rows.append(dict(item="vLLM colocate: bf16 weights + KV cache", gib=cfg.vllm_gpu_memory_utilization * card_gib,
                         how=f"vllm_gpu_memory_utilization {cfg.vllm_gpu_memory_utilization} x {card_gib:g} GiB "
                             f"(weights alone {2 * p['total'] / GIB:.1f} GiB)"))
    n_sam2 = sam2_params if sam2_params is not None else sam2_parameters(cfg.sam2_config)
    rows.append(dict(item=f"SAM2 ({cfg.sam2_config}, frozen, fp32 weights, bf16 autocast)", gib=4 * n_sam2 / GIB,
                     how=f"4 bytes x {n_sam2:,} parameters, plus ~1-2 GiB of activations for one 1024 image"))
    tokens = (cfg.image_size // 28) ** 2 + PROMPT_TOKENS + cfg.max_completion_length
    batch = cfg.per_device_train_batch_size
    saved = batch * tokens * p["hidden"] * 2 * p["layers"] if cfg.gradient_checkpointing else 0
    layer = batch * tokens * (4 * p["hidden"] + 3 * p["intermediate"]) * 2
    rows.append(dict(item="activations (gradient checkpointing, one micro-batch)", gib=(saved + layer) / GIB,
                     how=f"{batch} sequences x {tokens} tokens ({(cfg.image_size // 28) ** 2} image + ~{PROMPT_TOKENS} "
                         f"prompt + {cfg.max_completion_length} completion): saved layer inputs (bf16, {p['layers']} "
                         "layers) + one layer's recomputed MLP and attention inputs; no full logits (TRL 1.16 "
                         "scores completions through a fused LM head)"))
    return rows


def memory_table(rows: list[dict[str, Any]], card_gib: float = 80.0) -> str:
    """The rows as text, with the total against the card."""
    lines = [f"{r['gib']:7.1f} GiB  {r['item']}\n{'':14}{r['how']}" for r in rows]
    total = sum(r["gib"] for r in rows)
    lines.append(f"{total:7.1f} GiB  total per GPU, of {card_gib:g} GiB ({'fits' if total <= card_gib else 'does NOT fit'})")
    return "\n".join(lines)


def report(cfg: TrainConfig, card_gib: float = 80.0) -> str:
    """:func:`memory_table` of :func:`estimate_memory`, with the JSON of the rows on the last line."""
    rows = estimate_memory(cfg, card_gib)
    return memory_table(rows, card_gib) + "\n" + json.dumps({"per_gpu_gib": rows, "card_gib": card_gib})
