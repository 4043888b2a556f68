"""Benchmarks: ``python -m samr1lib.bench reward | learning | base | looseness | localisation | ablations``.

``reward`` times the SAM2 reward provider for GRPO groups of G completions that share one image,
side by side in one run, on the same inputs:
- batched: one ``set_image`` per group, every prompt of the group decoded in one ``predict`` call
  (``SAM2Segmenter.segment``, what the reward uses);
- naive: ``set_image`` + ``predict`` for every completion (what the peers' reward code does).
It checks that both paths give the same masks and prints the speed-up ratio on its last line.

``learning`` runs the toy world (samr1lib.experiments.toy) for one seed: warm start, GRPO with the ``toy`` preset
(the paper's objective, GrabCut masks), greedy evaluation on the 512 held-out images; prints mean tier
reward, gIoU, cIoU, parse-failure rate and mean box IoU before and after GRPO, and ends with
``change in mean box IoU: +X.XX`` and ``change in mean tier: +X.XX``; before them, on the held-out images with
2-3 objects, how often the answers point at the named object, by the kind of expression (location, colour, shape;
samr1lib.experiments.probes.object_picks), and how loose the boxes are. ``--control shuffled`` runs the same with
the rewards permuted across the completions of each batch (the signal destroyed, its distribution kept).

``base`` builds the toy base model that the learning benchmark warm-starts from (samr1lib.experiments.base: dense
vision pretraining, then grounding) and prints its held-out box IoU, box-centre correlation and the loss with each
answer's own image vs another's; ``base --heldout`` probes the committed base on the toy world's held-out set
(the same figures, the correlation on one-object images, and the object picks by kind of expression).

``looseness`` prints what GrabCut, the toy's segmenter, makes of GT boxes enlarged and shifted by known amounts
(samr1lib.experiments.probes.looseness_probe): the mean tier the reward would give them. The warm start's boxes are
as loose as the reward can see (samr1lib.experiments.warm_start.WARM_START).

``ablations`` trains the ablations' runs (every variant x seed) side by side in several processes, for a machine
with more cores than one run uses; the notebooks 04-08 then read them back (samr1lib.experiments.ablations.run_batch).

``localisation`` asks the question under the learning benchmark: does supervised training on EXACT boxes
make the tiny policy localise at all (samr1lib.experiments.probes.localisation_probe)? It prints held-out box IoU, mean
tier, the correlation of predicted with GT box centres (about 0: the answers ignore the image) and the
completion loss with each answer's own image vs another's (equal: the answers do not depend on the image).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..view.plots import training_curves
from .ablations import ABLATIONS, run_batch, variant_name
from .base import BaseRecipe, build_base
from ..data.toy_world import heldout_objects, heldout_records
from .probes import base_heldout_probe, localisation_probe, looseness_probe, object_picks
from .reward_bench import run_cache_bench, run_reward_bench
from .toy import box_looseness, default_root, ensure_world, heldout_grid, run_variant, samples, toy_base, warm_start_kind


def learning_table(result: dict) -> str:
    """The before/after table of one :func:`samr1lib.toy.run_variant` result (markdown)."""
    b, a = result["before"], result["after"]
    lines = ["| held-out (512) | warm start | after GRPO | change |", "|---|---:|---:|---:|"]
    for key, label, fmt in (("mean_tier", "mean tier (Eq. 5, 0-4)", "{:.3f}"), ("gIoU", "gIoU", "{:.3f}"),
                            ("cIoU", "cIoU", "{:.3f}"), ("parse_failure_rate", "parse-failure rate", "{:.3f}"),
                            ("mean_box_iou", "mean box IoU", "{:.3f}")):
        lines.append(f"| {label} | {fmt.format(b[key])} | {fmt.format(a[key])} | {a[key] - b[key]:+.3f} |")
    return "\n".join(lines)


def picks_table(columns: dict[str, dict]) -> str:
    """Markdown: the share of answers on the named object (:func:`samr1lib.experiments.probes.object_picks`), per
    expression kind, one column per evaluation, beside the share a random pick would have."""
    first = next(iter(columns.values()))
    lines = [f"| held-out images with 2-3 objects: expression | rows | chance | {' | '.join(columns)} |",
             "|---|---:|---:|" + "---:|" * len(columns)]
    for kind, row in first.items():
        shares = " | ".join(f"{100 * c[kind]['on_target']:.0f} %" for c in columns.values())
        lines.append(f"| {kind} | {row['n']} | {100 * row['chance']:.0f} % | {shares} |")
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
    eval_dir = Path(res["metrics"]).parent / "eval"
    world = ensure_world(out, args.scale)
    grid = heldout_grid(eval_dir, heldout_records(world), eval_dir.parent / "heldout_grid.png",
                        title=f"seed {args.seed} after GRPO, held-out, best / worst by IoU")
    print(f"held-out best / worst answers: {grid}")
    print(learning_table(res))
    warm_eval = Path(out) / f"seed{args.seed}" / f"eval_{warm_start_kind(out, args.seed, overrides, args.scale)}"
    objects = heldout_objects(world)  # read once (the world's annotations), used for both evaluations
    print(picks_table({name: object_picks(samples(d), objects)
                       for name, d in (("warm start", warm_eval), ("after GRPO", eval_dir))}))
    before, after = (box_looseness(samples(d)) for d in (warm_eval, eval_dir))
    print(f"boxes: median side {before['median_side_ratio']:.2f}x -> {after['median_side_ratio']:.2f}x the target's; "
          f"holding the target's centre {100 * before['holds_centre']:.1f} % -> {100 * after['holds_centre']:.1f} %")
    print(f"change in mean box IoU: {res['after']['mean_box_iou'] - res['before']['mean_box_iou']:+.2f}")
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


def base_main(args) -> int:
    if args.heldout:
        policy = args.base or toy_base()
        t0 = time.time()
        res = base_heldout_probe(policy, default_root("toy"))
        print(f"{policy} on the toy world's held-out set ({res['n']} images, greedy, full prompt; "
              f"{time.time() - t0:.0f} s)")
        print("| held-out | value |\n|---|---:|")
        for key in ("mean_tier", "gIoU", "mean_box_iou", "parse_failure_rate", "corr_x", "corr_y", "loss_own_image",
                    "loss_other_image"):
            print(f"| {key} | {res[key]:.3f} |")
        one = res["one_object_images"]
        print(f"box-centre correlation on the {one['n']} images with one object: x {one['corr_x']:+.2f}, "
              f"y {one['corr_y']:+.2f}; which object the answers point at on the others:")
        print(picks_table({"on the named object": res["object_picks"]}))
        print(f"box-centre correlation with the GT: x {res['corr_x']:+.2f}, y {res['corr_y']:+.2f}; mean box IoU "
              f"{res['mean_box_iou']:.2f}")
        return 0
    recipe = BaseRecipe(seed=args.seed)
    info = build_base(args.out, recipe)
    full = info["probe_full_prompt"]
    print(f"{args.out}: toy base, recipe {info['recipe_key']}, {info['num_parameters']:,} parameters, built in "
          f"{sum(info['seconds'].values()):.0f} s ({info['torch_threads']} torch CPU threads)")
    print("| held-out scenes (full prompt) | value |\n|---|---:|")
    for key in ("mean_box_iou", "answered", "corr_x", "corr_y", "loss_own_image", "loss_other_image"):
        print(f"| {key} | {full[key]:.3f} |")
    print(f"box-centre correlation with the GT: x {full['corr_x']:+.2f}, y {full['corr_y']:+.2f}; mean box IoU "
          f"{full['mean_box_iou']:.2f}")
    return 0


def _reward_args(sub) -> None:
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


def _learning_args(sub) -> None:
    lr = sub.add_parser("learning", help="toy world: warm start, GRPO, held-out mean tier before and after")
    lr.add_argument("--seed", type=int, default=0)
    lr.add_argument("--control", default="none", choices=["none", "shuffled"])
    lr.add_argument("--scale", default="toy", choices=["toy", "smoke"],
                    help="toy: the benchmark; smoke: the same pipeline in seconds (wiring only, not a result)")
    lr.add_argument("--out", default=None,
                    help="root folder (world shared by seeds; cached steps reused); default runs/toy_bench")
    lr.add_argument("--steps", type=int, default=300,
                    help="GRPO steps (default 300; the toy preset's 100 is what the ablations run)")
    lr.add_argument("overrides", nargs="*", help="key=value overrides of the toy preset")


def _localisation_args(sub) -> None:
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


def _base_args(sub) -> None:
    b = sub.add_parser("base", help="build the toy base model (a tiny Qwen2.5-VL that sees) and probe it")
    b.add_argument("--out", default="runs/toy_base", help="where to save it (the committed one: samr1lib/"
                                                          "experiments/toy_base)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--heldout", action="store_true",
                   help="build nothing: probe the base in --base on the toy world's 512 held-out images")
    b.add_argument("--base", default=None, help="--heldout: the base to probe (default: the committed toy base)")


def _looseness_args(sub) -> None:
    lo = sub.add_parser("looseness", help="toy world: what GrabCut makes of loose boxes (the warm start's looseness)")
    lo.add_argument("--images", type=int, default=200, help="held-out expressions to use (default 200)")
    lo.add_argument("--out", default=None, help="the toy runs' root holding world/ (default runs/toy_bench)")


def looseness_main(args) -> int:
    world = ensure_world(args.out or default_root("toy"))
    records = heldout_records(world)[: args.images]
    t0 = time.time()
    rows = looseness_probe(records)
    print(f"{world}: {len(records)} held-out expressions, GrabCut (3 iterations) on each GT box enlarged about a "
          f"centre moved by N(0, shift x side), the point at that centre ({time.time() - t0:.0f} s)")
    print("| enlarge (sides) | shift | mean tier (Eq. 5) | mask IoU | box IoU |\n|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['enlarge']:.1f} | {r['shift']:.2f} | {r['mean_tier']:.2f} | {r['mask_iou']:.3f} | {r['box_iou']:.3f} |")
    return 0


def _ablations_args(sub) -> None:
    a = sub.add_parser("ablations", help="train the ablations' runs in parallel processes (the notebooks read them)")
    a.add_argument("names", nargs="*", default=[n for n in ABLATIONS if n != "related_systems"],
                   help="ablations to run (default: the five of notebooks 04-08)")
    a.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    a.add_argument("--scale", default="toy", choices=["toy", "smoke"])
    a.add_argument("--out", default=None, help="the runs' root (default runs/toy_bench, the notebooks' default)")
    a.add_argument("--workers", type=int, default=2, help="processes side by side")
    a.add_argument("--threads", type=int, default=1, help="torch CPU threads per process")


def ablations_main(args) -> int:
    t0 = time.time()
    runs = run_batch(args.names, args.seeds, args.scale, args.out or default_root(args.scale), args.workers,
                     args.threads)
    print(f"{len(runs)} runs of {', '.join(args.names)} (seeds {args.seeds}) ready in {time.time() - t0:.0f} s "
          f"with {args.workers} processes x {args.threads} torch threads")
    return 0


def reward_main(args) -> int:
    if args.cache:
        res = run_cache_bench(args.config, args.image_size, args.group_size, args.groups, args.height, args.width,
                              args.device, args.seed, compile_decoder=not args.no_compile)
        print(f"speed-up of warm cache over batched at G={res.group_size}: {res.speedup:.2f}x")
        return 0 if res.cold_equals_warm else 1
    res = run_reward_bench(args.config, args.image_size, args.group_size, args.groups,
                           args.height, args.width, args.device, args.seed)
    if not res.masks_agree:
        print(f"ERROR: the batched and naive paths disagree (lowest IoU {res.min_iou:.5f})")
    print(f"speed-up of batched over naive at G={res.group_size}: {res.speedup:.2f}x")
    return 0 if res.masks_agree else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samr1lib.bench", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_reward_args, _learning_args, _localisation_args, _base_args, _looseness_args, _ablations_args):
        add(sub)
    args = parser.parse_args(argv)
    return {"reward": reward_main, "learning": learning_main, "localisation": localisation_main,
            "base": base_main, "looseness": looseness_main, "ablations": ablations_main}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
