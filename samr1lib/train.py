"""Train SAM-R1: ``python -m samr1lib.train --preset smoke [--config file.yaml] [key=value ...] [--no-resume]``.

Builds, in this order (cheap checks first, so bad input fails before any model is loaded):

1. the config (:func:`samr1lib.config.load_config`; the G-divisibility check uses the launch's real
   WORLD_SIZE);
2. TRL's ``GRPOConfig`` from it (which creates accelerate's state: ``use_cpu`` when no CUDA);
3. the dataset: for ``data_source="synthetic"`` a toy REFER world written into ``<output_dir>/world``,
   for ``"refer"`` the REFER folder ``data_root``; then ``n_train`` records drawn
   (:func:`samr1lib.data.sample_refer`, §4.1's 3k) and turned into the policy dataset
   (:func:`samr1lib.data.build_policy_dataset`, images resized to ``image_size``, §4.1's 840);
   main process first, the others reuse it. Its columns are checked against what the rewards need;
4. the rewards (§3.3): reasoning format, segmentation format, the tiered segmentation reward
   (Eq. 5 or Table 3's fixed thresholds) and, for the Appendix A.2 variants, the negative-point reward;
5. the segmenter, one per process, on that process's device;
6. :class:`RolloutLoggingTrainer` (``SAMR1GRPOTrainer`` + a rollout log), and trains, resuming from
   the last checkpoint in ``output_dir`` unless ``--no-resume``.

Outputs in ``output_dir``: ``checkpoint-N/`` (every ``save_steps``), ``rollouts.rank{r}.jsonl`` (one row per
rollout: step, ids, query, completion, parsed answer or failure, mask as RLE, IoU, every reward
component, the advantage), ``metrics.jsonl`` (TRL's logged metrics: ``rewards/<name>/mean``,
``seg/mean_iou``, ``seg/parse_failure_rate``, ``parse/<reason>``, loss, kl, clip ratios), and
``train_config.json``.

Launch (the paper run, 8 GPUs, DeepSpeed ZeRO-3): see :func:`paper_launch_command`.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from .config import TINY_POLICY, TrainConfig, check_generation_batch, load_config, tiers_from_name

__all__ = [
    "RolloutLoggingTrainer",
    "shuffle_rewards",
    "build_grpo_config",
    "build_dataset",
    "build_rewards",
    "check_columns",
    "accelerate_config_path",
    "paper_launch_command",
    "local_launch_command",
    "train",
    "main",
]

CONFIG_DIR = Path(__file__).parent / "configs"
ACCELERATE_CONFIGS = {"zero3": "accelerate_zero3_8gpu.yaml", "ddp": "accelerate_ddp_8gpu.yaml"}


# --------------------------------------------------------------------------- launch helpers

def accelerate_config_path(name: str = "zero3") -> Path:
    """Path of a shipped accelerate config: ``"zero3"`` (DeepSpeed ZeRO-3, 8 GPUs, bf16) or ``"ddp"``."""
    if name not in ACCELERATE_CONFIGS:
        raise ValueError(f"unknown accelerate config {name!r}; choose one of {sorted(ACCELERATE_CONFIGS)}")
    return CONFIG_DIR / ACCELERATE_CONFIGS[name]


def paper_launch_command(config: str = "zero3", extra: Sequence[str] = ()) -> list[str]:
    """The exact ``accelerate launch`` command of the paper run (8 GPUs, preset ``paper``), as argv."""
    return [
        "accelerate", "launch", "--config_file", str(accelerate_config_path(config)), "--num_processes", "8",
        "-m", "samr1lib.train", "--preset", "paper", *extra,
    ]


def local_launch_command(num_processes: int = 2, preset: str = "smoke", overrides: Sequence[str] = (),
                         port: int | None = None) -> list[str]:
    """``accelerate launch`` of this module on this machine with ``num_processes`` processes (on a CPU-only machine
    ``--multi_gpu`` is what starts several gloo processes; NOTES.md), as argv."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if num_processes > 1:
        cmd += ["--multi_gpu", "--num_processes", str(num_processes)]
        cmd += ["--main_process_port", str(port)] if port else []
    else:
        cmd += ["--num_processes", "1"]
    return [*cmd, "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "-m", "samr1lib.train", "--preset", preset, *overrides]


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


# --------------------------------------------------------------------------- pieces

def build_grpo_config(cfg: TrainConfig):
    """TRL ``GRPOConfig`` from a :class:`TrainConfig` (creating it initialises accelerate's state)."""
    import torch
    from trl import GRPOConfig

    use_cpu = (not torch.cuda.is_available()) if cfg.use_cpu is None else cfg.use_cpu
    bf16 = bool(cfg.bf16 and not use_cpu)
    return GRPOConfig(
        output_dir=cfg.output_dir,
        num_generations=cfg.num_generations,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        steps_per_generation=cfg.steps_per_generation,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        learning_rate=cfg.learning_rate,
        beta=cfg.beta,
        epsilon=cfg.epsilon_low,
        epsilon_high=cfg.epsilon_high,
        loss_type=cfg.loss_type,  # aggregation replaced by SAMR1GRPOTrainer(normalization=...)
        scale_rewards=cfg.scale_rewards,
        use_bias_correction_kl=False,  # Eq. 3's plain k3 (SAMR1GRPOTrainer ignores it anyway)
        max_grad_norm=cfg.max_grad_norm,
        max_steps=cfg.max_steps,
        num_train_epochs=cfg.num_train_epochs,
        bf16=bf16,
        use_cpu=use_cpu,
        activation_checkpointing=cfg.gradient_checkpointing,  # transformers 5's name for gradient checkpointing
        use_vllm=cfg.use_vllm,
        vllm_mode=cfg.vllm_mode,
        vllm_gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
        model_init_kwargs={"dtype": "bfloat16" if bf16 else "float32"},
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        report_to=cfg.report_to,
        seed=cfg.seed,
        data_seed=cfg.seed,
        ddp_find_unused_parameters=False,
    )


REQUIRED_COLUMNS = ("prompt", "image", "mask")


def check_columns(columns: Sequence[str], ignore_column: str | None = "ignore") -> None:
    """The dataset must carry what TRL and the rewards read: prompt, image, mask (and ignore if used)."""
    need = list(REQUIRED_COLUMNS) + ([ignore_column] if ignore_column else [])
    missing = [c for c in need if c not in columns]
    if missing:
        raise ValueError(
            f"the training dataset lacks column(s) {missing} that the rewards need (have {sorted(columns)}); "
            "build it with samr1lib.data.build_policy_dataset"
        )


def _dataset_key(cfg: TrainConfig) -> str:
    keys = ("data_source", "data_root", "dataset", "split", "n_train", "data_seed", "image_size", "synthetic_images",
            "synthetic_size", "position_gradient", "negative_points", "seed")
    keys = keys[:-1] if cfg.data_source == "toy" else keys  # the toy world does not depend on the run's seed
    return hashlib.sha1(json.dumps([getattr(cfg, k) for k in keys]).encode()).hexdigest()[:12]


def build_dataset(cfg: TrainConfig):
    """Write (synthetic) or read (REFER) the records, draw ``n_train``, build the policy dataset.

    Cached in ``<output_dir>/data/policy_<hash of the data fields>`` (a resumed run reuses it).
    """
    from datasets import load_from_disk

    from .data import build_policy_dataset, load_refer, sample_refer

    out = Path(cfg.output_dir) / "data" / f"policy_{_dataset_key(cfg)}"
    if (out / "dataset_info.json").exists():
        return load_from_disk(str(out))
    if cfg.data_source == "toy":
        from .toy import train_records, write_world_for

        write_world_for(cfg, n_heldout=None)
        records, where = train_records(cfg.data_root), f"the toy world {cfg.data_root}"
    else:
        if cfg.data_source == "synthetic":
            from .synthetic import write_refer_world

            root = Path(cfg.output_dir) / "world"
            if not (root / cfg.dataset / "instances.json").exists():
                write_refer_world(str(root), n_images=cfg.synthetic_images, seed=cfg.seed,
                                  size=(cfg.synthetic_size, cfg.synthetic_size), position_gradient=cfg.position_gradient)
        else:
            root = Path(cfg.data_root)
        records, where = load_refer(str(root), cfg.dataset, cfg.split), f"{root} {cfg.dataset} {cfg.split}"
    if cfg.n_train > len(records):
        raise ValueError(f"n_train={cfg.n_train} but {where} has only {len(records)} records")
    records = sample_refer(records, n=cfg.n_train, seed=cfg.data_seed)
    return build_policy_dataset(records, str(out), size=(cfg.image_size, cfg.image_size),
                                negative_points=cfg.labelled_points_prompt)


def build_segmenter_for(cfg: TrainConfig, device: Any):
    from .segmenters import build_segmenter

    if cfg.segmenter == "sam2":
        if not Path(cfg.sam2_checkpoint).exists():
            raise FileNotFoundError(f"SAM2 checkpoint {cfg.sam2_checkpoint} not found (set sam2_checkpoint=PATH, "
                                    "or segmenter=grabcut for the weight-free stand-in)")
        return build_segmenter("sam2", config=cfg.sam2_config, checkpoint=cfg.sam2_checkpoint, device=str(device))
    return build_segmenter("grabcut", iterations=cfg.grabcut_iterations)


def build_rewards(cfg: TrainConfig, segmenter) -> tuple[list[Any], Any]:
    """(reward functions in TRL order, the SegmentationReward) for §3.3 (+ Appendix A.2's variant)."""
    from .rewards import (
        InBoxPointReward, PointValueReward, ReasoningFormatReward, SegmentationFormatReward, SegmentationReward,
    )

    seg = SegmentationReward(segmenter, tiers=tiers_from_name(cfg.tiers), policy_frame=None, image_column="image",
                             mask_column="mask", ignore_column="ignore",
                             score="segr1" if cfg.seg_reward == "segr1" else "tier",
                             segr1_weights=(cfg.segr1_w_iou, cfg.segr1_w_s))
    funcs: list[Any] = [
        ReasoningFormatReward(cfg.reasoning_format_good, cfg.reasoning_format_bad),
        SegmentationFormatReward(cfg.segmentation_format_good, cfg.segmentation_format_bad),
        seg,
    ]
    if cfg.seg_reward == "star":  # StAR: the matched multi-object score replaces the single-mask tier
        from .related import NonRepeatReward, StarReward

        seg = SegmentationReward(segmenter, tiers=tiers_from_name(cfg.tiers), image_column="image", mask_column="mask",
                                 ignore_column="ignore", name="seg_iou_monitor")
        funcs[2] = StarReward(segmenter)
        funcs.append(NonRepeatReward())
        funcs.append(_Monitor(seg))  # keeps the rollout log's IoU and mask, rewards nothing
    if cfg.label_reward:
        from .rewards import LabelReward

        funcs.append(LabelReward(frame=(cfg.image_size, cfg.image_size)))
    if cfg.negative_points == "point_value":
        funcs.append(PointValueReward(cfg.negative_points_value))
    elif cfg.negative_points == "in_box":
        funcs.append(InBoxPointReward(cfg.negative_points_value))
    return funcs, seg


class _Monitor:
    """Wraps a SegmentationReward to log IoU / masks without rewarding (weight 0 in effect: returns 0.0)."""

    def __init__(self, seg):
        self.seg = seg
        self.__name__ = "seg_iou_monitor"

    def __call__(self, completions, **kwargs):
        self.seg(completions, **kwargs)
        return [0.0] * len(completions)


def _check_policy_path(policy: str) -> None:
    p = Path(policy)
    if p.exists():
        if not (p / "config.json").exists():
            raise FileNotFoundError(f"policy {p} has no config.json: not a saved model directory")
        if not (p / "tokenizer.json").exists() or not (
            (p / "preprocessor_config.json").exists() or (p / "processor_config.json").exists()
        ):
            raise FileNotFoundError(f"policy {p} has no processor (tokenizer.json + preprocessor_config.json); "
                                    "save the processor next to the model")


def _lora_config(cfg: TrainConfig):
    if not cfg.lora:
        return None
    from peft import LoraConfig

    # StAR (PAPER.md §8): all linear layers of the language model; the vision tower stays frozen
    return LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, task_type="CAUSAL_LM",
        target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)",
    )


