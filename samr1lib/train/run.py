"""One training job, wired in the order of the data flow (cheap checks first, so bad input fails before any model
is loaded):

1. checks: G divides the launch's real generation batch, the policy folder, the SAM2 checkpoint;
2. the policy (the tiny fixture is built once when ``policy="tiny"``) and TRL's ``GRPOConfig``;
3. the policy dataset (:func:`samr1lib.data.training_dataset`; main process first, the others reuse it);
4. the segmenter, one per process on its device, and the rewards (:func:`samr1lib.rewards.build_rewards`);
5. :class:`~samr1lib.train.rollout_log.RolloutLoggingTrainer`, resumed from the last checkpoint unless asked not to.

Outputs in ``output_dir``: ``checkpoint-N/``, ``rollouts.rank{r}.jsonl``, ``metrics.jsonl`` (TRL's logged
metrics: ``rewards/<name>/mean``, ``seg/mean_iou``, ``parse/<reason>``, loss, kl, clip ratios),
``train_config.json``, ``final/`` (the trained policy, loadable by path) and ``summary.rank{r}.json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Sequence

from ..config import TrainConfig, check_generation_batch
from ..data import check_source, training_dataset
from ..policy import TINY_POLICY, check_policy_dir, ensure_tiny_policy
from ..rewards import build_rewards
from ..segmenters import build_segmenter

__all__ = ["REQUIRED_COLUMNS", "world_size", "build_grpo_config", "check_columns", "build_segmenter_for",
           "lora_config", "train"]

REQUIRED_COLUMNS = ("prompt", "image", "mask")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def build_grpo_config(cfg: TrainConfig):
    """TRL ``GRPOConfig`` from a :class:`TrainConfig` (creating it initialises accelerate's state)."""
    import torch
    from trl import GRPOConfig

    use_cpu = (not torch.cuda.is_available()) if cfg.use_cpu is None else cfg.use_cpu
    bf16 = bool(cfg.bf16 and not use_cpu)
    return GRPOConfig(
        output_dir=cfg.output_dir, num_generations=cfg.num_generations,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, steps_per_generation=cfg.steps_per_generation,
        max_completion_length=cfg.max_completion_length, temperature=cfg.temperature,
        learning_rate=cfg.learning_rate, beta=cfg.beta, epsilon=cfg.epsilon_low, epsilon_high=cfg.epsilon_high,
        loss_type=cfg.loss_type,  # aggregation replaced by SAMR1GRPOTrainer(normalization=...)
        scale_rewards=cfg.scale_rewards,
        use_bias_correction_kl=False,  # Eq. 3's plain k3 (SAMR1GRPOTrainer ignores it anyway)
        max_grad_norm=cfg.max_grad_norm, max_steps=cfg.max_steps, num_train_epochs=cfg.num_train_epochs,
        bf16=bf16, use_cpu=use_cpu,
        activation_checkpointing=cfg.gradient_checkpointing,  # transformers 5's name for gradient checkpointing
        use_vllm=cfg.use_vllm, vllm_mode=cfg.vllm_mode, vllm_gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
        model_init_kwargs={"dtype": "bfloat16" if bf16 else "float32"},
        logging_steps=cfg.logging_steps, save_strategy="steps", save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit, report_to=cfg.report_to, seed=cfg.seed, data_seed=cfg.seed,
        ddp_find_unused_parameters=False,
    )


def check_columns(columns: Sequence[str], ignore_column: str | None = "ignore") -> None:
    """The dataset must carry what TRL and the rewards read: prompt, image, mask (and ignore if used)."""
    need = list(REQUIRED_COLUMNS) + ([ignore_column] if ignore_column else [])
    missing = [c for c in need if c not in columns]
    if missing:
        raise ValueError(f"the training dataset lacks column(s) {missing} that the rewards need (have "
                         f"{sorted(columns)}); build it with samr1lib.data.build_policy_dataset")


def _check_sam2_checkpoint(cfg: TrainConfig) -> None:
    if cfg.segmenter == "sam2" and not Path(cfg.sam2_checkpoint).exists():
        raise FileNotFoundError(f"SAM2 checkpoint {cfg.sam2_checkpoint} not found (set sam2_checkpoint=PATH, "
                                "or segmenter=grabcut for the weight-free stand-in)")


def build_segmenter_for(cfg: TrainConfig, device: Any):
    """The run's segmenter on ``device`` (one per process)."""
    if cfg.segmenter == "sam2":
        _check_sam2_checkpoint(cfg)
        return build_segmenter("sam2", config=cfg.sam2_config, checkpoint=cfg.sam2_checkpoint, device=str(device))
    return build_segmenter("grabcut", iterations=cfg.grabcut_iterations)


def lora_config(cfg: TrainConfig):
    """StAR's LoRA (docs/papers.md): all linear layers of the language model; the vision tower stays frozen."""
    if not cfg.lora:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, task_type="CAUSAL_LM",
        target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)",
    )


