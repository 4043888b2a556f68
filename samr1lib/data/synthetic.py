"""A synthetic world of coloured shapes, written in the REAL on-disk layouts the loaders read.

* :func:`write_refer_world` writes a REFER folder (github.com/lichengunc/refer): ``refcoco/`` and
  ``refcoco+/`` with ``refs(unc).p`` (splits train/val/testA/testB), ``refcocog/`` with
  ``refs(umd).p`` (train/val/test), each with a COCO ``instances.json`` (polygon segmentations,
  ``[x, y, w, h]`` boxes, categories), and images at
  ``images/mscoco/images/train2014/COCO_train2014_%012d.jpg``.
* :func:`write_reasonseg_world` writes LISA's ReasonSeg layout: ``train/ val/ test/`` with a
  ``.jpg`` and a same-stem labelme-style ``.json`` (``text``, ``is_sentence``, ``shapes``), with
  occasional ``ignore`` shapes (excluded from metrics) and ``flag`` shapes (skipped by loaders).

Properties of the toy world (state them when reading results obtained on it):
* 1-3 shapes (circle, square, triangle, star, ellipse) per image, each (colour, shape) pair at
  most once per image, so every expression names exactly one object (ReasonSeg: or a set).
* Backgrounds are blurred colour noise. ``position_gradient`` in [0, 1] adds a faint ramp
  (up to +-40 * g grey levels: red grows left->right, blue top->bottom), an absolute-position
  cue that lets a tiny vision tower without good position encoding still tell left from right.
* Masks come from the written polygons, not from the pixels, so JPEG artefacts (quality 95)
  never change a ground truth.
* Everything is a function of ``seed``: the same seed writes the same files.
"""

from __future__ import annotations

import json
import os
import pickle
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {
    "red": (215, 40, 40), "green": (40, 165, 60), "blue": (40, 80, 215),
    "yellow": (235, 205, 40), "purple": (140, 60, 180), "white": (245, 245, 245),
}
SHAPES = ("circle", "square", "triangle", "star", "ellipse")
CATEGORIES = [{"id": i + 1, "name": s, "supercategory": "shape"} for i, s in enumerate(SHAPES)]
# ReasonSeg-style implicit queries: what each shape could serve as (LISA's "reasoning" phrasing).
USES = {
    "circle": ("a wheel", "a coin"), "square": ("a window pane", "a floor tile"),
    "triangle": ("a slice of pizza", "a warning sign"), "star": ("the top of a christmas tree", "a sheriff's badge"),
    "ellipse": ("an egg", "a rugby ball"),
}
REFER_SPLITS = {  # split -> share of images; RefCOCO/RefCOCO+ share the unc split of images (as in REFER)
    "unc": {"train": 0.6, "val": 0.14, "testA": 0.13, "testB": 0.13},
    "umd": {"train": 0.7, "val": 0.15, "test": 0.15},
}
REFER_DATASETS = {"refcoco": "unc", "refcoco+": "unc", "refcocog": "umd"}


