"""Presets: the only non-paper values of the project, in one place. Each maps TrainConfig fields to values;
the paper run is TrainConfig's defaults (preset ``paper``).

- ``paper_on_policy``: the paper run with one optimizer step per generation batch (the on-policy comparison);
- ``smoke``: the tiny offline policy, a 16-image synthetic world, GrabCut, CPU, seconds (CI's wiring check);
- ``toy``: the toy world's CPU benchmark (samr1lib.experiments.toy), the paper's objective unchanged;
- ``toy_smoke``: the toy pipeline in seconds (its wiring in CI; learns nothing);
- ``segr1_toy`` / ``star_toy``: Seg-R1 and StAR as configurations of the same pipeline at toy scale.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS", "CPU", "SEGR1", "STAR"]

# What every CPU preset changes: no bf16, no gradient checkpointing, no vLLM, one process, no tensorboard.
CPU: dict[str, Any] = dict(bf16=False, gradient_checkpointing=False, use_vllm=False, num_processes=1,
                           report_to="none")
# What the CPU presets keep of the on-policy settings they were built and tuned with (TRL's defaults): one optimizer
# step per generation batch and a learning rate decaying linearly to 0.
ON_POLICY: dict[str, Any] = dict(steps_per_generation=1, lr_scheduler_type="linear")

# Seg-R1 (docs/papers.md): answers with labelled fg/bg points, reward 0.7 IoU + 0.3 S-measure (its warm start is
# an SFT cold start on FCoT-style data, samr1lib.experiments.warm_start).
SEGR1: dict[str, Any] = dict(seg_reward="segr1", negative_points="free")
# StAR (docs/papers.md): Hungarian-matched multi-object reward + non-repeat + label prediction, REST. StAR draws
# 256 rollouts and keeps 8 + 8; at toy scale G = 8 keeps 2 + 2 (the same half of the group is dropped), two
# groups per step as the toy preset. StAR's LoRA (r = alpha = 64) is lora=true.
STAR: dict[str, Any] = dict(seg_reward="star", label_reward=True, num_generations=8, per_device_train_batch_size=16,
                            rest_k=2)

PRESETS: dict[str, dict[str, Any]] = {"paper": {}, "paper_on_policy": dict(steps_per_generation=1)}
PRESETS["smoke"] = dict(
    CPU, **ON_POLICY, policy="tiny", segmenter="grabcut", data_source="synthetic", world_images=16, world_image_size=112,
    image_size=112, n_train=8, num_generations=4, per_device_train_batch_size=4, max_steps=2,
    max_completion_length=16, output_dir="runs/smoke", save_steps=2, grabcut_iterations=1,
)
# toy: the paper's objective unchanged (G 8, eps 0.2 / 0.3, Eq. 4, beta 0.04), and, as the paper preset, 4 optimizer
# steps per generation batch (16 rollouts each; 64 = 8 groups generated at once), so that the PPO ratio moves and the
# clip range acts. What differs: sizes, the policy (a warm start from the committed toy base: pass policy=DIR), the
# learning rate with a 5 % warmup and a linear decay (a 0.7M toy base and a short SFT, not a 7B instruct model; on the
# toy base, seed 0, 300 steps: 1e-3 collapsed (KL 0 -> 154 at step 3), 5e-4 + 10 % warmup rose less than 3e-4 + 5 %:
# mean tier 0.78 -> 1.79 vs -> 1.99, docs/measurements/toy_grpo_on_base_2026-12-04.md). 128 completion tokens
# leave room for the warm start's reasonings of ~5-60 tokens. 100 steps is what the ablations run; the learning
# benchmark runs 300.
PRESETS["toy"] = dict(
    CPU, **ON_POLICY, policy="tiny", segmenter="grabcut", data_source="toy", data_root="runs/toy_world", dataset="refcoco",
    split="all", world_images=1000, world_image_size=112, image_size=112, world_position_gradient=0.5, n_train=2000,
    num_generations=8, per_device_train_batch_size=16, max_steps=100, max_completion_length=128,
    learning_rate=3e-4, warmup_ratio=0.05, output_dir="runs/toy", save_steps=50,
)
PRESETS["toy"]["steps_per_generation"] = 4
PRESETS["toy_smoke"] = dict(
    PRESETS["toy"], world_images=16, n_train=16, max_steps=2, save_steps=1, max_completion_length=24,
    per_device_train_batch_size=8, num_generations=4, grabcut_iterations=1, output_dir="runs/toy_smoke",
)
PRESETS["segr1_toy"] = dict(PRESETS["toy"], **SEGR1, output_dir="runs/segr1_toy")
PRESETS["star_toy"] = dict(PRESETS["toy"], **STAR, output_dir="runs/star_toy")