def _resume_point(cfg: TrainConfig, out: Path, resume: bool, rollout_path: Path) -> str | None:
    """The checkpoint to resume from (None: a fresh run); the rollout rows of the lost steps are dropped."""
    from transformers.trainer_utils import get_last_checkpoint

    from .rollout_log import truncate_rollouts

    last = get_last_checkpoint(str(out)) if out.exists() else None
    resume_from = last if (resume and last) else None
    if resume_from is not None:
        state = json.loads((Path(resume_from) / "trainer_state.json").read_text())
        truncate_rollouts(rollout_path, int(state["global_step"]))
    return resume_from


def _save_final(trainer, cfg: TrainConfig, out: Path) -> None:
    """The trained policy, loadable by path like the one it started from (LoRA: the adapter merged in)."""
    if cfg.lora and trainer.accelerator.num_processes == 1:
        trainer.model.merge_and_unload().save_pretrained(str(out / "final"))
    else:
        trainer.save_model(str(out / "final"))
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(str(out / "final"))


def train(cfg: TrainConfig, resume: bool | None = None) -> dict[str, Any]:
    """Run one training job; returns a summary (global_step, resumed_from, world_size, paths)."""
    import torch

    from .rollout_log import RolloutLoggingTrainer  # TRL takes seconds to import: not for --help or a bad config

    check_generation_batch(cfg, world_size())  # the real launch's world size, before anything is loaded
    if cfg.policy != TINY_POLICY:
        check_policy_dir(cfg.policy)
    _check_sam2_checkpoint(cfg)
    check_source(cfg)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    # The tiny policy is built BEFORE GRPOConfig: once a ZeRO-3 config exists, transformers builds every model
    # under deepspeed.zero.Init (collective calls), which would deadlock inside main_process_first.
    policy = str(ensure_tiny_policy(out, cfg.seed)) if cfg.policy == TINY_POLICY else cfg.policy
    args = build_grpo_config(cfg)  # creates accelerate's PartialState (cpu=True when no CUDA)
    with args.main_process_first(desc="world and dataset"):
        dataset = training_dataset(cfg, out)
    check_columns(dataset.column_names)
    segmenter = build_segmenter_for(cfg, args.device)  # one per process, on this process's device
    rank = int(args.process_index)
    rollout_path = out / f"rollouts.rank{rank}.jsonl"
    resume_from = _resume_point(cfg, out, cfg.resume if resume is None else resume, rollout_path)
    trainer = RolloutLoggingTrainer(
        model=policy, reward_funcs=build_rewards(cfg, segmenter), args=args, train_dataset=dataset,
        peft_config=lora_config(cfg), normalization=cfg.normalization, rest_k=cfg.rest_k, segmenter=segmenter,
        rollout_log_path=str(rollout_path) if cfg.rollout_log else None, control=cfg.control,
    )
    if trainer.accelerator.is_main_process:
        (out / "train_config.json").write_text(json.dumps(
            {**dataclasses.asdict(cfg), "world_size": trainer.accelerator.num_processes,
             "resumed_from": resume_from, "torch": torch.__version__}, indent=2))
    trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_state()
    _save_final(trainer, cfg, out)
    summary = {"global_step": int(trainer.state.global_step), "resumed_from": resume_from,
               "world_size": int(trainer.accelerator.num_processes), "rank": rank, "output_dir": str(out),
               "rollout_log": str(rollout_path)}
    (out / f"summary.rank{rank}.json").write_text(json.dumps(summary))
    return summary
