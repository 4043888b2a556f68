"""Training configuration: one dataclass with SAM-R1's defaults, presets, YAML and ``key=value`` overrides.

Every field's comment names its source: a section / equation / table of the SAM-R1 paper
(../shared/PAPER.md gives the facts; § numbers are the paper's), or "not stated: chosen because ...".
The defaults ARE the paper run (preset ``paper``); the presets ``smoke`` and ``toy`` override only
what a CPU needs.

    cfg = load_config("smoke", yaml_path=None, overrides=["max_steps=3", "beta=0"])

Errors (unknown preset, unknown field, a value that does not parse as the field's type, an invalid
choice, a G that does not divide the generation batch) are ``ValueError`` raised here, before any
model or dataset is loaded.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

__all__ = [
    "TrainConfig",
    "PRESETS",
    "CHOICES",
    "load_config",
    "parse_value",
    "check_generation_batch",
    "tiers_from_name",
]

TINY_POLICY = "tiny"  # policy sentinel: build samr1lib.policy.build_tiny_policy into output_dir/tiny_policy


@dataclass
class TrainConfig:
    # ------------------------------------------------------------------ models
    # §4.1: the policy is Qwen2.5-VL-7B-Instruct. "tiny" = a tiny random offline Qwen2.5-VL built on the fly
    # (samr1lib.policy.build_tiny_policy) into <output_dir>/tiny_policy; any other value is a path or hub id.
    policy: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    # §3.1/§4.1: the reward segmenter is a frozen SAM2-Large ("sam2"); "grabcut" is the weight-free stand-in
    # (DESIGN.md: honest about being a stand-in, used on CPU).
    segmenter: str = "sam2"
    # §4.1 (SAM2-Large): the sam2 package's SAM2.1 Hiera-L config.
    sam2_config: str = "sam2.1_hiera_l"
    # not stated: where the user keeps the SAM2.1-Large weights (the sam2 repo's download script writes this path).
    sam2_checkpoint: str = "checkpoints/sam2.1_hiera_large.pt"
    # not stated (GrabCut is ours, not the paper's): 3 iterations, 6.4 ms per call at 112x112 (NOTES.md).
    grabcut_iterations: int = 3

    # ------------------------------------------------------------------ data
    # §4.1: training data from the REFER layout (RefCOCOg); "synthetic" writes a small REFER world
    # (samr1lib.synthetic.write_refer_world) into <output_dir>/world for the smoke preset; "toy" writes (once) the
    # toy world of samr1lib.toy into data_root and trains on every expression of its training world.
    data_source: str = "refer"
    # not stated: a REFER data folder (refcocog/refs(umd).p, refcocog/instances.json, images/mscoco/...).
    data_root: str = "data/refer"
    # §4.1: RefCOCOg (umd split scheme, load_refer's default for refcocog).
    dataset: str = "refcocog"
    # §4.1: drawn from the train split.
    split: str = "train"
    # §4.1: 3,000 instances sampled at random (Table 6: 10k does not help).
    n_train: int = 3000
    # not stated: the seed of the 3k draw (samr1lib.data.sample_refer); fixed so the draw is reproducible.
    data_seed: int = 0
    # §4.1: every image resized to 840 x 840 before the policy (840 = 30 x 28 keeps its size in Qwen's processor).
    image_size: int = 840
    # synthetic/toy world only (not the paper's): number of images written (toy: of the training world).
    synthetic_images: int = 0
    # synthetic world only: image side in pixels.
    synthetic_size: int = 112
    # synthetic world only: strength of the background's position gradient (a learnable cue, synthetic.py).
    position_gradient: float = 0.0

    # ------------------------------------------------------------------ objective (§3.2)
    # §4.2: G = 8 rollouts per question (Eq. 1's group).
    num_generations: int = 8
    # not stated: the usual PPO/GRPO 0.2 (PAPER.md §4: "eps_low kept at the usual value").
    epsilon_low: float = 0.2
    # §3.2/§4.2, Eq. 4: clip-higher, eps_high = 0.3.
    epsilon_high: float = 0.3
    # not stated (the KL is kept, Appendix A.1, value not given): 0.04, following TRL's classic GRPO default
    # and DeepSeekMath, because SAM-R1 builds on that GRPO and A.1 reports collapse when the KL is too weak to
    # hold the policy; Seg-Zero's 5e-3 is the other peer value (override with beta=0.005).
    beta: float = 0.04
    # Eq. 4: "group" = one token normaliser sum_i |o_i| per group; "sequence" = Eq. 2's 1/|o_i| (Table 4 ablation).
    normalization: str = "group"
    # Eq. 1: advantages standardised within the group (TRL scale_rewards="group").
    scale_rewards: str = "group"
    # §4.2: learning rate 1e-6.
    learning_rate: float = 1e-6
    # not stated: TRL's clipped-surrogate type; SAMR1GRPOTrainer replaces its aggregation by `normalization`.
    loss_type: str = "dapo"

    # ------------------------------------------------------------------ rewards (§3.3)
    # Eq. 5 tiers ("eq5"), or Table 3's fixed thresholds "fixed0.5" / "fixed0.7" / "fixed0.8" (4 above, 0 below).
    tiers: str = "eq5"
    # not stated (PAPER.md §3): 1 for a compliant <think>...</think><answer>...</answer>, following the peers.
    reasoning_format_good: float = 1.0
    # not stated: 0 for a malformed output, following the peers (Seg-Zero, VLM-R1).
    reasoning_format_bad: float = 0.0
    # not stated: 1 when the answer has box, point and label in the schema, following the peers.
    segmentation_format_good: float = 1.0
    # not stated: 0 otherwise, following the peers.
    segmentation_format_bad: float = 0.0
    # which accuracy reward: "samr1" (§3.3: Eq. 5 tiers / Table 3), "segr1" (Seg-R1, PAPER.md §7: w_iou IoU +
    # w_s S-measure) or "star" (StAR, PAPER.md §8: Hungarian-matched multi-object score on 0..8, + non-repeat).
    seg_reward: str = "samr1"
    # Seg-R1's released code: 0.7 IoU + 0.3 S-measure (PAPER.md §7).
    segr1_w_iou: float = 0.7
    # Seg-R1: see segr1_w_iou.
    segr1_w_s: float = 0.3
    # StAR (PAPER.md §8): reward the label field against the GT category / query phrase (1 or 0).
    label_reward: bool = False
    # StAR's REST (PAPER.md §8): keep the k highest- and k lowest-reward rollouts of each group, update on those;
    # 0 = off (SAM-R1). Use with more rollouts per prompt (num_generations > 2k).
    rest_k: int = 0
    # Appendix A.2 (failed, not in the final method): "none" | "free" (labelled points allowed, no reward) |
    # "point_value" (A.2b) | "in_box" (A.2c).
    negative_points: str = "none"
    # Appendix A.2(b): the point-value reward is 1.
    negative_points_value: float = 1.0

    # ------------------------------------------------------------------ batches and schedule
    # not stated: 8 = G puts one whole group on each process (no group split over GPUs, NOTES.md); on 8 GPUs a
    # step draws 64 rollouts = 8 questions.
    per_device_train_batch_size: int = 8
    # not stated: 1 (TRL's default) with steps_per_generation 1: every generation batch is one optimizer step,
    # so training is on-policy (pi_old == pi_theta in value, as TRL's default).
    gradient_accumulation_steps: int = 1
    # not stated: 1, see gradient_accumulation_steps.
    steps_per_generation: int = 1
    # not stated: -1 = run num_train_epochs; one epoch of 3k questions at 8 per step is 375 steps, past the ~100
    # steps where A.1 saw the KL-free run collapse.
    max_steps: int = -1
    # not stated: one pass over the 3k draw (§4.1's data is small; Table 6 finds more data does not help).
    num_train_epochs: float = 1.0
    # not stated: 1024 tokens leave room for reasoning plus a one-object JSON answer (Seg-Zero caps similarly).
    max_completion_length: int = 1024
    # not stated: 1.0, TRL's default sampling temperature for GRPO rollouts.
    temperature: float = 1.0
    # not stated: TRL's default max_grad_norm.
    max_grad_norm: float = 1.0

    # ------------------------------------------------------------------ hardware
    # §4.1 ran on 8 x A100: bf16 (A100-native); forced off on CPU.
    bf16: bool = True
    # not stated: needed to fit a 7B policy's activations for G=8 x 1024 tokens per GPU.
    gradient_checkpointing: bool = True
    # not stated: vLLM for rollouts, as the peers (VLM-R1, Seg-Zero) do; colocated on the training GPUs.
    use_vllm: bool = True
    # not stated: "colocate" shares the 8 training GPUs (no separate vLLM server node).
    vllm_mode: str = "colocate"
    # not stated: 0.3 leaves the rest of an 80 GB A100 to ZeRO-3 training (TRL's colocate default scale).
    vllm_gpu_memory_utilization: float = 0.3
    # the world size the run is planned for (§4.1: 8 GPUs); the launch's real WORLD_SIZE is checked at run time.
    num_processes: int = 8
    # None = use the CPU when no CUDA device exists (TrainingArguments.use_cpu).
    use_cpu: bool | None = None

    # ------------------------------------------------------------------ LoRA (off: the paper fine-tunes fully)
    # §4 trains the full policy; LoRA is StAR's option (PAPER.md §8), off by default.
    lora: bool = False
    # StAR: r = 64.
    lora_r: int = 64
    # StAR: alpha = 64.
    lora_alpha: int = 64
    # not stated (StAR gives none): 0.05, peft examples' common value.
    lora_dropout: float = 0.05

    # ------------------------------------------------------------------ bookkeeping
    # not stated: where checkpoints, rollouts.rank{r}.jsonl and metrics.jsonl go.
    output_dir: str = "runs/paper"
    # not stated: a checkpoint every 50 steps (~7 per epoch) bounds the work lost to an interruption.
    save_steps: int = 50
    # not stated: keep the last 2 checkpoints (a 7B full checkpoint with optimizer states is large).
    save_total_limit: int = 2
    # not stated: log every step (GRPO steps are slow; curves need every point).
    logging_steps: int = 1
    # not stated: "tensorboard" for the paper run; "none" for smoke.
    report_to: str = "tensorboard"
    # not stated: TRL/transformers' default seed 42.
    seed: int = 42
    # not stated: resume from the last checkpoint in output_dir when one exists (--no-resume disables).
    resume: bool = True
    # not stated: write every rollout to <output_dir>/rollouts.rank{r}.jsonl (the viewer's input).
    rollout_log: bool = True
    # ours, a control experiment (not the paper's): "shuffled" permutes the rewards across the completions of each
    # generation batch before the advantages, destroying the signal while keeping its distribution (issue 7).
    control: str = "none"

    @property
    def labelled_points_prompt(self) -> bool:
        """Whether the prompt asks for labelled fg/bg points too (any negative-points variant, Seg-R1)."""
        return self.negative_points != "none"


# Presets: the paper run is the dataclass's defaults; the CPU presets override what a CPU needs.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "smoke": dict(
        policy=TINY_POLICY, segmenter="grabcut", data_source="synthetic", synthetic_images=16, synthetic_size=112,
        image_size=112, n_train=8, num_generations=4, per_device_train_batch_size=4, max_steps=2,
        max_completion_length=16, bf16=False, gradient_checkpointing=False, use_vllm=False, num_processes=1,
        output_dir="runs/smoke", save_steps=2, report_to="none", grabcut_iterations=1,
    ),
    # toy: the paper's objective unchanged (G 8, eps 0.2 / 0.3, Eq. 4, beta 0.04); only sizes, the policy (a
    # warm-started tiny one, samr1lib.toy.warm_start: pass policy=DIR) and the learning rate differ. lr 1e-3: a
    # 0.3M model from a short SFT, not a 7B instruct one; chosen on seed 0 of the toy world from 1e-4 / 5e-4 / 1e-3
    # (held-out change in mean tier after 200 steps +0.32 at 5e-4, +0.45 at 1e-3) and then fixed. 100 steps is what
    # the ablations run (3 seeds x 10 variants must fit a CPU session); the learning benchmark runs 300.
    # Untuned across variants: every ablation uses these values.
    "toy": dict(
        policy=TINY_POLICY, segmenter="grabcut", data_source="toy", data_root="runs/toy_world", dataset="refcoco",
        split="all", synthetic_images=1000, synthetic_size=112, image_size=112, position_gradient=0.5, n_train=2000,
        num_generations=8, per_device_train_batch_size=16, max_steps=100, max_completion_length=64,
        learning_rate=1e-3, bf16=False, gradient_checkpointing=False, use_vllm=False, num_processes=1,
        output_dir="runs/toy", save_steps=50, report_to="none",
    ),
}

# Related systems as configurations of the same pipeline (issue 8), at toy scale (CPU):
# Seg-R1 (PAPER.md §7): labelled fg/bg points, 0.7 IoU + 0.3 S-measure, an FCoT SFT cold start (samr1lib.toy);
# StAR (PAPER.md §8): Hungarian-matched multi-object reward + non-repeat + label prediction, REST on 16 rollouts
# (k = 4 highest + 4 lowest); StAR's LoRA (r = alpha = 64) is lora=true.
PRESETS["segr1_toy"] = dict(PRESETS["toy"], seg_reward="segr1", negative_points="free", output_dir="runs/segr1_toy")
PRESETS["star_toy"] = dict(PRESETS["toy"], seg_reward="star", label_reward=True, num_generations=16,
                           per_device_train_batch_size=16, rest_k=4, output_dir="runs/star_toy")

CHOICES: dict[str, tuple[Any, ...]] = {
    "segmenter": ("sam2", "grabcut"),
    "data_source": ("refer", "synthetic", "toy"),
    "control": ("none", "shuffled"),
    "seg_reward": ("samr1", "segr1", "star"),
    "dataset": ("refcoco", "refcoco+", "refcocog"),
    "normalization": ("group", "sequence"),
    "scale_rewards": ("group", "batch", "none"),
    "loss_type": ("grpo", "bnpo", "dr_grpo", "dapo"),
    "negative_points": ("none", "free", "point_value", "in_box"),
    "vllm_mode": ("colocate", "server"),
}


def _fields() -> dict[str, Any]:
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainConfig)}


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def parse_value(name: str, value: Any) -> Any:
    """Convert ``value`` (a string from the CLI, or a YAML scalar) to field ``name``'s type."""
    types = _fields()
    if name not in types:
        raise ValueError(f"unknown config field {name!r}; valid fields: {', '.join(sorted(types))}")
    tp = types[name]
    args = typing.get_args(tp)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), tp) if args else tp
    if value is None:
        if optional:
            return None
        raise ValueError(f"config field {name!r} ({base.__name__}) cannot be None")
    if optional and isinstance(value, str) and value.strip().lower() in ("none", "null", "~"):
        return None
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
            raise ValueError
        if base is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value) if not isinstance(value, str) else int(value.strip())
        if base is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if base is str:
            return str(value)
    except (TypeError, ValueError):
        raise ValueError(f"config field {name!r} expects {base.__name__}, got {value!r}") from None
    raise ValueError(f"config field {name!r} has an unsupported type {tp}")  # pragma: no cover


