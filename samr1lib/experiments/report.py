"""The committed summary of a batch of ablation notebooks: one table per ablation (ours beside the paper's, the
paper's direction reproduced / tied / reversed), with the command, where and when, and each notebook's times."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .ablations import ABLATIONS

__all__ = ["NOTES_MARKER", "results_markdown", "write_results_markdown"]


NOTES_MARKER = "<!-- hand-written notes below this line: kept when the tables above are rewritten -->"


def results_markdown(metrics: Sequence[dict], report: dict | None = None, command: str = "", provenance: str = "",
                     notes: str = "") -> str:
    """The committed summary of a batch of ablation notebooks: one table per ablation (ours beside the paper's),
    with the command that made it, where and when (``provenance``), each notebook's wall time (from the runner's
    report.json) and the GRPO time its runs recorded when they were trained; ``notes`` follow :data:`NOTES_MARKER`."""
    lines = ["# Ablations at toy scale", ""]
    if command:
        lines += [f"Made by `{command}`.", ""]
    if provenance:
        lines += [provenance, ""]
    for m in metrics:
        spec = ABLATIONS[m["ablation"]]
        lines += [f"## {spec['title']} ({spec['source']})", ""]
        facts = [f"Seeds {m['seeds']}, {m['scale']} scale"]
        hit = [v for k, v in (report or {}).items() if k.endswith(m["ablation"])]
        if hit:
            facts.append(f"notebook wall time {hit[0]['seconds']:.0f} s (finished runs are read back, not retrained)")
        if m.get("runs"):
            threads = ", ".join(map(str, m.get("torch_threads") or [])) or "unrecorded"
            facts.append(f"GRPO {m['grpo_seconds']:.0f} s over its {m['runs']} runs as recorded when each was trained "
                         f"({threads} torch threads)")
        lines += ["; ".join(facts) + ".", ""]
        rows = m["variants"]
        cols = [c for c in rows[0] if c not in ("overrides", "scale", "seeds")]
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "---|" * len(cols))
        for r in rows:
            lines.append("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
        lines += ["", f"![curves]({Path(m['figure']).name})" if m.get("figure") else "", ""]
    lines += [NOTES_MARKER, ""]
    if notes.strip():
        lines += [notes.strip(), ""]
    return "\n".join(lines)


def write_results_markdown(path: str | Path, metrics: Sequence[dict], report: dict | None = None, command: str = "",
                           provenance: str = "") -> Path:
    """Write :func:`results_markdown` to ``path``, keeping whatever the existing file has below :data:`NOTES_MARKER`
    (the hand-written reading of the tables)."""
    path = Path(path)
    notes = ""
    if path.exists():
        old = path.read_text()
        if NOTES_MARKER in old:
            notes = old.split(NOTES_MARKER, 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(results_markdown(metrics, report, command, provenance, notes))
    return path
