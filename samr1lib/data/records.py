"""Records: one dict per expression (REFER) or per query (ReasonSeg), the GT mask as COCO RLE at the ORIGINAL
image size (rewards and metrics compare there), and the image a record points to.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

from PIL import Image, ImageOps

class RecordList(list):
    """A list of records with a ``report`` dict (counts of what the loader kept but flagged)."""

    def __init__(self, items: Iterable[dict] = (), report: dict | None = None):
        super().__init__(items)
        self.report: dict[str, Any] = report or {}


def need(path: str, what: str) -> str:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def open_image(record: dict) -> Image.Image:
    """The record's image as RGB, in the frame its mask lives in (EXIF-oriented for ReasonSeg)."""
    im = Image.open(need(record["image_path"], "image"))
    if record.get("dataset") == "reasonseg":
        im = ImageOps.exif_transpose(im)
    im = im.convert("RGB")
    if im.size != (record["width"], record["height"]):
        raise ValueError(f"{record['image_path']} is {im.size[0]}x{im.size[1]}, the annotation says "
                         f"{record['width']}x{record['height']}")
    return im


