"""End-to-end evaluation on the synthetic world: tiny offline policy + GrabCut -> JSONL, summary,
table; an interrupted run resumes without redoing samples; scripted answers give known scores."""

import json
import os

import numpy as np
import pytest

from samr1lib.evaluate import evaluate, markdown_table, summarize
from samr1lib.evaluate.__main__ import main
from samr1lib.policy import HFPolicy
from samr1lib.masks import as_mask, mask_to_box
from samr1lib.parse import ObjectAnswer, format_completion
from samr1lib.segmenters import build_segmenter
from samr1lib.data.synthetic import write_reasonseg_world, write_refer_world


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    write_refer_world(str(root / "refer"), n_images=24, seed=3)
    write_reasonseg_world(str(root / "reasonseg"), n_per_split=4, seed=3)
    return root


@pytest.fixture(scope="module")
def tiny_policy_dir(tmp_path_factory):
    from samr1lib.policy import build_tiny_policy

    return str(build_tiny_policy(tmp_path_factory.mktemp("policy") / "tiny", seed=0))


class OraclePolicy:
    """Answers from the GT (box in the 840 frame) for even samples, garbage for odd ones."""

    def __init__(self, records, size=840):
        self.by_query = {r["query"]: r for r in records}
        self.size, self.calls = size, []

    def generate(self, images, queries):
        self.calls.extend(queries)
        out = []
        for q in queries:
            r = self.by_query[q]
            x1, y1, x2, y2 = mask_to_box(as_mask(r["mask"]))
            sx, sy = self.size / r["width"], self.size / r["height"]
            box = (x1 * sx, y1 * sy, x2 * sx, y2 * sy)
            good = ObjectAnswer(box=box, point=((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), label="it")
            out.append(format_completion(good, "oracle") if r["_even"] else "no idea")
        return out


class Interrupt(Exception):
    pass


class FlakyPolicy(OraclePolicy):
    def __init__(self, records, fail_after):
        super().__init__(records)
        self.fail_after = fail_after

    def generate(self, images, queries):
        if len(self.calls) >= self.fail_after:
            raise Interrupt("power cut")
        return super().generate(images, queries)


def test_scores_resume_and_outputs(worlds, tmp_path):
    from samr1lib.data import load_refer

    records = load_refer(str(worlds / "refer"), "refcocog", "test")
    assert len(records) >= 4
    for i, r in enumerate(records):
        r["_even"] = i % 2 == 0
    out = str(tmp_path / "eval")
    with pytest.raises(Interrupt):
        evaluate(records, FlakyPolicy(records, fail_after=2), build_segmenter("grabcut"), out,
                 "refcocog", "test", batch_size=2, show_progress=False)
    done_lines = sum(1 for p in os.listdir(out) for _ in open(os.path.join(out, p)))
    assert done_lines == 2
    resumed = OraclePolicy(records)
    summary = evaluate(records, resumed, build_segmenter("grabcut"), out, "refcocog", "test", batch_size=2,
                       show_progress=False)
    assert len(resumed.calls) == len(records) - 2  # nothing redone
    rows = [json.loads(l) for l in open(os.path.join(out, "samples.jsonl"))]
    assert [r["key"] for r in rows] == [f"{i:06d}" for i in range(len(records))]
    assert not [p for p in os.listdir(out) if ".part" in p]
    odd = [r for r in rows if int(r["key"]) % 2]
    even = [r for r in rows if not int(r["key"]) % 2]
    assert all(r["failure"] == "no_answer_tag" and r["iou"] == 0 for r in odd)
    assert np.mean([r["iou"] for r in even]) > 0.7  # GrabCut from GT boxes on the synthetic world
    assert all(r["box_iou"] > 0.9 for r in even)
    assert summary["n"] == len(records)
    assert summary["parse_failure_rate"] == pytest.approx(len(odd) / len(records))
    assert summary["paper"]["cIoU"] == 73.1  # RefCOCOg test, SAM-R1 Table 2
    table = open(os.path.join(out, "summary.md")).read()
    assert "| refcocog | test |" in table and "73.1" in table
    assert json.load(open(os.path.join(out, "summary.json")))["gIoU"] == pytest.approx(summary["gIoU"])
    other = load_refer(str(worlds / "refer"), "refcoco", "testA")
    with pytest.raises(ValueError, match="another dataset or split"):
        evaluate(other, resumed, build_segmenter("grabcut"), out, "refcoco", "testA", show_progress=False)


def test_empty_split_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no samples"):
        evaluate([], None, None, str(tmp_path), "reasonseg", "val")


def test_summarize_uses_counts():
    rows = [
        {"intersection": 50, "union": 100, "failure": None, "pred_box": [0, 0, 1, 1], "gt_box": [0, 0, 1, 1]},
        {"intersection": 0, "union": 2, "failure": "bad_json", "pred_box": None, "gt_box": [0, 0, 1, 1]},
    ]
    s = summarize(rows, "reasonseg", "test")
    assert s["gIoU"] == pytest.approx(25.0) and s["cIoU"] == pytest.approx(100 * 50 / 102)
    assert s["box_acc@0.5"] == 50.0 and s["parse_failure_rate"] == 0.5
    assert "60.2" in markdown_table([s])


@pytest.mark.slow
def test_cli_end_to_end_with_tiny_policy(worlds, tiny_policy_dir, tmp_path, capsys):
    out = str(tmp_path / "cli")
    argv = ["--policy", tiny_policy_dir, "--dataset", "reasonseg", "--root", str(worlds / "reasonseg"),
            "--split", "val", "--out", out, "--max-new-tokens", "12", "--batch-size", "2"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| reasonseg | val |" in printed and "64.0" in printed
    rows = [json.loads(l) for l in open(os.path.join(out, "samples.jsonl"))]
    assert len(rows) == 4 and all(isinstance(r["completion"], str) for r in rows)
    # a random policy fails to parse: failed parses are empty predictions, kept and scored 0
    assert all((r["failure"] is None) or r["iou"] == 0.0 for r in rows)
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["n"] == 4
    assert main(argv) == 0  # a finished run resumes to the same summary without generating again
    assert json.load(open(os.path.join(out, "summary.json"))) == summary


def test_hf_policy_generates_text(tiny_policy_dir):
    from PIL import Image

    from samr1lib.policy import load_policy

    model, processor = load_policy(tiny_policy_dir)
    policy = HFPolicy(model, processor, max_new_tokens=5)
    img = Image.fromarray(np.zeros((840, 840, 3), np.uint8))
    out = policy.generate([img, img], ["the red circle", "a much longer query about the blue square"])
    assert len(out) == 2 and all(isinstance(t, str) for t in out)


@pytest.mark.slow
def test_two_processes_split_and_gather(worlds, tiny_policy_dir, tmp_path):
    """Under `accelerate launch` with two processes (gloo on CPU), each scores its share and the
    main process gathers one complete samples.jsonl."""
    import subprocess
    import sys

    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--main_process_port", "29617", "-m", "samr1lib.evaluate", "--policy", tiny_policy_dir,
           "--dataset", "reasonseg", "--root", str(worlds / "reasonseg"), "--split", "test", "--out", str(out),
           "--max-new-tokens", "8", "--batch-size", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(l) for l in open(out / "samples.jsonl")]
    assert len(rows) == 4 and {r["rank"] for r in rows} == {0, 1}
    assert json.load(open(out / "summary.json"))["n"] == 4


def test_hf_policy_asks_for_labelled_points_when_trained_to(tiny_policy_dir):
    """A negative-points or Seg-R1 policy is evaluated on the prompt it was trained with."""
    from PIL import Image

    from samr1lib.policy import load_policy
    from samr1lib.prompt import NEGATIVE_POINTS_SUFFIX

    model, processor = load_policy(tiny_policy_dir)
    seen = []
    original = processor.apply_chat_template

    def recording(messages, **kw):
        seen.append(messages[-1]["content"][-1]["text"])
        return original(messages, **kw)

    processor.apply_chat_template = recording
    img = Image.fromarray(np.zeros((56, 56, 3), np.uint8))
    HFPolicy(model, processor, max_new_tokens=2).generate([img], ["the red circle"])
    HFPolicy(model, processor, max_new_tokens=2, negative_points=True).generate([img], ["the red circle"])
    assert not seen[0].endswith(NEGATIVE_POINTS_SUFFIX) and seen[1].endswith(NEGATIVE_POINTS_SUFFIX)
