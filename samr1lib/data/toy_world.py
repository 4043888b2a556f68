"""The toy world: two synthetic REFER folders, ``root/train`` and ``root/heldout``, for the CPU learning benchmark.

Properties of the WORLD (state them when reading results obtained on it):

* images are ``size`` x ``size`` (112 by default) with 1-3 coloured shapes on blurred colour noise
  (:func:`samr1lib.data.synthetic.write_refer_world`); each query is a RefCOCO-style expression that singles out
  one shape by colour, shape and/or position ("red circle", "left star", ...);
* every background carries a faint position gradient (``position_gradient``, default 0.5: up to +-20 grey
  levels, red growing left to right, blue top to bottom), an absolute-position cue for a tiny vision tower;
* the held-out set is a separate world of 512 images written with a fixed seed (:data:`HELDOUT_SEED`), one
  query per image; the training world never shares an image with it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .refer import load_refer
from .synthetic import write_refer_world

__all__ = ["HELDOUT_IMAGES", "HELDOUT_SEED", "TOY_DATASET", "write_toy_world", "train_records", "heldout_records"]

HELDOUT_IMAGES = 512  # a fixed held-out set of 512 images
HELDOUT_SEED = 10_000  # fixed: every run, seed and control is scored on the same 512 images
TOY_DATASET = "refcoco"  # RefCOCO-style expressions: colour, shape, absolute position words


def write_toy_world(
    root: str | os.PathLike, n_train_images: int = 1000, n_heldout: int | None = HELDOUT_IMAGES, size: int = 112,
    position_gradient: float = 0.5, max_objects: int = 3, seed: int = 0,
) -> dict[str, Any]:
    """Write ``root/train`` and ``root/heldout`` (two REFER folders); reuse them when already written alike.

    ``n_heldout=None`` keeps whatever held-out set exists (a trainer only needs the training world).
    Returns the parameters and the counts (also saved as ``root/toy_world.json``).
    """
    root = Path(root)
    marker = root / "toy_world.json"
    saved = json.loads(marker.read_text()) if marker.exists() else None
    if n_heldout is None:
        n_heldout = saved["params"]["n_heldout"] if saved else HELDOUT_IMAGES
    params = dict(n_train_images=n_train_images, n_heldout=n_heldout, size=size, position_gradient=position_gradient,
                  max_objects=max_objects, seed=seed, heldout_seed=HELDOUT_SEED)
    if saved is not None:
        if saved["params"] == params:
            return saved
        raise ValueError(f"{root} holds a toy world written with other parameters ({saved['params']}, asked {params}); "
                         "use another folder or delete it")
    kw = dict(size=(size, size), position_gradient=position_gradient, max_objects=max_objects, datasets=(TOY_DATASET,))
    counts = {
        "train": write_refer_world(str(root / "train"), n_images=n_train_images, seed=seed, **kw),
        "heldout": write_refer_world(str(root / "heldout"), n_images=n_heldout, seed=HELDOUT_SEED, **kw),
    }
    saved = {"params": params, "counts": counts}
    marker.write_text(json.dumps(saved, indent=2))
    return saved


def train_records(root: str | os.PathLike) -> list[dict]:
    """Every expression of every image of the training world (all REFER splits of ``root/train``)."""
    return list(load_refer(str(Path(root) / "train"), TOY_DATASET, "all"))


def heldout_records(root: str | os.PathLike) -> list[dict]:
    """The held-out set: one query per image (its first ref's first expression), in image-id order."""
    seen, out = set(), []
    records = load_refer(str(Path(root) / "heldout"), TOY_DATASET, "all")
    for r in sorted(records, key=lambda r: (r["image_id"], r["ref_id"], r["sent_id"])):
        if r["image_id"] not in seen:
            seen.add(r["image_id"])
            out.append(r)
    return out


def heldout_objects(root: str | os.PathLike) -> dict[str, list[list[float]]]:
    """Every object's box ([x1, y1, x2, y2]) of every held-out image, by image path (the world refers to each
    object at least once, so its expressions list them all)."""
    boxes: dict[str, dict[int, list[float]]] = {}
    for r in load_refer(str(Path(root) / "heldout"), TOY_DATASET, "all"):
        boxes.setdefault(r["image_path"], {})[r["ann_id"]] = r["box"]
    return {path: list(by_ann.values()) for path, by_ann in boxes.items()}
