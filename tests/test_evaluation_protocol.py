"""The evaluation protocol on crafted samples: every accounting rule (a failed parse, a segmenter error, an empty
GT, an ignore region, a polygon-less ReasonSeg file), the diff of two runs and its refusals, the checkpoint
selection on a smoke training run, and LISA-Grounding."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samr1lib.data import load_reasonseg
from samr1lib.evaluate import diff_runs, evaluate
from samr1lib.masks import encode_rle
from samr1lib.parse import ObjectAnswer, format_completion

ROOT = Path(__file__).resolve().parents[1]
W = H = 40  # original size; the policy sees the same 40x40 frame (size=40)


class BoxSegmenter:
    """Segments exactly the prompt box; fails (as a real segmenter might on an odd prompt) on a box starting at
    x = 13."""

    def segment(self, image, prompts):
        out = []
        for p in prompts:
            x1, y1, x2, y2 = (int(round(v)) for v in p.box)
            if x1 == 13:
                raise RuntimeError("boom: the segmenter failed on this prompt")
            m = np.zeros(image.shape[:2], bool)
            m[y1:y2, x1:x2] = True
            out.append(m)
        return out


class ScriptedPolicy:
    """Answers each query with a fixed completion."""

    def __init__(self, answers: dict[str, str]):
        self.answers = answers

    def generate(self, images, queries):
        return [self.answers[q] for q in queries]


def _box(x1, y1, x2, y2):
    m = np.zeros((H, W), bool)
    m[y1:y2, x1:x2] = True
    return m


def _answer(box) -> str:
    return format_completion(ObjectAnswer(box=box, point=((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), label="x"))


@pytest.fixture()
def crafted(tmp_path):
    Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(tmp_path / "im.png")
    img = str(tmp_path / "im.png")
    ignore = _box(20, 10, 30, 20)  # the answer's extra part lies in an ignore region
    recs = [
        dict(query="good", mask=encode_rle(_box(2, 2, 12, 12))),
        dict(query="failed parse", mask=encode_rle(_box(2, 2, 12, 12))),
        dict(query="segmenter error", mask=encode_rle(_box(13, 2, 20, 9))),
        dict(query="empty GT", mask=encode_rle(np.zeros((H, W), bool))),
        dict(query="ignore region", mask=encode_rle(_box(10, 10, 20, 20)), ignore=encode_rle(ignore)),
    ]
    recs = [dict(r, image_path=img, height=H, width=W, dataset="refcocog") for r in recs]
    answers = {"good": _answer((2, 2, 12, 12)), "failed parse": "I think it is the dog",
               "segmenter error": _answer((13, 2, 20, 9)), "empty GT": "<think>none</think><answer>[]</answer>",
               "ignore region": _answer((10, 10, 30, 20))}
    return recs, ScriptedPolicy(answers)


def test_every_item_is_scored_once_and_accounted_for(crafted, tmp_path):
    recs, policy = crafted
    s = evaluate(recs, policy, BoxSegmenter(), str(tmp_path / "a"), "refcocog", "test", size=W, show_progress=False)
    rows = {r["query"]: r for r in map(json.loads, (tmp_path / "a" / "samples.jsonl").read_text().splitlines())}
    a = s["accounting"]
    assert (a["items"], a["scored"], a["dropped"]) == (5, 5, 0)
    assert a["parse_failures"] == 1 and a["parse_failures_by_reason"] == {"no_answer_tag": 1}
    assert a["segmenter_failures"] == 1 and "boom" in a["first_segmenter_error"]
    assert rows["segmenter error"]["iou"] == 0.0 and "boom" in rows["segmenter error"]["segmenter_error"]
    assert rows["failed parse"]["iou"] == 0.0 and rows["failed parse"]["failure"] == "no_answer_tag"
    assert a["empty_gt"] == 1 and a["empty_gt_and_prediction"] == 1 and rows["empty GT"]["iou"] == 1.0
    assert rows["ignore region"]["iou"] == 1.0  # the answer's extra pixels lie in the ignore region
    assert s["gIoU"] == pytest.approx(100 * (1 + 0 + 0 + 1 + 1) / 5)
    assert "never dropped" in s["protocol"]["parse_failure"] and "every expression" in s["protocol"]["items"]
    md = (tmp_path / "a" / "summary.md").read_text()
    assert "5 items, 5 scored, 0 dropped" in md and "segmenter failures 1" in md and "Protocol:" in md


def test_the_empty_pair_convention_is_a_setting_and_strict_raises(crafted, tmp_path):
    recs, policy = crafted
    s = evaluate(recs, policy, BoxSegmenter(), str(tmp_path / "z"), "refcocog", "test", size=W, show_progress=False,
                 empty_score=0.0)
    assert s["gIoU"] == pytest.approx(100 * 2 / 5) and "IoU 0" in s["protocol"]["empty_gt"]
    with pytest.raises(RuntimeError, match="boom"):
        evaluate(recs, policy, BoxSegmenter(), str(tmp_path / "s"), "refcocog", "test", size=W, show_progress=False,
                 strict=True)


def test_a_polygon_less_reasonseg_file_is_kept_and_reported(tmp_path):
    split = tmp_path / "test"
    split.mkdir()
    for stem, shapes in (("a", [{"label": "target", "points": [[2, 2], [12, 2], [12, 12], [2, 12]]}]), ("b", [])):
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(split / f"{stem}.jpg")
        (split / f"{stem}.json").write_text(json.dumps({"text": [f"query {stem}"], "shapes": shapes}))
    recs = load_reasonseg(str(tmp_path), "test")
    policy = ScriptedPolicy({"query a": _answer((2, 2, 13, 13)), "query b": _answer((0, 0, 5, 5))})
    s = evaluate(recs, policy, BoxSegmenter(), str(tmp_path / "out"), "reasonseg", "test", size=W, show_progress=False)
    a = s["accounting"]
    assert a["items"] == 2 and a["empty_gt"] == 1 and a["loader"]["no_target"] == ["b"]
    # LISA-Grounding (Table 5): box accuracy on the target's box; the polygon-less file has no box and is left out
    assert s["LISA-Grounding"] == 100.0 and a["lisa_grounding_left_out_no_target"] == 1
    assert s["paper"]["LISA-Grounding"] == 63.8 and "IoU >= 0.5" in s["protocol"]["lisa_grounding"]


def test_diff_of_two_runs_and_its_refusals(crafted, tmp_path):
    recs, policy = crafted
    better = ScriptedPolicy({**policy.answers, "failed parse": _answer((2, 2, 12, 12))})
    for name, pol in (("a", policy), ("b", better)):
        evaluate(recs, pol, BoxSegmenter(), str(tmp_path / name), "refcocog", "test", size=W, show_progress=False)
    d = diff_runs(tmp_path / "a", tmp_path / "b", tmp_path / "d", n_boot=500)
    assert [x["query"] for x in d["flipped_up"]] == ["failed parse"] and d["flipped_down"] == []
    assert d["largest_gains"][0]["query"] == "failed parse" and d["largest_losses"] == []
    assert d["gIoU"]["b_minus_a"] == pytest.approx(20.0)
    lo, hi = d["bootstrap_95"]["gIoU"]
    assert 0.0 <= lo <= 20.0 <= hi  # one sample of five gained 1.0: the interval holds the difference
    assert Path(d["figure"]).stat().st_size > 2000 and (tmp_path / "d" / "diff.md").exists()
    evaluate(recs[:4], policy, BoxSegmenter(), str(tmp_path / "short"), "refcocog", "test", size=W,
             show_progress=False)
    with pytest.raises(ValueError, match="not the same sample set"):
        diff_runs(tmp_path / "a", tmp_path / "short")
    evaluate(recs, policy, BoxSegmenter(), str(tmp_path / "val"), "refcocog", "val", size=W, show_progress=False)
    with pytest.raises(ValueError, match="same split"):
        diff_runs(tmp_path / "a", tmp_path / "val")
    (tmp_path / "b" / "summary.json").unlink()
    with pytest.raises(ValueError, match="not a finished evaluation run"):
        diff_runs(tmp_path / "a", tmp_path / "b")


@pytest.mark.slow
def test_select_and_diff_commands_on_a_smoke_training_run(tmp_path):
    """The commands as a user runs them: a 2-step smoke training run (3 checkpoints), every checkpoint on a val
    split, the chosen one on two benchmarks, then the diff of two checkpoints' val runs."""
    from samr1lib.config import load_config
    from samr1lib.data.synthetic import write_reasonseg_world, write_refer_world
    from samr1lib.train import train

    run = tmp_path / "run"
    train(load_config("smoke", overrides=[f"output_dir={run}", "save_steps=1", "max_steps=2"]))
    write_refer_world(str(tmp_path / "refer"), n_images=24, seed=3)
    write_reasonseg_world(str(tmp_path / "reasonseg"), n_per_split=4, seed=3)
    common = ["--refer-root", str(tmp_path / "refer"), "--reasonseg-root", str(tmp_path / "reasonseg"),
              "--limit", "4", "--size", "112", "--max-new-tokens", "16"]
    r = subprocess.run([sys.executable, "-m", "samr1lib.evaluate", "select", str(run), "--out", str(tmp_path / "sel"),
                        "--val", "reasonseg:val", "--benchmarks", "refcocog:test,reasonseg:test", *common],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    sel = json.loads((tmp_path / "sel" / "selection.json").read_text())
    assert [c["step"] for c in sel["checkpoints"]] == [1, 2]  # final/ is checkpoint-2's weights
    assert sel["chosen"]["step"] in (1, 2) and len(sel["benchmarks"]) == 2
    assert "One checkpoint for every benchmark: step" in r.stdout and "| reasonseg test |" in r.stdout
    r = subprocess.run([sys.executable, "-m", "samr1lib.evaluate", "diff", str(tmp_path / "sel" / "val" / "step1"),
                        str(tmp_path / "sel" / "val" / "step2")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "95 % paired bootstrap" in r.stdout and (tmp_path / "sel" / "val" / "step2" / "diff_vs_step1").is_dir()
    r = subprocess.run([sys.executable, "-m", "samr1lib.evaluate", "diff", str(tmp_path / "sel" / "val" / "step1"),
                        str(tmp_path / "sel" / "benchmarks" / "reasonseg_test")], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and "same split" in r.stderr