def tiers_from_name(name: str):
    """``"eq5"`` -> None (Eq. 5); ``"fixed0.7"`` -> Table 3's fixed-threshold tiers."""
    from .rewards import fixed_threshold_tiers

    if name == "eq5":
        return None
    if name.startswith("fixed"):
        try:
            t = float(name[len("fixed"):])
        except ValueError:
            t = -1.0
        if 0.0 <= t < 1.0:
            return fixed_threshold_tiers(t)
    raise ValueError(f"tiers must be 'eq5' or 'fixed<t>' with 0 <= t < 1 (Table 3: fixed0.5/0.7/0.8), got {name!r}")


def check_generation_batch(cfg: TrainConfig, world_size: int | None = None) -> int:
    """G must divide the generation batch (per-device batch x steps_per_generation x world size)."""
    ws = cfg.num_processes if world_size is None else int(world_size)
    gen_batch = cfg.per_device_train_batch_size * cfg.steps_per_generation * ws
    if gen_batch % cfg.num_generations:
        raise ValueError(
            f"num_generations G={cfg.num_generations} must divide the generation batch per_device_train_batch_size "
            f"({cfg.per_device_train_batch_size}) x steps_per_generation ({cfg.steps_per_generation}) x world size "
            f"({ws}) = {gen_batch}; change one of them (e.g. per_device_train_batch_size={cfg.num_generations})"
        )
    return gen_batch


