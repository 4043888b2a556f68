"""RefCOCO / RefCOCO+ / RefCOCOg in the REFER layout (github.com/lichengunc/refer), read with pycocotools."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
import re
from typing import Any

import numpy as np

from ..masks import decode_rle, encode_rle, polygons_to_mask
from .records import RecordList, need

logger = logging.getLogger(__name__)

# REFER (refer.py): <root>/<dataset>/refs(<splitBy>).p + instances.json,
# COCO train2014 images under <root>/images/mscoco/images/train2014/.
REFER_SPLIT_BY = {"refcoco": "unc", "refcoco+": "unc", "refcocog": "umd"}
REFER_IMAGE_DIR = os.path.join("images", "mscoco", "images", "train2014")


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
    need(root, "REFER data root")
    split_by = split_by or REFER_SPLIT_BY[dataset]
    refs_path = need(os.path.join(root, dataset, f"refs({split_by}).p"), "REFER refs file")
    inst_path = need(os.path.join(root, dataset, "instances.json"), "REFER instances file")
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


