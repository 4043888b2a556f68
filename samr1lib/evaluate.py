"""Evaluation: generate -> parse -> segment -> gIoU / cIoU, per split (PAPER.md §4, §9).

``python -m samr1lib.evaluate --policy PATH_OR_HUB_ID --dataset reasonseg --root DATA --split val
--out results/``. Each image is resized to 840 x 840 for the policy (SAM-R1 §4.1); its answer is
mapped back to the original image, which the segmenter sees; IoU is taken against the GT mask at
the original size (ReasonSeg's ignore regions excluded). Writes:
- ``samples.jsonl``: one line per sample (query, completion, parsed answer or failure reason, IoU,
  intersection and union pixel counts, box IoU, predicted mask as RLE);
- ``summary.json`` and ``summary.md``: gIoU, cIoU, parse-failure rate, box accuracy at IoU 0.5,
  with the paper's numbers beside ours where the split is one of the paper's.
An interrupted run resumes from its JSONL without redoing samples. Under ``accelerate launch`` the
samples are split across processes and gathered by the main process.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from typing import Any, Protocol, Sequence

import numpy as np
from tqdm.auto import tqdm

from .masks import as_mask, encode_rle, mask_to_box
from .metrics import box_accuracy, box_iou, giou_ciou_from_counts, intersection_union
from .schema import POLICY_FRAME, build_messages, parse_completion
from .frames import scale_box
from .segmenters import Segmenter, prompts_from_answer, segment_many

# PAPER.md §5: SAM-R1's reported numbers (percent). Table 1 (ReasonSeg zero-shot), Table 2 (cIoU
# on RefCOCO-family), Tables 3-4 (RefCOCOg test gIoU of the final method).
PAPER_NUMBERS: dict[tuple[str, str], dict[str, Any]] = {
    ("reasonseg", "val"): {"gIoU": 64.0, "cIoU": 55.8, "source": "SAM-R1 Table 1"},
    ("reasonseg", "test"): {"gIoU": 60.2, "cIoU": 54.3, "source": "SAM-R1 Table 1"},
    ("refcoco", "testA"): {"cIoU": 79.2, "source": "SAM-R1 Table 2"},
    ("refcoco+", "testA"): {"cIoU": 74.7, "source": "SAM-R1 Table 2"},
    ("refcocog", "test"): {"gIoU": 75.4, "cIoU": 73.1, "source": "SAM-R1 Table 2 (cIoU), Tables 3-4 (gIoU)"},
}


class Policy(Protocol):
    """Anything that answers a batch of (image, query) pairs with completion texts."""

    def generate(self, images: Sequence[Any], queries: Sequence[str]) -> list[str]: ...


def _prompt_text(processor, query: str, negative_points: bool) -> str:
    """The chat-templated prompt of one query, ready for generation (the same for every generation backend)."""
    return processor.apply_chat_template(build_messages(query, negative_points), tokenize=False,
                                         add_generation_prompt=True)


class HFPolicy:
    """Qwen2.5-VL through transformers' ``generate`` (greedy by default), on CPU or GPU.

    ``negative_points``: ask for labelled points too (the prompt a ``negative_points`` / Seg-R1 run was trained
    on; a policy is evaluated on the prompt it was trained with)."""

    def __init__(self, model, processor, max_new_tokens: int = 256, greedy: bool = True, temperature: float = 1.0,
                 negative_points: bool = False):
        self.model, self.processor = model, processor
        self.max_new_tokens, self.greedy, self.temperature = max_new_tokens, greedy, temperature
        self.negative_points = negative_points
        processor.tokenizer.padding_side = "left"  # decoder-only batched generation pads on the left

    def generate(self, images: Sequence[Any], queries: Sequence[str]) -> list[str]:
        import torch

        texts = [_prompt_text(self.processor, q, self.negative_points) for q in queries]
        inputs = self.processor(text=texts, images=list(images), padding=True, return_tensors="pt")
        inputs = inputs.to(self.model.device)
        kwargs = {"do_sample": False} if self.greedy else {"do_sample": True, "temperature": self.temperature}
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, **kwargs)
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)


class VLLMPolicy:
    """vLLM generation (GPU only; ``pip install samr1lib[gpu]``). Same prompts as HFPolicy."""

    def __init__(self, model_path: str, max_new_tokens: int = 256, greedy: bool = True, negative_points: bool = False,
                 **llm_kwargs):
        from transformers import AutoProcessor
        from vllm import LLM, SamplingParams

        self.processor = AutoProcessor.from_pretrained(model_path)
        self.llm = LLM(model=model_path, limit_mm_per_prompt={"image": 1}, **llm_kwargs)
        self.params = SamplingParams(max_tokens=max_new_tokens, temperature=0.0 if greedy else 1.0)
        self.negative_points = negative_points

    def generate(self, images: Sequence[Any], queries: Sequence[str]) -> list[str]:
        requests = [
            {"prompt": _prompt_text(self.processor, q, self.negative_points), "multi_modal_data": {"image": img}}
            for img, q in zip(images, queries)
        ]
        return [o.outputs[0].text for o in self.llm.generate(requests, self.params)]


def _read_done(out_dir: str) -> dict[str, dict]:
    done = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "samples*.jsonl"))):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:  # a line cut off by a crash is not valid JSON: that sample is redone
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    done[row["key"]] = row
    return done


def _answer_masks(batch, originals, completions, segmenter, size):
    parses, prompts = [], []
    for (_, rec), text in zip(batch, completions):
        res = parse_completion(text, (size, size))
        parses.append(res)
        ok = res.ok and res.answer.objects
        prompts.append(prompts_from_answer(res.answer, (size, size), (rec["width"], rec["height"])) if ok else [])
    return parses, segment_many(segmenter, originals, prompts)


def _score_batch(batch, policy: Policy, segmenter: Segmenter, size: int, vote: int = 0,
                 vote_kwargs: dict | None = None) -> list[dict]:
    from .data import open_image

    originals = [open_image(rec) for _, rec in batch]
    policy_images = [im.resize((size, size)) for im in originals]  # §4.1: 840 x 840 for the policy
    queries = [rec["query"] for _, rec in batch]
    completions = policy.generate(policy_images, queries)
    parses, masks = _answer_masks(batch, originals, completions, segmenter, size)
    voted = None
    if vote:  # StAR's mask-level majority voting (PAPER.md §8): N sampled answers per sample
        from .related import majority_vote

        samples = [[ms] for ms in masks]
        for _ in range(vote - 1):
            more = policy.generate(policy_images, queries)
            for j, ms in enumerate(_answer_masks(batch, originals, more, segmenter, size)[1]):
                samples[j].append(ms)
        voted = [majority_vote(s, **(vote_kwargs or {})) for s in samples]
    rows = []
    for j, ((key, rec), text, res, ms) in enumerate(zip(batch, completions, parses, masks)):
        gt = as_mask(rec["mask"], f"GT mask of sample {key}")
        pred = np.logical_or.reduce(ms) if ms else np.zeros_like(gt)
        if voted is not None:
            pred = voted[j] if voted[j] is not None else np.zeros_like(gt)
        inter, union = intersection_union(pred, gt, rec.get("ignore"))
        gt_box = rec.get("box") or mask_to_box(gt)
        first = res.answer.first if res.ok else None  # box accuracy scores the first object's box
        pred_box = list(scale_box(first.box, (size, size), (rec["width"], rec["height"]))) if first else None
        rows.append({
            "key": key, "query": rec["query"], "image_path": rec["image_path"], "completion": text,
            "answer": res.answer.to_json() if res.ok else None,
            "failure": res.failure.value if res.failure else None, "failure_detail": res.detail,
            "iou": 1.0 if union == 0 else inter / union, "intersection": inter, "union": union,
            "pred_box": pred_box, "gt_box": list(gt_box) if gt_box else None,
            "box_iou": box_iou(pred_box, gt_box), "pred_mask": encode_rle(pred),
        })
    return rows


def summarize(rows: Sequence[dict], dataset: str, split: str) -> dict[str, Any]:
    """gIoU / cIoU (percent), parse-failure rate and box Acc@0.5 of a split's rows."""
    giou, ciou = giou_ciou_from_counts([r["intersection"] for r in rows], [r["union"] for r in rows])
    return {
        "dataset": dataset, "split": split, "n": len(rows),
        "gIoU": 100 * giou, "cIoU": 100 * ciou,
        "parse_failure_rate": float(np.mean([r["failure"] is not None for r in rows])),
        "box_acc@0.5": 100 * box_accuracy([r["pred_box"] for r in rows], [r["gt_box"] for r in rows]),
        "paper": PAPER_NUMBERS.get((dataset, split)),
    }


