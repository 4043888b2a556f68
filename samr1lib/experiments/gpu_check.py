"""``bash scripts/gpu_check.sh``: the checks that need a GPU, in one run of a few minutes, written to one JSON.

1. ``environment``: versions, the device, its memory.
2. ``sam2_reward``: SAM2.1-L (SAM-R1 §4.1's SAM2-Large) at random init, bf16 autocast, G = 8 completions per group
   on 840 x 840 images: the batched reward path (one encoding per image) against the per-completion one, the
   lowest mask IoU between them, encode and decode times, peak memory.
3. ``grpo_bf16``: GRPO steps of the tiny offline policy in bf16 on CUDA, off-policy (2 optimizer steps per
   generation batch), at the paper's learning rate 1e-6: the weights' dtype during training (fp32 master weights
   under DDP-style training, :func:`samr1lib.train.run.weights_dtype`), the share of weights that changed, the
   clip ratios, peak memory; ``grpo_clip``: the same at lr 0.05, where the clip range acts.
4. ``vllm_colocate``: two GRPO steps with vLLM colocated, when vLLM is installed; otherwise why not.

Each check records its own error (with the traceback's last lines) and the others still run: a GPU session is
short, and one missing package must not hide the other figures. ``--device cpu --quick`` runs the same code at
tiny sizes (a test does, so the script cannot rot on machines without a GPU).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

from ..config import load_config
from ..data import training_dataset
from ..policy import ensure_tiny_policy
from ..rewards import build_rewards
from ..segmenters import build_segmenter
from ..segmenters.sam2_backend import SAM2Segmenter
from ..train import build_grpo_config
from ..train.rollout_log import RolloutLoggingTrainer
from .reward_bench import make_group_inputs, run_reward_bench

__all__ = ["environment", "sam2_reward", "grpo_bf16", "grpo_clip", "vllm_colocate", "run_checks", "main"]


def _peak_reset(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None


def environment(device: str, quick: bool) -> dict[str, Any]:
    import transformers
    import trl

    out = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
           "trl": trl.__version__, "cuda": torch.version.cuda, "device": device, "torch_threads": torch.get_num_threads()}
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(0)
        out.update(gpu=props.name, gpu_memory_gib=props.total_memory / 2**30, bf16_supported=torch.cuda.is_bf16_supported())
    return out


def _time(device: str, fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeats


def sam2_reward(device: str, quick: bool) -> dict[str, Any]:
    config, size, group, groups, side = ("sam2.1_hiera_t", 256, 4, 1, 112) if quick else \
        ("sam2.1_hiera_l", None, 8, 2, 840)
    _peak_reset(device)
    t0 = time.perf_counter()
    seg = SAM2Segmenter(config=config, checkpoint=None, device=device, image_size=size)
    built = time.perf_counter() - t0
    res = run_reward_bench(config, size, group, groups, side, side, device, log=lambda *_: None, segmenter=seg)
    image, prompts = make_group_inputs(1, group, side, side)[0]
    encode = _time(device, lambda: seg._set_image(image), 3)
    with torch.inference_mode(), seg._autocast():
        decode = _time(device, lambda: seg._decode(prompts), 5)
    return {"config": config, "input_size": size or 1024, "image": f"{side}x{side}", "groups": groups, "G": group,
            "bf16_autocast": seg.bf16, "build_s": built, "batched_s": res.batched_s, "per_completion_s": res.naive_s,
            "speedup": res.speedup, "lowest_mask_iou_between_paths": res.min_iou, "encode_s": encode,
            "decode_s_per_group": decode, "decode_s_per_prompt": decode / group, "peak_gib": _peak_gib(device)}


def _length_reward(completions, **kwargs) -> list[float]:
    """Varies inside a group, so the advantages are not all 0 and the policy moves (a random policy's other
    rewards are all 0)."""
    return [float(len(c[0]["content"]) % 7) for c in completions]


def _grpo_trainer(device: str, out: Path, steps: int, extra: tuple[str, ...] = ()):
    cuda = device.startswith("cuda")
    cfg = load_config("smoke", overrides=[f"output_dir={out}", f"max_steps={steps}", "save_steps=1000",
                                          "steps_per_generation=2", f"bf16={cuda}", f"use_cpu={not cuda}", *extra])
    segmenter = build_segmenter("grabcut", iterations=1)
    trainer = RolloutLoggingTrainer(
        model=str(ensure_tiny_policy(out, cfg.seed)), reward_funcs=[*build_rewards(cfg, segmenter), _length_reward],
        args=build_grpo_config(cfg), train_dataset=training_dataset(cfg, out), normalization="group",
        segmenter=segmenter, rollout_log_path=str(out / "rollouts.rank0.jsonl"))
    return cfg, trainer


def grpo_bf16(device: str, quick: bool, learning_rate: float = 1e-6) -> dict[str, Any]:
    steps = 2 if quick else 6
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        _peak_reset(device)
        cfg, trainer = _grpo_trainer(device, out, steps, (f"learning_rate={learning_rate}",))
        start = {k: v.detach().float().cpu().clone() for k, v in trainer.model.state_dict().items()}
        dtypes = sorted({str(p.dtype) for p in trainer.model.parameters()})
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
        end = {k: v.detach().float().cpu() for k, v in trainer.model.state_dict().items()}
        changed = sum(int((end[k] != start[k]).sum()) for k in start) / sum(v.numel() for v in start.values())
        logs = [r for r in trainer.state.log_history if "loss" in r]
    return {"steps": steps, "learning_rate": cfg.learning_rate, "args_bf16": trainer.args.bf16,
            "weights_dtype_during_training": dtypes, "seconds_per_step": seconds / steps,
            "share_of_weights_changed": changed, "loss": [r["loss"] for r in logs],
            "clip_ratio_region": [r.get("clip_ratio/region_mean") for r in logs], "peak_gib": _peak_gib(device)}


def grpo_clip(device: str, quick: bool) -> dict[str, Any]:
    """The same off-policy run at a learning rate large enough for the tiny policy to move between the two
    optimizer steps of a generation batch: the PPO ratio leaves [1 - 0.2, 1 + 0.3] and the clip ratios are > 0."""
    return grpo_bf16(device, quick, learning_rate=0.05)


def vllm_colocate(device: str, quick: bool) -> dict[str, Any]:
    if importlib.util.find_spec("vllm") is None:
        return {"skipped": "vllm is not installed here (install samr1lib[gpu]: vLLM 0.31.0)"}
    if not device.startswith("cuda"):
        return {"skipped": "vLLM needs a GPU"}
    with tempfile.TemporaryDirectory() as tmp:
        _peak_reset(device)
        _, trainer = _grpo_trainer(device, Path(tmp), 2, ("use_vllm=true", "vllm_mode=colocate",
                                                          "vllm_gpu_memory_utilization=0.2", "vllm_max_model_length=512"))
        t0 = time.perf_counter()
        trainer.train()
        return {"steps": 2, "seconds": time.perf_counter() - t0, "peak_gib": _peak_gib(device)}


CHECKS = {"environment": environment, "sam2_reward": sam2_reward, "grpo_bf16": grpo_bf16, "grpo_clip": grpo_clip,
          "vllm_colocate": vllm_colocate}


def run_checks(device: str, quick: bool = False, log=print) -> dict[str, Any]:
    """Every check; one that fails records its error and the rest still run."""
    results: dict[str, Any] = {}
    for name, check in CHECKS.items():
        t0 = time.perf_counter()
        try:
            results[name] = check(device, quick)
        except Exception as e:  # a diagnostics run: report the failure of one check, run the others
            results[name] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}
        results[name]["check_seconds"] = round(time.perf_counter() - t0, 1)
        log(f"[gpu_check] {name}: {json.dumps(results[name], default=str)[:600]}")
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m samr1lib.experiments.gpu_check", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/gpu_check.json", help="the JSON to write")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (the CPU test of this script)")
    a = ap.parse_args(argv)
    results = run_checks(a.device, a.quick)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(results, indent=2, default=str))
    print(f"wrote {a.out}")
    return 0 if not any("error" in r for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