# --------------------------------------------------------------------------- trainer with a rollout log

@functools.lru_cache(maxsize=None)
def _trainer_class():
    from transformers import TrainerCallback

    from .masks import encode_rle
    from .rewards import completion_text
    from .trainer import SAMR1GRPOTrainer

    class MetricsFileCallback(TrainerCallback):
        """Appends every ``trainer.log`` dict to ``<output_dir>/metrics.jsonl`` (main process)."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                with open(Path(args.output_dir) / "metrics.jsonl", "a") as f:
                    f.write(json.dumps({"step": state.global_step, **logs}, default=float) + "\n")

    class RolloutLoggingTrainer(SAMR1GRPOTrainer):
        """SAMR1GRPOTrainer that writes every training rollout of this process to ``rollout_log_path``.

        ``_calculate_rewards`` is wrapped to keep the batch and the gathered per-function rewards;
        ``_generate_and_score_completions`` then has the local advantages and writes one row per completion.
        """

        def __init__(self, *args, rollout_log_path: str | None = None, segmentation_reward=None,
                     control: str = "none", **kwargs):
            super().__init__(*args, **kwargs)
            if control not in ("none", "shuffled"):
                raise ValueError(f"control must be 'none' or 'shuffled', got {control!r}")
            self.rollout_log_path = rollout_log_path
            self.segmentation_reward = segmentation_reward
            self.reward_control = control
            self._pending_rollout = None
            self.add_callback(MetricsFileCallback())

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            earned = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            used = earned
            if self.reward_control == "shuffled" and self.model.training:
                used = shuffle_rewards(earned, seed=self.args.seed, step=self.state.global_step)
            self._pending_rollout = (inputs, completions, earned, used)
            return used

        def _generate_and_score_completions(self, inputs):
            output = super()._generate_and_score_completions(inputs)
            if self.rollout_log_path and self.model.training and self._pending_rollout is not None:
                self._write_rollouts(output)
            self._pending_rollout = None
            return output

        def _write_rollouts(self, output):
            rows_in, completions, earned, used = self._pending_rollout
            n = len(completions)
            start = self.accelerator.process_index * n
            local_rewards = earned[start:start + n].float().cpu().tolist()
            weights = self.reward_weights.cpu()
            trained = (used[start:start + n].float().cpu() * weights).nansum(1).tolist()
            advantages = output["advantages"].float().cpu().tolist()
            lengths = output["completion_mask"].sum(1).cpu().tolist()
            seg_last = self.segmentation_reward.last if self.segmentation_reward is not None else []
            with open(self.rollout_log_path, "a") as f:
                for j in range(n):
                    row = rows_in[j]
                    rec: dict[str, Any] = {
                        "step": int(self.state.global_step),
                        "rank": int(self.accelerator.process_index),
                        "index": j,
                        "group": (start + j) // self.num_generations,
                        "image_id": row.get("image_id"),
                        "sample_id": row.get("sample_id"),
                        "query": row.get("query"),
                        "image_path": row.get("image_path"),  # the original image (the viewer draws on it)
                        "height": row.get("height"),
                        "width": row.get("width"),
                        "policy_frame": row.get("policy_frame"),  # the answer's coordinate frame [W, H]
                        "gt_mask_rle": row.get("mask"),  # GT at the original size
                        "completion": completion_text(completions[j]),
                        "completion_tokens": int(lengths[j]),
                        "rewards": {name: local_rewards[j][i] for i, name in enumerate(self.reward_func_names)},
                        "reward": float(sum(w * r for w, r in zip(weights.tolist(), local_rewards[j]))),
                        "trained_reward": float(trained[j]),  # differs from reward only under control="shuffled"
                        "advantage": float(advantages[j]),
                    }
                    if j < len(seg_last):
                        parse, iou, mask = seg_last[j]
                        rec["answer"] = parse.answer.to_json() if parse.ok and parse.answer is not None else None
                        rec["failure"] = parse.failure.value if parse.failure is not None else None
                        rec["failure_detail"] = parse.detail or None
                        rec["iou"] = None if iou is None else float(iou)
                        rec["mask_rle"] = None if mask is None else encode_rle(mask)
                    f.write(json.dumps(rec, default=_json_default) + "\n")

    return RolloutLoggingTrainer


def shuffle_rewards(rewards_per_func, seed: int, step: int):
    """The shuffled control: the rows of ``rewards_per_func`` (one per completion of the gathered generation
    batch) permuted, so every completion is trained on another completion's rewards. The permutation depends
    only on (seed, step): every process draws the same one, as each holds the whole gathered batch."""
    import torch

    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(step))
    perm = torch.randperm(rewards_per_func.shape[0], generator=g).to(rewards_per_func.device)
    return rewards_per_func[perm]


def _json_default(x):
    if hasattr(x, "item"):
        return x.item()
    if isinstance(x, bytes):
        return x.decode()
    return str(x)


def __getattr__(name):  # RolloutLoggingTrainer is built lazily (importing TRL takes seconds)
    if name == "RolloutLoggingTrainer":
        return _trainer_class()
    raise AttributeError(name)


def _truncate_rollouts(path: Path, from_step: int) -> None:
    """Drop rollout rows logged at or after ``from_step`` (work lost by the interruption, redone on resume)."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] < from_step]
    path.write_text("".join(line + "\n" for line in keep))


