"""Data: RefCOCO/+/g (REFER layout), ReasonSeg (LISA layout), the training draw, the policy dataset.

A record is a plain dict, one per expression (REFER) or per query (ReasonSeg), holding the GT
mask as a COCO RLE at the ORIGINAL image size (rewards and metrics compare there, PAPER.md §9).
:func:`build_policy_dataset` turns records into the HF dataset the GRPO trainer reads: the image
resized to 840 x 840 (SAM-R1 §4.1), a conversational ``prompt`` (TRL's VLM format) and the GT.

CLI::

    python -m samr1lib.data sample --refer-root R --dataset refcocog --split train --n 3000 --seed 0 --out DIR
    python -m samr1lib.data synth --out ROOT [--kind refer|reasonseg|both] [--n-images 12] [--seed 0]
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import hashlib
import io
import json
import logging
import os
import pickle
import re
import tempfile
from typing import Any, Iterable, Sequence

import cv2
import numpy as np
from PIL import Image, ImageOps

from .frames import scale_box  # (box, (w, h), (W, H)) -> box in the (W, H) frame
from .masks import decode_rle, encode_rle, mask_to_box, polygons_to_mask
from .schema import POLICY_FRAME, build_messages

logger = logging.getLogger(__name__)

# REFER (github.com/lichengunc/refer, refer.py): <root>/<dataset>/refs(<splitBy>).p + instances.json,
# COCO train2014 images under <root>/images/mscoco/images/train2014/.
REFER_SPLIT_BY = {"refcoco": "unc", "refcoco+": "unc", "refcocog": "umd"}
REFER_IMAGE_DIR = os.path.join("images", "mscoco", "images", "train2014")
REASONSEG_SPLITS = ("train", "val", "test")


class RecordList(list):
    """A list of records with a ``report`` dict (counts of what the loader kept but flagged)."""

    def __init__(self, items: Iterable[dict] = (), report: dict | None = None):
        super().__init__(items)
        self.report: dict[str, Any] = report or {}


def _need(path: str, what: str) -> str:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def _load_pickle(path: str) -> Any:
    # REFER pickles were written by Python 2: its str objects decode as ASCII, else UTF-8, else latin-1.
    for encoding in ("ASCII", "utf-8", "latin1"):
        with open(path, "rb") as f:
            try:
                return pickle.load(f, encoding=encoding)
            except UnicodeDecodeError:
                continue
    raise ValueError(f"cannot decode the strings of {path}")  # unreachable: latin-1 decodes any byte


def _refer_split_match(want: str, have: str) -> bool:
    # refer.py getRefIds: testA/testB/testC match any split containing that letter (testAB...),
    # "test" matches every split containing "test"; train/val match exactly. "all" (ours, not refer.py's)
    # matches every split: the toy world's held-out set uses every image of its own world.
    if want == "all":
        return True
    if want in ("testA", "testB", "testC"):
        return have.startswith("test") and want[-1] in have[4:]
    if want == "test":
        return "test" in have
    return have == want


def _ann_mask(ann: dict, h: int, w: int, where: str) -> tuple[np.ndarray, int]:
    """COCO segmentation (polygons, or RLE incl. iscrowd uncompressed) -> (HxW bool, dropped parts)."""
    seg = ann.get("segmentation")
    if isinstance(seg, dict):  # RLE: compressed counts (str) or uncompressed list (iscrowd)
        m = decode_rle(seg, where)
        if m.shape != (h, w):
            raise ValueError(f"corrupt RLE in {where}: size {list(m.shape)} but the image is {h}x{w}")
        return m, 0
    if not isinstance(seg, list) or not seg:
        raise ValueError(f"corrupt segmentation in {where}: expected polygons or an RLE dict, got {seg!r:.60}")
    # A few COCO polygons have only 2 points (4 numbers, zero area); drop those parts, keep the rest.
    keep = [p for p in seg if not (isinstance(p, list) and len(p) in (2, 4))]
    if not keep:
        raise ValueError(f"corrupt polygon in {where}: every part has fewer than 3 points")
    try:
        return polygons_to_mask(keep, h, w, where), len(seg) - len(keep)
    except (TypeError, ValueError) as err:  # e.g. a non-numeric coordinate
        if where in str(err):
            raise
        raise ValueError(f"corrupt polygon in {where}: {err}") from err


def load_refer(
    root: str, dataset: str, split: str, split_by: str | None = None, check_images: bool = True
) -> RecordList:
    """One record per expression (every sentence of every ref of ``split``), REFER layout.

    Keys: image_path, query, mask (COCO RLE, original size), image_id, ann_id, ref_id, sent_id,
    sample_id, category, box ([x1, y1, x2, y2], original size), height, width, dataset, split,
    split_by, ignore (None). ``split_by`` defaults to unc (RefCOCO, RefCOCO+) / umd (RefCOCOg).
    """
    from pycocotools.coco import COCO

    if dataset not in REFER_SPLIT_BY:
        raise ValueError(f"unknown REFER dataset {dataset!r}; valid: {sorted(REFER_SPLIT_BY)}")
    _need(root, "REFER data root")
    split_by = split_by or REFER_SPLIT_BY[dataset]
    refs_path = _need(os.path.join(root, dataset, f"refs({split_by}).p"), "REFER refs file")
    inst_path = _need(os.path.join(root, dataset, "instances.json"), "REFER instances file")
    refs = _load_pickle(refs_path)
    chosen = [r for r in refs if _refer_split_match(split, str(r["split"]))]
    if not chosen:
        have = sorted({str(r["split"]) for r in refs})
        raise ValueError(f"{dataset} ({split_by}) has no refs in split {split!r}; splits present: {have}")
    with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints progress
        coco = COCO(inst_path)
    image_dir = os.path.join(root, REFER_IMAGE_DIR)

    records, masks, dropped, missing = RecordList(), {}, 0, {}
    for ref in chosen:
        ref_id, ann_id, image_id = int(ref["ref_id"]), int(ref["ann_id"]), int(ref["image_id"])
        where = f"{dataset} ann_id={ann_id} ref_id={ref_id}"
        if ann_id not in coco.anns or image_id not in coco.imgs:
            raise ValueError(f"{where}: annotation or image {image_id} missing from {inst_path}")
        ann, img = coco.anns[ann_id], coco.imgs[image_id]
        h, w = int(img["height"]), int(img["width"])
        if ann_id not in masks:
            m, n_drop = _ann_mask(ann, h, w, where)
            dropped += n_drop
            masks[ann_id] = encode_rle(m)
        # Image file: the ref's file_name without its trailing _<ann_id> (refer.py), as in instances.json.
        fname = img.get("file_name") or re.sub(r"_\d+(\.\w+)$", r"\1", ref["file_name"])
        path = os.path.join(image_dir, fname)
        if check_images and path not in missing and not os.path.exists(path):
            missing[path] = None
        x, y, bw, bh = (float(v) for v in ann["bbox"])
        category = coco.cats.get(int(ann["category_id"]), {}).get("name")
        for sent in ref["sentences"]:
            records.append(dict(
                image_path=path, query=str(sent["sent"]), mask=masks[ann_id], image_id=image_id, ann_id=ann_id,
                ref_id=ref_id, sent_id=int(sent["sent_id"]), sample_id=f"{ref_id}_{sent['sent_id']}",
                category=category, box=[x, y, x + bw, y + bh], height=h, width=w, dataset=dataset,
                split=split, split_by=split_by, ignore=None,
            ))
    if missing:
        raise FileNotFoundError(f"{len(missing)} image(s) of {dataset} {split} not found, first: {next(iter(missing))}")
    if dropped:
        logger.warning("%s %s: dropped %d degenerate polygon part(s) (< 3 points)", dataset, split, dropped)
    records.report = {"refs": len(chosen), "expressions": len(records), "dropped_polygon_parts": dropped}
    return records


def _lisa_masks(shapes: Any, h: int, w: int, where: str, rasterizer: str) -> tuple[np.ndarray, np.ndarray]:
    """LISA's get_mask_from_json (utils/data_processing.py): skip ``flag`` shapes, paint the rest in
    decreasing area order (a smaller shape overwrites a larger one), ``ignore`` labels paint 255,
    others 1. ``rasterizer`` "lisa": cv2 fillPoly + 1px outline on int32 points (as LISA);
    "coco": pycocotools (masks.polygons_to_mask). Returns (target, ignore) HxW bool."""
    if not isinstance(shapes, list):
        raise ValueError(f"corrupt shapes in {where}: expected a list")
    painted = []
    for i, s in enumerate(shapes):
        label = str(s.get("label", "")) if isinstance(s, dict) else ""
        if label.lower() == "flag":
            continue
        try:
            pts = np.asarray(s["points"], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"corrupt polygon {i} in {where}: points are not [[x, y], ...]") from None
        if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3 or not np.isfinite(pts).all():
            raise ValueError(f"corrupt polygon {i} in {where}: need >= 3 finite [x, y] points, got shape {pts.shape}")
        if rasterizer == "lisa":
            m = np.zeros((h, w), np.uint8)
            p = np.array([pts], dtype=np.int32)
            cv2.polylines(m, p, True, 1, 1)
            cv2.fillPoly(m, p, 1)
            m = m.astype(bool)
        elif rasterizer == "coco":
            m = polygons_to_mask([pts.ravel().tolist()], h, w, where)
        else:
            raise ValueError(f"rasterizer must be 'lisa' or 'coco', got {rasterizer!r}")
        painted.append((int(m.sum()), "ignore" in label.lower(), m))
    label_map = np.zeros((h, w), np.uint8)
    for _, is_ignore, m in sorted(painted, key=lambda t: -t[0]):  # largest first
        label_map[m] = 255 if is_ignore else 1
    return label_map == 1, label_map == 255


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except UnicodeDecodeError:  # a few LISA files are cp1252 (LISA reads them the same way)
        with open(path, encoding="cp1252") as f:
            return json.load(f)


def _oriented_size(path: str) -> tuple[int, int]:
    """(width, height) after EXIF orientation (LISA reads with cv2.imread, which applies it)."""
    with Image.open(path) as im:
        w, h = im.size
        if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
            w, h = h, w
    return w, h


def load_reasonseg(root: str, split: str, all_queries: bool = False, rasterizer: str = "lisa") -> RecordList:
    """ReasonSeg records from LISA's layout ``root/<split>/*.jpg`` + same-stem ``*.json``.

    Keys: image_path, query (first of ``text``; one record per query with ``all_queries``),
    queries, query_index, is_sentence, mask (target RLE), ignore (RLE or None), box (of the
    target, or None), height, width, split, sample_id (file stem), dataset="reasonseg".
    Samples with no target polygon are kept with an empty mask, logged, and listed in
    ``records.report["no_target"]``.
    """
    _need(root, "ReasonSeg root")
    split_dir = os.path.join(root, split)
    if not os.path.isdir(split_dir):
        have = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        raise ValueError(f"ReasonSeg split {split!r} not found under {root}; splits present: {have}")
    images = sorted(glob.glob(os.path.join(split_dir, "*.jpg")))
    if not images:
        raise ValueError(f"ReasonSeg split {split!r} is empty: no *.jpg in {split_dir}")
    records, no_target = RecordList(), []
    for image_path in images:
        stem = os.path.splitext(os.path.basename(image_path))[0]
        anno = _read_json(_need(os.path.splitext(image_path)[0] + ".json", f"annotation of sample {stem}"))
        where = f"ReasonSeg {split}/{stem}"
        texts = anno.get("text")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        texts = [t.strip() for t in texts if isinstance(t, str) and t.strip()]
        if not texts:
            raise ValueError(f"{where}: 'text' holds no query")
        w, h = _oriented_size(image_path)
        target, ignore = _lisa_masks(anno.get("shapes", []), h, w, where, rasterizer)
        if not target.any():
            no_target.append(stem)
        base = dict(
            image_path=image_path, mask=encode_rle(target), ignore=encode_rle(ignore) if ignore.any() else None,
            box=list(mask_to_box(target) or []) or None, height=h, width=w, split=split, sample_id=stem,
            dataset="reasonseg", queries=texts, is_sentence=bool(anno.get("is_sentence", False)),
        )
        for qi, text in enumerate(texts if all_queries else texts[:1]):
            records.append(dict(base, query=text, query_index=qi))
    if no_target:
        logger.warning("ReasonSeg %s: %d sample(s) have no target polygon (kept, empty mask): %s",
                       split, len(no_target), ", ".join(no_target))
    records.report = {"samples": len(images), "records": len(records), "no_target": no_target}
    return records


def open_image(record: dict) -> Image.Image:
    """The record's image as RGB, in the frame its mask lives in (EXIF-oriented for ReasonSeg)."""
    im = Image.open(_need(record["image_path"], "image"))
    if record.get("dataset") == "reasonseg":
        im = ImageOps.exif_transpose(im)
    im = im.convert("RGB")
    if im.size != (record["width"], record["height"]):
        raise ValueError(f"{record['image_path']} is {im.size[0]}x{im.size[1]}, the annotation says "
                         f"{record['width']}x{record['height']}")
    return im


