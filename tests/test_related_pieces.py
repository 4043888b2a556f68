"""Seg-R1 and StAR helpers: S-measure (against PySODMetrics), 0.7 IoU + 0.3 S, StAR's tiers and Hungarian matching,
non-repeat, REST selection, mask-level majority voting."""

import numpy as np
import pytest
from py_sod_metrics import Smeasure

from samr1lib.evaluate.vote import majority_vote
from samr1lib.metrics import s_measure
from samr1lib.rewards import non_repeat_reward, segr1_reward_value, star_match_reward
from samr1lib.rewards.star import star_mask_tier
from samr1lib.train.trainer import rest_select
from samr1lib.parse import ObjectAnswer


def _ref_sm(pred_u8, gt_u8):
    m = Smeasure()
    m.step(pred=pred_u8, gt=gt_u8)
    return float(m.sms[-1])


def _random_case(rng, soft):
    h, w = rng.integers(8, 40, size=2)
    gt = np.zeros((h, w), dtype=bool)
    kind = rng.integers(0, 4)
    if kind == 0:
        gt = rng.random((h, w)) < rng.uniform(0.05, 0.9)
    elif kind == 1:  # a rectangle
        y0, x0 = rng.integers(0, h - 1), rng.integers(0, w - 1)
        gt[y0 : rng.integers(y0 + 1, h + 1), x0 : rng.integers(x0 + 1, w + 1)] = True
    elif kind == 2:
        gt[:] = False  # all background
    else:
        gt[:] = True  # all foreground
    if soft:
        pred = rng.integers(0, 256, size=(h, w)).astype(np.uint8)
        pred.flat[0], pred.flat[1] = 0, 255  # so PySODMetrics' min-max rescaling is the identity
    else:
        pred = np.where(rng.random((h, w)) < rng.uniform(0.1, 0.9), 255, 0).astype(np.uint8)
        pred.flat[0], pred.flat[1] = 0, 255
    return pred, (gt * 255).astype(np.uint8)


@pytest.mark.parametrize("seed", range(20))
def test_s_measure_matches_pysodmetrics(seed):
    rng = np.random.default_rng(seed)
    pred_u8, gt_u8 = _random_case(rng, soft=seed % 2 == 1)
    ours = s_measure(pred_u8 / 255.0, gt_u8 > 128)
    assert ours == pytest.approx(_ref_sm(pred_u8, gt_u8), abs=1e-6)


def test_s_measure_bool_pred_matches():
    rng = np.random.default_rng(99)
    gt = np.zeros((30, 30), dtype=bool)
    gt[5:20, 8:25] = True
    pred = rng.random((30, 30)) < 0.5
    ref = _ref_sm((pred * 255).astype(np.uint8), (gt * 255).astype(np.uint8))
    assert s_measure(pred, gt) == pytest.approx(ref, abs=1e-6)


def test_s_measure_empty_prediction_scores_low():
    gt = np.zeros((50, 50), dtype=bool)
    gt[15:35, 15:35] = True
    empty = np.zeros_like(gt)
    assert s_measure(empty, gt) < 0.5
    assert segr1_reward_value(empty, gt) < 0.2
    assert segr1_reward_value(None, gt) == pytest.approx(segr1_reward_value(empty, gt))


def test_s_measure_identical_is_one():
    gt = np.zeros((40, 40), dtype=bool)
    gt[10:30, 5:20] = True
    assert s_measure(gt, gt) == pytest.approx(1.0, abs=1e-9)
    assert segr1_reward_value(gt, gt) == pytest.approx(1.0, abs=1e-9)
    assert s_measure(np.zeros_like(gt), np.zeros_like(gt)) == 1.0
    assert s_measure(np.ones_like(gt), np.ones_like(gt)) == 1.0


def test_star_tiers_boundaries():
    assert star_mask_tier(0.3) == 0
    assert star_mask_tier(0.3001) == 1
    assert star_mask_tier(0.5) == 1
    assert star_mask_tier(0.51) == 2
    assert star_mask_tier(0.7) == 2
    assert star_mask_tier(0.71) == 3
    assert star_mask_tier(0.8) == 3
    assert star_mask_tier(0.81) == 4
    assert star_mask_tier(0.9) == 4
    assert star_mask_tier(0.91) == 5
    assert star_mask_tier(1.0) == 5
    assert star_mask_tier(0.0) == 0


