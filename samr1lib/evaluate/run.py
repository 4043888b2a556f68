"""Evaluation: generate -> parse -> segment -> gIoU / cIoU, per split.

Each image is resized to 840 x 840 for the policy (SAM-R1 §4.1); its answer is mapped back to the original image,
which the segmenter sees (:func:`samr1lib.segmenters.answer_masks`, the same step the training reward uses); IoU
is taken against the GT mask at the original size (ReasonSeg's ignore regions excluded). Writes:

- ``samples.jsonl``: one line per sample (query, completion, parsed answer or failure reason, IoU, intersection
  and union pixel counts, box IoU, predicted mask as RLE);
- ``summary.json`` and ``summary.md``: gIoU, cIoU, parse-failure rate, box accuracy at IoU 0.5, with the paper's
  numbers beside ours where the split is one of the paper's.

An interrupted run resumes from its JSONL without redoing samples. Under ``accelerate launch`` the samples are
split across processes and gathered by the main process.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any, Sequence

from tqdm.auto import tqdm

from ..data import load_reasonseg, load_refer
from ..masks import as_mask, decode_rle
from ..metrics import sod_metrics
from ..policy import Policy
from ..prompt import POLICY_FRAME
from ..segmenters import Segmenter
from .protocol import PAPER_NUMBERS, markdown_table, summarize
from .score import score_batch

__all__ = ["PAPER_NUMBERS", "SUITE", "summarize", "markdown_table", "evaluate", "evaluate_suite", "load_split",
           "process_state", "read_samples", "split_dir"]

# The paper's evaluation suite (Tables 1-2): (dataset, split)
SUITE: tuple[tuple[str, str], ...] = (
    ("refcoco", "testA"), ("refcoco+", "testA"), ("refcocog", "test"), ("reasonseg", "val"), ("reasonseg", "test"),
)


def read_samples(out_dir: str) -> dict[str, dict]:
    """The per-sample rows an evaluation wrote into ``out_dir`` (finished or partial), by key. A line cut off by a
    crash is not valid JSON: that sample is redone."""
    done = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "samples*.jsonl"))):
        with open(path) as f:
            for line in f:
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    done[row["key"]] = row
    return done


def process_state():
    """accelerate's view of this process. Without CUDA it must be asked for CPU explicitly, or
    ``accelerate launch --multi_gpu`` / ``torchrun`` processes each believe they are alone."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def _todo(records: Sequence[dict], out_dir: str, state) -> tuple[list[str], list[tuple[str, dict]]]:
    """All keys, and this process's share of the samples not yet done. Shards are by sample index, then what is
    done is dropped: they do not depend on when each process read the finished rows, so no sample is skipped or
    scored twice."""
    keys = [f"{i:06d}" for i in range(len(records))]
    done = read_samples(out_dir)
    for key, row in done.items():
        i = int(key)
        if i >= len(records) or row["query"] != records[i]["query"]:
            raise ValueError(f"{out_dir} holds results of another dataset or split (sample {key} differs); "
                             "use a fresh --out")
    mine = list(zip(keys, records))[state.process_index::state.num_processes]
    return keys, [(k, r) for k, r in mine if k not in done]


