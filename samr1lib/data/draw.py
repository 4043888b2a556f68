"""The training draw (SAM-R1 §4.1: 3,000 RefCOCOg umd train expressions at random) and its manifest."""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy as np

from .records import need

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
        with open(need(manifest, "manifest")) as f:
            manifest = json.load(f)
    by_id = {(r.get("ref_id"), r.get("sent_id"), r.get("sample_id")): r for r in records}
    out = []
    for item in manifest["items"]:
        key = (item.get("ref_id"), item.get("sent_id"), item.get("sample_id"))
        if key not in by_id:
            raise ValueError(f"manifest item {item} is not among the {len(records)} records given")
        out.append(by_id[key])
    return out


