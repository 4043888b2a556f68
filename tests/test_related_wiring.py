"""Seg-R1 and StAR wired into the pipeline : rewards as TRL reward functions, REST in the trainer,
majority voting and salient-object metrics in evaluate, the FCoT cold start."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from samr1lib.train.trainer import SAMR1GRPOTrainer
from samr1lib.metrics import s_measure, sod_metrics
from samr1lib.rewards import NonRepeatReward, StarReward
from samr1lib.rewards import LabelReward, SegmentationReward
from samr1lib.parse import parse_completion
from samr1lib.data import toy_world
from samr1lib.experiments import warm_start as ws


class BoxSegmenter:
    """Segments exactly the prompt box (a stand-in whose output we know)."""

    def segment(self, image, prompts):
        h, w = image.shape[:2]
        out = []
        for p in prompts:
            m = np.zeros((h, w), bool)
            x1, y1, x2, y2 = (int(round(v)) for v in p.box)
            m[y1:y2, x1:x2] = True
            out.append(m)
        return out


def _sq(h, w, x1, y1, x2, y2):
    m = np.zeros((h, w), bool)
    m[y1:y2, x1:x2] = True
    return m


IMG = np.zeros((40, 40, 3), np.uint8)
A, B = (2, 2, 12, 12), (20, 20, 34, 30)
OBJ_A = {"bbox_2d": list(A), "point_2d": [7, 7], "label": "circle"}
OBJ_B = {"bbox_2d": list(B), "point_2d": [27, 25], "label": "square"}


def _answer(objs, think="ok"):
    return f"<think>{think}</think><answer>{json.dumps(objs)}</answer>"


def test_segr1_score_is_weighted_iou_plus_s_measure():
    gt = _sq(40, 40, *A)
    half = {"bbox_2d": [2, 2, 12, 7], "point_2d": [5, 4], "label": "x"}
    seg = SegmentationReward(BoxSegmenter(), score="segr1")
    r = seg([_answer(half), _answer(OBJ_A), "garbage"], image=[IMG] * 3, mask=[gt] * 3)
    pred = _sq(40, 40, 2, 2, 12, 7)
    assert r[0] == pytest.approx(0.7 * 0.5 + 0.3 * s_measure(pred, gt))
    assert r[1] == pytest.approx(1.0) and r[2] == 0.0
    w = SegmentationReward(BoxSegmenter(), score="segr1", segr1_weights=(1.0, 0.0))
    assert w([_answer(half)], image=[IMG], mask=[gt])[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="score"):
        SegmentationReward(BoxSegmenter(), score="nope")


def test_star_reward_two_objects_in_swapped_order_and_empty_cases():
    gts = [_sq(40, 40, *A), _sq(40, 40, *B)]
    star = StarReward(BoxSegmenter())
    kw = dict(image=[IMG] * 4, mask=[gts[0] | gts[1]] * 3 + [np.zeros((40, 40), bool)],
              gt_masks=[gts, gts, gts, []])
    r = star([_answer([OBJ_B, OBJ_A]), _answer([OBJ_A, OBJ_B]), _answer([OBJ_A]), _answer([])], **kw)
    assert r[0] == pytest.approx(8.0) and r[1] == pytest.approx(8.0)  # top tier 5 + 3 terms, order irrelevant
    assert r[2] == pytest.approx(8.0 / 2)  # one of two GT objects found: divided by max(1, 2)
    assert r[3] == pytest.approx(8.0)  # "no target" answered on a no-target sample
    # without a gt_masks column: the single mask column is the one GT object
    one = star([_answer([OBJ_A]), _answer([])], image=[IMG] * 2, mask=[gts[0]] * 2)
    assert one == [pytest.approx(8.0), 0.0]


def test_label_and_non_repeat_rewards():
    lr = LabelReward(frame=(40, 40))
    out = lr([_answer(OBJ_A), _answer(dict(OBJ_A, label="star")), _answer(dict(OBJ_A, label="red")), "bad"],
             category=["circle", "circle", "circle", "circle"], query=["the circle", "the circle", "red one", "x"])
    assert out == [1.0, 0.0, 1.0, 0.0]
    assert NonRepeatReward()(["A. B.", "A. A."]) == [1.0, 0.0]


def test_rest_masks_all_but_k_highest_and_lowest_per_group():
    adv = torch.tensor([0.1, -1.0, 2.0, 0.3, 0.0, 1.0, -0.5, 0.2])  # two groups of 4
    out = {"advantages": adv.clone(), "completion_mask": torch.ones(8, 3, dtype=torch.int64)}
    fake = SimpleNamespace(rest_k=1)
    SAMR1GRPOTrainer._apply_rest(fake, out, 4)
    kept = out["completion_mask"][:, 0].bool().tolist()
    assert kept == [False, True, True, False, False, True, True, False]
    assert out["advantages"].tolist() == pytest.approx([0, -1.0, 2.0, 0, 0, 1.0, -0.5, 0])
    with pytest.raises(ValueError, match="whole groups"):
        SAMR1GRPOTrainer._apply_rest(fake, {"advantages": torch.zeros(6), "completion_mask": torch.ones(6, 2)}, 4)


def test_sod_metrics_perfect_and_empty():
    gt = _sq(30, 30, 5, 5, 20, 20)
    perfect = sod_metrics([gt, gt], [gt, gt])
    assert perfect["S_alpha"] == pytest.approx(1.0) and perfect["MAE"] == 0.0 and perfect["F_beta_max"] > 0.99
    empty = sod_metrics([np.zeros_like(gt)], [gt])
    assert empty["S_alpha"] < 0.5 and empty["MAE"] == pytest.approx(gt.mean())
    with pytest.raises(ValueError, match="shape"):
        sod_metrics([np.zeros((5, 5), bool)], [gt])


class CyclingPolicy:
    """Answers in turn from a fixed list of completions (a sampled policy whose samples we choose)."""

    def __init__(self, answers):
        self.answers, self.i = answers, 0

    def generate(self, images, queries):
        out = []
        for _ in images:
            out.append(self.answers[self.i % len(self.answers)])
            self.i += 1
        return out


def test_evaluate_majority_vote_and_sod(tmp_path):
    from PIL import Image

    from samr1lib.evaluate import evaluate
    from samr1lib.masks import encode_rle

    Image.fromarray(IMG).save(tmp_path / "im.png")
    gt = _sq(40, 40, *A)
    rec = {"image_path": str(tmp_path / "im.png"), "query": "the circle", "mask": encode_rle(gt), "height": 40,
           "width": 40, "box": list(A)}
    good, wrong = _answer(OBJ_A), _answer(OBJ_B)
    # 3 of 5 samples agree on A: the cluster of A wins although the first (greedy-like) sample was wrong
    policy = CyclingPolicy([wrong, good, good, "no answer", good])
    s = evaluate([rec], policy, BoxSegmenter(), str(tmp_path / "vote"), "toy", "x", size=40, show_progress=False,
                 vote=5, sod=True)
    assert s["gIoU"] == pytest.approx(100.0) and s["vote"]["samples"] == 5 and s["sod"]["S_alpha"] > 0.99
    # half the samples say "no object": empty output
    policy = CyclingPolicy([good, _answer([]), _answer([]), good])
    s = evaluate([rec], policy, BoxSegmenter(), str(tmp_path / "none"), "toy", "x", size=40, show_progress=False,
                 vote=4)
    assert s["gIoU"] == 0.0


def test_fcot_targets_have_labelled_points(tmp_path):
    toy_world.write_toy_world(tmp_path, n_train_images=4, n_heldout=4)
    recs = toy_world.train_records(tmp_path)[:3]
    for r in recs:
        text = ws.fcot_completion(r, r["box"], (r["width"], r["height"]), r["mask"])
        res = parse_completion(text, (112, 112))
        assert res.ok, res.detail
        o = res.answer.first
        assert o.point_labels == (1, 0)
        fg, bg = o.points
        x1, y1, x2, y2 = o.box
        assert x1 <= fg[0] <= x2 and y1 <= fg[1] <= y2
        assert not (x1 <= bg[0] <= x2 and y1 <= bg[1] <= y2)


@pytest.mark.slow
def test_fcot_cold_start_runs_sft_steps_on_cpu(tmp_path):
    from samr1lib.policy import build_tiny_policy

    toy_world.write_toy_world(tmp_path / "w", n_train_images=4, n_heldout=4)
    ds = ws.build_fcot_dataset(toy_world.train_records(tmp_path / "w")[:8], tmp_path / "fcot")
    assert "points_2d" in ds[0]["completion"][0]["content"][0]["text"]
    pol = build_tiny_policy(tmp_path / "pol")
    out = ws.warm_start(pol, ds, tmp_path / "cold", epochs=1, batch_size=4)
    info = json.loads((out / "warm_start.json").read_text())
    assert info["steps"] == 2 and np.isfinite(info["train_loss"])
    assert (out / "config.json").exists() and (out / "tokenizer.json").exists()


def test_negative_point_positions_counts_inside_outside_and_border(tmp_path):
    from samr1lib.experiments.ablations import negative_point_positions

    ans = {"bbox_2d": [40, 40, 60, 60], "point_2d": [50, 50], "label": "x",
           "points_2d": [[50, 50], [45, 55], [70, 50], [2, 50], [50, 110]], "point_labels": [1, 0, 0, 0, 0]}
    rows = [{"answer": ans, "policy_frame": [112, 112]}, {"answer": None}, {"answer": {"bbox_2d": [0, 0, 1, 1]}}]
    path = tmp_path / "rollouts.rank0.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = negative_point_positions([str(path)])
    assert out["answers"] == 1 and out["positive_in_box"] == 1 and out["positive_out_box"] == 0
    assert out["negative_in_box"] == 1 and out["negative_out_box"] == 3
    assert out["negative_at_border"] == 2  # x = 2 and y = 110 lie within 5 % of a side of the 112 frame
