"""Evaluation: generate -> parse -> segment -> gIoU / cIoU per split, resumable, with the protocol and the accounting
of every item (:mod:`.run`, :mod:`.score`, :mod:`.protocol`); two runs compared sample by sample (:mod:`.diff`); one
checkpoint chosen on val for every benchmark (:mod:`.select`); StAR's test-time majority voting (:mod:`.vote`).
CLI: ``python -m samr1lib.evaluate [diff | select]``."""

from .diff import diff_markdown, diff_runs
from .protocol import LISA_GROUNDING, PAPER_NUMBERS, accounting, conventions, markdown_table, summarize
from .run import SUITE, evaluate, evaluate_suite, load_split, process_state, read_samples, split_dir
from .select import checkpoints, select_checkpoint, selection_table
from .vote import majority_vote

__all__ = ["PAPER_NUMBERS", "LISA_GROUNDING", "SUITE", "accounting", "conventions", "evaluate", "evaluate_suite",
           "load_split", "markdown_table", "process_state", "read_samples", "split_dir", "summarize", "diff_runs", "diff_markdown",
           "checkpoints", "select_checkpoint", "selection_table", "majority_vote"]
