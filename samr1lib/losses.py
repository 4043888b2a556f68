r"""Reference implementation of the GRPO objectives of SAM-R1 (§3.2, Eq. 2-4), in plain torch.

Notation (SAM-R1 §3.2). A question q has a group of G sampled responses o_1..o_G with advantages
A_i (Eq. 1). For token t of response i, the probability ratio against the sampling ("old") policy is

    rho_{i,t} = pi_theta(o_{i,t} | q, o_{i,<t}) / pi_old(o_{i,t} | q, o_{i,<t}) = exp(logp - old_logp)

and the per-token term is the clipped surrogate minus the KL penalty

    l_{i,t} = min(rho_{i,t} A_i, clip(rho_{i,t}, 1 - eps_low, 1 + eps_high) A_i) - beta * KL_{i,t}

with the "k3" KL estimator of Eq. 3 (Schulman's unbiased, non-negative estimator of
KL(pi_theta || pi_ref)), computed from log-probabilities:

    KL_{i,t} = pi_ref/pi_theta - log(pi_ref/pi_theta) - 1 = exp(ref - logp) - (ref - logp) - 1.

Eq. 2 (baseline GRPO, ``normalization="sequence"``) averages over each response's own tokens, then
over the G responses:

    J_seq = (1/G) sum_i (1/|o_i|) sum_t l_{i,t}

Eq. 4 (SAM-R1, ``normalization="group"``) gives the whole group ONE normaliser, the group's total
token count, so every token of the group weighs the same ("token-level" normalisation, §3.2):

    J_group = (1 / sum_i |o_i|) sum_i sum_t l_{i,t}

Eq. 4 also makes the clipping asymmetric ("clip-higher"): eps_high = 0.3 > eps_low = 0.2 (§4.1).
Both objectives are averaged over the groups (questions) of a batch (the expectation E_q). The
loss returned is ``-J``, to minimise.

Conventions (the same as TRL's): a response with no active token contributes 0 (its |o_i| is
clamped to 1); so does a group with no active token. ``old_logps=None`` means on-policy
(``old_logps = logps.detach()``, rho == 1 in value, with the gradient of rho).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["TokenTerms", "per_token_terms", "aggregate", "token_weights", "grpo_objective", "NORMALIZATIONS"]

NORMALIZATIONS = ("group", "sequence")


class TokenTerms(NamedTuple):
    """Per-token pieces of the objective, all (N, T) (padding positions are not masked here)."""

    objective: torch.Tensor  # l_{i,t} = surrogate - beta * kl  (to MAXIMISE)
    surrogate: torch.Tensor  # min(rho A, clip(rho) A)
    kl: torch.Tensor | None  # k3 estimator (Eq. 3), None when beta == 0 and no ref given
    ratio: torch.Tensor  # rho
    is_low_clipped: torch.Tensor  # bool: rho < 1 - eps_low and A < 0  (the clip is active)
    is_high_clipped: torch.Tensor  # bool: rho > 1 + eps_high and A > 0 (the clip is active)


def _check_2d(name: str, x: torch.Tensor | None, shape: torch.Size | None) -> None:
    if x is None:
        return
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if shape is None:
        if x.dim() != 2:
            raise ValueError(f"{name} must be 2-D (num_sequences, num_tokens), got shape {tuple(x.shape)}")
    elif x.shape != shape:
        raise ValueError(f"{name} has shape {tuple(x.shape)}, expected {tuple(shape)} (the shape of logps)")


def _advantages_2d(advantages: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    if not isinstance(advantages, torch.Tensor):
        raise TypeError(f"advantages must be a torch.Tensor, got {type(advantages).__name__}")
    if advantages.dim() == 1 and advantages.shape[0] == shape[0]:
        return advantages.unsqueeze(1)
    if advantages.dim() == 2 and advantages.shape[0] == shape[0] and advantages.shape[1] in (1, shape[1]):
        return advantages
    raise ValueError(
        f"advantages must have shape ({shape[0]},) (one per sequence) or ({shape[0]}, {shape[1]}), "
        f"got {tuple(advantages.shape)}"
    )


def per_token_terms(
    logps: torch.Tensor,
    old_logps: torch.Tensor | None,
    ref_logps: torch.Tensor | None,
    advantages: torch.Tensor,
    eps_low: float = 0.2,
    eps_high: float = 0.3,
    beta: float = 0.04,
) -> TokenTerms:
    """The per-token terms l_{i,t} of Eq. 2/4 with clip statistics (see the module docstring).

    ``logps``/``old_logps``/``ref_logps`` are (N, T) per-token log-probabilities of the sampled
    tokens under the current, sampling and reference policies; ``advantages`` is (N,) (or (N, T)).
    """
    _check_2d("logps", logps, None)
    _check_2d("old_logps", old_logps, logps.shape)
    _check_2d("ref_logps", ref_logps, logps.shape)
    adv = _advantages_2d(advantages, logps.shape).to(logps.dtype)
    if not 0.0 <= eps_low < 1.0:
        raise ValueError(f"eps_low must be in [0, 1), got {eps_low}")
    if eps_high < 0.0:
        raise ValueError(f"eps_high must be >= 0, got {eps_high}")
    if beta != 0.0 and ref_logps is None:
        raise ValueError(f"beta = {beta} != 0 needs ref_logps (the reference policy's log-probs) for the KL term")

    if old_logps is None:
        old_logps = logps.detach()
    ratio = torch.exp(logps - old_logps)
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
    surrogate = torch.min(ratio * adv, clipped * adv)
    objective = surrogate
    kl = None
    if ref_logps is not None:
        delta = ref_logps - logps
        kl = torch.exp(delta) - delta - 1.0  # Eq. 3 (k3)
        if beta != 0.0:
            objective = surrogate - beta * kl
    with torch.no_grad():
        is_low = (ratio < 1.0 - eps_low) & (adv < 0)
        is_high = (ratio > 1.0 + eps_high) & (adv > 0)
    return TokenTerms(objective, surrogate, kl, ratio, is_low, is_high)


def _check_group(mask: torch.Tensor, n: int, group_size: int, normalization: str) -> None:
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be a positive int, got {group_size!r}")
    if n == 0:
        raise ValueError("empty batch: logps has no rows")
    if n % group_size:
        raise ValueError(
            f"group_size = {group_size} does not divide the number of rows {n}; rows must be whole groups "
            "of G adjacent responses"
        )


def token_weights(
    mask: torch.Tensor, group_size: int, normalization: str = "group", dtype: torch.dtype | None = None
) -> torch.Tensor:
    """(N, T) weights w with J = sum_{i,t} w_{i,t} l_{i,t} (mask included, batch mean over groups).

    group (Eq. 4): w = mask / (sum of the group's mask) / num_groups.
    sequence (Eq. 2): w = mask / |o_i| / (G * num_groups).
    """
    _check_2d("mask", mask, None)
    n = mask.shape[0]
    _check_group(mask, n, group_size, normalization)
    m = mask.to(dtype or (mask.dtype if mask.is_floating_point() else torch.float32))
    num_groups = n // group_size
    if normalization == "group":
        group_tokens = m.sum(1).view(num_groups, group_size).sum(1).clamp(min=1.0)
        denom = group_tokens.repeat_interleave(group_size).unsqueeze(1) * num_groups
    else:
        denom = m.sum(1, keepdim=True).clamp(min=1.0) * n
    return m / denom


def aggregate(terms: torch.Tensor, mask: torch.Tensor, group_size: int, normalization: str = "group") -> torch.Tensor:
    """J from per-token terms (N, T): Eq. 4 ("group") or Eq. 2 ("sequence"), mean over groups."""
    _check_2d("terms", terms, None)
    _check_2d("mask", mask, terms.shape)
    n = terms.shape[0]
    _check_group(mask, n, group_size, normalization)
    m = mask.to(terms.dtype)
    num_groups = n // group_size
    if normalization == "group":  # Eq. 4: (1 / sum_i |o_i|) sum_i sum_t l_{i,t}
        group_sum = (terms * m).sum(1).view(num_groups, group_size).sum(1)
        group_tokens = m.sum(1).view(num_groups, group_size).sum(1).clamp(min=1.0)
        per_group = group_sum / group_tokens
    else:  # Eq. 2: (1/G) sum_i (1/|o_i|) sum_t l_{i,t}
        seq_mean = (terms * m).sum(1) / m.sum(1).clamp(min=1.0)
        per_group = seq_mean.view(num_groups, group_size).mean(1)
    return per_group.mean()


def grpo_objective(
    logps: torch.Tensor,
    old_logps: torch.Tensor | None,
    ref_logps: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    group_size: int,
    eps_low: float = 0.2,
    eps_high: float = 0.3,
    beta: float = 0.04,
    normalization: str = "group",
) -> torch.Tensor:
    r"""The loss to minimise, ``-J``, of SAM-R1's Eq. 4 (``"group"``) or Eq. 2 (``"sequence"``).

    Args:
        logps: (N, T) log pi_theta of the sampled completion tokens (N = B * G), with gradient.
        old_logps: (N, T) log pi_old (the sampling policy), or None for on-policy (= logps.detach()).
        ref_logps: (N, T) log pi_ref; may be None only when ``beta == 0``.
        advantages: (N,) A_i (Eq. 1), one per sequence.
        mask: (N, T) 1 for completion tokens, 0 for padding (bool, int or float).
        group_size: G; rows ``[g*G, (g+1)*G)`` are the responses of group g.
        eps_low, eps_high: clip range ``[1 - eps_low, 1 + eps_high]`` (Eq. 4; eps_high = 0.3, §4.1).
        beta: KL coefficient (Eq. 2-4, k3 estimator of Eq. 3; kept in SAM-R1, Appendix A.1).
        normalization: ``"group"``: Eq. 4, per group
            :math:`\frac{1}{\sum_i |o_i|}\sum_i\sum_t l_{i,t}`; ``"sequence"``: Eq. 2, per group
            :math:`\frac{1}{G}\sum_i \frac{1}{|o_i|}\sum_t l_{i,t}`; then the mean over groups.

    Returns:
        A 0-dim tensor, ``-J`` (differentiable with respect to ``logps``).
    """
    _check_2d("logps", logps, None)
    _check_2d("mask", mask, logps.shape)
    _check_group(mask, logps.shape[0], group_size, normalization)
    terms = per_token_terms(logps, old_logps, ref_logps, advantages, eps_low, eps_high, beta)
    return -aggregate(terms.objective, mask, group_size, normalization)
