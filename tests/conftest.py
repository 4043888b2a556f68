import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """One real 2-step smoke training run (its rollout log feeds the viewer tests)."""
    from samr1lib.config import load_config
    from samr1lib.train import train

    out = tmp_path_factory.mktemp("smoke_run")
    train(load_config("smoke", overrides=[f"output_dir={out}"]))
    return out


@pytest.fixture
def rollout_file(tmp_path) -> Path:
    """A small hand-made rollout log with known rewards, failures and steps (images absent: drawn on grey)."""
    from samr1lib.masks import encode_rle
    import numpy as np

    gt = np.zeros((32, 32), bool)
    gt[8:20, 8:20] = True
    pred = np.zeros((32, 32), bool)
    pred[10:22, 10:22] = True
    rows = []
    for i, (step, reward, adv, fail) in enumerate([(0, 1.0, -0.5, None), (0, 6.0, 1.2, None), (1, 0.0, -1.0, "bad_json"),
                                                   (1, 4.0, 0.3, None), (2, 0.0, -0.2, "no_answer_tag")]):
        ok = fail is None
        rows.append({
            "step": step, "query": f"query {i}", "completion": f"<think>reason {i}</think><answer>...</answer>",
            "rewards": {"reasoning_format_reward": 1.0, "segmentation_reward": reward - 1.0 if ok else 0.0},
            "reward": reward, "trained_reward": reward, "advantage": adv, "failure": fail,
            "answer": {"bbox_2d": [8, 8, 20, 20], "point_2d": [14, 14], "label": "x"} if ok else None,
            "iou": 0.7 if ok else None, "mask_rle": encode_rle(pred) if ok else None, "gt_mask_rle": encode_rle(gt),
            "image_path": None, "height": 32, "width": 32, "policy_frame": [32, 32],
        })
    path = tmp_path / "rollouts.rank0.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
