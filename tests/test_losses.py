"""grpo_objective (SAM-R1 Eq. 2/3/4) against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from samr1lib.losses import aggregate, grpo_objective, per_token_terms, token_weights

# Two groups of G = 2 sequences, T = 3 tokens, unequal lengths. Ratios are given directly: with
# old_logps = 0, logps = log(ratio). Padding positions hold junk that must not matter.
PAD = 7.0
RATIOS = [
    [1.0, 1.25, 1.5],  # seq 0, group 0, A = +1,   3 tokens
    [0.5, PAD, PAD],  # seq 1, group 0, A = -1,   1 token
    [0.9, 1.1, PAD],  # seq 2, group 1, A = +0.5, 2 tokens
    [1.2, 0.7, 1.0],  # seq 3, group 1, A = -0.5, 3 tokens
]
ADV = [1.0, -1.0, 0.5, -0.5]
MASK = [[1, 1, 1], [1, 0, 0], [1, 1, 0], [1, 1, 1]]

# Per-token surrogate min(r A, clip(r, 0.8, 1.3) A), by hand:
#   seq 0 (A=+1):   1.0 -> 1.0;  1.25 (inside [0.8, 1.3]) -> 1.25;  1.5 -> clipped at 1.3
#   seq 1 (A=-1):   0.5 -> min(-0.5, -0.8) = -0.8
#   seq 2 (A=+.5):  0.9 -> 0.45; 1.1 -> 0.55
#   seq 3 (A=-.5):  1.2 -> -0.6; 0.7 -> min(-0.35, -0.4) = -0.4; 1.0 -> -0.5
HAND_TERMS = [[1.0, 1.25, 1.3], [-0.8], [0.45, 0.55], [-0.6, -0.4, -0.5]]


def _tensors(dtype=torch.float64):
    logps = torch.tensor([[math.log(r) for r in row] for row in RATIOS], dtype=dtype)
    old = torch.zeros_like(logps)
    return logps, old, torch.tensor(ADV, dtype=dtype), torch.tensor(MASK)


def test_hand_values_group_normalization_eq4():
    logps, old, adv, mask = _tensors()
    loss = grpo_objective(logps, old, None, adv, mask, group_size=2, eps_low=0.2, eps_high=0.3, beta=0.0)
    # Eq. 4: per group, all its token terms summed over the group's token count; mean over groups.
    group0 = (1.0 + 1.25 + 1.3 + (-0.8)) / (3 + 1)  # = 0.6875
    group1 = (0.45 + 0.55 + (-0.6) + (-0.4) + (-0.5)) / (2 + 3)  # = -0.1
    expected = -(group0 + group1) / 2  # = -0.29375
    assert expected == pytest.approx(-0.29375)
    assert loss.item() == pytest.approx(expected, abs=1e-12)


def test_hand_values_sequence_normalization_eq2():
    logps, old, adv, mask = _tensors()
    loss = grpo_objective(logps, old, None, adv, mask, 2, eps_low=0.2, eps_high=0.3, beta=0.0, normalization="sequence")
    # Eq. 2: per sequence token mean, mean over the G sequences, mean over groups.
    seq0 = (1.0 + 1.25 + 1.3) / 3
    seq1 = -0.8 / 1
    seq2 = (0.45 + 0.55) / 2
    seq3 = (-0.6 - 0.4 - 0.5) / 3
    expected = -(((seq0 + seq1) / 2) + ((seq2 + seq3) / 2)) / 2  # = -0.0958333...
    assert expected == pytest.approx(-0.23 / 2.4, rel=1e-9)
    assert loss.item() == pytest.approx(expected, abs=1e-12)


def test_per_token_terms_match_hand_values():
    logps, old, adv, mask = _tensors()
    terms = per_token_terms(logps, old, None, adv, eps_low=0.2, eps_high=0.3, beta=0.0)
    for i, row in enumerate(HAND_TERMS):
        got = terms.objective[i, : len(row)].tolist()
        assert got == pytest.approx(row, abs=1e-12)
    # Clip statistics: 1.5 on A>0 is high-clipped, 0.5 and 0.7 on A<0 are low-clipped.
    assert bool(terms.is_high_clipped[0, 2]) and not bool(terms.is_high_clipped[0, 1])
    assert bool(terms.is_low_clipped[1, 0]) and bool(terms.is_low_clipped[3, 1])
    assert not bool(terms.is_low_clipped[3, 0])


def test_equal_group_lengths_make_eq2_and_eq4_agree():
    logps, old, adv, _ = _tensors()
    full = torch.ones(4, 3, dtype=torch.long)
    a = grpo_objective(logps, old, None, adv, full, 2, beta=0.0, normalization="group")
    b = grpo_objective(logps, old, None, adv, full, 2, beta=0.0, normalization="sequence")
    assert a.item() == pytest.approx(b.item(), abs=1e-12)


def _single(ratio: float, adv: float, eps_low=0.2, eps_high=0.3):
    """Loss and d loss / d logp for one token with the given ratio and advantage."""
    logp = torch.tensor([[math.log(ratio)]], dtype=torch.float64, requires_grad=True)
    old = torch.zeros(1, 1, dtype=torch.float64)
    loss = grpo_objective(logp, old, None, torch.tensor([adv], dtype=torch.float64), torch.ones(1, 1), 1,
                          eps_low=eps_low, eps_high=eps_high, beta=0.0)
    loss.backward()
    return loss.item(), logp.grad.item()


def test_clip_higher_ratio_between_1_plus_eps_low_and_1_plus_eps_high_is_not_clipped():
    # ratio 1.25 > 1 + eps_low = 1.2 but < 1 + eps_high = 1.3, A = +2: term = 1.25 * 2, gradient alive.
    loss, grad = _single(1.25, 2.0)
    assert loss == pytest.approx(-2.5)
    assert grad == pytest.approx(-2.5)  # d(-r A)/d logp = -r A
    # The symmetric clip (eps_high = eps_low = 0.2) would clip it at 1.2 and stop the gradient.
    loss_sym, grad_sym = _single(1.25, 2.0, eps_high=0.2)
    assert loss_sym == pytest.approx(-2.4)
    assert grad_sym == 0.0


def test_positive_advantage_clipped_at_1_plus_eps_high():
    loss, grad = _single(1.6, 2.0)
    assert loss == pytest.approx(-1.3 * 2.0)
    assert grad == 0.0


def test_negative_advantage_clipped_below_1_minus_eps_low():
    loss, grad = _single(0.6, -1.5)  # min(0.6 * -1.5, 0.8 * -1.5) = -1.2
    assert loss == pytest.approx(1.2)
    assert grad == 0.0
    loss, grad = _single(0.9, -1.5)  # inside the range: not clipped
    assert loss == pytest.approx(0.9 * 1.5)
    assert grad == pytest.approx(0.9 * 1.5)
    # Below 1 - eps_low with a POSITIVE advantage the min keeps the unclipped r A (pessimistic bound).
    loss, grad = _single(0.6, 1.0)
    assert loss == pytest.approx(-0.6)
    assert grad == pytest.approx(-0.6)
    # Above 1 + eps_high with a NEGATIVE advantage: unclipped too.
    loss, grad = _single(1.5, -1.0)
    assert loss == pytest.approx(1.5)
    assert grad == pytest.approx(1.5)


def test_kl_term_k3_value_both_normalizations():
    # On-policy (old = None: ratio 1), logp = 0 everywhere, ref = log 2 on every token:
    # KL = 2 - log 2 - 1 per token (Eq. 3); term = A - beta * KL.
    beta = 0.1
    kl = 2.0 - math.log(2.0) - 1.0
    logps = torch.zeros(4, 3, dtype=torch.float64)
    ref = torch.full((4, 3), math.log(2.0), dtype=torch.float64)
    adv = torch.tensor(ADV, dtype=torch.float64)
    mask = torch.tensor(MASK)
    terms = per_token_terms(logps, None, ref, adv, beta=beta)
    assert terms.kl[0, 0].item() == pytest.approx(kl, abs=1e-12)
    # group: group0 = (3 * (1 - b kl) + 1 * (-1 - b kl)) / 4; group1 = (2 * (0.5 - b kl) + 3 * (-0.5 - b kl)) / 5
    g0 = (3 * (1.0 - beta * kl) + (-1.0 - beta * kl)) / 4
    g1 = (2 * (0.5 - beta * kl) + 3 * (-0.5 - beta * kl)) / 5
    loss = grpo_objective(logps, None, ref, adv, mask, 2, beta=beta)
    assert loss.item() == pytest.approx(-(g0 + g1) / 2, abs=1e-12)
    # sequence: every sequence mean is A - b kl; groups average to -b kl.
    loss = grpo_objective(logps, None, ref, adv, mask, 2, beta=beta, normalization="sequence")
    assert loss.item() == pytest.approx(beta * kl, abs=1e-12)
    # KL is zero when the policy equals the reference, and positive otherwise.
    assert per_token_terms(logps, None, logps.clone(), adv, beta=beta).kl.abs().max().item() == 0.0
    assert (per_token_terms(logps, None, -ref, adv, beta=beta).kl > 0).all()


def test_kl_gradient_is_plain_k3_not_ratio_weighted():
    # d/d logp [ -(-beta * KL) ] with KL = exp(ref - logp) - (ref - logp) - 1: beta * (1 - exp(ref - logp)).
    beta, ref_val = 0.5, math.log(3.0)
    logp = torch.zeros(1, 1, dtype=torch.float64, requires_grad=True)
    ref = torch.full((1, 1), ref_val, dtype=torch.float64)
    loss = grpo_objective(logp, None, ref, torch.zeros(1, dtype=torch.float64), torch.ones(1, 1), 1, beta=beta)
    loss.backward()
    assert logp.grad.item() == pytest.approx(beta * (1.0 - 3.0), abs=1e-12)


def test_beta_zero_accepts_ref_none_and_nonzero_beta_requires_it():
    logps, old, adv, mask = _tensors()
    grpo_objective(logps, old, None, adv, mask, 2, beta=0.0)
    with pytest.raises(ValueError, match="ref_logps"):
        grpo_objective(logps, old, None, adv, mask, 2, beta=0.04)


def test_old_none_is_on_policy():
    logps, _, adv, mask = _tensors()
    a = grpo_objective(logps, None, None, adv, mask, 2, beta=0.0)
    b = grpo_objective(logps, logps.clone(), None, adv, mask, 2, beta=0.0)
    assert a.item() == pytest.approx(b.item(), abs=1e-12)
    # ratio 1 everywhere: J = per-group token-weighted advantage mean
    g0 = (3 * 1.0 + 1 * -1.0) / 4
    g1 = (2 * 0.5 + 3 * -0.5) / 5
    assert a.item() == pytest.approx(-(g0 + g1) / 2, abs=1e-12)


def test_gradients_flow_to_active_tokens_only():
    logps, old, adv, mask = _tensors()
    logps = logps.clone().requires_grad_(True)
    ref = torch.full_like(logps, -0.3)
    loss = grpo_objective(logps, old, ref, adv, mask, 2, beta=0.04)
    loss.backward()
    g = logps.grad
    assert torch.isfinite(g).all()
    assert (g[mask == 0] == 0).all()
    # seq 2, token 0 (ratio 0.9, A = 0.5, not clipped, group 1 with 5 tokens, 2 groups):
    # d(-J)/dlogp = -(r A - beta * (1 - exp(ref - logp))) / 5 / 2 ... with KL gradient dKL/dlogp = 1 - exp(ref-logp)
    r, a, lp = 0.9, 0.5, math.log(0.9)
    dkl = 1.0 - math.exp(-0.3 - lp)
    expected = -(r * a - 0.04 * dkl) / 5 / 2
    assert g[2, 0].item() == pytest.approx(expected, abs=1e-12)
    # the high-clipped token (seq 0, ratio 1.5, A > 0) only gets the KL gradient
    lp0 = math.log(1.5)
    assert g[0, 2].item() == pytest.approx(0.04 * (1.0 - math.exp(-0.3 - lp0)) / 4 / 2, abs=1e-12)


def test_token_weights_and_aggregate_agree_with_objective():
    logps, old, adv, mask = _tensors()
    terms = per_token_terms(logps, old, None, adv, beta=0.0).objective
    for norm in ("group", "sequence"):
        w = token_weights(mask, 2, norm, dtype=terms.dtype)
        j = aggregate(terms, mask, 2, norm)
        assert (w * terms).sum().item() == pytest.approx(j.item(), abs=1e-12)
        assert -j.item() == pytest.approx(grpo_objective(logps, old, None, adv, mask, 2, beta=0.0,
                                                         normalization=norm).item(), abs=1e-12)


def test_empty_sequence_and_empty_group_contribute_zero():
    logps = torch.zeros(4, 2)
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0])
    mask = torch.tensor([[1, 1], [0, 0], [0, 0], [0, 0]])
    # group 0 has 2 tokens (A=1, ratio 1): J0 = 1; group 1 is empty: J1 = 0. Mean = 0.5.
    assert grpo_objective(logps, None, None, adv, mask, 2, beta=0.0).item() == pytest.approx(-0.5)
    # sequence: seq means 1, 0 | 0, 0 -> groups 0.5, 0 -> 0.25
    assert grpo_objective(logps, None, None, adv, mask, 2, beta=0.0, normalization="sequence").item() == pytest.approx(
        -0.25
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(group_size=3), "does not divide"),
        (dict(group_size=0), "positive int"),
        (dict(normalization="token"), "normalization"),
        (dict(mask=torch.ones(4, 2)), "shape"),
        (dict(advantages=torch.ones(3)), "advantages"),
        (dict(old_logps=torch.zeros(4, 2)), "old_logps"),
        (dict(logps=torch.zeros(4)), "2-D"),
    ],
)
def test_validation_errors(kwargs, match):
    logps, old, adv, mask = _tensors()
    call = dict(logps=logps, old_logps=old, ref_logps=None, advantages=adv, mask=mask, group_size=2, beta=0.0)
    call.update(kwargs)
    with pytest.raises(ValueError, match=match):
        grpo_objective(**call)