def _background(rng: np.random.Generator, w: int, h: int, gradient: float) -> np.ndarray:
    base = rng.uniform(80, 170, size=3)
    coarse = rng.normal(0, 18, size=(max(2, h // 14), max(2, w // 14), 3))
    coarse = np.asarray(Image.fromarray(np.clip(coarse + 128, 0, 255).astype(np.uint8)).resize((w, h), Image.BICUBIC))
    img = base + (coarse.astype(np.float64) - 128) + rng.normal(0, 6, size=(h, w, 3))
    if gradient:
        img[..., 0] += gradient * 80 * (np.arange(w)[None, :] / max(w - 1, 1) - 0.5)
        img[..., 2] += gradient * 80 * (np.arange(h)[:, None] / max(h - 1, 1) - 0.5)
    return np.clip(img, 0, 255).astype(np.uint8)


def _polygon(shape: str, cx: float, cy: float, r: float, rot: float) -> list[tuple[float, float]]:
    if shape in ("circle", "ellipse"):
        t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        ry = r if shape == "circle" else 0.6 * r
        pts = np.stack([cx + r * np.cos(t), cy + ry * np.sin(t)], 1)
    elif shape == "square":
        a = 0.85 * r
        pts = np.array([[cx - a, cy - a], [cx + a, cy - a], [cx + a, cy + a], [cx - a, cy + a]])
    elif shape == "triangle":
        t = rot + np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        pts = np.stack([cx + r * np.cos(t), cy - r * np.sin(t)], 1)
    elif shape == "star":
        t = rot + np.pi / 2 + np.arange(10) * np.pi / 5
        rad = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
        pts = np.stack([cx + rad * np.cos(t), cy - rad * np.sin(t)], 1)
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")
    return [(round(float(x), 2), round(float(y), 2)) for x, y in pts]


def _layout(rng: np.random.Generator, w: int, h: int, k: int, repeat_shape: bool = False) -> list[dict]:
    """k non-overlapping objects with distinct (colour, shape); ``repeat_shape``: two share a shape."""
    combos = [(c, s) for c in COLOURS for s in SHAPES]
    order = rng.permutation(len(combos))
    picked = [combos[i] for i in order[:k]]
    if repeat_shape and k >= 2:
        s = picked[0][1]
        other = [c for c in COLOURS if c != picked[0][0]]
        picked[1] = (other[int(rng.integers(len(other)))], s)
    objs: list[dict] = []
    side = min(w, h)
    for colour, shape in picked:
        for _ in range(500):
            r = rng.uniform(0.11, 0.19) * side
            cx, cy = rng.uniform(r + 1, w - r - 1), rng.uniform(r + 1, h - r - 1)
            if all(np.hypot(cx - o["cx"], cy - o["cy"]) > r + o["r"] + 2 for o in objs):
                break
        else:  # no room: a smaller k than asked (never overlapping)
            continue
        rot = float(rng.uniform(-0.3, 0.3))
        objs.append(dict(colour=colour, shape=shape, cx=cx, cy=cy, r=r, poly=_polygon(shape, cx, cy, r, rot)))
    return objs


def render(rng: np.random.Generator, size: tuple[int, int], objs: list[dict], gradient: float) -> Image.Image:
    """The image of a layout: background, then each object's polygon in its colour (slightly jittered)."""
    w, h = size
    im = Image.fromarray(_background(rng, w, h, gradient))
    draw = ImageDraw.Draw(im)
    for o in objs:
        colour = tuple(int(np.clip(v + rng.integers(-12, 13), 0, 255)) for v in COLOURS[o["colour"]])
        draw.polygon(o["poly"], fill=colour)
    return im


def scene(rng: np.random.Generator, size: int = 112, max_objects: int = 3, gradient: float = 0.5,
          ) -> tuple[Image.Image, list[dict]]:
    """One scene in memory, drawn as the written worlds are: the image and its objects (colour, shape, centre,
    radius, polygon), for training that needs fresh images at every step."""
    objs = _layout(rng, size, size, int(rng.integers(1, max_objects + 1)))
    return render(rng, (size, size), objs, gradient), objs


def _draw(rng: np.random.Generator, size: tuple[int, int], objs: list[dict], gradient: float, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    render(rng, size, objs, gradient).save(path, quality=95)  # masks come from polygons: JPEG never touches a GT


def _extreme(objs: list[dict], t: int, key: str, sign: int, margin: float) -> bool:
    """Object t lies furthest in direction ``sign`` along ``key`` (cx: -1 left, +1 right; cy: -1 top, +1 bottom),
    by more than ``margin`` beyond every other object."""
    v = sign * objs[t][key]
    return len(objs) > 1 and all(v - margin > sign * o[key] for i, o in enumerate(objs) if i != t)


def expressions(objs: list[dict], t: int, style: str) -> list[str]:
    """Unambiguous templates for object t. refcoco: short, absolute positions; refcoco+: no location
    words (its collection rule); refcocog: longer, with relations to another object."""
    o, others = objs[t], [x for i, x in enumerate(objs) if i != t]
    c, s = o["colour"], o["shape"]
    out = [f"{c} {s}"]
    if all(x["shape"] != s for x in others):
        out.append(f"the {s}")
    if all(x["colour"] != c for x in others):
        out.append(f"{c} one" if style == "refcoco" else f"the {c} object")
    m = 0.5 * o["r"]
    words = [("left", "cx", -1), ("right", "cx", 1), ("top", "cy", -1), ("bottom", "cy", 1)]
    if style == "refcoco":
        out += [f"{c} {s} on the {wd}" for wd, k, sg in words if _extreme(objs, t, k, sg, m)]
        out += [f"{wd} {s}" for wd, k, sg in words if _extreme(objs, t, k, sg, m)]
    elif style == "refcocog":
        out = [f"the {c} {s} in the picture"]
        for x in others:
            rel = [("to the left of", x["cx"] - o["cx"]), ("to the right of", o["cx"] - x["cx"]),
                   ("above", x["cy"] - o["cy"]), ("below", o["cy"] - x["cy"])]
            word, gap = max(rel, key=lambda p: p[1])
            if gap > m:
                out.append(f"a {c} {s} {word} the {x['colour']} {x['shape']}")
    else:  # refcoco+: appearance only
        out += [f"{c} {s} next to the {x['colour']} {x['shape']}" for x in others]
    return out


LOCATION_WORDS = frozenset({"left", "right", "top", "bottom", "above", "below"})


def expression_kind(query: str) -> str:
    """What an :func:`expressions` template asks the reader to use: "location" (a position or relation word),
    "shape only" ("the star"), "colour only" ("red one", "the red object") or "colour and shape" ("red star", with
    or without "next to ..." / "in the picture")."""
    words = query.lower().split()
    if LOCATION_WORDS & set(words):
        return "location"
    if len(words) == 2 and words[0] == "the":
        return "shape only"
    if words[-1] in ("one", "object"):
        return "colour only"
    return "colour and shape"


def _split_of(rng: np.random.Generator, n: int, shares: dict[str, float]) -> list[str]:
    if n < len(shares):
        raise ValueError(f"need at least {len(shares)} images to fill the splits {list(shares)}, got {n}")
    counts = {k: max(1, int(round(v * n))) for k, v in shares.items() if k != "train"}
    counts["train"] = n - sum(counts.values())
    if counts["train"] < 1:
        raise ValueError(f"{n} images leave no training image for splits {list(shares)}")
    labels = [k for k in shares for _ in range(counts[k])]
    return [labels[i] for i in rng.permutation(n)]


def write_refer_world(
    root: str, n_images: int = 12, seed: int = 0, size: tuple[int, int] = (112, 112),
    position_gradient: float = 0.0, max_objects: int = 3, datasets: Sequence[str] = tuple(REFER_DATASETS),
) -> dict[str, Any]:
    """Write a REFER folder at ``root``; returns counts {"images", <dataset>: {"refs", "sentences", "splits"}}."""
    rng = np.random.default_rng(seed)
    w, h = int(size[0]), int(size[1])
    image_dir = os.path.join(root, "images", "mscoco", "images", "train2014")
    images, anns, scenes = [], [], []
    for i in range(n_images):
        image_id = 100000 + i
        objs = _layout(rng, w, h, int(rng.integers(1, max_objects + 1)))
        fname = "COCO_train2014_%012d.jpg" % image_id
        _draw(rng, (w, h), objs, position_gradient, os.path.join(image_dir, fname))
        images.append({"id": image_id, "file_name": fname, "height": h, "width": w})
        for k, o in enumerate(objs):
            xs, ys = [p[0] for p in o["poly"]], [p[1] for p in o["poly"]]
            o["ann_id"] = image_id * 10 + k
            anns.append({
                "id": o["ann_id"], "image_id": image_id, "category_id": SHAPES.index(o["shape"]) + 1, "iscrowd": 0,
                "segmentation": [[v for p in o["poly"] for v in p]],
                "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
                "area": float(0.5 * abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1)))),
            })
        scenes.append((image_id, objs))
    split_by_scheme = {scheme: _split_of(rng, n_images, shares) for scheme, shares in REFER_SPLITS.items()}
    summary: dict[str, Any] = {"images": n_images, "annotations": len(anns)}
    for dataset in datasets:
        scheme = REFER_DATASETS[dataset]
        refs, sent_id = [], 0
        for (image_id, objs), split in zip(scenes, split_by_scheme[scheme]):
            for t, o in enumerate(objs):
                cands = expressions(objs, t, dataset)
                pick = rng.choice(len(cands), size=min(len(cands), int(rng.integers(1, 4))), replace=False)
                sents = []
                for j in sorted(pick):
                    sents.append({"tokens": cands[j].split(), "raw": cands[j], "sent_id": sent_id, "sent": cands[j]})
                    sent_id += 1
                refs.append({
                    "image_id": image_id, "split": split, "sentences": sents,
                    "file_name": "COCO_train2014_%012d_%d.jpg" % (image_id, o["ann_id"]),
                    "category_id": SHAPES.index(o["shape"]) + 1, "ann_id": o["ann_id"],
                    "sent_ids": [s["sent_id"] for s in sents], "ref_id": len(refs),
                })
        os.makedirs(os.path.join(root, dataset), exist_ok=True)
        with open(os.path.join(root, dataset, f"refs({scheme}).p"), "wb") as f:
            pickle.dump(refs, f, protocol=2)
        with open(os.path.join(root, dataset, "instances.json"), "w") as f:
            json.dump({"images": images, "annotations": anns, "categories": CATEGORIES}, f)
        splits: dict[str, int] = {}
        for r in refs:
            splits[r["split"]] = splits.get(r["split"], 0) + len(r["sentences"])
        summary[dataset] = {"refs": len(refs), "sentences": sent_id, "splits": splits}
    return summary


def _shape(label: str, pts: Sequence[tuple[float, float]]) -> dict:
    return {"label": label, "points": [list(p) for p in pts], "group_id": None, "shape_type": "polygon", "flags": {}}


def write_reasonseg_world(
    root: str, n_per_split: int = 4, seed: int = 0, size: tuple[int, int] = (112, 112),
    position_gradient: float = 0.0, p_ignore: float = 0.3, p_flag: float = 0.15, p_multi: float = 0.2,
    splits: Sequence[str] = ("train", "val", "test"),
) -> dict[str, Any]:
    """Write LISA's ReasonSeg layout at ``root``; returns per-split counts of samples and shape kinds."""
    rng = np.random.default_rng(seed)
    w, h = int(size[0]), int(size[1])
    summary: dict[str, Any] = {}
    for split in splits:
        counts = {"samples": 0, "ignore_shapes": 0, "flag_shapes": 0, "multi_part": 0}
        for i in range(n_per_split):
            multi = bool(rng.random() < p_multi)
            objs = _layout(rng, w, h, int(rng.integers(2 if multi else 1, 4)), repeat_shape=multi)
            tgt = objs[0]
            same = [o for o in objs if o["shape"] == tgt["shape"]]
            use = USES[tgt["shape"]][int(rng.integers(2))]
            if multi and len(same) > 1:
                targets, texts = same, [f"every object that could serve as {use}",
                                        f"Which objects in this picture could serve as {use}?"]
                counts["multi_part"] += 1
            else:
                c = f"{tgt['colour']} " if len(same) > 1 else ""
                targets, texts = [tgt], [f"the {c}object that could serve as {use}",
                                         f"What {c}thing in this picture could serve as {use}?"]
            stem = f"synth_{split}_{i:04d}"
            _draw(rng, (w, h), objs, position_gradient, os.path.join(root, split, stem + ".jpg"))
            shapes = [_shape("target", o["poly"]) for o in targets]
            if rng.random() < p_ignore:  # an ambiguous rim of the target, excluded from the metric
                x, y, a = tgt["cx"] + tgt["r"], tgt["cy"], 0.35 * tgt["r"]
                shapes.append(_shape("ignore", [(x - a, y - a), (x + a, y - a), (x + a, y + a), (x - a, y + a)]))
                counts["ignore_shapes"] += 1
            if rng.random() < p_flag:  # LISA's deprecated annotations: loaders must skip these
                x, y = rng.uniform(0, w), rng.uniform(0, h)
                shapes.append(_shape("flag", [(x, y), (min(x + 10, w), y), (x, min(y + 10, h))]))
                counts["flag_shapes"] += 1
            is_sentence = bool(rng.random() < 0.5)  # LISA: the queries are full sentences, or phrases
            texts = texts[::-1] if is_sentence else texts
            text: Any = texts if rng.random() < 0.8 else texts[0]  # LISA's text is a list or a string
            anno = {"text": text, "is_sentence": is_sentence, "shapes": shapes,
                    "imagePath": stem + ".jpg", "imageHeight": h, "imageWidth": w}
            with open(os.path.join(root, split, stem + ".json"), "w") as f:
                json.dump(anno, f)
            counts["samples"] += 1
        summary[split] = counts
    return summary
