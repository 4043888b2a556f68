"""The toy base (a tiny Qwen2.5-VL taught to see): its per-token vision targets, the warm start's varied
reasonings and labelled points, the committed base's recipe check, and (slow) that the committed base sees."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from samr1lib.data.synthetic import _polygon
from samr1lib.experiments import base as toy_base_module
from samr1lib.experiments.warm_start import loose_answer, reasoning, with_points


def _obj(colour, shape, cx, cy, r):
    return dict(colour=colour, shape=shape, cx=cx, cy=cy, r=r, poly=_polygon(shape, cx, cy, r, 0.0))


def test_token_targets_name_position_cover_colour_shape_and_box():
    objs = [_obj("red", "square", 14, 14, 12), _obj("blue", "circle", 98, 70, 10)]
    t = toy_base_module.token_targets(objs)
    assert t["rowcol"][0].tolist() == [0.0, 0.0] and t["rowcol"][15].tolist() == [1.0, 1.0]
    assert t["cover"][0] > 0.5 and t["cover"][5] == 0  # the square fills token (0, 0); token (1, 1) is empty
    assert t["colour"][0] == 1 + toy_base_module.COLOUR_NAMES.index("red")
    assert t["shape"][0] == 1 + toy_base_module.SHAPE_NAMES.index("square")
    circle = 2 * 4 + 3  # the circle's centre (98, 70) lies in token row 2, column 3
    assert t["colour"][circle] == 1 + toy_base_module.COLOUR_NAMES.index("blue") and t["box_mask"][circle] == 1
    assert t["box"][circle].tolist() == pytest.approx([88 / 112, 60 / 112, 108 / 112, 80 / 112], abs=0.01)
    assert t["box_mask"][5] == 0 and t["colour"][5] == 0


def test_warm_start_reasonings_vary_in_length_and_points_appear_when_asked():
    rng = np.random.default_rng(0)
    texts = {reasoning("red square", "square", (10, 10, 40, 40), (112, 112), rng) for _ in range(60)}
    lengths = sorted(len(t.split()) for t in texts)
    assert len(texts) == 3 and lengths[0] <= 2 and lengths[-1] >= 30  # the query alone ... a long reasoning
    assert reasoning("red square", "square", (10, 10, 40, 40), (112, 112), rng, varied=False) == "red square"
    ans = loose_answer((30, 30, 60, 60), (112, 112), rng, "square")
    labels = {with_points(ans, (112, 112), rng).point_labels for _ in range(40)}
    assert labels == {(1,), (1, 0)}  # a positive point always, a negative one outside the box half of the time
    neg = next(a for a in (with_points(ans, (112, 112), rng) for _ in range(40)) if a.point_labels == (1, 0))
    x1, y1, x2, y2 = neg.box
    assert not (x1 <= neg.points[1][0] <= x2)


def test_the_committed_base_is_checked_against_todays_recipe(tmp_path):
    from samr1lib.experiments.toy import toy_base

    with pytest.raises(FileNotFoundError, match="python -m samr1lib.bench base"):
        toy_base(tmp_path)
    (tmp_path / "base.json").write_text(json.dumps({"recipe_key": "another"}))
    with pytest.raises(ValueError, match="rebuild it"):
        toy_base(tmp_path)
    assert toy_base().name == "toy_base"  # the committed one holds today's recipe


@pytest.mark.slow
def test_the_committed_base_sees_its_image():
    """Held-out scenes: its answers depend on the image (lower loss with the own image) and land near the target."""
    from samr1lib.experiments.toy import toy_base
    from samr1lib.policy import load_policy

    torch.manual_seed(0)
    model, processor = load_policy(toy_base())
    res = toy_base_module.probe(model, processor, n=64, full=True, seed=20_000)
    assert res["loss_other_image"] > res["loss_own_image"] + 0.03
    assert res["mean_box_iou"] > 0.25 and res["corr_x"] > 0.4 and res["corr_y"] > 0.4
