"""Run the notebooks headless with papermill: ``python -m samr1lib.notebooks [NAMES...] [--params FILE.yaml]``.

    python -m samr1lib.notebooks --scale smoke                     # all of them, smoke scale (what CI runs)
    python -m samr1lib.notebooks 04 05 06 07 08 --scale toy        # the five ablations at toy scale
    python -m samr1lib.notebooks --params my_rerun.yaml            # parameters from a YAML file

The YAML file maps parameter names to values for every notebook, and/or a notebook's name (or its
number) to a mapping for that notebook only::

    scale: toy
    seeds: [0, 1, 2]
    04_ablation_threshold: {seeds: [0, 1, 2, 3]}

Executed copies go to ``--out`` (default ``runs/notebooks/<scale>/``), never over the sources; each
notebook writes its metrics JSON to ``<out>/metrics/<name>.json``. A failing notebook does not stop the
others: the run reports every failure at the end (exit status 1), with the executed copy to read.

``--summary FILE.md`` then writes the tables of the ablation notebooks that ran (ours beside the paper's,
with the command, the date, commit, CPU and torch version, and each notebook's times) to FILE.md; what
the existing file holds below its notes marker is kept. The committed toy-scale tables are made so::

    python -m samr1lib.notebooks 04 05 06 07 08 --params figures/ablations_toy.yaml --out runs/notebooks/toy \\
        --summary figures/ablations_toy.md
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from .report import write_results_markdown

__all__ = ["NOTEBOOK_DIR", "list_notebooks", "resolve", "load_params", "run_notebooks", "has_outputs",
           "strip_outputs", "write_metrics", "provenance", "write_summary", "main"]

# The notebooks live in the repository, not in the package: by default ./notebooks (run from the repository's root),
# or --notebooks DIR.
NOTEBOOK_DIR = Path("notebooks")


def list_notebooks(directory: str | Path = NOTEBOOK_DIR) -> list[Path]:
    """The numbered notebooks ``NN_topic.ipynb`` in reading order."""
    return sorted(p for p in Path(directory).glob("[0-9][0-9]_*.ipynb"))


def resolve(names: Iterable[str], directory: str | Path = NOTEBOOK_DIR) -> list[Path]:
    """Notebook paths from names, stems or numbers ("04", "04_ablation_threshold", "04_ablation_threshold.ipynb")."""
    all_nb = list_notebooks(directory)
    out = []
    for name in names:
        stem = Path(name).stem
        hits = [p for p in all_nb if p.stem == stem or p.stem.split("_", 1)[0] == stem]
        if not hits:
            raise ValueError(f"no notebook {name!r} in {directory}; have {[p.stem for p in all_nb]}")
        out += [h for h in hits if h not in out]
    return out


def load_params(path: str | Path | None, notebooks: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """Per-notebook parameters from a YAML file (see the module doc)."""
    if path is None:
        return {nb.stem: {} for nb in notebooks}
    import yaml

    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of parameter: value (and notebook: mapping), got "
                         f"{type(data).__name__}")
    # YAML reads a bare 04 as the integer 4: a notebook's number either way
    data = {(f"{k:02d}" if isinstance(k, int) and not isinstance(k, bool) else str(k)): v for k, v in data.items()}
    stems = {nb.stem for nb in list_notebooks(notebooks[0].parent)} if notebooks else set()
    numbers = {s.split("_", 1)[0]: s for s in stems}
    common = {k: v for k, v in data.items() if str(k) not in stems and str(k) not in numbers}
    out = {}
    for nb in notebooks:
        own = {**(data.get(nb.stem.split("_", 1)[0]) or {}), **(data.get(nb.stem) or {})}
        if not isinstance(own, dict):
            raise ValueError(f"{path}: the entry for {nb.stem} must be a mapping of parameter: value")
        out[nb.stem] = {**common, **own}
    return out


def run_notebooks(notebooks: Sequence[Path], params: dict[str, dict[str, Any]], out_dir: str | Path,
                  kernel: str = "python3", log=print) -> dict[str, Any]:
    """Execute each notebook with papermill; returns {name: {"ok", "seconds", "output", "metrics", "error"}}."""
    import papermill as pm

    out = Path(out_dir)
    (out / "metrics").mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {}
    for nb in notebooks:
        p = {**params.get(nb.stem, {}), "metrics_path": str((out / "metrics" / f"{nb.stem}.json").resolve())}
        dest = out / nb.name
        t0 = time.time()
        log(f"[{nb.stem}] running with {json.dumps({k: v for k, v in p.items() if k != 'metrics_path'})}")
        entry: dict[str, Any] = {"output": str(dest), "metrics": p["metrics_path"], "params": p}
        try:
            pm.execute_notebook(str(nb), str(dest), parameters=p, kernel_name=kernel, cwd=str(Path(nb).resolve().parent.parent),
                                progress_bar=False)
            entry["ok"] = True
        except Exception as e:  # papermill's PapermillExecutionError names the failing cell
            entry["ok"] = False
            entry["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        entry["seconds"] = round(time.time() - t0, 1)
        log(f"[{nb.stem}] {'ok' if entry['ok'] else 'FAILED'} in {entry['seconds']} s -> {dest}")
        report[nb.stem] = entry
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report


def has_outputs(path: str | Path) -> list[str]:
    """Descriptions of committed outputs in a notebook (outputs, execution counts, widget state); [] if clean."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            found.append(f"cell {i}: {len(cell['outputs'])} output(s)")
        if cell.get("execution_count") is not None:
            found.append(f"cell {i}: execution_count {cell['execution_count']}")
    if "widgets" in nb.metadata:
        found.append("metadata.widgets (saved widget state)")
    return found


