"""The toy world and its pipeline: world properties, the loose warm-start answers, the shuffled control, and a
few-step run of the whole toy pipeline end to end (wiring, logs, checkpoint, evaluation output). Learning itself
is measured by ``python -m samr1lib.bench learning``, not asserted here."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from samr1lib.data import toy_world
from samr1lib.experiments import probes, toy
from samr1lib.experiments import warm_start as ws
from samr1lib.parse import format_completion, parse_completion
from samr1lib.train.rollout_log import shuffle_rewards


def test_world_heldout_one_query_per_image_and_disjoint_from_training(tmp_path):
    info = toy_world.write_toy_world(tmp_path, n_train_images=12, n_heldout=10, seed=3)
    assert info["params"]["n_heldout"] == 10
    held = toy_world.heldout_records(tmp_path)
    train = toy_world.train_records(tmp_path)
    assert len(held) == 10 and len({r["image_id"] for r in held}) == 10
    assert len(train) >= 12  # at least one expression per image
    assert not {r["image_path"] for r in held} & {r["image_path"] for r in train}
    # the same call again reuses the world; other parameters are refused with both sets named
    assert toy_world.write_toy_world(tmp_path, n_train_images=12, n_heldout=10, seed=3) == info
    with pytest.raises(ValueError, match="other parameters"):
        toy_world.write_toy_world(tmp_path, n_train_images=13, n_heldout=10, seed=3)


def test_heldout_objects_lists_every_object_of_every_heldout_image(tmp_path):
    toy_world.write_toy_world(tmp_path, n_train_images=4, n_heldout=10, seed=3)
    objects = toy_world.heldout_objects(tmp_path)
    instances = json.loads((tmp_path / "heldout" / "refcoco" / "instances.json").read_text())
    assert len(objects) == len(instances["images"]) == 10
    assert sum(len(boxes) for boxes in objects.values()) == len(instances["annotations"])
    for r in toy_world.heldout_records(tmp_path):  # each query's object is among its image's
        assert r["box"] in objects[r["image_path"]]


def test_heldout_set_is_fixed_whatever_the_training_seed(tmp_path):
    toy_world.write_toy_world(tmp_path / "a", n_train_images=4, n_heldout=6, seed=0)
    toy_world.write_toy_world(tmp_path / "b", n_train_images=4, n_heldout=6, seed=1)
    qa = [r["query"] for r in toy_world.heldout_records(tmp_path / "a")]
    qb = [r["query"] for r in toy_world.heldout_records(tmp_path / "b")]
    assert qa == qb
    ta = [r["query"] for r in toy_world.train_records(tmp_path / "a")]
    tb = [r["query"] for r in toy_world.train_records(tmp_path / "b")]
    assert ta != tb


@settings(max_examples=200, deadline=None)
@given(x1=st.floats(0, 100), y1=st.floats(0, 100), w=st.floats(2, 60), h=st.floats(2, 60), seed=st.integers(0, 10**6))
def test_loose_answer_stays_in_frame_parses_and_is_looser(x1, y1, w, h, seed):
    frame = (112, 112)
    box = (x1, y1, min(x1 + w, 111), min(y1 + h, 111))
    ans = ws.loose_answer(box, frame, np.random.default_rng(seed), "circle")
    bx1, by1, bx2, by2 = ans.box
    assert 0 <= bx1 < bx2 <= 111 and 0 <= by1 < by2 <= 111
    assert bx1 <= ans.point[0] <= bx2 and by1 <= ans.point[1] <= by2
    res = parse_completion(format_completion(ans, think="the circle"), frame)
    assert res.ok, res.detail


def test_loose_answers_are_loose_on_average():
    rng = np.random.default_rng(0)
    box = (185.0, 185.0, 215.0, 215.0)  # in a frame large enough that no loose box is clipped
    areas = [(a.box[2] - a.box[0]) * (a.box[3] - a.box[1]) for a in
             (ws.loose_answer(box, (400, 400), rng, "x") for _ in range(500))]
    assert 12.0 < np.mean(areas) / 900.0 < 16.5  # sides x U(3.0, 4.5): area x E[s^2] = 14.25


def test_shuffled_control_permutes_rewards_deterministically():
    r = torch.arange(16 * 3, dtype=torch.float32).view(16, 3)
    s = shuffle_rewards(r, seed=0, step=5)
    assert sorted(map(tuple, s.tolist())) == sorted(map(tuple, r.tolist()))  # rows kept whole: a permutation
    assert not torch.equal(s, r)
    assert torch.equal(s, shuffle_rewards(r, seed=0, step=5))  # same on every process
    assert not torch.equal(s, shuffle_rewards(r, seed=0, step=6))


def test_tier_summary_counts_failed_parses_as_zero():
    rows = [{"iou": 0.9, "failure": None, "intersection": 9, "union": 10, "box_iou": 0.8},
            {"iou": 0.75, "failure": None, "intersection": 3, "union": 4, "box_iou": None},
            {"iou": 0.0, "failure": "no_answer_tag", "intersection": 0, "union": 5, "box_iou": None}]
    s = toy.tier_summary(rows)
    assert s["mean_tier"] == pytest.approx((4 + 3 + 0) / 3)
    assert s["parse_failure_rate"] == pytest.approx(1 / 3)
    assert s["cIoU"] == pytest.approx(12 / 19)
    with pytest.raises(ValueError):
        toy.tier_summary([])


@pytest.mark.slow
def test_toy_pipeline_few_steps_end_to_end_and_shuffled_control(tmp_path, monkeypatch):
    root = tmp_path / "toy"
    cmd = [sys.executable, "-m", "samr1lib.bench", "learning", "--scale", "smoke", "--out", str(root), "--seed", "0",
           "--steps", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    last = r.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"change in mean tier: [+-]\d+\.\d\d", last), last
    run = root / "seed0" / "grpo_max_steps-2"
    res = json.loads((run / "result.json").read_text())
    assert res["before"]["n"] == res["after"]["n"] == 8
    assert (root / "seed0" / "warm_start" / "warm_start.json").exists()
    assert (run / "checkpoint-2" / "trainer_state.json").exists() and (run / "final" / "config.json").exists()
    assert len((run / "eval" / "samples.jsonl").read_text().splitlines()) == 8
    rows = [json.loads(x) for x in (run / "rollouts.rank0.jsonl").read_text().splitlines()]
    assert all(row["trained_reward"] == pytest.approx(row["reward"]) for row in rows)  # no control: untouched
    assert all(row["image_path"] and row["gt_mask_rle"] for row in rows)
    assert f"held-out best / worst answers: {run / 'heldout_grid.png'}" in r.stdout
    assert (run / "heldout_grid.png").stat().st_size > 10_000
    assert "| held-out images with 2-3 objects: expression | rows | chance | warm start | after GRPO |" in r.stdout

    # a warm start is reused only for the recipe it was trained with
    monkeypatch.setitem(toy.RECIPES["smoke"], "warm_start", dict(toy.RECIPES["smoke"]["warm_start"], enlarge=(1.0, 1.1)))
    with pytest.raises(ValueError, match="another recipe"):
        toy.prepare(root, 0, scale="smoke", show_progress=False)
    monkeypatch.undo()

    r = subprocess.run(cmd + ["--control", "shuffled"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(x) for x in (root / "seed0" / "grpo_max_steps-2_shuffled" / "rollouts.rank0.jsonl").read_text().splitlines()]
    for step in {row["step"] for row in rows}:
        earned = sorted(round(row["reward"], 6) for row in rows if row["step"] == step)
        trained = sorted(round(row["trained_reward"], 6) for row in rows if row["step"] == step)
        assert earned == trained  # the same rewards, handed to other completions
    assert any(abs(row["trained_reward"] - row["reward"]) > 1e-6 for row in rows) or \
        len({round(row["reward"], 6) for row in rows}) == 1


def test_negative_point_variants_warm_start_on_their_own_prompt(tmp_path):
    """The labelled-points variants start from a warm start trained on the labelled-points prompt (with answers
    that carry no labelled points); the other runs keep the plain warm start. (That HFPolicy scores on the
    labelled-points prompt when asked is test_evaluate's.)"""
    from samr1lib.prompt import NEGATIVE_POINTS_SUFFIX

    world = toy_world.write_toy_world(tmp_path / "w", n_train_images=4, n_heldout=4)
    assert world["counts"]["train"]
    recs = toy_world.train_records(tmp_path / "w")
    ds = ws.build_sft_dataset(recs, tmp_path / "sft", copies=1, negative_points=True)
    for row in ds:
        assert row["prompt"][-1]["content"][-1]["text"].endswith(NEGATIVE_POINTS_SUFFIX)
        assert parse_completion(row["completion"][0]["content"][0]["text"]).answer.objects[0].points == ()
    plain = ws.build_sft_dataset(recs, tmp_path / "sft_plain", copies=1)
    assert not plain[0]["prompt"][-1]["content"][-1]["text"].endswith(NEGATIVE_POINTS_SUFFIX)

    prep = toy.prepare(tmp_path / "root", seed=0, overrides=["negative_points=free"], show_progress=False,
                       scale="smoke")
    assert prep["warm_start"].endswith("warm_start_labelled_points")
    assert prep["before"]["n"] == 8


def _row(pred, gt):
    return {"pred_box": pred, "gt_box": gt}


def test_box_centre_correlation_on_crafted_boxes():
    gts = [[10, 20, 30, 40], [50, 5, 70, 25], [80, 60, 100, 90], [0, 90, 20, 110]]
    exact = probes.box_centre_correlation([_row(g, g) for g in gts])
    assert exact == pytest.approx({"n": 4, "corr_x": 1.0, "corr_y": 1.0})
    # mirrored in x (x -> 112 - x), same y: anti-correlated in x only
    mirrored = [[112 - g[2], g[1], 112 - g[0], g[3]] for g in gts]
    r = probes.box_centre_correlation([_row(m, g) for m, g in zip(mirrored, gts)])
    assert r["corr_x"] == pytest.approx(-1.0) and r["corr_y"] == pytest.approx(1.0)
    # one box for every image (image-blind) carries no position; a failed parse (no pred_box) is left out
    blind = probes.box_centre_correlation([_row([30, 30, 80, 80], g) for g in gts] + [_row(None, gts[0])])
    assert blind == {"n": 4, "corr_x": 0.0, "corr_y": 0.0}
    assert probes.box_centre_correlation([]) == {"n": 0, "corr_x": 0.0, "corr_y": 0.0}


@pytest.mark.slow
def test_image_dependence_is_zero_only_when_the_images_carry_nothing(tmp_path):
    from samr1lib.policy import build_tiny_policy

    toy_world.write_toy_world(tmp_path / "world", n_train_images=4, n_heldout=4, seed=0)
    ds = ws.build_sft_dataset(toy_world.heldout_records(tmp_path / "world"), tmp_path / "data", copies=1, shift=0.0,
                               enlarge=(1.0, 1.0))
    policy = build_tiny_policy(tmp_path / "policy", seed=0, hidden_size=32)
    dep = probes.image_dependence(policy, ds)
    # a random policy reads its image: another image changes the loss; the gap is other - own
    assert dep["rows"] == 4 and dep["loss_own_image"] > 0 and dep["loss_gap"] != 0
    assert dep["loss_gap"] == pytest.approx(dep["loss_other_image"] - dep["loss_own_image"])
    same = ds.map(lambda row: {"image": ds[0]["image"]})  # every row shows one image: swapping changes nothing
    assert probes.image_dependence(policy, same)["loss_gap"] == 0.0
    with pytest.raises(ValueError, match="at least 2 rows"):
        probes.image_dependence(policy, ds, n=1)


@pytest.mark.slow
def test_localisation_probe_cli_few_steps_and_clear_errors(tmp_path):
    out = tmp_path / "probe"
    cmd = [sys.executable, "-m", "samr1lib.bench", "localisation", "--steps", "2", "--train-images", "6",
           "--heldout", "4", "--out", str(out)]
    r = subprocess.run(cmd + ["hidden_size=32"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    last = r.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"box-centre correlation with the GT: x [+-]\d\.\d\d, y [+-]\d\.\d\d \(0: image-blind\)", last)
    res = json.loads((out / "probe.json").read_text())
    assert res["sft_steps"] == 2 and res["n"] == 4 and res["policy"]["hidden_size"] == 32
    assert res["max_objects"] == 1 and -1 <= res["corr_x"] <= 1 and np.isfinite(res["corr_y"])
    assert np.isfinite(res["loss_own_image"]) and np.isfinite(res["loss_other_image"])
    assert "with another image" in r.stdout
    assert json.loads((out / "world" / "toy_world.json").read_text())["params"]["max_objects"] == 1
    # the same folder asked with other settings: refused, naming what differs
    r = subprocess.run(cmd + ["hidden_size=64"], capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "other settings" in r.stderr
    for bad, said in (("hidden=32", "unknown tiny-policy argument(s) ['hidden']"),
                      ("hidden_size=big", "key=positive integer")):
        r = subprocess.run(cmd[:-1] + [str(tmp_path / "other"), bad], capture_output=True, text=True, timeout=600)
        assert r.returncode != 0 and said in r.stderr, r.stderr[-500:]


@pytest.mark.slow
def test_ablation_batch_trains_side_by_side_and_the_notebook_path_reads_it_back(tmp_path, monkeypatch):
    """``bench ablations``: every (variant, seed) of an ablation trained in parallel processes; run_ablation then
    trains nothing (train is made to raise) and tabulates what the batch left."""
    from samr1lib.experiments import ablations

    root = tmp_path / "toy"
    cmd = [sys.executable, "-m", "samr1lib.bench", "ablations", "clip_higher", "--scale", "smoke", "--seeds", "0",
           "--out", str(root), "--workers", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "2 runs of clip_higher (seeds [0]) ready" in r.stdout
    names = {p.parent.name for p in root.glob("seed0/*/result.json")}
    assert names == {"grpo", "grpo_epsilon_high-0.2"}
    assert all(json.loads(p.read_text())["torch_threads"] == 1 for p in root.glob("seed0/*/result.json"))

    def no_training(cfg):
        raise AssertionError("the batch's runs should have been read back")

    monkeypatch.setattr(toy, "train", no_training)
    res = ablations.run_ablation("clip_higher", scale="smoke", seeds=(0,), root=str(root), figures_dir=None)
    assert len(res.table) == 2
    with pytest.raises(ValueError, match="unknown ablation"):
        ablations.run_batch(["nope"], [0], scale="smoke", root=str(root))


def test_looseness_probe_sees_grabcut_forgive_loose_boxes_up_to_a_point(tmp_path):
    """A tight box gives a near-perfect GrabCut mask; a box 4.5x the object's sides takes in background and scores
    lower; the box IoU of an unshifted tight box is 1."""
    from samr1lib.experiments.probes import looseness_probe

    toy_world.write_toy_world(tmp_path / "w", n_train_images=4, n_heldout=8, seed=0)
    rows = looseness_probe(toy_world.heldout_records(tmp_path / "w"), enlarges=(1.0, 4.5), shifts=(0.0,))
    tight, loose = rows
    assert tight["box_iou"] == pytest.approx(1.0) and tight["mask_iou"] > 0.8
    assert loose["mean_tier"] < tight["mean_tier"] and loose["mask_iou"] < tight["mask_iou"] - 0.1
    with pytest.raises(ValueError, match="at least one record"):
        looseness_probe([])


def test_box_looseness_on_crafted_boxes():
    gt = [10, 10, 20, 20]
    rows = [dict(pred_box=[5, 5, 25, 25], gt_box=gt),  # twice the sides, centred: holds the centre
            dict(pred_box=[0, 0, 30, 30], gt_box=gt),  # three times
            dict(pred_box=[40, 40, 50, 50], gt_box=gt),  # same size, elsewhere
            dict(pred_box=None, gt_box=gt)]  # a failed parse
    res = toy.box_looseness(rows)
    assert res["median_side_ratio"] == pytest.approx(2.0) and res["holds_centre"] == pytest.approx(0.5)


def test_object_picks_on_crafted_scenes():
    left, right, bottom = [0, 40, 20, 60], [80, 40, 100, 60], [40, 90, 60, 110]
    objects = {"two.jpg": [left, right], "three.jpg": [left, right, bottom], "one.jpg": [left]}
    rows = [dict(image_path="two.jpg", query="red square", gt_box=left, pred_box=[0, 30, 40, 70]),  # loose, on left
            dict(image_path="two.jpg", query="left square", gt_box=left, pred_box=right),  # the other object
            dict(image_path="three.jpg", query="the circle", gt_box=bottom, pred_box=None),  # no box points nowhere
            dict(image_path="three.jpg", query="blue one", gt_box=right, pred_box=[60, 20, 110, 80]),
            dict(image_path="one.jpg", query="red square", gt_box=left, pred_box=right)]  # one object: left out
    res = probes.object_picks(rows, objects)
    assert res["all"] == pytest.approx({"n": 4, "on_target": 0.5, "chance": (1 / 2 + 1 / 2 + 1 / 3 + 1 / 3) / 4})
    assert res["colour and shape"]["on_target"] == 1.0 and res["location"]["on_target"] == 0.0
    assert res["shape only"] == pytest.approx({"n": 1, "on_target": 0.0, "chance": 1 / 3})
    assert res["colour only"]["on_target"] == 1.0
    assert probes.object_picks([], objects) == {}