# --------------------------------------------------------------------------- training draw

def sample_refer(records: Sequence[dict], n: int = 3000, seed: int = 0) -> list[dict]:
    """Draw ``n`` records without replacement, reproducibly (numpy PCG64 seeded with ``seed``).

    SAM-R1 §4.1: 3,000 instances sampled at random from the RefCOCOg (umd) train split. An
    instance here is one expression record (image, expression, mask). Kept in source order.
    """
    if not 0 < n <= len(records):
        raise ValueError(f"cannot draw n={n} of {len(records)} records without replacement")
    idx = np.sort(np.random.default_rng(seed).choice(len(records), size=n, replace=False))
    return [records[i] for i in idx]


_MANIFEST_KEYS = ("ref_id", "ann_id", "sent_id", "image_id", "sample_id")


def write_manifest(path: str, records: Sequence[dict], seed: int | None = None, source: Any = None) -> dict:
    """Write the chosen ids (+ seed and source) as JSON so the draw can be audited and replayed."""
    manifest = {
        "source": source, "seed": seed, "n": len(records),
        "items": [{k: r.get(k) for k in _MANIFEST_KEYS if k in r} for r in records],
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def select_manifest(records: Sequence[dict], manifest: dict | str) -> list[dict]:
    """The records a manifest (dict or path) names, in its order; raises if one is missing."""
    if isinstance(manifest, str):
        with open(_need(manifest, "manifest")) as f:
            manifest = json.load(f)
    by_id = {(r.get("ref_id"), r.get("sent_id"), r.get("sample_id")): r for r in records}
    out = []
    for item in manifest["items"]:
        key = (item.get("ref_id"), item.get("sent_id"), item.get("sample_id"))
        if key not in by_id:
            raise ValueError(f"manifest item {item} is not among the {len(records)} records given")
        out.append(by_id[key])
    return out


# --------------------------------------------------------------------------- policy dataset

def policy_features():
    """The HF ``Features`` of a policy dataset (RLE masks as {size, counts} structs)."""
    from datasets import Features, Image as HFImage, List, Value

    rle = {"size": List(Value("int32")), "counts": Value("string")}
    ints = {k: Value("int64") for k in ("image_id", "ann_id", "ref_id", "sent_id", "query_index")}
    strs = {k: Value("string") for k in ("query", "image_path", "dataset", "split", "sample_id", "category")}
    return Features(
        image=HFImage(),
        prompt=List({"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})}),
        mask=rle, ignore=rle, height=Value("int32"), width=Value("int32"),
        box=List(Value("float64")), policy_box=List(Value("float64")), policy_frame=List(Value("int32")),
        **ints, **strs,
    )


def _policy_rows(records, size, negative_points, image_format, quality):
    from tqdm.auto import tqdm

    cache: dict[str, bytes] = {}  # expressions of one image share the resized encoding
    for r in tqdm(records, desc="policy dataset", unit="rec"):
        key = r["image_path"]
        if key not in cache:
            cache.clear()
            buf = io.BytesIO()
            # SAM-R1 §4.1: every image resized to 840 x 840 before the policy (bicubic, as Qwen's processor).
            im = open_image(r).resize(size, Image.BICUBIC)
            im.save(buf, format=image_format, **({"quality": quality} if image_format == "JPEG" else {}))
            cache[key] = buf.getvalue()
        box = r.get("box")
        row = {k: r.get(k) for k in ("image_id", "ann_id", "ref_id", "sent_id", "query_index", "query",
                                     "image_path", "dataset", "split", "sample_id", "category", "ignore")}
        row.update(
            image={"bytes": cache[key], "path": None}, prompt=build_messages(r["query"], negative_points),
            mask=r["mask"], height=r["height"], width=r["width"], box=box, policy_frame=list(size),
            policy_box=None if box is None else list(scale_box(box, (r["width"], r["height"]), size)),
        )
        yield row


def build_policy_dataset(
    records: Sequence[dict], out_dir: str, size: int | tuple[int, int] = POLICY_FRAME,
    negative_points: bool = False, image_format: str = "JPEG", quality: int = 95,
):
    """Records -> HF dataset saved with ``save_to_disk(out_dir)`` (and returned, memory-mapped).

    Columns: ``image`` (PIL, resized to ``size``, default 840 x 840, SAM-R1 §4.1), ``prompt``
    (schema.build_messages: TRL's conversational VLM format), ``mask``/``ignore`` (RLE at the
    ORIGINAL size, for the reward), ``height``/``width`` (original), ``box`` (original frame),
    ``policy_box`` (box scaled into the policy frame), ``policy_frame`` ([W, H]), ids and query.
    Images are stored as JPEG quality 95 by default (``image_format="PNG"`` for lossless).
    """
    from datasets import Dataset, load_from_disk

    if not records:
        raise ValueError("no records to build a policy dataset from")
    size = (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))
    image_format = image_format.upper().replace("JPG", "JPEG")
    digest = hashlib.sha1(json.dumps([[r.get("image_path"), r.get("query"), r.get("sample_id")] for r in records]
                                     + [size, negative_points, image_format, quality]).encode()).hexdigest()
    with tempfile.TemporaryDirectory(prefix="samr1_policy_") as tmp:
        ds = Dataset.from_generator(
            _policy_rows, features=policy_features(), cache_dir=tmp, fingerprint=digest,
            # a tuple: datasets would shard a list in gen_kwargs one element per shard
            gen_kwargs=dict(records=tuple(records), size=size, negative_points=negative_points,
                            image_format=image_format, quality=quality),
        )
        ds.save_to_disk(out_dir)
        del ds
    return load_from_disk(out_dir)


# --------------------------------------------------------------------------- CLI

def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m samr1lib.data", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample", help="draw the training instances (SAM-R1 §4.1) and build the policy dataset")
    s.add_argument("--refer-root", required=True, help="REFER data folder (holds refcocog/, images/, ...)")
    s.add_argument("--dataset", default="refcocog", choices=sorted(REFER_SPLIT_BY))
    s.add_argument("--split", default="train")
    s.add_argument("--split-by", default=None, help="refs(<split-by>).p; default unc / umd")
    s.add_argument("--n", type=int, default=3000, help="instances to draw (SAM-R1 §4.1: 3,000)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--size", type=int, default=POLICY_FRAME[0], help="policy image side (SAM-R1 §4.1: 840)")
    s.add_argument("--out", required=True, help="writes OUT/manifest.json and OUT/dataset/")
    s.add_argument("--manifest-only", action="store_true", help="skip building the image dataset")
    y = sub.add_parser("synth", help="write the synthetic world in the REFER and/or LISA layouts")
    y.add_argument("--out", required=True)
    y.add_argument("--kind", choices=("refer", "reasonseg", "both"), default="both")
    y.add_argument("--n-images", type=int, default=12, help="REFER images / ReasonSeg samples per split")
    y.add_argument("--seed", type=int, default=0)
    y.add_argument("--size", type=int, nargs=2, default=(112, 112), metavar=("W", "H"))
    y.add_argument("--position-gradient", type=float, default=0.0)
    args = ap.parse_args(argv)

    if args.cmd == "sample":
        try:
            records = load_refer(args.refer_root, args.dataset, args.split, args.split_by)
            chosen = sample_refer(records, args.n, args.seed)
        except (FileNotFoundError, ValueError) as err:
            ap.error(str(err))
        source = {"dataset": args.dataset, "split": args.split, "split_by": records[0]["split_by"],
                  "refer_root": os.path.abspath(args.refer_root), "n_available": len(records)}
        write_manifest(os.path.join(args.out, "manifest.json"), chosen, args.seed, source)
        print(f"drew {len(chosen)} of {len(records)} expressions -> {os.path.join(args.out, 'manifest.json')}")
        if not args.manifest_only:
            ds = build_policy_dataset(chosen, os.path.join(args.out, "dataset"), size=args.size)
            print(f"policy dataset: {ds.num_rows} rows -> {os.path.join(args.out, 'dataset')}")
    else:
        from . import synthetic

        kw = dict(seed=args.seed, size=tuple(args.size), position_gradient=args.position_gradient)
        if args.kind in ("refer", "both"):
            print("refer:", synthetic.write_refer_world(os.path.join(args.out, "refer"), n_images=args.n_images, **kw))
        if args.kind in ("reasonseg", "both"):
            print("reasonseg:", synthetic.write_reasonseg_world(
                os.path.join(args.out, "reasonseg"), n_per_split=args.n_images, **kw))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
