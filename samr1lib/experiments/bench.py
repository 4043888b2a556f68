"""Benchmarks: ``python -m samr1lib.bench reward`` and ``python -m samr1lib.bench learning``.

``reward`` times the SAM2 reward provider for GRPO groups of G completions that share one image,
side by side in one run, on the same inputs:
- batched: one ``set_image`` per group, every prompt of the group decoded in one ``predict`` call
  (``SAM2Segmenter.segment``, what the reward uses);
- naive: ``set_image`` + ``predict`` for every completion (what the peers' reward code does).
It checks that both paths give the same masks and prints the speed-up ratio on its last line.

``learning`` runs the toy world (samr1lib.experiments.toy) for one seed: warm start, GRPO with the ``toy`` preset
(the paper's objective, GrabCut masks), greedy evaluation on the 512 held-out images; prints mean tier
reward, gIoU, cIoU and parse-failure rate before and after GRPO, and ends with
``change in mean tier: +X.XX``. ``--control shuffled`` runs the same with the rewards permuted across
the completions of each batch (the signal destroyed, its distribution kept).

``localisation`` asks the question under the learning benchmark: does supervised training on EXACT boxes
make the tiny policy localise at all (samr1lib.experiments.probes.localisation_probe)? It prints held-out box IoU, mean
tier, the correlation of predicted with GT box centres (about 0: the answers ignore the image) and the
completion loss with each answer's own image vs another's (equal: the answers do not depend on the image).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from dataclasses import dataclass

import numpy as np
import torch

from ..metrics import mask_iou
from ..segmenters import SegPrompt
from ..segmenters.sam2_backend import SAM2Segmenter
from ..view.plots import training_curves
from .ablations import variant_name
from .probes import localisation_probe
from .toy import default_root, run_variant


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


def run_reward_bench(
    config: str = "sam2.1_hiera_t", image_size: int | None = None, group_size: int = 8, groups: int = 2,
    height: int = 480, width: int = 640, device: str = "cpu", seed: int = 0, log=print, segmenter=None,
) -> RewardBenchResult:
    """Batched vs per-completion SAM2 on the same groups (``segmenter``: an already built SAM2Segmenter)."""
    seg = segmenter or SAM2Segmenter(config=config, checkpoint=None, device=device, image_size=image_size, seed=seed)
    items = make_group_inputs(groups, group_size, height, width, seed)
    seg.segment(*items[0])  # warm-up: first-call allocations are not what we measure

    def timed(fn):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        masks = [fn(img, prompts) for img, prompts in items]
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0, masks

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


def _timed(device: str, fn, items):
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    masks = [fn(img, prompts) for img, prompts in items]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0, masks


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


def learning_table(result: dict) -> str:
    """The before/after table of one :func:`samr1lib.toy.run_variant` result (markdown)."""
    b, a = result["before"], result["after"]
    lines = ["| held-out (512) | warm start | after GRPO | change |", "|---|---:|---:|---:|"]
    for key, label, fmt in (("mean_tier", "mean tier (Eq. 5, 0-4)", "{:.3f}"), ("gIoU", "gIoU", "{:.3f}"),
                            ("cIoU", "cIoU", "{:.3f}"), ("parse_failure_rate", "parse-failure rate", "{:.3f}"),
                            ("mean_box_iou", "mean box IoU", "{:.3f}")):
        lines.append(f"| {label} | {fmt.format(b[key])} | {fmt.format(a[key])} | {a[key] - b[key]:+.3f} |")
    return "\n".join(lines)


def learning_main(args) -> int:
    out = args.out or default_root(args.scale)
    overrides = list(args.overrides) + ([f"max_steps={args.steps}"] if args.steps else [])
    name = variant_name(overrides) + ("" if args.control == "none" else f"_{args.control}")
    t0 = time.time()
    res = run_variant(out, seed=args.seed, name=name, overrides=overrides, control=args.control, scale=args.scale)
    print(f"{args.scale} scale, {out}, seed {args.seed}, control {args.control}: {res['steps']} GRPO steps "
          f"(warm start {res['seconds']['warm_start']:.0f} s, GRPO {res['seconds']['grpo']:.0f} s, "
          f"this call {time.time() - t0:.0f} s; {res.get('torch_threads', '?')} torch CPU threads)")
    fig = training_curves({f"seed {args.seed} ({args.control})": [res["metrics"]]},
                          Path(res["metrics"]).parent / "curves.png",
                          keys={"rewards/segmentation_reward/mean": "segmentation reward (tier, sampled)",
                                "seg/mean_iou": "IoU of rollout masks", "kl": "KL to the reference"},
                          title="toy world GRPO (training rollouts, T = 1)")
    print(f"curves: {fig}")
    print(learning_table(res))
    print(f"change in mean tier: {res['change_in_mean_tier']:+.2f}")
    return 0


def _policy_sizes(pairs: list[str]) -> dict[str, int]:
    sizes = {}
    for kv in pairs:
        key, sep, value = kv.partition("=")
        if not sep or not value.strip().isdigit():
            raise SystemExit(f"policy size {kv!r}: expected key=positive integer, e.g. hidden_size=128")
        sizes[key.strip()] = int(value)
    return sizes


def localisation_main(args) -> int:
    policy = _policy_sizes(args.policy)
    tag = "_".join([f"steps{args.steps}", f"obj{args.max_objects}", f"grad{args.position_gradient:g}",
                    f"seed{args.seed}", *(f"{k}{v}" for k, v in sorted(policy.items()))])
    out = args.out or f"runs/localisation/{tag}"
    res = localisation_probe(out, steps=args.steps, max_objects=args.max_objects,
                             position_gradient=args.position_gradient, seed=args.seed, policy=policy,
                             n_train_images=args.train_images, n_heldout=args.heldout)
    print(f"{out}: exact-box SFT, {res['sft_steps']} steps of {res['asked']['batch_size']} on "
          f"{res['n_train_rows']} expressions "
          f"({res['sft_seconds']:.0f} s, {res['torch_threads']} torch CPU threads), policy {res['policy']}")
    print(f"world: up to {res['max_objects']} shape(s) per image, position gradient {res['position_gradient']:g}; "
          f"held-out {res['n']} images")
    print("| held-out | value |\n|---|---:|")
    for key in ("mean_box_iou", "mean_tier", "gIoU", "parse_failure_rate", "corr_x", "corr_y"):
        print(f"| {key} | {res[key]:.3f} |")
    print(f"held-out completion loss with each answer's own image {res['loss_own_image']:.4f}, with another "
          f"image {res['loss_other_image']:.4f} (equal: the answers ignore the image)")
    print(f"box-centre correlation with the GT: x {res['corr_x']:+.2f}, y {res['corr_y']:+.2f} (0: image-blind)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samr1lib.bench", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("reward", help="batched vs per-completion SAM2 reward, side by side")
    r.add_argument("--config", default="sam2.1_hiera_t", help="SAM2 config name (default: hiera-tiny)")
    r.add_argument("--image-size", type=int, default=None, help="SAM2 input resolution (default 1024)")
    r.add_argument("--group-size", "-G", type=int, default=8, help="completions per image (SAM-R1: G = 8)")
    r.add_argument("--groups", type=int, default=2, help="number of groups (distinct images)")
    r.add_argument("--height", type=int, default=480)
    r.add_argument("--width", type=int, default=640)
    r.add_argument("--device", default="cpu")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--cache", action="store_true",
                   help="the feature cache: cold vs warm vs the batched path, side by side (samr1lib.segmenters.cache)")
    r.add_argument("--no-compile", action="store_true", help="--cache: keep the mask decoder eager")
    lr = sub.add_parser("learning", help="toy world: warm start, GRPO, held-out mean tier before and after")
    lr.add_argument("--seed", type=int, default=0)
    lr.add_argument("--control", default="none", choices=["none", "shuffled"])
    lr.add_argument("--scale", default="toy", choices=["toy", "smoke"],
                    help="toy: the benchmark; smoke: the same pipeline in seconds (wiring only, not a result)")
    lr.add_argument("--out", default=None, help="root folder (world shared by seeds; cached steps reused); default runs/toy_bench")
    lr.add_argument("--steps", type=int, default=300,
                    help="GRPO steps (default 300; the toy preset's 100 is what the ablations run)")
    lr.add_argument("overrides", nargs="*", help="key=value overrides of the toy preset")
    lo = sub.add_parser("localisation", help="exact-box SFT of the tiny policy: does it localise at all?")
    lo.add_argument("--steps", type=int, default=500, help="SFT steps of 16 (default 500)")
    lo.add_argument("--max-objects", type=int, default=1,
                    help="shapes per image, up to (default 1: the query need not be read)")
    lo.add_argument("--position-gradient", type=float, default=0.5, help="the toy world's position cue (default 0.5)")
    lo.add_argument("--seed", type=int, default=0)
    lo.add_argument("--train-images", type=int, default=1000)
    lo.add_argument("--heldout", type=int, default=128)
    lo.add_argument("--out", default=None,
                    help="folder (default runs/localisation/<settings>); a finished probe is read back")
    lo.add_argument("policy", nargs="*", help="key=value sizes of the tiny policy, e.g. hidden_size=128 num_layers=4")
    args = parser.parse_args(argv)
    if args.command == "localisation":
        return localisation_main(args)
    if args.command == "learning":
        return learning_main(args)
    if args.command == "reward" and args.cache:
        res = run_cache_bench(args.config, args.image_size, args.group_size, args.groups, args.height, args.width,
                              args.device, args.seed, compile_decoder=not args.no_compile)
        print(f"speed-up of warm cache over batched at G={res.group_size}: {res.speedup:.2f}x")
        return 0 if res.cold_equals_warm else 1
    if args.command == "reward":
        res = run_reward_bench(args.config, args.image_size, args.group_size, args.groups,
                               args.height, args.width, args.device, args.seed)
        if not res.masks_agree:
            print(f"ERROR: the batched and naive paths disagree (lowest IoU {res.min_iou:.5f})")
        print(f"speed-up of batched over naive at G={res.group_size}: {res.speedup:.2f}x")
        return 0 if res.masks_agree else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
