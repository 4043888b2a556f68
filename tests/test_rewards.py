"""Rewards: Eq. 5 at its tier boundaries, the format rewards, the segmentation reward end to end
with GrabCut, and the negative-points ablation rewards."""

import json
import math
import pickle

import numpy as np
import pytest
from PIL import Image

from samr1lib.masks import encode_rle
from samr1lib.parse import completion_text
from samr1lib.rewards import (
    EQ5_TIERS, InBoxPointReward, PointValueReward, ReasoningFormatReward, SegmentationFormatReward,
    SegmentationReward, failure_counts, fixed_threshold_tiers, reasoning_format_reward, segment_completions,
    segmentation_format_reward, tiered_iou_reward,
)
from samr1lib.rewards.segmentation import segmentation_metrics
from samr1lib.segmenters import build_segmenter


@pytest.mark.parametrize(
    "iou, expected",
    [(0.0, 0), (0.5, 0), (0.5000001, 2), (0.6, 2), (0.7, 2), (0.7000001, 3), (0.8, 3), (0.8000001, 4), (1.0, 4)],
)
def test_eq5_tier_boundaries(iou, expected):
    assert tiered_iou_reward(iou) == expected


@pytest.mark.parametrize("t", [0.5, 0.7, 0.8])
def test_fixed_threshold_tiers(t):
    tiers = fixed_threshold_tiers(t)
    assert tiered_iou_reward(t, tiers) == 0.0
    assert tiered_iou_reward(t + 1e-6, tiers) == 4.0
    assert tiered_iou_reward(1.0, tiers) == 4.0


def test_tiered_reward_rejects_impossible_iou():
    for bad in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match="IoU"):
            tiered_iou_reward(bad)
    assert EQ5_TIERS[0] == (0.8, 4.0)


ANSWER = {"bbox_2d": [10, 10, 50, 50], "point_2d": [30, 30], "label": "square"}


def good(payload=ANSWER, think="it is the square"):
    return f"<think>{think}</think><answer>{json.dumps(payload)}</answer>"


@pytest.mark.parametrize(
    "text, expected",
    [
        (good(), 1.0),
        ("  " + good() + "\n", 1.0),
        ("<think>a</think>\n<answer>anything</answer>", 1.0),  # structure only: the JSON is the other reward's job
        ("<answer>{}</answer>", 0.0),
        ("<think>a</think>", 0.0),
        ("<answer>{}</answer><think>a</think>", 0.0),
        ("prefix " + good(), 0.0),
        (good() + " suffix", 0.0),
        (good() + good(), 0.0),
        ("<think>a<think>b</think><answer>{}</answer>", 0.0),
        ("", 0.0),
    ],
)
def test_reasoning_format_reward(text, expected):
    assert reasoning_format_reward([text]) == [expected]


@pytest.mark.parametrize(
    "text, expected",
    [
        (good(), 1.0),
        (good([ANSWER, ANSWER]), 1.0),
        (good([]), 0.0),  # SAM-R1 needs a box, a point and a label: an empty list carries none
        (good({"bbox_2d": [10, 10, 50, 50], "label": "square"}), 0.0),
        (good({**ANSWER, "bbox_2d": [50, 10, 10, 50]}), 0.0),
        ("<think>x</think><answer>not json</answer>", 0.0),
        ("no tags", 0.0),
    ],
)
def test_segmentation_format_reward(text, expected):
    assert segmentation_format_reward([text]) == [expected]


def test_format_rewards_are_configurable_picklable_and_accept_conversations():
    r = ReasoningFormatReward(good=2.0, bad=-1.0)
    assert r([good(), "junk"]) == [2.0, -1.0]
    assert r.__name__ == "reasoning_format_reward"
    r2 = pickle.loads(pickle.dumps(SegmentationFormatReward(good=0.5)))
    conv = [[{"role": "assistant", "content": good()}], [{"role": "assistant", "content": [{"type": "text", "text": good()}]}]]
    assert r2(conv) == [0.5, 0.5]
    assert completion_text(conv[1]) == good()
    with pytest.raises(TypeError):
        completion_text(42)


def make_scene(h=96, w=128):
    img = np.full((h, w, 3), 235, np.uint8)
    img[20:60, 30:80] = (200, 30, 30)
    gt = np.zeros((h, w), bool)
    gt[20:60, 30:80] = True
    return img, gt


