"""The rollout log and the trainer that writes it.

:class:`RolloutLoggingTrainer` is :class:`SAMR1GRPOTrainer` plus three things, all per generation batch:

1. the ONE segmentation of each completion (:func:`samr1lib.rewards.segment_completions`), handed to every reward
   as its ``segmentation`` column, so that SAM2 runs once per completion per step whatever the rewards are;
2. the shuffled control (``control="shuffled"``): rewards permuted across the batch before the advantages;
3. an explicit per-batch record (:class:`RolloutBatch`) turned into one JSON line per completion of this process in
   ``rollouts.rank{r}.jsonl`` (:func:`rollout_rows`), the viewer's input: step, ids, query, completion, parsed
   answer or failure, mask as RLE, IoU, every reward component, the advantage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from transformers import TrainerCallback

from ..masks import encode_rle
from ..metrics import mask_iou
from ..parse import completion_text
from ..rewards import segment_completions
from ..rewards.segmentation import ORIGINAL, segmentation_metrics
from ..segmenters import AnswerMasks, Segmenter
from .trainer import SAMR1GRPOTrainer

__all__ = ["RolloutBatch", "rollout_rows", "shuffle_rewards", "truncate_rollouts", "MetricsFileCallback",
           "RolloutLoggingTrainer"]

# dataset columns copied into every row (the viewer draws the original image with the GT at its size)
_ROW_COLUMNS = ("image_id", "sample_id", "query", "image_path", "height", "width", "policy_frame")


@dataclass
class RolloutBatch:
    """One generation batch as this process's rewards saw it."""

    rows: list[dict]  # the dataset rows, one per local completion
    completions: list  # TRL completions (text or messages)
    segmentation: list[AnswerMasks] | None  # the one segmentation of each completion (None: no segmenter)
    ious: list[float | None]  # IoU of each parsed answer with its GT (None: failed parse, or no segmentation)
    earned: torch.Tensor  # (global N, F) per-function rewards, gathered over processes
    used: torch.Tensor  # what the advantages were computed from (differs under control="shuffled")


def rollout_rows(batch: RolloutBatch, *, step: int, rank: int, group_size: int, reward_names: Sequence[str],
                 weights: Sequence[float], advantages: Sequence[float], lengths: Sequence[int]) -> list[dict]:
    """The log rows of ``batch`` (this process's completions); pure, so it tests without a trainer."""
    n = len(batch.completions)
    start = rank * n
    earned = batch.earned[start:start + n].float().cpu()
    trained = (batch.used[start:start + n].float().cpu() * torch.tensor(weights)).nansum(1).tolist()
    out = []
    for j in range(n):
        rewards = earned[j].tolist()
        rec: dict[str, Any] = {
            "step": int(step), "rank": int(rank), "index": j, "group": (start + j) // group_size,
            **{k: batch.rows[j].get(k) for k in _ROW_COLUMNS},
            "gt_mask_rle": batch.rows[j].get("mask"),  # GT at the original size
            "completion": completion_text(batch.completions[j]), "completion_tokens": int(lengths[j]),
            "rewards": dict(zip(reward_names, rewards)),
            "reward": float(sum(w * r for w, r in zip(weights, rewards))),
            "trained_reward": float(trained[j]),  # differs from reward only under control="shuffled"
            "advantage": float(advantages[j]),
        }
        if batch.segmentation is not None:
            o = batch.segmentation[j]
            rec["answer"] = o.parse.answer.to_json() if o.parse.ok else None
            rec["failure"] = o.parse.failure.value if o.parse.failure is not None else None
            rec["failure_detail"] = o.parse.detail or None
            rec["iou"] = batch.ious[j]
            rec["mask_rle"] = encode_rle(o.prediction) if o.parse.ok else None
        out.append(rec)
    return out


def shuffle_rewards(rewards_per_func: torch.Tensor, seed: int, step: int) -> torch.Tensor:
    """The shuffled control: the rows of ``rewards_per_func`` (one per completion of the gathered generation
    batch) permuted, so every completion is trained on another completion's rewards. The permutation depends
    only on (seed, step): every process draws the same one, as each holds the whole gathered batch."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(step))
    perm = torch.randperm(rewards_per_func.shape[0], generator=g).to(rewards_per_func.device)
    return rewards_per_func[perm]


def truncate_rollouts(path: Path, from_step: int) -> None:
    """Drop rollout rows logged at or after ``from_step`` (work lost by an interruption, redone on resume)."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] < from_step]
    path.write_text("".join(line + "\n" for line in keep))


class MetricsFileCallback(TrainerCallback):
    """Appends every ``trainer.log`` dict to ``<output_dir>/metrics.jsonl`` (main process)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            with open(Path(args.output_dir) / "metrics.jsonl", "a") as f:
                f.write(json.dumps({"step": state.global_step, **logs}, default=float) + "\n")


def _json_default(x):
    if hasattr(x, "item"):
        return x.item()
    if isinstance(x, bytes):
        return x.decode()
    return str(x)


class RolloutLoggingTrainer(SAMR1GRPOTrainer):
    """SAMR1GRPOTrainer that segments each completion once per step, can shuffle rewards (the control) and writes
    every training rollout of this process to ``rollout_log_path`` (see the module doc)."""

    def __init__(self, *args, segmenter: Segmenter | None = None, rollout_log_path: str | None = None,
                 control: str = "none", ignore_column: str = "ignore", **kwargs):
        super().__init__(*args, **kwargs)
        if control not in ("none", "shuffled"):
            raise ValueError(f"control must be 'none' or 'shuffled', got {control!r}")
        self.segmenter, self.rollout_log_path, self.reward_control = segmenter, rollout_log_path, control
        self.ignore_column = ignore_column
        self._batch: RolloutBatch | None = None
        self.add_callback(MetricsFileCallback())

    def _segment(self, inputs: list[dict], completions) -> tuple[list[AnswerMasks] | None, list[float | None]]:
        if self.segmenter is None:
            return None, [None] * len(completions)
        columns = {k: [row[k] for row in inputs] for k in inputs[0]}
        outcomes = segment_completions(self.segmenter, completions, ORIGINAL, **columns)
        ignores = columns.get(self.ignore_column) or [None] * len(inputs)
        ious = [mask_iou(o.prediction, row["mask"], ig) if o.parse.ok else None
                for o, row, ig in zip(outcomes, inputs, ignores)]
        for name, value in segmentation_metrics(outcomes, ious).items():
            self._log_metric(name, value)
        return outcomes, ious

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        outcomes, ious = self._segment(inputs, completions)
        seen = inputs if outcomes is None else [{**row, "segmentation": o} for row, o in zip(inputs, outcomes)]
        earned = super()._calculate_rewards(seen, prompts, completions, completion_ids_list)
        used = earned
        if self.reward_control == "shuffled" and self.model.training:
            used = shuffle_rewards(earned, seed=self.args.seed, step=self.state.global_step)
        self._batch = RolloutBatch(list(inputs), list(completions), outcomes, ious, earned, used)
        return used

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        if self.rollout_log_path and self.model.training and self._batch is not None:
            rows = rollout_rows(
                self._batch, step=self.state.global_step, rank=self.accelerator.process_index,
                group_size=self.num_generations, reward_names=self.reward_func_names,
                weights=self.reward_weights.cpu().tolist(), advantages=output["advantages"].float().cpu().tolist(),
                lengths=output["completion_mask"].sum(1).cpu().tolist())
            with open(self.rollout_log_path, "a") as f:
                f.writelines(json.dumps(r, default=_json_default) + "\n" for r in rows)
        self._batch = None
        return output
