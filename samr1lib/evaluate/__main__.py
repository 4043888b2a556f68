"""``python -m samr1lib.evaluate --policy PATH_OR_HUB_ID --dataset reasonseg --root DATA --split val --out DIR``.

Greedy by default; ``--segmenter sam2 --sam2-checkpoint sam2.1_hiera_large.pt`` for the real run; under
``accelerate launch --multi_gpu --num_processes 8 -m samr1lib.evaluate ...`` the samples split across processes.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..policy import HFPolicy, Policy, VLLMPolicy, load_policy
from ..segmenters import build_segmenter
from .run import evaluate, load_split, markdown_table, process_state


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m samr1lib.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--policy", required=True, help="a local model directory or a hub id (Qwen/Qwen2.5-VL-7B-Instruct)")
    p.add_argument("--dataset", required=True, choices=["refcoco", "refcoco+", "refcocog", "reasonseg"])
    p.add_argument("--root", required=True, help="REFER data folder, or the ReasonSeg folder with train/ val/ test/")
    p.add_argument("--split", required=True)
    p.add_argument("--out", required=True, help="output folder (resumes if it holds a partial run)")
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
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--vllm", action="store_true", help="generate with vLLM (GPU)")
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N samples only")
    p.add_argument("--sod-metrics", action="store_true", help="add S_alpha, F_beta, E_phi, MAE (PySODMetrics)")
    p.add_argument("--vote", type=int, default=0, help="StAR majority voting over N sampled answers (implies --sample)")
    p.add_argument("--vote-iou", type=float, default=0.85, help="voting: mask IoU to join a cluster")
    p.add_argument("--vote-ratio", type=float, default=0.2, help="voting: minimum share of votes of a cluster")
    p.add_argument("--no-object-ratio", type=float, default=0.5, help="voting: share of no-object votes that wins")
    p.add_argument("--all-queries", action="store_true", help="ReasonSeg: one sample per query, not only the first")
    p.add_argument("--negative-points", action="store_true",
                   help="prompt for labelled fg/bg points too: for a policy trained with negative_points != none or "
                        "Seg-R1's cold start (evaluate on the prompt the policy was trained with)")
    args = p.parse_args(argv)

    records = load_split(args.dataset, args.root, args.split, args.all_queries)[: args.limit]
    device = args.device or str(process_state().device)
    if args.segmenter == "sam2":
        segmenter = build_segmenter("sam2", config=args.sam2_config, checkpoint=args.sam2_checkpoint, device=device,
                                    cache_dir=args.sam2_cache_dir)
    else:
        segmenter = build_segmenter("grabcut")
    if args.vllm:
        policy: Policy = VLLMPolicy(args.policy, args.max_new_tokens, greedy=not args.sample,
                                    negative_points=args.negative_points)
    else:
        model, processor = load_policy(args.policy, device=device, dtype=args.dtype)
        policy = HFPolicy(model, processor, args.max_new_tokens, greedy=not (args.sample or args.vote),
                          negative_points=args.negative_points)
    t0 = time.time()
    vote_kwargs = dict(iou_threshold=args.vote_iou, min_vote_ratio=args.vote_ratio, no_object_ratio=args.no_object_ratio)
    summary = evaluate(records, policy, segmenter, args.out, args.dataset, args.split, args.batch_size,
                       sod=args.sod_metrics, vote=args.vote, vote_kwargs=vote_kwargs if args.vote else None)
    if summary is not None:
        print(markdown_table([summary]), end="")
        print(f"wrote {args.out}/samples.jsonl, summary.json, summary.md in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