def test_segmentation_reward_with_grabcut_scores_each_completion():
    img, gt = make_scene()
    seg = build_segmenter("grabcut")
    reward = SegmentationReward(seg)
    completions = [
        good({"bbox_2d": [29, 19, 81, 61], "point_2d": [55, 40], "label": "red box"}),  # tight box
        good({"bbox_2d": [30, 20, 55, 60], "point_2d": [40, 40], "label": "red box"}),  # cuts half of it
        "<think>hmm</think><answer>oops</answer>",  # parse failure
        good({"bbox_2d": [90, 70, 120, 90], "point_2d": [100, 80], "label": "nothing"}),  # background
    ]
    columns = dict(image=[Image.fromarray(img)] * 4, mask=[encode_rle(gt)] * 4)
    out = reward(completions, **columns)
    assert out[0] == 4.0 and out[2] == 0.0 and out[3] == 0.0
    assert out[1] in (0.0, 2.0)  # about half the object: IoU near 0.5
    assert seg.encode_count == 1  # four completions, one distinct image
    outcomes = segment_completions(seg, completions, **columns)  # what the trainer hands every reward, once
    assert reward(completions, segmentation=outcomes, **columns) == out and seg.encode_count == 2
    ious = reward.ious(outcomes, **columns)
    assert ious[0] > 0.9 and ious[2] is None and ious[3] < 0.1
    logged = segmentation_metrics(outcomes, ious)
    assert logged["seg/parse_failure_rate"] == pytest.approx(0.25)
    assert logged["parse/bad_json"] == pytest.approx(0.25)
    assert logged["seg/mean_iou"] == pytest.approx(np.mean([i for i in ious if i is not None]))


def test_segmentation_reward_maps_policy_frame_and_resizes_to_gt():
    img, gt = make_scene(96, 128)
    big_gt = np.kron(gt, np.ones((2, 2), bool))  # GT kept at twice the policy image's size
    reward = SegmentationReward(build_segmenter("grabcut"), policy_frame=(256, 192))
    # the policy answers in a 256x192 frame: the box is scaled by 0.5 onto the 128x96 image
    text = good({"bbox_2d": [58, 38, 162, 122], "point_2d": [110, 80], "label": "red box"})
    assert reward([text], image=[img], mask=[big_gt]) == [4.0]
    (outcome,) = reward.segment([text], image=[img], mask=[big_gt])
    assert outcome.prediction.shape == big_gt.shape and outcome.size == (256, 192)


def test_segmentation_reward_ignore_column_and_fixed_threshold():
    img, gt = make_scene()
    ignore = np.zeros_like(gt)
    reward = SegmentationReward(build_segmenter("grabcut"), tiers=fixed_threshold_tiers(0.5), ignore_column="ignore")
    text = good({"bbox_2d": [29, 19, 81, 61], "point_2d": [55, 40], "label": "red box"})
    assert reward([text], image=[img], mask=[gt], ignore=[ignore]) == [4.0]


def test_segmentation_reward_bad_columns_raise():
    img, gt = make_scene()
    reward = SegmentationReward(build_segmenter("grabcut"))
    with pytest.raises(KeyError, match="'mask'"):
        reward([good()], image=[img])
    with pytest.raises(ValueError, match="uint8"):
        reward([good()], image=[img.astype(np.float32)], mask=[gt])
    with pytest.raises(ValueError, match="HxWx3"):
        reward([good()], image=[img[:, :, 0]], mask=[gt])
    with pytest.raises(ValueError, match="3 values for 1"):
        reward([good()], image=[img] * 3, mask=[gt])
    with pytest.raises(ValueError, match="row 0: column 'mask' is 128x96 but .* is 64x48"):
        reward([good()], image=[img], mask=[gt], height=[48], width=[64])
    with pytest.raises(ValueError, match="corrupt RLE"):
        reward([good()], image=[img], mask=[{"size": [96, 128], "counts": "%%%"}])


def test_negative_point_rewards():
    both_inside = {**ANSWER, "points_2d": [[20, 20], [40, 40]], "point_labels": [1, 0]}
    neg_outside = {**ANSWER, "points_2d": [[20, 20], [200, 200]], "point_labels": [1, 0]}
    only_pos = {**ANSWER, "points_2d": [[20, 20]], "point_labels": [1]}
    texts = [good(both_inside), good(neg_outside), good(only_pos), good(), "junk"]
    assert PointValueReward()(texts) == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert InBoxPointReward()(texts) == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_failure_counts():
    counts = failure_counts([good(), "junk", "<answer>{}</answer>"])
    assert counts["ok"] == 1 and counts["no_answer_tag"] == 1 and counts["missing_key"] == 1
