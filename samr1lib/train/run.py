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

# what TRL and the rewards read: the reward segments the original image (image_path, width, height) in the frame of
# the policy's answer (policy_frame)
REQUIRED_COLUMNS = ("prompt", "image", "mask", "image_path", "width", "height", "policy_frame")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def weights_dtype(bf16: bool, deepspeed: bool) -> str:
    """The dtype the policy's weights are loaded in. bf16 weights are only safe where the optimizer keeps fp32
    master weights (DeepSpeed does); under plain DDP, AdamW steps of lr 1e-6 on bf16 weights mostly round away
    (measured: 98 % of the weights unchanged after 20 steps), so there the weights stay fp32 and bf16 is autocast."""
    return "bfloat16" if bf16 and deepspeed else "float32"


def _checkpointing_keyword(grpo_config_class) -> str:
    """transformers renamed gradient_checkpointing to activation_checkpointing in 5.2x; the range this project
    supports (5.10.4, vLLM 0.31's lowest, to 5.x) has one or the other."""
    names = {f.name for f in dataclasses.fields(grpo_config_class)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def build_grpo_config(cfg: TrainConfig):
    """TRL ``GRPOConfig`` from a :class:`TrainConfig` (creating it initialises accelerate's state). Only keywords
    that exist across the supported transformers range (5.10.4 - 5.x): a test builds the paper preset's on 5.10.4."""
    import torch
    from trl import GRPOConfig

    use_cpu = (not torch.cuda.is_available()) if cfg.use_cpu is None else cfg.use_cpu
    bf16 = bool(cfg.bf16 and not use_cpu)
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    vllm_is = dict(vllm_importance_sampling_correction=cfg.vllm_importance_sampling != "off")
    if cfg.vllm_importance_sampling != "off":
        vllm_is["vllm_importance_sampling_mode"] = cfg.vllm_importance_sampling
    return GRPOConfig(
        output_dir=cfg.output_dir, num_generations=cfg.num_generations,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, steps_per_generation=cfg.steps_per_generation,
        max_completion_length=cfg.max_completion_length, temperature=cfg.temperature,
        learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        beta=cfg.beta, epsilon=cfg.epsilon_low, epsilon_high=cfg.epsilon_high,
        loss_type=cfg.loss_type,  # aggregation replaced by SAMR1GRPOTrainer(normalization=...)
        scale_rewards=cfg.scale_rewards,
        use_bias_correction_kl=False,  # Eq. 3's plain k3 (SAMR1GRPOTrainer ignores it anyway)
        max_grad_norm=cfg.max_grad_norm, max_steps=cfg.max_steps, num_train_epochs=cfg.num_train_epochs,
        bf16=bf16, use_cpu=use_cpu, **{_checkpointing_keyword(GRPOConfig): cfg.gradient_checkpointing},
        use_vllm=cfg.use_vllm, vllm_mode=cfg.vllm_mode, vllm_gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
        vllm_max_model_length=cfg.vllm_max_model_length, **vllm_is,
        model_init_kwargs={"dtype": weights_dtype(bf16, deepspeed)},
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
        return build_segmenter("sam2", config=cfg.sam2_config, checkpoint=cfg.sam2_checkpoint, device=str(device),
                               cache_dir=cfg.sam2_cache_dir or None, cache_max_gib=cfg.sam2_cache_max_gib,
                               compile_decoder=cfg.sam2_compile_decoder)
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


# Fields a resumed run may change: how long it runs and what it writes, not what it trains.
RESUMABLE_CHANGES = ("max_steps", "num_train_epochs", "save_steps", "save_total_limit", "logging_steps", "report_to",
                     "resume", "allow_config_change", "rollout_log")


def config_changes(saved: dict[str, Any], cfg: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """Fields that shape training whose value differs from the one a run was started with: {field: (then, now)}."""
    now = dataclasses.asdict(cfg)
    return {k: (saved.get(k), v) for k, v in now.items() if k not in RESUMABLE_CHANGES and saved.get(k, v) != v}


def _resume_point(cfg: TrainConfig, out: Path, resume: bool, rollout_path: Path) -> str | None:
    """The checkpoint to resume from (None: a fresh run); the rollout rows of the lost steps are dropped. A run
    whose saved config differs in a field that shapes training is refused (``allow_config_change=true`` resumes
    anyway, ``--no-resume`` starts afresh)."""
    from transformers.trainer_utils import get_last_checkpoint

    from .rollout_log import truncate_rollouts

    last = get_last_checkpoint(str(out)) if out.exists() else None
    resume_from = last if (resume and last) else None
    saved = out / "train_config.json"
    if resume_from is not None and saved.exists() and not cfg.allow_config_change:
        changed = config_changes(json.loads(saved.read_text()), cfg)
        if changed:
            raise ValueError(f"{out} holds a run started with other values of {sorted(changed)} "
                             f"(field: (then, now) {changed}); resuming would mix two runs. Use another output_dir, "
                             "--no-resume to start afresh, or allow_config_change=true to resume anyway")
    if resume_from is not None:
        state = json.loads((Path(resume_from) / "trainer_state.json").read_text())
        truncate_rollouts(rollout_path, int(state["global_step"]))
    return resume_from


def _save_final(trainer, cfg: TrainConfig, out: Path, base_policy: str) -> None:
    """The trained policy in ``final/``, loadable by path like the one it started from. LoRA: the adapter is saved
    (gathered from every process by the trainer) to ``final_adapter/``, then merged into the base weights on the
    main process, which works whatever the sharding was (ZeRO-3 shards cannot be merged in place)."""
    final = out / "final"
    if not cfg.lora:
        trainer.save_model(str(final))
    else:
        trainer.save_model(str(out / "final_adapter"))
        trainer.accelerator.wait_for_everyone()
        if trainer.accelerator.is_main_process:
            _merge_adapter(base_policy, out / "final_adapter", final)
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(str(final))
    trainer.accelerator.wait_for_everyone()


def _merge_adapter(base_policy: str, adapter: Path, final: Path) -> None:
    """Base weights + the trained LoRA adapter -> one plain model folder (on the CPU, in fp32)."""
    import torch
    from peft import PeftModel
    from transformers import Qwen2_5_VLForConditionalGeneration

    base = Qwen2_5_VLForConditionalGeneration.from_pretrained(base_policy, dtype=torch.float32)
    PeftModel.from_pretrained(base, str(adapter)).merge_and_unload().save_pretrained(str(final))


def _check_reporting(cfg: TrainConfig) -> None:
    """The loggers the run reports to must be installed: TRL would find out only after the policy has loaded."""
    import importlib.util

    for name in [r.strip() for r in cfg.report_to.split(",")]:
        if name not in ("none", "all", "") and importlib.util.find_spec(name) is None:
            raise ModuleNotFoundError(f"report_to={cfg.report_to!r} but {name} is not installed: pip install "
                                      f"{name} (the paper path: pip install 'samr1lib[gpu]'), or report_to=none")


def train(cfg: TrainConfig, resume: bool | None = None) -> dict[str, Any]:
    """Run one training job; returns a summary (global_step, resumed_from, world_size, paths)."""
    import torch

    from .rollout_log import RolloutLoggingTrainer  # TRL takes seconds to import: not for --help or a bad config

    check_generation_batch(cfg, world_size())  # the real launch's world size, before anything is loaded
    if cfg.policy != TINY_POLICY:
        check_policy_dir(cfg.policy)
    _check_sam2_checkpoint(cfg)
    check_source(cfg)
    _check_reporting(cfg)
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
            {**dataclasses.asdict(cfg), "launch": {"world_size": trainer.accelerator.num_processes,
                                                   "resumed_from": resume_from, "torch": torch.__version__}}, indent=2))
    trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_state()
    _save_final(trainer, cfg, out, policy)
    summary = {"global_step": int(trainer.state.global_step), "resumed_from": resume_from,
               "world_size": int(trainer.accelerator.num_processes), "rank": rank, "output_dir": str(out),
               "rollout_log": str(rollout_path)}
    (out / f"summary.rank{rank}.json").write_text(json.dumps(summary))
    return summary
