"""The policy dataset: records -> the HF dataset the GRPO trainer reads (TRL's conversational VLM format)."""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
from typing import Sequence

import numpy as np
from PIL import Image

from ..frames import scale_box
from ..prompt import POLICY_FRAME, build_messages
from .records import open_image

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