def _two_objects():
    h = w = 100
    m1 = np.zeros((h, w), dtype=bool)
    m1[10:40, 10:40] = True
    m2 = np.zeros((h, w), dtype=bool)
    m2[60:90, 50:95] = True
    b1, b2 = (10, 10, 40, 40), (50, 60, 95, 90)
    o1 = ObjectAnswer(box=(11, 10, 40, 41), point=(25, 25), label="a")
    o2 = ObjectAnswer(box=(50, 60, 94, 90), point=(70, 75), label="b")
    return (o1, o2), (m1, m2), (b1, b2)


def test_star_match_order_invariant():
    (o1, o2), (m1, m2), (b1, b2) = _two_objects()
    in_order = star_match_reward([o1, o2], [m1, m2], [b1, b2], [m1, m2])
    swapped = star_match_reward([o2, o1], [m2, m1], [b1, b2], [m1, m2])
    assert in_order == pytest.approx(8.0)
    assert swapped == pytest.approx(in_order)


def test_star_match_empty_cases():
    (o1, _), (m1, _), (b1, _) = _two_objects()
    assert star_match_reward([], [], [], []) == 8.0
    assert star_match_reward([o1], [m1], [], []) == 0.0
    assert star_match_reward([], [], [b1], [m1]) == 0.0


def test_star_match_divides_by_max():
    (o1, o2), (m1, m2), (b1, b2) = _two_objects()
    # Two predictions, one GT: the matched pair scores 8, divided by 2.
    assert star_match_reward([o1, o2], [m1, m2], [b1], [m1]) == pytest.approx(4.0)
    # One prediction, two GT objects: also divided by 2.
    assert star_match_reward([o2], [m2], [b1, b2], [m1, m2]) == pytest.approx(4.0)


def test_star_pair_terms():
    (o1, _), (m1, _), (b1, _) = _two_objects()
    far = ObjectAnswer(box=(60, 60, 90, 90), point=(75, 75), label="x")
    assert star_match_reward([far], [None], [b1], [m1]) == 0.0
    no_box = ObjectAnswer(box=None, point=(20, 20), label="x")
    assert star_match_reward([no_box], [m1], [b1], [m1]) == pytest.approx(5 + 1)


def test_non_repeat():
    assert non_repeat_reward("The cat sits. The dog runs! Is it? yes") == 1.0
    assert non_repeat_reward("The cat sits. The dog runs. The cat sits.") == 0.0
    assert non_repeat_reward("Look here\n  Look here  \n") == 0.0
    assert non_repeat_reward("...!!\n\n") == 1.0
    assert non_repeat_reward([{"role": "assistant", "content": "A. B. A."}]) == 0.0


def test_rest_select():
    rewards = [0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8]
    assert rest_select(rewards, 2) == [1, 2, 5, 6]
    assert rest_select(rewards, 1) == [1, 2]
    assert rest_select(rewards, 4) == list(range(7))
    assert rest_select([0.0, 0.0, 1.0, 1.0, 0.5], 1) == [0, 3]
    assert rest_select(rewards, 0) == []


def _sq(y, x, s=10, size=40):
    m = np.zeros((size, size), dtype=bool)
    m[y : y + s, x : x + s] = True
    return m


def test_majority_cluster_wins():
    a, a2, b = _sq(5, 5), _sq(5, 5), _sq(25, 25)
    a2[5, 5] = False  # nearly identical to a
    samples = [[a], [a2], [a], [b], [a]]
    out = majority_vote(samples)
    assert out is not None and np.array_equal(out, a)


def test_majority_no_object_wins_at_half():
    a = _sq(5, 5)
    assert majority_vote([[a], [], None, [a]]) is None  # 2 of 4 say no object
    assert majority_vote([[a], [], [a], [a]]) is not None


def test_majority_count_rule():
    a, b, c = _sq(2, 2), _sq(25, 25), _sq(2, 25)
    # Object counts 2, 2, 2, 1, 3 -> K = 2; clusters a (5 votes), b (4), c (1 -> ratio 0.2 kept).
    samples = [[a, b], [a, b], [a, b], [a], [a, b, c]]
    out = majority_vote(samples)
    assert np.array_equal(out, a | b)
    # c has 1 vote of 10 (under the 0.2 ratio) and K = 1: only a survives.
    out1 = majority_vote([[a, c]] + [[a]] * 9, min_vote_ratio=0.2)
    assert np.array_equal(out1, a)
