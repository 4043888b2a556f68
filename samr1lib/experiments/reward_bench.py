"""The SAM2 reward benchmarks: the batched reward path (one encoding per image, all of its prompts decoded
together) against the per-completion one, and the feature cache cold / warm against the batched path. Both compare
the paths' masks and time them side by side in one run (``python -m samr1lib.bench reward [--cache]``)."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..metrics import mask_iou
from ..segmenters import SegPrompt
from ..segmenters.sam2_backend import SAM2Segmenter

__all__ = ["RewardBenchResult", "CacheBenchResult", "make_group_inputs", "run_reward_bench", "run_cache_bench"]


@dataclass
class RewardBenchResult:
    batched_s: float
    naive_s: float
    groups: int
    group_size: int
    mismatch_pixels: int
    total_pixels: int
    min_iou: float  # lowest IoU between the two paths' masks of one completion

    @property
    def masks_agree(self) -> bool:
        """Same masks up to float rounding: batched matrix products may flip a pixel whose logit
        sits at the threshold, so agreement is IoU >= 0.999 for every completion."""
        return self.min_iou >= 0.999

    @property
    def speedup(self) -> float:
        return self.naive_s / self.batched_s


def make_group_inputs(groups: int, group_size: int, height: int, width: int, seed: int = 0):
    """Per group: one random-texture image with a rectangle, and G jittered box + point prompts."""
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(groups):
        img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        x1, y1 = rng.uniform(0.1, 0.4) * width, rng.uniform(0.1, 0.4) * height
        x2, y2 = x1 + rng.uniform(0.2, 0.5) * width, y1 + rng.uniform(0.2, 0.5) * height
        img[int(y1):int(y2), int(x1):int(x2)] = rng.integers(0, 256, 3, dtype=np.uint8)
        prompts = []
        for _ in range(group_size):
            j = rng.normal(0, 0.05, 4) * [width, height, width, height]
            bx1, by1, bx2, by2 = x1 + j[0], y1 + j[1], x2 + j[2], y2 + j[3]
            point = ((bx1 + bx2) / 2, (by1 + by2) / 2)
            prompts.append(SegPrompt(box=(bx1, by1, bx2, by2), points=(point,), labels=(1,)))
        items.append((img, prompts))
    return items


def _timed(device: str, fn, items):
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    masks = [fn(img, prompts) for img, prompts in items]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0, masks


def run_reward_bench(
    config: str = "sam2.1_hiera_t", image_size: int | None = None, group_size: int = 8, groups: int = 2,
    height: int = 480, width: int = 640, device: str = "cpu", seed: int = 0, log=print, segmenter=None,
) -> RewardBenchResult:
    """Batched vs per-completion SAM2 on the same groups (``segmenter``: an already built SAM2Segmenter)."""
    seg = segmenter or SAM2Segmenter(config=config, checkpoint=None, device=device, image_size=image_size, seed=seed)
    items = make_group_inputs(groups, group_size, height, width, seed)
    seg.segment(*items[0])  # warm-up: first-call allocations are not what we measure

    def timed(fn):
        return _timed(device, fn, items)

    before = seg.encode_count
    batched_s, batched = timed(seg.segment)
    batched_encodes = seg.encode_count - before
    before = seg.encode_count
    naive_s, naive = timed(seg.segment_naive)
    naive_encodes = seg.encode_count - before
    pairs = [(a, b) for ga, gb in zip(batched, naive) for a, b in zip(ga, gb)]
    mismatch = sum(int((a != b).sum()) for a, b in pairs)
    total = sum(a.size for a, _ in pairs)
    min_iou = min(mask_iou(a, b) for a, b in pairs)
    log(f"SAM2 {seg.config} (random init), image_size {image_size or 1024}, device {device}, "
        f"{groups} groups x G={group_size} completions, images {width}x{height}")
    log(f"  batched: {batched_s:8.3f} s  ({batched_encodes} image encodings)")
    log(f"  naive:   {naive_s:8.3f} s  ({naive_encodes} image encodings)")
    log(f"  masks: {mismatch} of {total} pixels differ; lowest IoU between the paths {min_iou:.5f}")
    return RewardBenchResult(batched_s, naive_s, groups, group_size, mismatch, total, min_iou)


@dataclass
class CacheBenchResult:
    batched_s: float  # no cache: one encoding per group
    cold_s: float  # cache on, empty: encode, store, decode
    warm_s: float  # cache on, filled: load, decode
    decode_s_per_prompt: float
    group_size: int
    lowest_iou_warm_vs_batched: float
    cold_equals_warm: bool
    bytes_per_image: int

    @property
    def speedup(self) -> float:
        return self.batched_s / self.warm_s


def run_cache_bench(config: str = "sam2.1_hiera_t", image_size: int | None = None, group_size: int = 8,
                    groups: int = 2, height: int = 480, width: int = 640, device: str = "cpu", seed: int = 0,
                    compile_decoder: bool = True, log=print) -> CacheBenchResult:
    """The same groups three ways, side by side: the batched path with no cache, the cache cold (encode + store),
    the cache warm (load + decode only); every path with the same (compiled, by default) mask decoder."""
    items = make_group_inputs(groups + 1, group_size, height, width, seed)
    warmup, items = items[0], items[1:]  # first-call allocations are not what we measure; not cached either
    with tempfile.TemporaryDirectory() as cache_dir:
        kw = dict(config=config, device=device, image_size=image_size, seed=seed, compile_decoder=compile_decoder)
        plain, cached = SAM2Segmenter(**kw), SAM2Segmenter(**kw, cache_dir=cache_dir)
        plain.segment(*warmup)
        cached.segment(*warmup)  # cold, then warm: each path's compilation and first-call allocations happen here
        cached.segment(*warmup)
        batched_s, batched = _timed(device, plain.segment, items)
        cold_s, cold = _timed(device, cached.segment, items)
        warm_s, warm = _timed(device, cached.segment, items)
        stats = cached.cache.stats()
        with torch.inference_mode(), plain._autocast():
            decode_s = _timed(device, lambda img, prompts: plain._decode(prompts), items[:1])[0] / group_size
    pairs = [(a, b) for ga, gb in zip(batched, warm) for a, b in zip(ga, gb)]
    lowest = min(mask_iou(a, b) for a, b in pairs)
    same = all((a == b).all() for ga, gb in zip(cold, warm) for a, b in zip(ga, gb))
    per_image = stats["bytes"] // (groups + 1)
    log(f"SAM2 {plain.config} (random init), input {image_size or 1024}, device {device}, {groups} groups x "
        f"G={group_size}, images {width}x{height}, {torch.get_num_threads()} torch threads, mask decoder "
        f"{'compiled' if compile_decoder else 'eager'}")
    log(f"  batched, no cache: {batched_s:8.3f} s  ({groups} encodings)")
    log(f"  cache cold:        {cold_s:8.3f} s  (encode, store in bf16, decode)")
    log(f"  cache warm:        {warm_s:8.3f} s  (load, decode; {stats['hits']} hits, 0 encodings)")
    log(f"  decode: {1000 * decode_s:.1f} ms per prompt; an entry is {per_image:,} bytes on disk")
    log(f"  masks: cold == warm {'exactly' if same else 'NOT exactly'}; lowest IoU warm vs batched {lowest:.5f} "
        "(the cache stores bf16 features)")
    return CacheBenchResult(batched_s, cold_s, warm_s, decode_s, group_size, lowest, same, per_image)