def validate(cfg: TrainConfig, world_size: int | None = None) -> TrainConfig:
    for name, allowed in CHOICES.items():
        if getattr(cfg, name) not in allowed:
            raise ValueError(f"config field {name!r} must be one of {allowed}, got {getattr(cfg, name)!r}")
    tiers_from_name(cfg.tiers)
    if cfg.num_generations < 2:
        raise ValueError(f"num_generations must be >= 2 (Eq. 1 needs a group), got {cfg.num_generations}")
    for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "steps_per_generation",
                 "num_processes", "max_completion_length", "image_size", "save_steps", "logging_steps"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"config field {name!r} must be >= 1, got {getattr(cfg, name)}")
    if not 0 <= cfg.epsilon_low < 1 or cfg.epsilon_high < 0:
        raise ValueError(f"need 0 <= epsilon_low < 1 and epsilon_high >= 0, got {cfg.epsilon_low}, {cfg.epsilon_high}")
    if cfg.beta < 0:
        raise ValueError(f"beta must be >= 0, got {cfg.beta}")
    if cfg.max_steps <= 0 and cfg.num_train_epochs <= 0:
        raise ValueError("set max_steps > 0 or num_train_epochs > 0")
    if cfg.data_source == "synthetic" and cfg.synthetic_images < 1:
        raise ValueError("data_source='synthetic' needs synthetic_images >= 1")
    if cfg.n_train < 1:
        raise ValueError(f"n_train must be >= 1, got {cfg.n_train}")
    check_generation_batch(cfg, world_size)
    return cfg


def load_config(
    preset: str = "paper",
    yaml_path: str | Path | None = None,
    overrides: Iterable[str] = (),
    world_size: int | None = None,
) -> TrainConfig:
    """Defaults <- preset <- YAML file (a mapping of field: value) <- ``key=value`` overrides, then validated.

    ``world_size`` (default: the config's ``num_processes``) is the one used for the G-divisibility check.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid presets: {', '.join(sorted(PRESETS))}")
    values: dict[str, Any] = dict(PRESETS[preset])
    if yaml_path is not None:
        import yaml

        with open(yaml_path) as f:
            data = yaml.safe_load(f) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{yaml_path}: a config file must be a mapping of field: value, got {type(data).__name__}")
        for k, v in data.items():
            values[str(k)] = parse_value(str(k), v)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value")
        k, v = item.split("=", 1)
        values[k.strip()] = parse_value(k.strip(), v)
    for k, v in list(values.items()):
        values[k] = parse_value(k, v)
    return validate(TrainConfig(**values), world_size)


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)

