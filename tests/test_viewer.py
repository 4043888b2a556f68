"""The rollout viewer's pure functions and its widget in a live kernel (no browser here: see test_browser.py)."""

import numpy as np
import pytest
from PIL import Image
import io

from samr1lib.view import rollouts as viewer


def test_load_filter_sort(rollout_file):
    df = viewer.load_rollouts(rollout_file)
    assert len(df) == 5 and list(df["row_id"]) == [0, 1, 2, 3, 4]
    assert viewer.failure_choices(df) == ["any", "ok", "failed", "bad_json", "no_answer_tag"]
    assert list(viewer.filter_rollouts(df, failure="ok")["row_id"]) == [0, 1, 3]
    assert list(viewer.filter_rollouts(df, failure="failed")["row_id"]) == [2, 4]
    assert list(viewer.filter_rollouts(df, failure="bad_json")["row_id"]) == [2]
    assert list(viewer.filter_rollouts(df, steps=(1, 2))["row_id"]) == [2, 3, 4]
    assert list(viewer.filter_rollouts(df, min_reward=1.0, max_reward=4.0)["row_id"]) == [0, 3]
    assert list(viewer.filter_rollouts(df, query="QUERY 3")["row_id"]) == [3]
    assert list(viewer.sort_rollouts(df, "reward")["row_id"]) == [1, 3, 0, 2, 4]  # ties keep log order
    assert list(viewer.sort_rollouts(df, "advantage", descending=False)["row_id"]) == [2, 0, 4, 3, 1]
    assert list(viewer.sort_rollouts(df, "iou")["row_id"])[-2:] == [2, 4]  # no IoU: last
    with pytest.raises(ValueError, match="sort key"):
        viewer.sort_rollouts(df, "nope")
    with pytest.raises(ValueError, match="failure filter"):
        viewer.filter_rollouts(df, failure="not_a_reason")


def test_bad_log_line_names_file_and_line(tmp_path):
    p = tmp_path / "rollouts.rank0.jsonl"
    p.write_text('{"step": 0}\n{broken\n')
    with pytest.raises(ValueError, match=r"rollouts.rank0.jsonl:2"):
        viewer.load_rollouts(p)
    with pytest.raises(FileNotFoundError):
        viewer.load_rollouts(tmp_path / "missing.jsonl")


def test_render_draws_masks_and_think_text(rollout_file):
    df = viewer.load_rollouts(rollout_file)
    png = viewer.render_rollout(df.iloc[1])
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    assert img.shape[0] > 100
    reds = ((img[..., 0] > 180) & (img[..., 1] < 140)).sum()
    greens = ((img[..., 1] > 150) & (img[..., 0] < 140)).sum()
    assert reds > 50 and greens > 20  # predicted mask and GT drawn
    failed = viewer.render_rollout(df.iloc[2])  # a failed parse renders too (GT only)
    assert failed[:4] == b"\x89PNG"
    assert viewer.think_text(df.iloc[1]["completion"]) == "reason 1"
    assert viewer.think_text("no tags") == ""


def test_grid_figure(rollout_file, tmp_path):
    out = viewer.rollout_grid(viewer.load_rollouts(rollout_file), tmp_path / "grid.png", n=2)
    assert Image.open(out).size[0] > 300


def test_widget_filters_and_sort_change_the_rollout_shown(rollout_file):
    df = viewer.load_rollouts(rollout_file)
    v = viewer.RolloutViewer(df)
    assert v.current["row_id"] == 1  # best reward first
    first_png = v.image.value
    v.sort.value = "advantage ↑"
    assert v.current["row_id"] == 2 and v.image.value != first_png
    v.failure.value = "ok"
    assert v.current["row_id"] == 0 and len(v.view) == 3 and "3 of 5" in v.count.value
    v.index.value = 2
    assert v.current["row_id"] == 1
    v.min_reward.value = 5.0
    assert list(v.view["row_id"]) == [1]
    v.failure.value = "failed"
    assert v.current is None and "no rollout" in v.info.value
    assert "reason" not in v.think.value


def test_viewer_on_a_real_training_log(smoke_run):
    df = viewer.load_rollouts(smoke_run)
    assert len(df) == 8 and {"advantage", "reward", "iou", "failure"} <= set(df.columns)
    v = viewer.RolloutViewer(df)
    assert v.current is not None and v.image.value[:4] == b"\x89PNG"
