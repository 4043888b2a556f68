"""Data layer: REFER and LISA loaders on hand-written fixtures, the draw, the policy dataset, the toy world."""

from __future__ import annotations

import json
import logging
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from samr1lib import data
from samr1lib.data.__main__ import main as data_main
from samr1lib.frames import scale_box
from samr1lib.data import synthetic
from samr1lib.masks import decode_rle
from samr1lib.prompt import build_messages

W, H = 20, 16  # non-square on purpose
IMG_DIR = os.path.join("images", "mscoco", "images", "train2014")


def _box_mask(x1, y1, x2, y2, h=H, w=W):
    m = np.zeros((h, w), bool)
    m[y1:y2, x1:x2] = True
    return m


def _uncompressed_rle(mask):
    """COCO iscrowd RLE: column-major run lengths, starting with a run of zeros."""
    flat = mask.ravel(order="F").astype(np.uint8)
    counts, cur, run = [], 0, 0
    for v in flat:
        if v != cur:
            counts.append(run)
            cur, run = v, 0
        run += 1
    counts.append(run)
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


CROWD = _box_mask(5, 3, 10, 8)


def _ref(ref_id, ann_id, image_id, split, sents, cat):
    sentences = [{"tokens": s.split(), "raw": s, "sent_id": ref_id * 10 + i, "sent": s} for i, s in enumerate(sents)]
    return {"image_id": image_id, "split": split, "sentences": sentences, "category_id": cat, "ann_id": ann_id,
            "file_name": "COCO_train2014_%012d_%d.jpg" % (image_id, ann_id), "ref_id": ref_id,
            "sent_ids": [s["sent_id"] for s in sentences]}