def markdown_table(summaries: Sequence[dict]) -> str:
    """Our numbers beside the paper's, one row per split."""
    lines = ["| dataset | split | n | gIoU | cIoU | box Acc@0.5 | parse failures | paper gIoU | paper cIoU |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        p = s.get("paper") or {}
        fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        lines.append(f"| {s['dataset']} | {s['split']} | {s['n']} | {s['gIoU']:.1f} | {s['cIoU']:.1f} | "
                     f"{s['box_acc@0.5']:.1f} | {100 * s['parse_failure_rate']:.1f}% | {fmt(p.get('gIoU'))} | "
                     f"{fmt(p.get('cIoU'))} |")
    return "\n".join(lines) + "\n"


def evaluate(
    records: Sequence[dict], policy: Policy, segmenter: Segmenter, out_dir: str, dataset: str, split: str,
    batch_size: int = 8, size: int = POLICY_FRAME[0], show_progress: bool = True, sod: bool = False,
    vote: int = 0, vote_kwargs: dict | None = None,
) -> dict[str, Any] | None:
    """Evaluate ``records`` and write samples.jsonl, summary.json and summary.md into ``out_dir``.

    ``sod``: add salient-object metrics (S_alpha, F_beta, E_phi, MAE via PySODMetrics; Seg-R1) to the summary.
    ``vote=N``: StAR's mask-level majority voting over N answers per sample (give a sampling policy);
    ``vote_kwargs``: :func:`samr1lib.related.majority_vote`'s thresholds.

    Resumes from what ``out_dir`` already holds. Under several processes (accelerate), each takes
    every world_size-th sample and the main process gathers; it returns the summary, the others None.
    """
    if not records:
        raise ValueError(f"{dataset} {split} has no samples: an empty split has no score")
    state = process_state()
    os.makedirs(out_dir, exist_ok=True)
    keys = [f"{i:06d}" for i in range(len(records))]
    done = _read_done(out_dir)
    for key, row in done.items():
        i = int(key)
        if i >= len(records) or row["query"] != records[i]["query"]:
            raise ValueError(f"{out_dir} holds results of another dataset or split (sample {key} differs); "
                             "use a fresh --out")
    # shard by sample index, then drop what is done: the shards do not depend on when each
    # process read the finished rows, so no sample is skipped or scored twice
    mine = list(zip(keys, records))[state.process_index::state.num_processes]
    todo = [(k, r) for k, r in mine if k not in done]
    part = os.path.join(out_dir, f"samples.part{state.process_index}.jsonl")
    bar = tqdm(total=len(todo), desc=f"eval {dataset} {split} [{state.process_index}]",
               disable=not show_progress, position=state.process_index)
    with open(part, "a") as f:
        for start in range(0, len(todo), batch_size):
            for row in _score_batch(todo[start:start + batch_size], policy, segmenter, size, vote, vote_kwargs):
                f.write(json.dumps({**row, "rank": state.process_index}) + "\n")
            f.flush()  # an interruption loses at most the batch in flight
            bar.update(len(todo[start:start + batch_size]))
    bar.close()
    state.wait_for_everyone()
    if not state.is_main_process:
        return None
    rows_by_key = _read_done(out_dir)
    missing = [k for k in keys if k not in rows_by_key]
    if missing:
        raise RuntimeError(f"{len(missing)} samples have no result after evaluation (first: {missing[0]})")
    rows = [rows_by_key[k] for k in keys]
    with open(os.path.join(out_dir, "samples.jsonl.tmp"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    os.replace(os.path.join(out_dir, "samples.jsonl.tmp"), os.path.join(out_dir, "samples.jsonl"))
    for path in glob.glob(os.path.join(out_dir, "samples.part*.jsonl")):
        os.remove(path)
    summary = summarize(rows, dataset, split)
    if vote:
        summary["vote"] = {"samples": vote, **(vote_kwargs or {})}
    if sod:
        from .masks import decode_rle
        from .related import sod_metrics

        summary["sod"] = sod_metrics([decode_rle(r["pred_mask"]) for r in rows],
                                     [as_mask(rec["mask"], f"GT mask {i}") for i, rec in enumerate(records)])
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write(markdown_table([summary]))
    return summary


def process_state():
    """accelerate's view of this process. Without CUDA it must be asked for CPU explicitly, or
    ``accelerate launch --multi_gpu`` / ``torchrun`` processes each believe they are alone."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def load_split(dataset: str, root: str, split: str, all_queries: bool = False) -> list[dict]:
    from .data import load_reasonseg, load_refer

    if dataset == "reasonseg":
        return load_reasonseg(root, split, all_queries=all_queries)
    return load_refer(root, dataset, split)


# The paper's evaluation suite (Tables 1-2): (dataset, split)
SUITE: tuple[tuple[str, str], ...] = (
    ("refcoco", "testA"), ("refcoco+", "testA"), ("refcocog", "test"), ("reasonseg", "val"), ("reasonseg", "test"),
)


def evaluate_suite(policy: Policy, segmenter: Segmenter, refer_root: str, reasonseg_root: str, out_dir: str,
                   size: int = POLICY_FRAME[0], limit: int | None = None, batch_size: int = 8,
                   suite: Sequence[tuple[str, str]] = SUITE, show_progress: bool = True) -> list[dict[str, Any]]:
    """Evaluate every (dataset, split) of ``suite`` into ``out_dir/<dataset>_<split>/``; returns the summaries
    (each with the paper's numbers beside ours). ``limit`` keeps the first N samples of each split."""
    summaries = []
    for dataset, split in suite:
        root = reasonseg_root if dataset == "reasonseg" else refer_root
        records = load_split(dataset, root, split)[:limit]
        s = evaluate(records, policy, segmenter, os.path.join(out_dir, f"{dataset.replace('+', 'plus')}_{split}"),
                     dataset, split, batch_size=batch_size, size=size, show_progress=show_progress)
        if s is not None:
            summaries.append(s)
    return summaries


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

    from .policy import load_policy
    from .segmenters import build_segmenter

    records = load_split(args.dataset, args.root, args.split, args.all_queries)[: args.limit]
    device = args.device or str(process_state().device)
    if args.segmenter == "sam2":
        segmenter = build_segmenter("sam2", config=args.sam2_config, checkpoint=args.sam2_checkpoint, device=device)
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
