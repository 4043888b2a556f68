"""The evaluation protocol: the convention for every case, the accounting of every sample, and the summary that
states both beside the scores (``summary.json`` / ``summary.md`` of every evaluation).

The peers' ReasonSeg and RefCOCO numbers follow different, mostly unstated rules (dropped empty-GT samples, ignore
regions counted as target, a whole batch zeroed on one exception, per-instance instead of per-expression scoring,
sampling with replacement). Here every item of the split is scored exactly once, and what happened to it is
counted.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

import numpy as np

from ..metrics import box_accuracy, giou_ciou_from_counts

__all__ = ["PAPER_NUMBERS", "LISA_GROUNDING", "conventions", "accounting", "summarize", "markdown_table"]

# SAM-R1's reported numbers (percent): Table 1 (ReasonSeg zero-shot), Table 2 (cIoU on the RefCOCO family),
# Tables 3-4 (RefCOCOg test gIoU of the final method), Table 5 (LISA-Grounding, box accuracy).
PAPER_NUMBERS: dict[tuple[str, str], dict[str, Any]] = {
    ("reasonseg", "val"): {"gIoU": 64.0, "cIoU": 55.8, "source": "SAM-R1 Table 1"},
    ("reasonseg", "test"): {"gIoU": 60.2, "cIoU": 54.3, "LISA-Grounding": 63.8,
                            "source": "SAM-R1 Table 1; LISA-Grounding: Table 5"},
    ("refcoco", "testA"): {"cIoU": 79.2, "source": "SAM-R1 Table 2"},
    ("refcoco+", "testA"): {"cIoU": 74.7, "source": "SAM-R1 Table 2"},
    ("refcocog", "test"): {"gIoU": 75.4, "cIoU": 73.1, "source": "SAM-R1 Table 2 (cIoU), Tables 3-4 (gIoU)"},
}
LISA_GROUNDING = ("LISA-Grounding: ReasonSeg test as a grounding benchmark (VLM-R1's conversion, which SAM-R1 Table 5 "
                  "reports): the first object's predicted box against the tight box of the target mask (all target "
                  "parts), a hit when IoU >= 0.5; samples without a target polygon have no box and are left out of "
                  "this score (counted).")


def conventions(dataset: str, empty_score: float) -> dict[str, str]:
    """The rule for each case, as the summary states it."""
    rules = {
        "parse_failure": "scored as an empty prediction (IoU 0 against a non-empty GT), counted by reason, never "
                         "dropped",
        "segmenter_failure": "scored as an empty prediction, counted with its error, never dropped",
        "empty_gt": f"an empty GT with an empty prediction scores IoU {empty_score:g} (LISA's convention is 1); "
                    "with a non-empty prediction 0; counted",
        "ignore_regions": "pixels of ignore regions (ReasonSeg) count in neither intersection nor union",
        "metrics": "gIoU = mean of per-sample IoU; cIoU = sum of intersections / sum of unions (percent)",
    }
    if dataset in ("refcoco", "refcoco+", "refcocog"):
        rules["items"] = "every expression of every ref of the split is one sample (not one per object)"
    elif dataset == "reasonseg":
        rules["items"] = ("the first query of each file (--all-queries: every query); files without a target "
                          "polygon are kept with an empty GT and counted")
        rules["lisa_grounding"] = LISA_GROUNDING
    return rules


def accounting(rows: Sequence[dict], report: dict | None = None) -> dict[str, Any]:
    """What happened to every item: scored, parse failures by reason, segmenter failures, empty GT."""
    failures = Counter(r["failure"] for r in rows if r.get("failure"))
    counts = {
        "items": len(rows), "scored": len(rows), "dropped": 0,
        "parse_failures": sum(failures.values()), "parse_failures_by_reason": dict(sorted(failures.items())),
        "segmenter_failures": sum(1 for r in rows if r.get("segmenter_error")),
        "empty_gt": sum(1 for r in rows if r.get("empty_gt")),
        "empty_gt_and_prediction": sum(1 for r in rows if r.get("empty_gt") and r["union"] == 0),
    }
    errors = [r["segmenter_error"] for r in rows if r.get("segmenter_error")]
    if errors:
        counts["first_segmenter_error"] = errors[0]
    if report:
        counts["loader"] = report
    return counts


def summarize(rows: Sequence[dict], dataset: str, split: str, empty_score: float = 1.0,
              report: dict | None = None) -> dict[str, Any]:
    """gIoU / cIoU (percent), parse-failure rate, box Acc@0.5 (and LISA-Grounding on ReasonSeg test), with the
    protocol and the accounting of every item."""
    giou, ciou = giou_ciou_from_counts([r["intersection"] for r in rows], [r["union"] for r in rows], empty_score)
    with_box = [r for r in rows if r["gt_box"]]
    summary = {
        "dataset": dataset, "split": split, "n": len(rows), "gIoU": 100 * giou, "cIoU": 100 * ciou,
        "parse_failure_rate": float(np.mean([r["failure"] is not None for r in rows])),
        "box_acc@0.5": 100 * box_accuracy([r["pred_box"] for r in with_box], [r["gt_box"] for r in with_box])
        if with_box else None,
        "paper": PAPER_NUMBERS.get((dataset, split)),
        "protocol": conventions(dataset, empty_score), "accounting": accounting(rows, report),
    }
    if dataset == "reasonseg" and split == "test":
        summary["LISA-Grounding"] = summary["box_acc@0.5"]
        summary["accounting"]["lisa_grounding_left_out_no_target"] = len(rows) - len(with_box)
    return summary


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def markdown_table(summaries: Sequence[dict]) -> str:
    """Our numbers beside the paper's, one row per split, then each split's accounting and the protocol."""
    lines = ["| dataset | split | n | gIoU | cIoU | box Acc@0.5 | parse failures | segmenter failures | paper gIoU "
             "| paper cIoU |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        p, a = s.get("paper") or {}, s["accounting"]
        lines.append(f"| {s['dataset']} | {s['split']} | {s['n']} | {s['gIoU']:.1f} | {s['cIoU']:.1f} | "
                     f"{_fmt(s['box_acc@0.5'])} | {a['parse_failures']} ({100 * s['parse_failure_rate']:.1f}%) | "
                     f"{a['segmenter_failures']} | {_fmt(p.get('gIoU'))} | {_fmt(p.get('cIoU'))} |")
    for s in summaries:
        if "LISA-Grounding" in s:
            lines += ["", f"LISA-Grounding ({s['dataset']} {s['split']}): {_fmt(s['LISA-Grounding'])} "
                          f"(paper, Table 5: {_fmt((s.get('paper') or {}).get('LISA-Grounding'))})"]
    for s in summaries:
        a = s["accounting"]
        lines += ["", f"Accounting, {s['dataset']} {s['split']}: {a['items']} items, {a['scored']} scored, "
                      f"{a['dropped']} dropped; parse failures {a['parse_failures']} {a['parse_failures_by_reason']}; "
                      f"segmenter failures {a['segmenter_failures']}; empty GT {a['empty_gt']} (with an empty "
                      f"prediction {a['empty_gt_and_prediction']})."]
    if summaries:
        lines += ["", "Protocol:"] + [f"- {k}: {v}" for k, v in summaries[0]["protocol"].items()]
    return "\n".join(lines) + "\n"