def _write_refer(root, dataset="refcocog", split_by="umd", splits=("train", "train", "val"), anns_override=None):
    os.makedirs(os.path.join(root, IMG_DIR), exist_ok=True)
    for image_id in (1, 2):
        Image.new("RGB", (W, H), (90, 90, 90)).save(os.path.join(root, IMG_DIR, "COCO_train2014_%012d.jpg" % image_id))
    anns = [
        # a square polygon: pycocotools fills pixels [2, 6) x [2, 6)
        {"id": 11, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [2, 2, 4, 4], "area": 16,
         "segmentation": [[2, 2, 6, 2, 6, 6, 2, 6]]},
        # two polygon parts: the mask is their union
        {"id": 12, "image_id": 1, "category_id": 2, "iscrowd": 0, "bbox": [10, 4, 8, 9], "area": 25,
         "segmentation": [[10, 4, 14, 4, 14, 8, 10, 8], [15, 10, 18, 10, 18, 13, 15, 13]]},
        # iscrowd: uncompressed RLE
        {"id": 21, "image_id": 2, "category_id": 1, "iscrowd": 1, "bbox": [5, 3, 5, 5], "area": 25,
         "segmentation": _uncompressed_rle(CROWD)},
    ]
    for ann in anns:
        ann.update((anns_override or {}).get(ann["id"], {}))
    inst = {"images": [{"id": i, "file_name": "COCO_train2014_%012d.jpg" % i, "height": H, "width": W} for i in (1, 2)],
            "annotations": anns, "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}]}
    refs = [_ref(0, 11, 1, splits[0], ["left square", "the small square"], 1),
            _ref(1, 12, 1, splits[1], ["the dog"], 2),
            _ref(2, 21, 2, splits[2], ["crowd one", "crowd two", "crowd three"], 1)]
    os.makedirs(os.path.join(root, dataset), exist_ok=True)
    with open(os.path.join(root, dataset, f"refs({split_by}).p"), "wb") as f:
        pickle.dump(refs, f, protocol=2)
    with open(os.path.join(root, dataset, "instances.json"), "w") as f:
        json.dump(inst, f)
    return str(root)


@pytest.fixture
def refer_root(tmp_path):
    return _write_refer(tmp_path / "refer")


# ----------------------------------------------------------------------------- REFER

def test_refer_one_record_per_expression_with_known_masks(refer_root):
    train = data.load_refer(refer_root, "refcocog", "train")
    assert len(train) == 3 and [r["sent_id"] for r in train] == [0, 1, 10]
    r = train[0]
    for key in ("image_path", "query", "mask", "image_id", "ann_id", "ref_id", "sent_id", "category", "box",
                "height", "width", "dataset", "split", "ignore"):
        assert key in r
    assert (r["query"], r["ann_id"], r["ref_id"], r["image_id"], r["category"]) == ("left square", 11, 0, 1, "person")
    assert (r["height"], r["width"], r["dataset"], r["split"], r["ignore"]) == (H, W, "refcocog", "train", None)
    assert r["image_path"].endswith(os.path.join(IMG_DIR, "COCO_train2014_000000000001.jpg"))
    assert r["mask"]["size"] == [H, W]
    assert np.array_equal(decode_rle(r["mask"]), _box_mask(2, 2, 6, 6))
    assert r["box"] == [2.0, 2.0, 6.0, 6.0]
    union = _box_mask(10, 4, 14, 8) | _box_mask(15, 10, 18, 13)
    assert np.array_equal(decode_rle(train[2]["mask"]), union)
    assert train.report == {"refs": 2, "expressions": 3, "dropped_polygon_parts": 0}


def test_refer_iscrowd_uncompressed_rle(refer_root):
    val = data.load_refer(refer_root, "refcocog", "val")
    assert [r["query"] for r in val] == ["crowd one", "crowd two", "crowd three"]
    assert all(np.array_equal(decode_rle(r["mask"]), CROWD) for r in val)


def test_refer_reads_python2_style_byte_strings(tmp_path):
    root = _write_refer(tmp_path / "r")
    path = os.path.join(root, "refcocog", "refs(umd).p")
    with open(path, "rb") as f:
        refs = pickle.load(f)
    refs[0]["sentences"][0]["sent"] = "caf\u00e9 square"
    # protocol 0 writes str as unicode; emulate Python 2's byte str with a latin-1 SHORT_BINSTRING
    raw = pickle.dumps(refs, protocol=2).replace(b"X\x0c\x00\x00\x00caf\xc3\xa9 square", b"U\x0bcaf\xe9 square")
    assert b"U\x0bcaf\xe9 square" in raw
    with open(path, "wb") as f:
        f.write(raw)
    assert data.load_refer(root, "refcocog", "train")[0]["query"] == "caf\u00e9 square"


def test_refer_unc_splits_follow_refer_py(tmp_path):
    root = _write_refer(tmp_path / "r", "refcoco", "unc", splits=("testA", "testB", "train"))
    assert len(data.load_refer(root, "refcoco", "testA")) == 2
    assert len(data.load_refer(root, "refcoco", "testB")) == 1
    assert len(data.load_refer(root, "refcoco", "test")) == 3  # refer.py: "test" = every test* split


def test_refer_bad_inputs(tmp_path, refer_root):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data.load_refer(str(tmp_path / "nowhere"), "refcocog", "train")
    with pytest.raises(ValueError, match="refcocog"):
        data.load_refer(refer_root, "refclef", "train")
    with pytest.raises(FileNotFoundError, match=r"refs\(unc\)\.p"):
        data.load_refer(refer_root, "refcoco", "train")
    with pytest.raises(ValueError, match=r"'test'.*\['train', 'val'\]"):
        data.load_refer(refer_root, "refcocog", "test")
    img = os.path.join(refer_root, IMG_DIR, "COCO_train2014_000000000002.jpg")
    os.remove(img)
    with pytest.raises(FileNotFoundError, match="COCO_train2014_000000000002.jpg"):
        data.load_refer(refer_root, "refcocog", "val")
    assert len(data.load_refer(refer_root, "refcocog", "val", check_images=False)) == 3
    os.remove(os.path.join(refer_root, "refcocog", "instances.json"))
    with pytest.raises(FileNotFoundError, match="instances.json"):
        data.load_refer(refer_root, "refcocog", "train")


@pytest.mark.parametrize("override, ann", [
    ({11: {"segmentation": [[2, 2, 6, 2, 6]]}}, 11),  # odd number of coordinates
    ({12: {"segmentation": [[1, 1, 2, 2]]}}, 12),  # only a 2-point part
    ({12: {"segmentation": [[1, 1, 5, "x", 5, 5]]}}, 12),  # not a number
    ({11: {"segmentation": 7}}, 11),
    ({21: {"segmentation": {"size": [H, W], "counts": [5, 3]}}}, 21),  # runs do not cover H x W
    ({21: {"segmentation": {"size": [H, W], "counts": "!!not rle"}}}, 21),
    ({21: {"segmentation": _uncompressed_rle(_box_mask(0, 0, 1, 1, H + 1))}}, 21),  # not the image's size
])
def test_refer_corrupt_segmentation_names_the_annotation(tmp_path, override, ann):
    root = _write_refer(tmp_path / "r", anns_override=override)
    split = "val" if ann == 21 else "train"
    ref = {11: 0, 12: 1, 21: 2}[ann]
    with pytest.raises(ValueError, match=f"ann_id={ann} ref_id={ref}"):
        data.load_refer(root, "refcocog", split)


def test_refer_degenerate_polygon_part_is_dropped_and_counted(tmp_path, caplog):
    root = _write_refer(tmp_path / "r", anns_override={11: {"segmentation": [[2, 2, 6, 2, 6, 6, 2, 6], [1, 1, 3, 3]]}})
    with caplog.at_level(logging.WARNING, logger="samr1lib.data.refer"):
        recs = data.load_refer(root, "refcocog", "train")
    assert np.array_equal(decode_rle(recs[0]["mask"]), _box_mask(2, 2, 6, 6))
    assert recs.report["dropped_polygon_parts"] == 1 and "degenerate" in caplog.text


# ----------------------------------------------------------------------------- draw + manifest

def _fake_records(n):
    return [{"ref_id": i // 2, "ann_id": 100 + i // 2, "sent_id": i, "image_id": i // 4, "query": f"q{i}"}
            for i in range(n)]


def test_sample_is_seeded_without_replacement(tmp_path):
    recs = _fake_records(50)
    a, b, c = (data.sample_refer(recs, 10, seed=s) for s in (0, 0, 1))
    ids = [r["sent_id"] for r in a]
    assert ids == [r["sent_id"] for r in b] and ids != [r["sent_id"] for r in c]
    assert len(set(ids)) == 10 and ids == sorted(ids)
    assert len(data.sample_refer(recs, 50, seed=3)) == 50
    for bad in (51, 0):
        with pytest.raises(ValueError, match=f"n={bad} of 50"):
            data.sample_refer(recs, bad)
    path = tmp_path / "m" / "manifest.json"
    data.write_manifest(str(path), a, seed=0, source={"dataset": "refcocog", "split": "train"})
    man = json.loads(path.read_text())
    assert man["seed"] == 0 and man["source"]["dataset"] == "refcocog" and man["n"] == 10
    assert man["items"][0] == {k: a[0][k] for k in ("ref_id", "ann_id", "sent_id", "image_id")}
    assert data.select_manifest(recs, str(path)) == a


# ----------------------------------------------------------------------------- policy dataset

def test_policy_dataset_resizes_to_840_and_scales_boxes(tmp_path, refer_root):
    recs = data.load_refer(refer_root, "refcocog", "train")
    ds = data.build_policy_dataset(recs, str(tmp_path / "ds"))
    assert ds.num_rows == 3 and os.path.exists(tmp_path / "ds" / "dataset_info.json")
    row = ds[0]
    assert row["image"].size == (840, 840) and row["policy_frame"] == [840, 840]
    assert (row["width"], row["height"]) == (W, H)
    assert row["box"] == [2.0, 2.0, 6.0, 6.0]
    assert row["policy_box"] == pytest.approx([2 * 840 / W, 2 * 840 / H, 6 * 840 / W, 6 * 840 / H])
    assert np.array_equal(decode_rle(row["mask"]), _box_mask(2, 2, 6, 6))  # GT stays at the original size
    assert (row["ref_id"], row["sent_id"], row["ann_id"], row["query"]) == (0, 0, 11, "left square")
    want = build_messages("left square")
    assert [m["role"] for m in row["prompt"]] == [m["role"] for m in want]
    assert [c["type"] for c in row["prompt"][1]["content"]] == ["image", "text"]
    assert row["prompt"][1]["content"][1]["text"] == want[1]["content"][1]["text"]
    assert scale_box([10, 8, 20, 16], (W, H), (840, 840)) == (420.0, 420.0, 840.0, 840.0)
    small = data.build_policy_dataset(recs[:1], str(tmp_path / "small"), size=(56, 28), image_format="png")
    assert small[0]["image"].size == (56, 28)
    assert small[0]["policy_box"] == pytest.approx([2 * 56 / W, 2 * 28 / H, 6 * 56 / W, 6 * 28 / H])


# ----------------------------------------------------------------------------- ReasonSeg (LISA layout)

def _sq(x1, y1, x2, y2):
    return [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]


def _write_lisa(root, split, stem, text, shapes, is_sentence=False):
    os.makedirs(os.path.join(root, split), exist_ok=True)
    Image.new("RGB", (W, H), (50, 60, 70)).save(os.path.join(root, split, stem + ".jpg"))
    shapes = [{"label": lab, "points": pts, "shape_type": "polygon"} for lab, pts in shapes]
    with open(os.path.join(root, split, stem + ".json"), "w") as f:
        json.dump({"text": text, "is_sentence": is_sentence, "shapes": shapes}, f)


@pytest.fixture
def lisa_root(tmp_path):
    root = str(tmp_path / "reasonseg")
    _write_lisa(root, "val", "a", ["first query", "second query"],
                [("target", _sq(2, 2, 6, 6)), ("ignore", _sq(10, 10, 12, 12)), ("flag", _sq(14, 2, 18, 6))], True)
    _write_lisa(root, "val", "b", "only a flag here", [("flag", _sq(2, 2, 6, 6))])
    _write_lisa(root, "val", "c", ["big one"], [("target", _sq(0, 0, 10, 10)), ("ignore_rim", _sq(3, 3, 5, 5))])
    return root


def test_reasonseg_target_ignore_flag_and_no_target(lisa_root, caplog):
    with caplog.at_level(logging.WARNING, logger="samr1lib.data.reasonseg"):
        recs = data.load_reasonseg(lisa_root, "val")
    assert [r["sample_id"] for r in recs] == ["a", "b", "c"]
    a, b, c = recs
    for key in ("image_path", "query", "mask", "ignore", "height", "width", "split", "sample_id", "dataset"):
        assert key in a
    assert (a["query"], a["dataset"], a["split"], a["height"], a["width"]) == ("first query", "reasonseg", "val", H, W)
    # LISA's rasteriser (cv2 fill + 1px outline on int points) includes the far edge: [2, 6] -> 5x5 pixels
    assert np.array_equal(decode_rle(a["mask"]), _box_mask(2, 2, 7, 7))  # the flag shape is not in it
    assert np.array_equal(decode_rle(a["ignore"]), _box_mask(10, 10, 13, 13))
    assert a["is_sentence"] is True and a["box"] == [2.0, 2.0, 7.0, 7.0]
    # no target polygon: kept, empty mask, reported
    assert b["query"] == "only a flag here" and not decode_rle(b["mask"]).any() and b["ignore"] is None
    assert b["box"] is None
    assert recs.report["no_target"] == ["b"] and "b" in caplog.text and "no target" in caplog.text
    # a smaller ignore shape painted over a larger target (LISA paints by decreasing area)
    assert np.array_equal(decode_rle(c["ignore"]), _box_mask(3, 3, 6, 6))
    assert np.array_equal(decode_rle(c["mask"]), _box_mask(0, 0, 11, 11) & ~_box_mask(3, 3, 6, 6))
    coco = data.load_reasonseg(lisa_root, "val", rasterizer="coco")
    assert np.array_equal(decode_rle(coco[0]["mask"]), _box_mask(2, 2, 6, 6))


def test_reasonseg_all_queries(lisa_root):
    recs = data.load_reasonseg(lisa_root, "val", all_queries=True)
    assert [(r["sample_id"], r["query"], r["query_index"]) for r in recs] == [
        ("a", "first query", 0), ("a", "second query", 1), ("b", "only a flag here", 0), ("c", "big one", 0)]
    assert recs[0]["mask"] == recs[1]["mask"]


def test_reasonseg_bad_inputs(tmp_path, lisa_root):
    with pytest.raises(FileNotFoundError, match="missing_root"):
        data.load_reasonseg(str(tmp_path / "missing_root"), "val")
    with pytest.raises(ValueError, match=r"'test'.*\['val'\]"):
        data.load_reasonseg(lisa_root, "test")
    os.makedirs(os.path.join(lisa_root, "train"))
    with pytest.raises(ValueError, match="'train' is empty"):
        data.load_reasonseg(lisa_root, "train")
    _write_lisa(lisa_root, "train", "broken", ["q"], [("target", [[1, 2], [3, 4]])])
    with pytest.raises(ValueError, match="train/broken"):
        data.load_reasonseg(lisa_root, "train")
    os.remove(os.path.join(lisa_root, "train", "broken.json"))
    with pytest.raises(FileNotFoundError, match="broken.json"):
        data.load_reasonseg(lisa_root, "train")


def test_reasonseg_policy_dataset_keeps_ignore(tmp_path, lisa_root):
    ds = data.build_policy_dataset(data.load_reasonseg(lisa_root, "val"), str(tmp_path / "ds"), size=84)
    assert ds[0]["ignore"] == data.load_reasonseg(lisa_root, "val")[0]["ignore"]
    assert ds[1]["ignore"] is None and ds[1]["policy_box"] is None and ds[0]["sample_id"] == "a"
    assert ds[0]["policy_box"] == pytest.approx([2 * 84 / W, 2 * 84 / H, 7 * 84 / W, 7 * 84 / H])


# ----------------------------------------------------------------------------- synthetic world

def test_synthetic_worlds_round_trip_through_the_loaders(tmp_path):
    size = (64, 48)
    summary = synthetic.write_refer_world(str(tmp_path / "refer"), n_images=10, seed=3, size=size)
    splits = {"refcoco": ("train", "val", "testA", "testB"), "refcoco+": ("train", "val", "testA", "testB"),
              "refcocog": ("train", "val", "test")}
    for dataset, names in splits.items():
        total = 0
        for split in names:
            recs = data.load_refer(str(tmp_path / "refer"), dataset, split)
            assert len(recs) == summary[dataset]["splits"][split]
            total += len(recs)
            for r in recs:
                m = decode_rle(r["mask"])
                assert m.shape == (48, 64) and m.sum() > 20
                ys, xs = np.nonzero(m)  # the mask lies inside its COCO box (1px rasteriser slack)
                x1, y1, x2, y2 = r["box"]
                assert xs.min() >= x1 - 1 and xs.max() <= x2 + 1 and ys.min() >= y1 - 1 and ys.max() <= y2 + 1
                assert Image.open(r["image_path"]).size == size
        assert total == summary[dataset]["sentences"]
    rs = synthetic.write_reasonseg_world(str(tmp_path / "rs"), n_per_split=6, seed=1, size=size,
                                         p_ignore=0.5, p_flag=0.5)
    n_ignore = 0
    for split in ("train", "val", "test"):
        recs = data.load_reasonseg(str(tmp_path / "rs"), split)
        assert len(recs) == rs[split]["samples"] == 6 and recs.report["no_target"] == []
        for r in recs:
            m = decode_rle(r["mask"])
            assert m.any() and r["query"]
            if r["ignore"] is not None:
                n_ignore += 1
                assert not (m & decode_rle(r["ignore"])).any()
    assert n_ignore == sum(rs[s]["ignore_shapes"] for s in rs) > 0
    assert sum(rs[s]["flag_shapes"] for s in rs) > 0


def test_synthetic_is_deterministic_and_gradient_is_a_position_cue(tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        synthetic.write_refer_world(str(tmp_path / name), n_images=4, seed=seed, datasets=("refcocog",))
    read = lambda n: (tmp_path / n / "refcocog" / "refs(umd).p").read_bytes()  # noqa: E731
    img = lambda n: (tmp_path / n / IMG_DIR / "COCO_train2014_000000100000.jpg").read_bytes()  # noqa: E731
    assert read("a") == read("b") and img("a") == img("b")
    assert read("a") != read("c") or img("a") != img("c")
    # same seed with and without the ramp: the difference is the position cue alone
    bg0, bg1 = (synthetic._background(np.random.default_rng(0), 112, 96, g).astype(float) for g in (0.0, 1.0))
    d = bg1 - bg0
    assert 50 < d[:, -8:, 0].mean() - d[:, :8, 0].mean() < 80  # red grows left -> right (+-40 at g=1)
    assert 50 < d[-8:, :, 2].mean() - d[:8, :, 2].mean() < 80  # blue grows top -> bottom
    assert abs(d[..., 1]).max() == 0 and abs(d[:, :, 0].mean(1).std()) < 1  # green untouched; red ignores y


def test_cli_sample_and_synth(tmp_path, capsys):
    assert data_main(["synth", "--out", str(tmp_path / "w"), "--n-images", "6", "--size", "48", "40"]) == 0
    root = str(tmp_path / "w" / "refer")
    out = str(tmp_path / "out")
    assert data_main(["sample", "--refer-root", root, "--dataset", "refcocog", "--split", "train",
                      "--n", "3", "--seed", "0", "--out", out, "--size", "56"]) == 0
    man = json.loads(open(os.path.join(out, "manifest.json")).read())
    assert man["n"] == 3 and man["seed"] == 0 and man["source"]["split_by"] == "umd"
    from datasets import load_from_disk
    ds = load_from_disk(os.path.join(out, "dataset"))
    assert ds.num_rows == 3 and ds[0]["image"].size == (56, 56)
    with pytest.raises(SystemExit) as err:
        data_main(["sample", "--refer-root", root, "--n", "100000", "--out", out])
    assert err.value.code == 2 and "cannot draw n=100000" in capsys.readouterr().err


def test_refcoco_position_words_name_the_extreme_object():
    # crafted: a square on the left and one on the right, a circle on top and one at the bottom
    row = [dict(colour="red", shape="square", cx=10, cy=50, r=8), dict(colour="blue", shape="square", cx=90, cy=50, r=8)]
    assert "red square on the left" in synthetic.expressions(row, 0, "refcoco")
    assert "right square" in synthetic.expressions(row, 1, "refcoco")
    assert not any("right" in e for e in synthetic.expressions(row, 0, "refcoco"))
    col = [dict(colour="red", shape="circle", cx=50, cy=10, r=8), dict(colour="blue", shape="circle", cx=50, cy=90, r=8)]
    assert "top circle" in synthetic.expressions(col, 0, "refcoco")
    assert "blue circle on the bottom" in synthetic.expressions(col, 1, "refcoco")


def test_expression_kind_names_what_each_template_asks_for():
    objs = [dict(colour="red", shape="square", cx=10, cy=50, r=8),
            dict(colour="blue", shape="circle", cx=90, cy=50, r=8),
            dict(colour="blue", shape="square", cx=50, cy=90, r=8)]
    kinds = {style: {e: synthetic.expression_kind(e) for e in synthetic.expressions(objs, 0, style)}
             for style in ("refcoco", "refcoco+", "refcocog")}
    assert kinds["refcoco"] == {"red square": "colour and shape", "red one": "colour only",
                                "red square on the left": "location", "left square": "location"}
    assert set(kinds["refcoco+"].values()) == {"colour and shape", "colour only"}
    assert kinds["refcocog"]["the red square in the picture"] == "colour and shape"
    assert {k for e, k in kinds["refcocog"].items() if "of the" in e or "above" in e or "below" in e} == {"location"}
    assert synthetic.expression_kind("the circle") == "shape only"
    assert synthetic.expression_kind("The Circle") == "shape only"


def test_written_refcoco_world_position_words_match_the_pixels(tmp_path):
    synthetic.write_refer_world(str(tmp_path), n_images=40, seed=1, datasets=("refcoco",))
    anns = json.loads((tmp_path / "refcoco" / "instances.json").read_text())["annotations"]
    centre = {a["id"]: (a["bbox"][0] + a["bbox"][2] / 2, a["bbox"][1] + a["bbox"][3] / 2) for a in anns}
    image_of = {a["id"]: a["image_id"] for a in anns}
    checked = 0
    for r in data.load_refer(str(tmp_path), "refcoco", "all"):
        cx, cy = centre[r["ann_id"]]
        others = [c for k, c in centre.items() if image_of[k] == r["image_id"] and k != r["ann_id"]]
        words = r["query"].split()
        for word, ok in (("left", all(cx < ox for ox, _ in others)), ("right", all(cx > ox for ox, _ in others)),
                         ("top", all(cy < oy for _, oy in others)), ("bottom", all(cy > oy for _, oy in others))):
            if word in words:
                assert ok, (r["query"], (cx, cy), others)
                checked += 1
    assert checked >= 10  # the world does use position words
