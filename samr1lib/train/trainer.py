r"""``SAMR1GRPOTrainer``: TRL's GRPOTrainer with the loss of SAM-R1's Eq. 4 (or Eq. 2).

SAM-R1 (§3.2, Eq. 4) normalises the token terms of a group by the group's total token count
sum_i |o_i|, then averages over groups. TRL 1.16 has no loss_type that does this in general, so
this subclass overrides only the loss; everything else (sampling, rewards, advantages, logging,
vLLM, DeepSpeed) is TRL's. The reference is :func:`samr1lib.losses.grpo_objective`; the tests
(tests/test_trainer_loss.py in the repository) prove that a real trainer step's loss and gradient equal it.

How Eq. 4 survives micro-batching
---------------------------------
TRL generates one *generation batch* (per_device_train_batch_size x steps_per_generation rows per
process, groups of G adjacent rows in process order, a group possibly spread over processes),
then shuffles the local rows and splits them into ``steps_per_generation`` micro-batches
(``GRPOTrainer._prepare_inputs``, trl/trainer/grpo_trainer.py:1540-1546, with
``shuffle_sequence_dict`` / ``split_tensor_dict`` of trl/trainer/utils.py, which permute and slice
every tensor with a batch dimension and keep 0-dim tensors as they are). A micro-batch therefore
holds parts of several groups. So, right after generation
(:meth:`SAMR1GRPOTrainer._generate_and_score_completions`), each row gets

* ``group_token_count``: its group's total number of loss tokens, sum_i |o_i|, computed from the
  per-row counts *gathered over all processes* (same order as TRL's reward gather, so the group of
  global row r is r // G, exactly as TRL groups rewards for the advantages), and
* ``num_groups``: the number of groups in the global generation batch (0-dim, kept by the split).

The loss of one micro-batch on one process is then

    loss = - W * sum_{i in micro-batch} sum_t mask_{i,t} l_{i,t} / group_token_count_i
           / (num_groups * GA / SPG)

(W processes, GA = gradient accumulation steps, SPG = steps_per_generation). Summed over the GA
micro-batches of an optimizer step and averaged over processes by DDP, this is exactly
``grpo_objective(..., normalization="group")`` on the whole generation batch when SPG == GA (TRL's
default), and the mean of that objective over the generation batches of the window otherwise
(the same convention as TRL's ``dapo``). ``normalization="sequence"`` (Eq. 2) uses 1 / |o_i| and the
number of sequences instead. GRPOTrainer sets ``loss_is_scaled_for_ga = True`` (line 285), so
transformers does not divide by GA again. In evaluation the batch is not split: GA/SPG is 1.

Which TRL loss_type matches which normalisation (TRL 1.16, trl/trainer/grpo_trainer.py)
----------------------------------------------------------------------------------------
All four share the per-token term (lines 3112-3120: ``-min(rho A, clamp(rho, 1-epsilon,
1+epsilon_high) A)``, then ``+ beta * KL`` at 3149-3150); they differ only in aggregation (3153-3174):

* ``grpo`` (3153-3157): per-sequence token mean, mean over the micro-batch, / GA. This IS Eq. 2
  (``normalization="sequence"``) for any GA/SPG/world size (micro-batches and processes hold equal
  numbers of rows). It equals Eq. 4 only when all completions of each group have the same length.
* ``dapo`` (3168-3174, TRL's default): sum of token terms / (active tokens of the whole global
  generation batch, ``num_items_in_batch`` of line 2498) x W x SPG / GA: one token mean pooled over
  all groups. Equals Eq. 4 only when every group has the same total token count, or the global
  generation batch is a single group.
* ``bnpo`` (3158-3162): token mean over the local micro-batch, / GA. Equals Eq. 4 only when every
  micro-batch on every process is exactly one whole group: per_device_train_batch_size == G and
  steps_per_generation == 1 (TRL shuffles the local generation batch before splitting it).
* ``dr_grpo`` (3163-3167): sum / (rows x max_completion_length). Equals Eq. 4 only when every
  completion reaches max_completion_length.

KL term. TRL computes the k3 estimator of Eq. 3 (lines 3098-3102) but by default
(``use_bias_correction_kl=True``, grpo_config.py:972) multiplies it by the ratio rho (3103-3105,
DeepSeek-V3.2's bias correction). Its value is unchanged on-policy (rho == 1) but its gradient is
not (rho carries the gradient of log pi_theta). This trainer follows the paper's Eq. 3: plain k3,
never multiplied by rho; ``use_bias_correction_kl`` is ignored (a warning says so when beta != 0).

Old log-probs. When ``gradient_accumulation_steps`` is a multiple of ``steps_per_generation *
num_iterations`` (and no vLLM importance sampling), TRL does not compute pi_old (2642-2657) and
the loss uses ``per_token_logps.detach()`` (3065-3066): rho == 1 in value with the gradient of
log pi_theta. This trainer does the same (``old_logps=None`` in ``grpo_objective``).

Not supported (a ValueError at construction): loss types other than the clipped surrogate
(grpo/bnpo/dr_grpo/dapo; their aggregation is replaced by ``normalization``), sequence-level
importance sampling, ``delta`` two-sided clipping, ``top_entropy_quantile < 1``,
``off_policy_mask_threshold``, the entropy bonus, and MoE router auxiliary losses. With vLLM's
importance-sampling correction on, the surrogate is multiplied by TRL's truncated IS ratio as TRL
does (a correction for the sampler/trainer mismatch, outside Eq. 4).
"""

