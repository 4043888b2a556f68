"""Evaluation: generate -> parse -> segment -> gIoU / cIoU per split, resumable, beside the paper's numbers
(:mod:`.run`); StAR's test-time majority voting (:mod:`.vote`). CLI: ``python -m samr1lib.evaluate``."""

from .run import (
    PAPER_NUMBERS, SUITE, evaluate, evaluate_suite, load_split, markdown_table, process_state, read_samples,
    summarize,
)
from .vote import majority_vote

__all__ = ["PAPER_NUMBERS", "SUITE", "evaluate", "evaluate_suite", "load_split", "markdown_table", "process_state",
           "read_samples", "summarize", "majority_vote"]
