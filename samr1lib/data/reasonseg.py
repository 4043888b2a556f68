"""ReasonSeg in LISA's layout: ``root/<split>/*.jpg`` + a same-stem labelme-style ``*.json``."""

from __future__ import annotations

import glob
import json
import logging
import os
from typing import Any

import cv2
import numpy as np
from PIL import Image

from ..masks import encode_rle, mask_to_box, polygons_to_mask
from .records import RecordList, need

logger = logging.getLogger(__name__)

REASONSEG_SPLITS = ("train", "val", "test")


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
    need(root, "ReasonSeg root")
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
        anno = _read_json(need(os.path.splitext(image_path)[0] + ".json", f"annotation of sample {stem}"))
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