from __future__ import annotations

import numpy as np
import torch
from accelerate.logging import get_logger
from trl import GRPOTrainer
from trl.trainer.utils import nanmax, nanmin

from ..losses import NORMALIZATIONS, per_token_terms

__all__ = ["SAMR1GRPOTrainer", "rest_select"]

logger = get_logger(__name__)

_CLIPPED_SURROGATE_LOSSES = ("grpo", "bnpo", "dr_grpo", "dapo")


def rest_select(rewards, k: int) -> list[int]:
    """REST (StAR, docs/papers.md): indices of the k lowest- and k highest-reward rollouts, disjoint,
    in ascending index order. Fewer than 2k rollouts -> all of them. Ties are broken by index
    (a stable sort ascending by reward: the lowest are its first k, the highest its last k)."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    n = len(rewards)
    if n <= 2 * k:
        return list(range(n))
    order = np.argsort(np.asarray(rewards, dtype=float), kind="stable")
    keep = set(order[:k].tolist()) | set(order[n - k :].tolist())
    return sorted(keep)


class SAMR1GRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose loss is SAM-R1's Eq. 4 (``normalization="group"``) or Eq. 2 (``"sequence"``).

    Takes GRPOTrainer's arguments plus ``normalization``. The clip range is TRL's
    ``epsilon`` (eps_low) and ``epsilon_high`` (SAM-R1: 0.2 and 0.3), the KL coefficient ``beta``.
    ``loss_type`` must be a clipped-surrogate type; its aggregation is replaced (see module doc).
    """

    def __init__(self, *args, normalization: str = "group", rest_k: int = 0, **kwargs):
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        if rest_k < 0:
            raise ValueError(f"rest_k must be >= 0 (0 = off), got {rest_k}")
        self.normalization = normalization
        self.rest_k = int(rest_k)
        super().__init__(*args, **kwargs)
        if self.rest_k and 2 * self.rest_k >= self.num_generations:
            raise ValueError(f"REST keeps 2 x rest_k = {2 * self.rest_k} of G = {self.num_generations} rollouts: "
                             "use more rollouts per prompt (num_generations) or a smaller rest_k")
        a = self.args
        unsupported = {
            f"loss_type={self.loss_type!r} (use one of {_CLIPPED_SURROGATE_LOSSES})": self.loss_type
            not in _CLIPPED_SURROGATE_LOSSES,
            "importance_sampling_level='sequence'": self.importance_sampling_level != "token",
            "delta (two-sided clipping)": a.delta is not None,
            "top_entropy_quantile < 1": self.top_entropy_quantile < 1.0,
            "off_policy_mask_threshold": self.off_policy_mask_threshold is not None,
            "the entropy bonus (entropy_coef / use_adaptive_entropy)": self._entropy_bonus_enabled,
            "MoE router auxiliary loss": self.aux_loss_enabled,
        }
        bad = [name for name, is_bad in unsupported.items() if is_bad]
        if bad:
            raise ValueError(f"{type(self).__name__} does not support: {', '.join(bad)}")
        if self.beta != 0.0 and a.use_bias_correction_kl:
            logger.warning(
                "use_bias_correction_kl=True is ignored: SAMR1GRPOTrainer uses the plain k3 KL of SAM-R1 Eq. 3 "
                "(not multiplied by the importance ratio).",
                main_process_only=True,
            )

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        if mode == "train" and self.rest_k:
            self._apply_rest(output, group_size)
        mask = output["completion_mask"]
        if "tool_mask" in output:
            mask = mask * output["tool_mask"]
        local = mask.sum(1).float()
        counts = self.accelerator.gather(local)  # global rows, in TRL's reward/advantage order
        if counts.numel() % group_size:
            raise RuntimeError(f"{counts.numel()} completions do not form whole groups of {group_size}")
        per_group = counts.view(-1, group_size).sum(1)
        start = self.accelerator.process_index * local.numel()
        output["group_token_count"] = per_group.repeat_interleave(group_size)[start : start + local.numel()]
        output["num_groups"] = torch.tensor(float(per_group.numel()), device=local.device)
        return output

    def _apply_rest(self, output, group_size: int) -> None:
        """StAR's REST (docs/papers.md): per group keep the rest_k highest- and rest_k lowest-reward rollouts and
        update on those only (the others get a zero completion mask and advantage). Within a group the
        advantage is an increasing function of the reward, so ranking advantages ranks rewards."""
        adv = output["advantages"]
        n = adv.shape[0]
        if n % group_size:
            raise ValueError(f"REST needs whole groups on each process: {n} local rollouts are not a multiple of "
                             f"G = {group_size} (make per_device_train_batch_size x steps_per_generation one)")
        keep = torch.zeros(n, dtype=torch.bool, device=adv.device)
        for g in range(n // group_size):
            for j in rest_select(adv[g * group_size:(g + 1) * group_size].float().tolist(), self.rest_k):
                keep[g * group_size + j] = True
        output["completion_mask"] = output["completion_mask"] * keep[:, None].to(output["completion_mask"].dtype)
        output["advantages"] = torch.where(keep, adv, torch.zeros_like(adv))
        self.rest_kept = keep.clone()

    def _compute_loss(self, model, inputs):
        mode = "train" if self.model.training else "eval"
        prompt_ids, prompt_mask = inputs["prompt_ids"], inputs["prompt_mask"]
        completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
        mask = completion_mask if "tool_mask" not in inputs else completion_mask * inputs["tool_mask"]
        per_token_logps, entropies, _ = self._get_per_token_logps_and_entropies(
            model,
            torch.cat([prompt_ids, completion_ids], dim=1),
            torch.cat([prompt_mask, completion_mask], dim=1),
            completion_ids.size(1),
            compute_entropy=True,
            **{
                k: inputs.get(k)
                for k in (
                    "pixel_values", "image_grid_thw", "num_images", "pixel_attention_mask", "spatial_shapes",
                    "num_tiles", "image_sizes", "token_type_ids", "mm_token_type_ids", "image_position_ids",
                )
            },
        )
        terms = per_token_terms(
            per_token_logps,
            inputs.get("old_per_token_logps"),  # None: on-policy, rho = exp(logp - logp.detach())
            inputs.get("ref_per_token_logps") if self.beta != 0.0 else None,
            inputs["advantages"],
            eps_low=self.epsilon_low,
            eps_high=self.epsilon_high,
            beta=self.beta,
        )
        objective = terms.objective
        if self.use_vllm and self.vllm_importance_sampling_correction:
            objective = terms.surrogate * inputs["importance_sampling_ratio"]
            if self.beta != 0.0:
                objective = objective - self.beta * terms.kl

        m = mask.to(objective.dtype)
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        if self.normalization == "group":  # Eq. 4: 1 / sum_i |o_i| of the row's whole group
            row_weight = 1.0 / inputs["group_token_count"].to(objective.dtype).clamp(min=1.0)
            units = inputs["num_groups"]
        else:  # Eq. 2: 1 / |o_i|, then the mean over all sequences
            row_weight = 1.0 / m.sum(1).clamp(min=1.0)
            units = inputs["num_groups"] * group_size
        normalizer = units.to(objective.dtype) / self.accelerator.num_processes
        if mode == "train":
            normalizer = normalizer * self.current_gradient_accumulation_steps / self.args.steps_per_generation
        loss = -((objective * m).sum(1) * row_weight).sum() / normalizer

        self._log_loss_metrics(mode, mask, terms, entropies)
        return loss

    def _log_loss_metrics(self, mode, mask, terms, entropies):
        """TRL's loss metrics, same names: kl, entropy, clip_ratio/{low,high,region}_mean, low_min, high_max."""
        m = mask.float()

        def global_masked_mean(x):
            totals = self.accelerator.reduce(torch.stack([(x.float() * m).sum(), m.sum()]), reduction="sum")
            return (totals[0] / totals[1].clamp(min=1.0)).item()

        def seq_mean(x):
            return (x.float() * m).sum(-1) / m.sum(-1)

        metrics = self._metrics[mode]
        if self.beta != 0.0:
            metrics["kl"].append(global_masked_mean(terms.kl.detach()))
        metrics["entropy"].append(global_masked_mean(entropies))
        metrics["clip_ratio/low_mean"].append(global_masked_mean(terms.is_low_clipped))
        metrics["clip_ratio/high_mean"].append(global_masked_mean(terms.is_high_clipped))
        metrics["clip_ratio/region_mean"].append(global_masked_mean(terms.is_low_clipped | terms.is_high_clipped))
        metrics["clip_ratio/low_min"].append(nanmin(self.accelerator.gather(seq_mean(terms.is_low_clipped))).item())
        metrics["clip_ratio/high_max"].append(nanmax(self.accelerator.gather(seq_mean(terms.is_high_clipped))).item())
