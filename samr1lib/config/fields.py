"""Training configuration: one dataclass whose defaults ARE the SAM-R1 paper run (arXiv 2505.22596).

Every field has a docstring naming its source (a section / equation / table of the SAM-R1 paper, or "not stated:
chosen because ..."); choices are ``Literal`` types. The presets of :mod:`samr1lib.presets` override what a CPU
needs. ``python -m samr1lib.train --help`` lists every field with its docstring.

    cfg = load_config("smoke", yaml_path=None, overrides=["max_steps=3", "beta=0"])

Errors (unknown preset, unknown field, a value that does not parse as the field's type, an invalid choice, a G
that does not divide the generation batch) are ``ValueError`` raised here, before any model or dataset is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig:
    # ------------------------------------------------------------------ models
    policy: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    """§4.1: Qwen2.5-VL-7B-Instruct, a hub id or a local copy. "tiny" builds the offline tiny Qwen2.5-VL
    (samr1lib.policy.build_tiny_policy) into <output_dir>/tiny_policy."""
    segmenter: Literal["sam2", "grabcut"] = "sam2"
    """§3.1/§4.1: a frozen SAM2-Large turns the answer into a mask. "grabcut" is OpenCV's weight-free stand-in
    (not the paper's; used on CPU, where no SAM2 weights are at hand)."""
    sam2_config: str = "sam2.1_hiera_l"
    """§4.1 (SAM2-Large): the sam2 package's SAM2.1 Hiera-L config."""
    sam2_checkpoint: str = "checkpoints/sam2.1_hiera_large.pt"
    """not stated: where the SAM2.1-Large weights are (the sam2 repo's download script writes this path)."""
    sam2_cache_dir: str = ""
    """not stated: "" = off; a local folder caching SAM2's image features (8 MiB an image in bf16; the 3k draw
    <= 23.4 GiB), so every epoch after the first, and every rerun on the draw, only decodes (segmenters.cache)."""
    sam2_cache_max_gib: float = 64.0
    """not stated: the cache folder's cap; the least recently used entries go first."""
    sam2_compile_decoder: bool = False
    """not stated: torch.compile SAM2's mask decoder (2.1x faster decoding on a CPU, identical masks, ~20 s of
    compilation per process); off by default, as the GPU gain is not measured."""
    grabcut_iterations: int = 3
    """not the paper's (GrabCut is ours): 3 iterations, ~6 ms per call on a 112x112 image."""

    # ------------------------------------------------------------------ data
    data_source: Literal["refer", "synthetic", "toy"] = "refer"
    """§4.1: the REFER folder data_root. "synthetic" (smoke preset) writes a small synthetic REFER world into
    <output_dir>/world; "toy" (toy presets) writes the toy world into data_root (samr1lib.data.sources)."""
    data_root: str = "data/refer"
    """not stated: a REFER data folder (refcocog/refs(umd).p, refcocog/instances.json, images/mscoco/...)."""
    dataset: Literal["refcoco", "refcoco+", "refcocog"] = "refcocog"
    """§4.1: RefCOCOg (umd split scheme)."""
    split: str = "train"
    """§4.1: the train split ("all": every split, used by the toy world)."""
    n_train: int = 3000
    """§4.1: 3,000 instances sampled at random (Table 6: 10k does not help)."""
    data_seed: int = 0
    """not stated: the seed of the 3k draw (samr1lib.data.sample_refer), fixed so the draw is reproducible."""
    image_size: int = 840
    """§4.1: every image resized to 840 x 840 before the policy (840 = 30 x 28 keeps its size in Qwen's
    processor)."""
    world_images: int = 0
    """synthetic / toy data sources only (not the paper's): images written (toy: of the training world)."""
    world_image_size: int = 112
    """synthetic / toy data sources only: image side in pixels."""
    world_position_gradient: float = 0.0
    """synthetic / toy data sources only: strength of the background's position ramp (a learnable cue)."""

    # ------------------------------------------------------------------ objective (§3.2)
    num_generations: int = 8
    """§4.2: G = 8 rollouts per question (Eq. 1's group)."""
    epsilon_low: float = 0.2
    """not stated: the usual PPO/GRPO 0.2 (§3.2 raises only the upper bound)."""
    epsilon_high: float = 0.3
    """§3.2/§4.2, Eq. 4: clip-higher, eps_high = 0.3."""
    beta: float = 0.04
    """not stated (the KL is kept, Appendix A.1, value not given): 0.04, TRL's classic GRPO default and
    DeepSeekMath's, since A.1 reports collapse when the KL is too weak; Seg-Zero uses 5e-3 (beta=0.005)."""
    normalization: Literal["group", "sequence"] = "group"
    """Eq. 4: "group" = one token normaliser sum_i |o_i| per group; "sequence" = Eq. 2's 1/|o_i| (Table 4)."""
    scale_rewards: Literal["group", "batch", "none"] = "group"
    """Eq. 1: advantages standardised within the group (TRL's scale_rewards="group")."""
    learning_rate: float = 1e-6
    """§4.2: learning rate 1e-6."""
    loss_type: Literal["grpo", "bnpo", "dr_grpo", "dapo"] = "dapo"
    """not stated: TRL's clipped-surrogate type; SAMR1GRPOTrainer replaces its aggregation by `normalization`."""

    # ------------------------------------------------------------------ rewards (§3.3)
    tiers: str = "eq5"
    """Eq. 5 tiers ("eq5"), or Table 3's fixed thresholds "fixed0.5" / "fixed0.7" / "fixed0.8" (4 above, 0
    below)."""
    reasoning_format_good: float = 1.0
    """not stated (§3.3 gives no values): 1 for <think>...</think><answer>...</answer>, as the peers."""
    reasoning_format_bad: float = 0.0
    """not stated: 0 for a malformed output, as the peers (Seg-Zero, VLM-R1)."""
    segmentation_format_good: float = 1.0
    """not stated: 1 when the answer has box, point and label in the schema, as the peers."""
    segmentation_format_bad: float = 0.0
    """not stated: 0 otherwise, as the peers."""
    seg_reward: Literal["samr1", "segr1", "star"] = "samr1"
    """the accuracy reward: "samr1" (§3.3: Eq. 5 tiers / Table 3), "segr1" (Seg-R1: w_iou IoU + w_s S-measure)
    or "star" (StAR: Hungarian-matched multi-object score on 0..8, + non-repeat); docs/papers.md."""
    segr1_w_iou: float = 0.7
    """Seg-R1's released code: 0.7 IoU + 0.3 S-measure (docs/papers.md)."""
    segr1_w_s: float = 0.3
    """Seg-R1: see segr1_w_iou."""
    label_reward: bool = False
    """StAR (docs/papers.md): reward the label field against the GT category / query phrase (1 or 0)."""
    rest_k: int = 0
    """StAR's REST: keep the k highest- and k lowest-reward rollouts of each group and update on those; 0 = off
    (SAM-R1). Needs num_generations > 2k."""
    negative_points: Literal["none", "free", "point_value", "in_box"] = "none"
    """Appendix A.2 (failed, not in the final method): labelled points allowed ("free"), rewarded when both labels
    appear ("point_value", A.2b) or when all lie in the box ("in_box", A.2c)."""
    negative_points_value: float = 1.0
    """Appendix A.2(b): the point-value reward is 1."""

    # ------------------------------------------------------------------ batches and schedule
    per_device_train_batch_size: int = 8
    """not stated: 8 = G, one whole group per process and optimizer step; on 8 GPUs an optimizer step trains on
    64 rollouts = 8 questions."""
    gradient_accumulation_steps: int = 1
    """not stated: 1, one micro-batch per optimizer step (TRL's default)."""
    steps_per_generation: int = 4
    """not stated: 4 optimizer steps per generation batch (8 x 4 x 8 GPUs = 256 rollouts = 32 questions), so
    steps 2-4 are off-policy and the clip range acts: Table 4 reports a clip-higher effect, which cannot exist
    on-policy (the ratio is then exactly 1). 4 is EasyR1's (Seg-Zero's base): rollout batch 512, update batch 128.
    1 = on-policy (preset paper_on_policy)."""
    max_steps: int = -1
    """not stated: -1 = run num_train_epochs; one epoch of 3k questions at 8 per step is 375 steps, past the ~100
    steps where A.1 saw the KL-free run collapse."""
    num_train_epochs: float = 1.0
    """not stated: one pass over the 3k draw (§4.1's data is small; Table 6 finds more data does not help)."""
    max_completion_length: int = 1024
    """not stated: 1024 tokens leave room for reasoning plus a one-object JSON answer (Seg-Zero caps
    similarly)."""
    temperature: float = 1.0
    """not stated: 1.0, TRL's default sampling temperature for GRPO rollouts."""
    max_grad_norm: float = 1.0
    """not stated: TRL's default max_grad_norm (EasyR1's too)."""
    lr_scheduler_type: Literal["constant", "constant_with_warmup", "linear", "cosine"] = "constant"
    """not stated: constant, EasyR1's (lr_warmup_ratio 0 on a constant schedule), not TRL's linear decay to 0."""
    warmup_ratio: float = 0.0
    """not stated: no warmup, EasyR1's lr_warmup_ratio 0.0."""

    # ------------------------------------------------------------------ hardware
    bf16: bool = True
    """§4.1 ran on 8 x A100: bf16 (A100-native); forced off on CPU."""
    gradient_checkpointing: bool = True
    """not stated: needed to fit a 7B policy's activations for G=8 x 1024 tokens per GPU."""
    use_vllm: bool = True
    """not stated: vLLM for rollouts, as the peers (VLM-R1, Seg-Zero) do; colocated on the training GPUs."""
    vllm_mode: Literal["colocate", "server"] = "colocate"
    """not stated: "colocate" shares the 8 training GPUs (no separate vLLM server node)."""
    vllm_gpu_memory_utilization: float = 0.3
    """not stated: 0.3 of an 80 GB A100 for vLLM's weights (~17 GB in bf16) and KV cache, the rest for ZeRO-3
    training (TRL's colocate default)."""
    vllm_max_model_length: int = 3072
    """not stated: an 840x840 image is 900 tokens, the prompt ~150, the completion up to max_completion_length
    (1024): 3072 leaves ~1000 tokens of room. Unset, vLLM would size its KV cache for the model's 128k context,
    which does not fit the colocate share after the weights. Checked >= image tokens + 256 + completion."""
    vllm_importance_sampling: Literal["sequence_mask", "sequence_truncate", "token_mask", "token_truncate",
                                      "off"] = "sequence_mask"
    """not stated: TRL 1.16's default correction for the vLLM / trainer log-prob mismatch ("off" disables it);
    outside Eq. 4, as TRL applies it."""
    num_processes: int = 8
    """§4.1: 8 GPUs; the launch's real WORLD_SIZE is checked at run time."""
    use_cpu: bool | None = None
    """None = the CPU when no CUDA device exists (TrainingArguments.use_cpu)."""

    # ------------------------------------------------------------------ LoRA (off: the paper fine-tunes fully)
    lora: bool = False
    """§4 trains the full policy; LoRA is StAR's option (docs/papers.md), off by default."""
    lora_r: int = 64
    """StAR: r = 64."""
    lora_alpha: int = 64
    """StAR: alpha = 64."""
    lora_dropout: float = 0.05
    """not stated (StAR gives none): 0.05, peft examples' common value."""

    # ------------------------------------------------------------------ bookkeeping
    output_dir: str = "runs/paper"
    """not stated: where checkpoints, rollouts.rank{r}.jsonl and metrics.jsonl go."""
    save_steps: int = 50
    """not stated: a checkpoint every 50 steps (~7 per epoch) bounds the work lost to an interruption."""
    save_total_limit: int = 2
    """not stated: keep the last 2 checkpoints (a 7B full checkpoint with optimizer states is large)."""
    logging_steps: int = 1
    """not stated: log every step (GRPO steps are slow; curves need every point)."""
    report_to: str = "tensorboard"
    """not stated: "tensorboard" for the paper run; "none" on CPU."""
    seed: int = 42
    """not stated: TRL/transformers' default seed 42."""
    resume: bool = True
    """not stated: resume from the last checkpoint in output_dir when one exists (--no-resume disables); a run
    started with other values of the fields that shape training is refused unless allow_config_change."""
    allow_config_change: bool = False
    """not stated: resume even when the run's saved config differs in a field that shapes training (the fields
    that may change on a resume are max_steps, num_train_epochs, save_*, logging_steps, report_to)."""
    rollout_log: bool = True
    """not stated: write every rollout to <output_dir>/rollouts.rank{r}.jsonl (the viewer's input)."""
    control: Literal["none", "shuffled"] = "none"
    """ours, a control experiment (not the paper's): "shuffled" permutes the rewards across the completions of
    each generation batch before the advantages, destroying the signal while keeping its distribution."""

    @property
    def labelled_points_prompt(self) -> bool:
        """Whether the prompt asks for labelled fg/bg points too (any negative-points variant, Seg-R1)."""
        return self.negative_points != "none"
