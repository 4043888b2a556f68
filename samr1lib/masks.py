"""Masks as arrays or COCO RLE (pycocotools), and the conversions between them.

A mask in this project is an HxW boolean array, or a COCO RLE dict ``{"size": [h, w],
"counts": str | bytes}`` (compressed or uncompressed counts, as in COCO annotations). Datasets
store RLE; metrics and rewards call :func:`as_mask` on whatever they receive.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from pycocotools import mask as mask_utils


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """HxW bool array -> compressed COCO RLE with ``counts`` as str (JSON/Arrow friendly)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be HxW, got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: Mapping[str, Any], where: str = "mask") -> np.ndarray:
    """COCO RLE (compressed or uncompressed counts) -> HxW bool array.

    ``where`` names the sample in the error raised for a corrupt RLE.
    """
    try:
        size = [int(v) for v in rle["size"]]
        counts = rle["counts"]
        if isinstance(counts, list):  # uncompressed RLE, as in COCO's iscrowd annotations
            compressed = mask_utils.frPyObjects({"size": size, "counts": counts}, size[0], size[1])
        else:
            compressed = {"size": size, "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        out = mask_utils.decode(compressed)
    except (KeyError, TypeError, ValueError, UnicodeError) as err:
        raise ValueError(f"corrupt RLE in {where}: {err}") from err
    if out.shape != tuple(size) or int(mask_utils.area(compressed)) != int(out.sum()):
        raise ValueError(f"corrupt RLE in {where}: counts do not describe a {size[0]}x{size[1]} mask")
    return out.astype(bool)


def polygons_to_mask(polygons: list[list[float]], height: int, width: int, where: str = "polygon") -> np.ndarray:
    """COCO polygons ``[[x1, y1, x2, y2, ...], ...]`` -> HxW bool mask (pycocotools' rasteriser)."""
    polys = []
    for i, poly in enumerate(polygons):
        flat = np.asarray(poly, dtype=np.float64).ravel()
        if flat.size < 6 or flat.size % 2 or not np.isfinite(flat).all():
            raise ValueError(f"corrupt polygon {i} in {where}: {flat.size} coordinates (need an even number >= 6)")
        polys.append(flat.tolist())
    if not polys:
        return np.zeros((height, width), dtype=bool)
    rles = mask_utils.frPyObjects(polys, height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def as_mask(mask: Any, where: str = "mask") -> np.ndarray:
    """Accept an HxW array (bool, 0/1 or float in [0, 1], thresholded at 0.5) or a COCO RLE."""
    if isinstance(mask, Mapping):
        return decode_rle(mask, where)
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"{where} must be an HxW mask or a COCO RLE, got an array of shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{where} must hold numbers or booleans, got dtype {arr.dtype}")
    return arr > 0.5


def mask_to_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """Tight box [x1, y1, x2, y2] (pixel edges, x2/y2 exclusive) of a mask, or None if empty."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