# --------------------------------------------------------------------------- entry point

def _ensure_tiny_policy(out: Path, seed: int) -> Path:
    """Build the tiny policy into ``out/tiny_policy`` once, safely when several processes race.

    Each process that finds no finished build writes its own copy (deterministic: same seed, same files)
    into a private folder and renames it into place; a losing process discards its copy.
    """
    import shutil

    final = out / "tiny_policy"
    if (final / "tiny_policy.json").exists():
        return final
    from .policy import build_tiny_policy

    tmp = out / f".tiny_policy.tmp.{os.getpid()}"
    build_tiny_policy(tmp, seed=seed)
    try:
        os.rename(tmp, final)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    if not (final / "tiny_policy.json").exists():
        raise RuntimeError(f"{final} exists but holds no finished tiny policy; delete it and rerun")
    return final


def train(cfg: TrainConfig, resume: bool | None = None) -> dict[str, Any]:
    """Run one training job; returns a summary (global_step, resumed_from, world_size, paths)."""
    import torch
    from transformers.trainer_utils import get_last_checkpoint

    world_size = _world_size()
    check_generation_batch(cfg, world_size)  # the real launch's world size, before anything is loaded
    if cfg.policy != TINY_POLICY:
        _check_policy_path(cfg.policy)
    if cfg.segmenter == "sam2" and not Path(cfg.sam2_checkpoint).exists():
        raise FileNotFoundError(f"SAM2 checkpoint {cfg.sam2_checkpoint} not found (set sam2_checkpoint=PATH, "
                                "or segmenter=grabcut for the weight-free stand-in)")
    if cfg.data_source == "refer" and not Path(cfg.data_root, cfg.dataset).is_dir():
        raise FileNotFoundError(f"REFER data not found: {Path(cfg.data_root, cfg.dataset)} (set data_root=DIR holding "
                                f"{cfg.dataset}/refs(...).p, {cfg.dataset}/instances.json and images/mscoco/...)")
    resume = cfg.resume if resume is None else resume

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    # The tiny policy is built BEFORE GRPOConfig: once a ZeRO-3 config exists, transformers builds every model
    # under deepspeed.zero.Init (collective calls), which would deadlock inside main_process_first.
    policy = str(_ensure_tiny_policy(out, cfg.seed)) if cfg.policy == TINY_POLICY else cfg.policy

    args = build_grpo_config(cfg)  # creates accelerate's PartialState (cpu=True when no CUDA)
    with args.main_process_first(desc="world and dataset"):
        dataset = build_dataset(cfg)
    check_columns(dataset.column_names)

    device = args.device
    segmenter = build_segmenter_for(cfg, device)  # one per process, on this process's device
    reward_funcs, seg_reward = build_rewards(cfg, segmenter)

    last = get_last_checkpoint(str(out)) if out.exists() else None
    resume_from = last if (resume and last) else None
    rank = int(args.process_index)
    rollout_path = out / f"rollouts.rank{rank}.jsonl"
    # a fresh run (--no-resume) in a used output_dir appends to the rollout log; its step column restarts at 0
    if resume_from is not None:
        state = json.loads((Path(resume_from) / "trainer_state.json").read_text())
        _truncate_rollouts(rollout_path, int(state["global_step"]))

    Trainer = _trainer_class()
    trainer = Trainer(
        model=policy,
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=dataset,
        peft_config=_lora_config(cfg),
        normalization=cfg.normalization,
        rest_k=cfg.rest_k,
        rollout_log_path=str(rollout_path) if cfg.rollout_log else None,
        segmentation_reward=seg_reward,
        control=cfg.control,
    )
    if trainer.accelerator.is_main_process:
        (out / "train_config.json").write_text(json.dumps(
            {**dataclasses.asdict(cfg), "world_size": trainer.accelerator.num_processes,
             "resumed_from": resume_from, "torch": torch.__version__}, indent=2))
    trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_state()
    # the trained policy, loadable by path like the one it started from (LoRA: the adapter merged into the weights)
    if cfg.lora and trainer.accelerator.num_processes == 1:
        trainer.model.merge_and_unload().save_pretrained(str(out / "final"))
    else:
        trainer.save_model(str(out / "final"))
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(str(out / "final"))
    summary = {
        "global_step": int(trainer.state.global_step),
        "resumed_from": resume_from,
        "world_size": int(trainer.accelerator.num_processes),
        "rank": rank,
        "output_dir": str(out),
        "rollout_log": str(rollout_path),
    }
    with open(out / f"summary.rank{rank}.json", "w") as f:
        json.dump(summary, f)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m samr1lib.train", description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="smoke", help="smoke | toy | paper (default smoke)")
    ap.add_argument("--config", default=None, help="a YAML file of field: value overriding the preset")
    ap.add_argument("--no-resume", action="store_true", help="do not resume from the last checkpoint in output_dir")
    ap.add_argument("--print-launch", action="store_true", help="print the paper's accelerate launch command and exit")
    ap.add_argument("overrides", nargs="*", help="key=value overrides of TrainConfig fields")
    a = ap.parse_args(argv)
    if a.print_launch:
        print(" ".join(paper_launch_command()))
        return 0
    try:
        cfg = load_config(a.preset, a.config, a.overrides, world_size=_world_size())
    except ValueError as e:
        ap.error(str(e))
    summary = train(cfg, resume=not a.no_resume)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    code = main()
    if _world_size() > 1:
        # NOTES.md: ~1 run in 12, a process aborted at interpreter exit after training; flush and leave hard
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