def strip_outputs(path: str | Path) -> bool:
    """Remove outputs, execution counts and widget state in place; True if the file changed."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    before = nbformat.writes(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    nb.metadata.pop("widgets", None)
    after = nbformat.writes(nb)
    if after != before:
        Path(path).write_text(after)
    return after != before


def write_metrics(path: str | Path | None, metrics: dict[str, Any]) -> dict[str, Any]:
    """The last cell of every notebook: write ``metrics`` as JSON to ``path`` (if given) and return them."""
    if path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(metrics, indent=2, default=lambda x: x.item() if hasattr(x, "item") else str(x)))
    return metrics


def provenance() -> str:
    """Where and when a result was made: UTC date, git commit (``+changes`` if the tree is dirty), CPU, torch."""
    import datetime

    root = Path.cwd()

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    # figures/ is what a batch rewrites: the code is what the commit has to name
    if git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)figures"):
        commit += "+changes"
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = "not installed"
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    return f"Written on {date}, at commit {commit}, CPU {cpu} ({os.cpu_count()} cores), torch {torch_version}."


def write_summary(report: dict[str, Any], path: str | Path, command: str = "") -> Path:
    """The tables of the ablation notebooks in ``report`` that ran (see :func:`samr1lib.experiments.report.write_results_markdown`)."""
    metrics = []
    for entry in report.values():
        if not entry.get("ok"):
            continue
        m = json.loads(Path(entry["metrics"]).read_text())
        if "ablation" in m and "variants" in m:
            metrics.append(m)
    if not metrics:
        raise ValueError(f"none of {sorted(report)} wrote ablation tables (or none ran): nothing to write to {path}")
    return write_results_markdown(path, metrics, report, command=command, provenance=provenance())


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m samr1lib.notebooks", description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="notebooks by number or name (default: all)")
    ap.add_argument("--params", default=None, help="YAML file of parameters (common and per notebook)")
    ap.add_argument("--scale", default=None, choices=["smoke", "toy", "paper"], help="sets the scale parameter")
    ap.add_argument("--out", default=None, help="folder for executed copies (default runs/notebooks/<scale>)")
    ap.add_argument("--notebooks", default=str(NOTEBOOK_DIR), help="folder of the NN_*.ipynb (default ./notebooks)")
    ap.add_argument("--kernel", default="python3")
    ap.add_argument("--strip", action="store_true", help="strip outputs of the source notebooks and exit")
    ap.add_argument("--summary", default=None, metavar="FILE.md",
                    help="write the ablation tables of the notebooks that ran to FILE.md (notes below its marker kept)")
    a = ap.parse_args(argv)
    try:
        notebooks = resolve(a.names, a.notebooks) if a.names else list_notebooks(a.notebooks)
    except ValueError as e:
        ap.error(str(e))
    if a.strip:
        for nb in notebooks:
            print(f"{nb.name}: {'stripped' if strip_outputs(nb) else 'clean'}")
        return 0
    params = load_params(a.params, notebooks)
    if a.scale:
        for p in params.values():
            p["scale"] = a.scale
    scale = a.scale or next((p["scale"] for p in params.values() if "scale" in p), "smoke")
    out = Path(a.out or f"runs/notebooks/{scale}")
    t0 = time.time()
    report = run_notebooks(notebooks, params, out, kernel=a.kernel)
    failed = [k for k, v in report.items() if not v["ok"]]
    print(f"{len(report) - len(failed)} of {len(report)} notebooks ran in {time.time() - t0:.0f} s; report: {out}/report.json")
    for k in failed:
        print(f"FAILED {k}: {report[k]['error']} (see {report[k]['output']})")
    if a.summary:
        command = "python -m samr1lib.notebooks " + shlex.join(argv if argv is not None else sys.argv[1:])
        try:
            print(f"summary: {write_summary(report, a.summary, command)}")
        except ValueError as e:
            print(f"no summary: {e}", file=sys.stderr)
            return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
