"""``python -m samr1lib.evaluate``: one split, or ``diff`` of two runs, or ``select`` one checkpoint for every benchmark.

    python -m samr1lib.evaluate --policy PATH_OR_HUB_ID --dataset reasonseg --root DATA --split val --out DIR
    python -m samr1lib.evaluate diff RUN_A RUN_B [--out DIR]
    python -m samr1lib.evaluate select TRAIN_RUN --out DIR --val reasonseg:val --refer-root R --reasonseg-root R

Greedy by default; ``--segmenter sam2 --sam2-checkpoint sam2.1_hiera_large.pt`` for the real run; under
``accelerate launch --multi_gpu --num_processes 8 -m samr1lib.evaluate ...`` the samples split across processes.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..policy import HFPolicy, Policy, VLLMPolicy, load_policy
from ..segmenters import build_segmenter
from .diff import diff_markdown, diff_runs
from .run import SUITE, evaluate, load_split, markdown_table, process_state
from .select import METRICS, select_checkpoint, selection_table


def _model_args(p: argparse.ArgumentParser) -> None:
    """What every command that generates and segments takes."""
    p.add_argument("--segmenter", default="grabcut", choices=["grabcut", "sam2"])
    p.add_argument("--sam2-config", default="sam2.1_hiera_l")
    p.add_argument("--sam2-checkpoint", default=None)
    p.add_argument("--sam2-cache-dir", default=None,
                   help="keep SAM2's image features on disk (samr1lib.segmenters.cache): a second evaluation of the "
                        "same images, e.g. of another checkpoint, only decodes")
    p.add_argument("--device", default=None, help="default: this process's accelerator, else cpu")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N samples of each split only")
    p.add_argument("--size", type=int, default=840, help="the policy's image side (SAM-R1 §4.1: 840)")
    p.add_argument("--negative-points", action="store_true",
                   help="prompt for labelled fg/bg points too: for a policy trained with negative_points != none or "
                        "Seg-R1's cold start (evaluate on the prompt the policy was trained with)")


def _segmenter(args, device: str):
    if args.segmenter == "sam2":
        return build_segmenter("sam2", config=args.sam2_config, checkpoint=args.sam2_checkpoint, device=device,
                               cache_dir=args.sam2_cache_dir)
    return build_segmenter("grabcut")


def _split_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m samr1lib.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--policy", required=True, help="a local model directory or a hub id (Qwen/Qwen2.5-VL-7B-Instruct)")
    p.add_argument("--dataset", required=True, choices=["refcoco", "refcoco+", "refcocog", "reasonseg"])
    p.add_argument("--root", required=True, help="REFER data folder, or the ReasonSeg folder with train/ val/ test/")
    p.add_argument("--split", required=True)
    p.add_argument("--out", required=True, help="output folder (resumes if it holds a partial run)")
    _model_args(p)
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--vllm", action="store_true", help="generate with vLLM (GPU)")
    p.add_argument("--sod-metrics", action="store_true", help="add S_alpha, F_beta, E_phi, MAE (PySODMetrics)")
    p.add_argument("--vote", type=int, default=0, help="StAR majority voting over N sampled answers (implies --sample)")
    p.add_argument("--vote-iou", type=float, default=0.85, help="voting: mask IoU to join a cluster")
    p.add_argument("--vote-ratio", type=float, default=0.2, help="voting: minimum share of votes of a cluster")
    p.add_argument("--no-object-ratio", type=float, default=0.5, help="voting: share of no-object votes that wins")
    p.add_argument("--all-queries", action="store_true", help="ReasonSeg: one sample per query, not only the first")
    p.add_argument("--empty-score", type=float, default=1.0,
                   help="IoU of an empty GT with an empty prediction (LISA's convention: 1)")
    p.add_argument("--strict", action="store_true", help="a segmenter error raises instead of scoring the sample 0")
    return p


def split_main(argv: list[str]) -> int:
    args = _split_parser().parse_args(argv)
    records = load_split(args.dataset, args.root, args.split, args.all_queries)
    device = args.device or str(process_state().device)
    if args.vllm:
        policy: Policy = VLLMPolicy(args.policy, args.max_new_tokens, greedy=not args.sample,
                                    negative_points=args.negative_points)
    else:
        model, processor = load_policy(args.policy, device=device, dtype=args.dtype)
        policy = HFPolicy(model, processor, args.max_new_tokens, greedy=not (args.sample or args.vote),
                          negative_points=args.negative_points)
    t0 = time.time()
    vote_kwargs = dict(iou_threshold=args.vote_iou, min_vote_ratio=args.vote_ratio, no_object_ratio=args.no_object_ratio)
    summary = evaluate(records[: args.limit], policy, _segmenter(args, device), args.out, args.dataset, args.split,
                       args.batch_size, size=args.size, sod=args.sod_metrics, vote=args.vote,
                       vote_kwargs=vote_kwargs if args.vote else None, empty_score=args.empty_score,
                       strict=args.strict, report=getattr(records, "report", None))
    if summary is not None:
        print(markdown_table([summary]), end="")
        print(f"wrote {args.out}/samples.jsonl, summary.json, summary.md in {time.time() - t0:.1f} s")
    return 0


def diff_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m samr1lib.evaluate diff", description=diff_runs.__doc__.split("\n")[0])
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--out", default=None, help="default RUN_B/diff_vs_<RUN_A's name>")
    p.add_argument("--top", type=int, default=10, help="largest gains and losses to list")
    p.add_argument("--bootstrap", type=int, default=2000, help="paired bootstrap resamples")
    a = p.parse_args(argv)
    try:
        d = diff_runs(a.run_a, a.run_b, a.out, a.top, a.bootstrap)
    except ValueError as e:
        p.error(str(e))
    print(diff_markdown(d), end="")
    return 0


def _pair(text: str) -> tuple[str, str]:
    dataset, _, split = text.partition(":")
    if not split:
        raise argparse.ArgumentTypeError(f"{text!r}: expected DATASET:SPLIT, e.g. reasonseg:val")
    return dataset, split


def select_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m samr1lib.evaluate select", description=select_checkpoint.__doc__)
    p.add_argument("run_dir", help="a training run's output_dir (checkpoint-N/ and final/)")
    p.add_argument("--out", required=True, help="output folder (resumes)")
    p.add_argument("--val", type=_pair, default=("reasonseg", "val"), help="DATASET:SPLIT to choose on")
    p.add_argument("--benchmarks", default=",".join(f"{d}:{s}" for d, s in SUITE),
                   help="comma-separated DATASET:SPLIT to report (default: SAM-R1 Tables 1-2)")
    p.add_argument("--metric", default="gIoU", choices=METRICS)
    p.add_argument("--refer-root", default="data/refer")
    p.add_argument("--reasonseg-root", default="data/reasonseg")
    _model_args(p)
    a = p.parse_args(argv)
    device = a.device or str(process_state().device)

    def make_policy(path: str) -> Policy:
        model, processor = load_policy(path, device=device, dtype=a.dtype)
        return HFPolicy(model, processor, a.max_new_tokens, negative_points=a.negative_points)

    roots = {"reasonseg": a.reasonseg_root, "refcoco": a.refer_root, "refcoco+": a.refer_root,
             "refcocog": a.refer_root}
    benchmarks = [_pair(x) for x in a.benchmarks.split(",") if x]
    sel = select_checkpoint(a.run_dir, make_policy, _segmenter(a, device), roots, a.out, a.val, benchmarks,
                            a.metric, a.limit, a.size, a.batch_size)
    print(selection_table(sel), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "diff":
        return diff_main(argv[1:])
    if argv and argv[0] == "select":
        return select_main(argv[1:])
    return split_main(argv)


if __name__ == "__main__":
    sys.exit(main())