def _gather(out_dir: str, keys: Sequence[str]) -> list[dict]:
    """Every sample's row in order, written as one ``samples.jsonl`` (the per-process parts removed)."""
    rows_by_key = read_samples(out_dir)
    missing = [k for k in keys if k not in rows_by_key]
    if missing:
        raise RuntimeError(f"{len(missing)} samples have no result after evaluation (first: {missing[0]})")
    rows = [rows_by_key[k] for k in keys]
    with open(os.path.join(out_dir, "samples.jsonl.tmp"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    os.replace(os.path.join(out_dir, "samples.jsonl.tmp"), os.path.join(out_dir, "samples.jsonl"))
    for path in glob.glob(os.path.join(out_dir, "samples.part*.jsonl")):
        os.remove(path)
    return rows


def _finish(rows: list[dict], records: Sequence[dict], out_dir: str, dataset: str, split: str, empty_score: float,
            sod: bool, vote: int, vote_kwargs: dict | None, report: dict | None) -> dict[str, Any]:
    """The summary of a finished split, written as summary.json and summary.md."""
    summary = summarize(rows, dataset, split, empty_score, report)
    if vote:
        summary["vote"] = {"samples": vote, **(vote_kwargs or {})}
    if sod:
        summary["sod"] = sod_metrics([decode_rle(r["pred_mask"]) for r in rows],
                                     [as_mask(rec["mask"], f"GT mask {i}") for i, rec in enumerate(records)])
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write(markdown_table([summary]))
    return summary


def evaluate(
    records: Sequence[dict], policy: Policy, segmenter: Segmenter, out_dir: str, dataset: str, split: str,
    batch_size: int = 8, size: int = POLICY_FRAME[0], show_progress: bool = True, sod: bool = False,
    vote: int = 0, vote_kwargs: dict | None = None, empty_score: float = 1.0, strict: bool = False,
    report: dict | None = None,
) -> dict[str, Any] | None:
    """Evaluate ``records`` and write samples.jsonl, summary.json and summary.md into ``out_dir`` (the protocol
    and the accounting of every item in the summary: :mod:`.protocol`).

    ``sod``: add salient-object metrics (S_alpha, F_beta, E_phi, MAE via PySODMetrics; Seg-R1) to the summary.
    ``vote=N``: StAR's mask-level majority voting over N answers per sample (give a sampling policy);
    ``vote_kwargs``: :func:`samr1lib.evaluate.vote.majority_vote`'s thresholds. ``empty_score``: the IoU of an
    empty GT with an empty prediction (LISA's 1). ``strict``: a segmenter error raises instead of being recorded.
    ``report``: what the loader flagged (``RecordList.report``), copied into the summary's accounting.

    Resumes from what ``out_dir`` already holds. Under several processes (accelerate), each takes
    every world_size-th sample and the main process gathers; it returns the summary, the others None.
    """
    if not records:
        raise ValueError(f"{dataset} {split} has no samples: an empty split has no score")
    report = report if report is not None else getattr(records, "report", None)
    state = process_state()
    os.makedirs(out_dir, exist_ok=True)
    keys, todo = _todo(records, out_dir, state)
    part = os.path.join(out_dir, f"samples.part{state.process_index}.jsonl")
    with open(part, "a") as f, tqdm(total=len(todo), desc=f"eval {dataset} {split} [{state.process_index}]",
                                    disable=not show_progress, position=state.process_index) as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            for row in score_batch(batch, policy, segmenter, size, vote, vote_kwargs, empty_score, strict):
                f.write(json.dumps({**row, "rank": state.process_index}) + "\n")
            f.flush()  # an interruption loses at most the batch in flight
            bar.update(len(batch))
    state.wait_for_everyone()
    if not state.is_main_process:
        return None
    rows = _gather(out_dir, keys)
    return _finish(rows, records, out_dir, dataset, split, empty_score, sod, vote, vote_kwargs, report)


def load_split(dataset: str, root: str, split: str, all_queries: bool = False) -> list[dict]:
    """The records of one split: ReasonSeg (LISA layout) or a REFER dataset."""
    if dataset == "reasonseg":
        return load_reasonseg(root, split, all_queries=all_queries)
    return load_refer(root, dataset, split)


def split_dir(dataset: str, split: str) -> str:
    """The folder name of one split's evaluation (``refcoco+`` -> ``refcocoplus``)."""
    return f"{dataset.replace('+', 'plus')}_{split}"


def evaluate_suite(policy: Policy, segmenter: Segmenter, refer_root: str, reasonseg_root: str, out_dir: str,
                   size: int = POLICY_FRAME[0], limit: int | None = None, batch_size: int = 8,
                   suite: Sequence[tuple[str, str]] = SUITE, show_progress: bool = True) -> list[dict[str, Any]]:
    """Evaluate every (dataset, split) of ``suite`` into ``out_dir/<dataset>_<split>/``; returns the summaries
    (each with the paper's numbers beside ours). ``limit`` keeps the first N samples of each split."""
    summaries = []
    for dataset, split in suite:
        root = reasonseg_root if dataset == "reasonseg" else refer_root
        records = load_split(dataset, root, split)
        s = evaluate(records[:limit], policy, segmenter, os.path.join(out_dir, split_dir(dataset, split)), dataset,
                     split, batch_size=batch_size, size=size, show_progress=show_progress,
                     report=getattr(records, "report", None))
        if s is not None:
            summaries.append(s)
    return summaries
