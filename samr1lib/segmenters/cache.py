"""A disk cache of SAM2 image features: SAM2 is frozen and the training images are fixed, so after the first epoch
(and in every ablation rerun on the same draw) the reward only decodes.

An entry holds what SAM2ImagePredictor.set_image leaves for the decoder: the image embedding (256 x s/16 x s/16)
and the two high-resolution feature maps (32 x s/4 x s/4, 64 x s/8 x s/8) for an s x s input, with the image's
original size. At s = 1024 that is 4,194,304 numbers, **8 MiB per image in bf16 (8,388,608 bytes plus a small
header), the same for hiera-tiny and hiera-large** (their decoders read the same shapes); the 3k RefCOCOg draw
(at most 3,000 distinct images) is at most ~23.4 GiB.

- Key: a content hash of the image's pixels, under a folder named after the model: the config, the checkpoint's
  content hash (or "random init" and its seed), the input size, the storage dtype and this format's version.
- Files are safetensors, written to a private temporary name and renamed into place (atomic on one filesystem), so
  several processes can fill the cache at once and none ever reads a torn file.
- A bad entry (truncated, unreadable, another model's, wrong shapes, non-finite values) is detected, deleted and
  recomputed, never used. The folder is capped (``max_bytes``): the least recently used entries go first.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["FORMAT", "FeatureCache", "feature_shapes", "file_digest", "model_key"]

FORMAT = "samr1-sam2-features-v1"
_NAMES = ("image_embed", "high_res_0", "high_res_1")


def feature_shapes(input_size: int) -> dict[str, tuple[int, ...]]:
    """What SAM2's decoder reads for an ``input_size`` x ``input_size`` input (strides 16, 4, 8)."""
    s = int(input_size)
    return {"image_embed": (1, 256, s // 16, s // 16), "high_res_0": (1, 32, s // 4, s // 4),
            "high_res_1": (1, 64, s // 8, s // 8)}


def file_digest(path: str | os.PathLike, chunk: int = 1 << 24) -> str:
    """sha256 of a file's content (a checkpoint of ~900 MB takes a few seconds, once)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def model_key(config: str, checkpoint: str | None, input_size: int, dtype: torch.dtype, seed: int = 0) -> str:
    """The folder name that ties entries to one model: features of another model are never read."""
    weights = f"sha256:{file_digest(checkpoint)}" if checkpoint else f"random-init-seed{seed}"
    text = "|".join([FORMAT, os.path.basename(config), weights, str(int(input_size)), str(dtype)])
    return f"{os.path.basename(config).replace('.yaml', '')}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


class FeatureCache:
    """``load(image_key)`` / ``save(image_key, features, orig_hw)`` of one model's features in ``root``."""

    def __init__(self, root: str | os.PathLike, key: str, input_size: int, device: str = "cpu",
                 dtype: torch.dtype = torch.bfloat16, max_bytes: int = 64 * 2**30):
        self.dir = Path(root) / key
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key, self.device, self.dtype, self.max_bytes = key, str(device), dtype, int(max_bytes)
        self.shapes = feature_shapes(input_size)
        self.hits = self.misses = self.bad = self.evicted = 0
        self._bytes = sum(p.stat().st_size for p in self.dir.rglob("*.safetensors"))

    def path(self, image_key: str) -> Path:
        return self.dir / image_key[:2] / f"{image_key}.safetensors"

    def load(self, image_key: str) -> tuple[dict[str, Any], tuple[int, int]] | None:
        """(features on this cache's device, original (h, w)), or None (a miss, or a bad entry now deleted)."""
        from safetensors import SafetensorError, safe_open

        path = self.path(image_key)
        if not path.exists():
            self.misses += 1
            return None
        try:
            with safe_open(str(path), framework="pt", device=self.device) as f:
                meta = f.metadata() or {}
                if meta.get("format") != FORMAT or meta.get("model") != self.key:
                    raise ValueError(f"written for {meta.get('model')!r}, not {self.key!r}")
                tensors = {name: f.get_tensor(name) for name in _NAMES}
            for name, t in tensors.items():
                if tuple(t.shape) != self.shapes[name] or t.dtype != self.dtype or not torch.isfinite(t).all():
                    raise ValueError(f"{name}: shape {tuple(t.shape)} dtype {t.dtype}, expected {self.shapes[name]}")
            orig_hw = tuple(int(v) for v in meta["orig_hw"].split(","))
        except (SafetensorError, OSError, ValueError, KeyError, RuntimeError):  # a bad entry: never used
            self.bad += 1
            path.unlink(missing_ok=True)
            return None
        _touch(path)  # recently used: evicted last
        self.hits += 1
        feats = {"image_embed": tensors["image_embed"], "high_res_feats": [tensors["high_res_0"], tensors["high_res_1"]]}
        return feats, orig_hw

    def save(self, image_key: str, features: dict[str, Any], orig_hw: tuple[int, int]) -> None:
        """Write one entry atomically (a private temporary file renamed into place), then keep the folder under its
        cap."""
        from safetensors.torch import save_file

        tensors = {"image_embed": features["image_embed"], "high_res_0": features["high_res_feats"][0],
                   "high_res_1": features["high_res_feats"][1]}
        tensors = {k: v.detach().to(self.dtype).contiguous().cpu() for k, v in tensors.items()}
        for name, t in tensors.items():
            if tuple(t.shape) != self.shapes[name]:  # our own bug: the segmenter's input size is not the cache's
                raise ValueError(f"SAM2 feature {name} has shape {tuple(t.shape)}, the cache expects {self.shapes[name]}")
        path = self.path(image_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "model": self.key,
                                               "orig_hw": f"{int(orig_hw[0])},{int(orig_hw[1])}"})
        os.replace(tmp, path)
        _touch(path)
        self._bytes += path.stat().st_size
        if self._bytes > self.max_bytes:
            self._evict()

    def _evict(self) -> None:
        files = sorted(self.dir.rglob("*.safetensors"), key=lambda p: p.stat().st_mtime_ns)
        total = sum(p.stat().st_size for p in files)
        for p in files:
            if total <= 0.9 * self.max_bytes:
                break
            size = p.stat().st_size
            p.unlink(missing_ok=True)
            total -= size
            self.evicted += 1
        self._bytes = total

    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "bad": self.bad, "evicted": self.evicted,
                "bytes": self._bytes}


def bytes_per_image(input_size: int = 1024, dtype: torch.dtype = torch.bfloat16) -> int:
    """Payload of one entry (the header adds a few hundred bytes)."""
    return sum(int(np.prod(s)) for s in feature_shapes(input_size).values()) * torch.tensor([], dtype=dtype).element_size()


def _touch(path: Path) -> None:
    """Stamp ``path`` as used now, from the fine clock: the kernel's own file times tick coarsely (milliseconds), so
    two uses in one tick would tie and the least recently used could be evicted first (seen under CPU load)."""
    now = time.time_ns()
    os.utime(path, ns=(now, now))
