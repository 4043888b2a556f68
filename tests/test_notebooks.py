"""The notebooks: committed without outputs, a typed parameters cell each, and every one executed headless by
papermill at smoke scale with its metrics JSON asserted on. Executed copies go to the ignored runs/notebooks/."""

import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from samr1lib.experiments import notebooks
from samr1lib.experiments import report as reports

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = ["01_data_sampling", "02_reward_sanity_checks", "03_training_launch", "04_ablation_threshold",
            "05_ablation_token_level", "06_ablation_clip_higher", "07_ablation_kl_removal",
            "08_ablation_negative_points", "09_evaluation", "10_rollout_viewer", "11_related_systems"]


def test_all_notebooks_exist_in_reading_order():
    assert [p.stem for p in notebooks.list_notebooks(NOTEBOOKS)] == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_each_notebook_agrees_with_its_reviewable_py_percent_source(name):
    """The .py (jupytext py:percent) is the source a reviewer reads; the .ipynb must hold exactly its cells:
    after editing either, run `jupytext --sync notebooks/NN_*.ipynb`."""
    import jupytext

    py = jupytext.read(NOTEBOOKS / f"{name}.py")
    ipynb = jupytext.read(NOTEBOOKS / f"{name}.ipynb")
    cells = lambda nb: [(c.cell_type, c.source.strip(), c.metadata.get("tags", [])) for c in nb.cells]  # noqa: E731
    assert cells(py) == cells(ipynb), f"{name}.ipynb and {name}.py differ: run jupytext --sync notebooks/{name}.ipynb"


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_cells_hold_no_logic_beyond_calls(name):
    """Scale dispatch and path handling live in samr1lib.experiments.steps, not in cells."""
    nb = nbformat.read(str(NOTEBOOKS / f"{name}.ipynb"), as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", []))
    assert "if scale" not in code and "elif scale" not in code and "runs/notebooks" not in code


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_without_outputs_and_with_a_parameters_cell(name):
    path = ROOT / "notebooks" / f"{name}.ipynb"
    assert notebooks.has_outputs(path) == [], f"{path} has committed outputs: run python -m samr1lib.notebooks --strip"
    nb = nbformat.read(str(path), as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    src = tagged[0].source
    for p in ("scale =", "metrics_path =", "figures_dir ="):
        assert p in src
    assert "smoke" in src and "toy" in src and "paper" in src
    assert "notebooks.write_metrics(metrics_path, metrics)" in nb.cells[-1].source


def test_output_check_catches_an_executed_notebook(tmp_path):
    nb = nbformat.read(str(ROOT / "notebooks" / "01_data_sampling.ipynb"), as_version=4)
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", text="hi")]
    nb.cells[2].execution_count = 3
    p = tmp_path / "x.ipynb"
    nbformat.write(nb, str(p))
    assert len(notebooks.has_outputs(p)) == 2
    assert notebooks.strip_outputs(p) and notebooks.has_outputs(p) == []


def test_params_yaml_common_and_per_notebook(tmp_path):
    y = tmp_path / "p.yaml"
    y.write_text("scale: toy\nseeds: [0, 1, 2]\n04: {seeds: [5]}\n05_ablation_token_level: {root: x}\n")
    nbs = notebooks.resolve(["04", "05_ablation_token_level", "06"], NOTEBOOKS)
    p = notebooks.load_params(y, nbs)
    assert p["04_ablation_threshold"] == {"scale": "toy", "seeds": [5]}
    assert p["05_ablation_token_level"] == {"scale": "toy", "seeds": [0, 1, 2], "root": "x"}
    assert p["06_ablation_clip_higher"] == {"scale": "toy", "seeds": [0, 1, 2]}
    with pytest.raises(ValueError, match="no notebook"):
        notebooks.resolve(["99"], NOTEBOOKS)


def _fake_metrics(tmp_path, name, figure=True):
    m = {"ablation": name, "scale": "toy", "seeds": [0, 1], "seconds": 12.0, "grpo_seconds": 431.6, "runs": 4,
         "torch_threads": [2], "figure": str(tmp_path / f"ablation_{name}_toy.png") if figure else None,
         "variants": [{"variant": "a", "overrides": "x=1", "seeds": 2, "scale": "toy", "ours mean tier": "1.000 ± 0.100",
                       "ours Δ per seed": "+0.50 / -0.20", "paper RS gIoU": 56.5},
                      {"variant": "b | c", "overrides": "(toy preset)", "seeds": 2, "scale": "toy",
                       "ours mean tier": "0.500 ± 0.000", "ours Δ per seed": "+0.00 / +0.00", "paper RS gIoU": 60.2}]}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(m))
    return m, path


def test_results_markdown_tables_timing_and_notes(tmp_path):
    m, _ = _fake_metrics(tmp_path, "threshold")
    report = {"04_ablation_threshold": {"seconds": 12.0}, "05_ablation_token_level": {"seconds": 99.0}}
    md = reports.results_markdown([m], report, command="python -m x", provenance="Written on D.")
    assert md.startswith("# Ablations at toy scale\n\nMade by `python -m x`.\n\nWritten on D.\n")
    assert "## Tiered reward (Eq. 5) vs fixed IoU thresholds (SAM-R1 Table 3)" in md
    assert "notebook wall time 12 s" in md and "99 s" not in md  # its own notebook's time, not another's
    assert "GRPO 432 s over its 4 runs as recorded when each was trained (2 torch threads)" in md
    header = next(line for line in md.splitlines() if line.startswith("| variant"))
    assert header == "| variant | ours mean tier | ours Δ per seed | paper RS gIoU |"  # overrides/scale/seeds left out
    assert "| a | 1.000 ± 0.100 | +0.50 / -0.20 | 56.5 |" in md and "![curves](ablation_threshold_toy.png)" in md
    assert md.rstrip().endswith(reports.NOTES_MARKER)
    # rewriting keeps the hand-written notes below the marker, and only those
    path = tmp_path / "t.md"
    path.write_text("# old tables\n| stale |\n" + reports.NOTES_MARKER + "\n\n**Reading.** by hand\n")
    reports.write_results_markdown(path, [m], report, command="python -m x")
    text = path.read_text()
    assert "| stale |" not in text and text.count(reports.NOTES_MARKER) == 1
    assert text.split(reports.NOTES_MARKER)[1].strip() == "**Reading.** by hand"
    reports.write_results_markdown(path, [m], report)  # idempotent: the notes are not duplicated
    assert path.read_text().count("by hand") == 1


def test_write_summary_reads_the_ablation_notebooks_that_ran(tmp_path):
    m, mpath = _fake_metrics(tmp_path, "kl_removal", figure=False)
    _, other = _fake_metrics(tmp_path, "threshold")
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"n_sample": 3}))  # a notebook that is not an ablation
    report = {"07_ablation_kl_removal": {"ok": True, "metrics": str(mpath), "seconds": 5.0},
              "04_ablation_threshold": {"ok": False, "metrics": str(other), "seconds": 1.0},  # failed: left out
              "01_data_sampling": {"ok": True, "metrics": str(plain), "seconds": 2.0}}
    out = notebooks.write_summary(report, tmp_path / "s.md", command="python -m samr1lib.notebooks 07")
    text = out.read_text()
    assert text.count("\n## ") == 1 and "KL kept (beta 0.04) vs removed (beta 0)" in text
    assert re.search(r"Written on \d{4}-\d\d-\d\d, at commit \S+, CPU .+ \(\d+ cores\), torch ", text)
    with pytest.raises(ValueError, match="none of .* wrote ablation tables"):
        notebooks.write_summary({"01_data_sampling": report["01_data_sampling"]}, tmp_path / "n.md")
    assert not (tmp_path / "n.md").exists()


@pytest.fixture(scope="module")
def executed():
    """Every notebook run once at smoke scale, with one shared smoke toy root (as a user's batch rerun would)."""
    out = ROOT / "runs" / "notebooks" / "test_smoke"
    shutil.rmtree(out, ignore_errors=True)  # finished runs are read back by config: start from nothing
    params = {stem: {"scale": "smoke", "figures_dir": str(out / "figures"), "root": str(out / "toy")}
              for stem in EXPECTED}
    for stem in ("01_data_sampling", "02_reward_sanity_checks", "03_training_launch", "09_evaluation",
                 "10_rollout_viewer"):
        params[stem].pop("root")
    report = notebooks.run_notebooks(notebooks.list_notebooks(NOTEBOOKS), params, out, log=lambda *_: None)
    return out, report


def _metrics(executed, name):
    out, report = executed
    assert report[name]["ok"], f"{name} failed: {report[name].get('error')} (see {report[name]['output']})"
    return json.loads(Path(report[name]["metrics"]).read_text())


@pytest.mark.slow
def test_01_data_sampling(executed):
    m = _metrics(executed, "01_data_sampling")
    assert m["n_sample"] == m["n_records"] > 0 and len(m["categories"]) >= 2
    assert all(Path(f).stat().st_size > 5000 for f in m["figures"])


@pytest.mark.slow
def test_02_reward_sanity(executed):
    m = _metrics(executed, "02_reward_sanity_checks")
    assert m["tiers_at_boundaries"]["0.5"] == 0 and m["tiers_at_boundaries"]["0.5000001"] == 2
    assert m["tiers_at_boundaries"]["0.8000001"] == 4
    gallery = {g["case"]: g for g in m["gallery"]}
    assert gallery["good"]["parsed"] and gallery["good"]["reasoning format"] == 1
    assert not gallery["bad JSON"]["parsed"] and gallery["bad JSON"]["segmentation format"] == 0
    pert = m["perturbation"]
    assert pert["0.0"]["mask_iou"] > pert["0.35"]["mask_iou"]  # a worse box gives a worse mask on average


@pytest.mark.slow
def test_03_training_launch(executed):
    m = _metrics(executed, "03_training_launch")
    assert m["world_size"] == 2 and m["steps_logged"] >= 2  # two CPU processes really ran
    assert m["launch"][:2] == ["accelerate", "launch"] and "8" in m["launch"]


@pytest.mark.slow
@pytest.mark.parametrize("name,n_variants", [("04_ablation_threshold", 4), ("05_ablation_token_level", 2),
                                             ("06_ablation_clip_higher", 2), ("07_ablation_kl_removal", 2),
                                             ("08_ablation_negative_points", 4), ("11_related_systems", 3)])
def test_ablation_notebooks(executed, name, n_variants):
    m = _metrics(executed, name)
    assert m["scale"] == "smoke" and len(m["variants"]) == n_variants
    for v in m["variants"]:
        assert v["seeds"] == 1 and v["scale"] == "smoke" and "ours mean tier" in v and "paper (7B, 8 GPUs)" in v
        assert re.fullmatch(r"[+-]\d+\.\d\d", v["ours Δ per seed"])  # one seed at smoke scale: one signed value
    assert Path(m["figure"]).stat().st_size > 5000


@pytest.mark.slow
def test_09_evaluation(executed):
    m = _metrics(executed, "09_evaluation")
    assert [(s["dataset"], s["split"]) for s in m["splits"]] == [
        ("refcoco", "testA"), ("refcoco+", "testA"), ("refcocog", "test"), ("reasonseg", "val"), ("reasonseg", "test")]
    for s in m["splits"]:
        assert 0 <= s["cIoU"] <= 100 and s["n"] > 0  # percent, as the paper reports
        assert s["accounting"]["items"] == s["accounting"]["scored"] == s["n"]
    sel = m["selection"]
    assert [c["step"] for c in sel["checkpoints"]] == [1, 2] and len(sel["benchmarks"]) == 5
    assert m["diff"]["n"] == 8 and len(m["diff"]["bootstrap_95"]["gIoU"]) == 2


@pytest.mark.slow
def test_10_rollout_viewer(executed):
    m = _metrics(executed, "10_rollout_viewer")
    assert m["rollouts"] == 8 and m["shown_row"] is not None and m["failure_choices"][:3] == ["any", "ok", "failed"]


@pytest.mark.slow
def test_summary_of_the_ablation_notebooks_that_ran(executed, tmp_path):
    out, report = executed
    text = notebooks.write_summary(report, tmp_path / "smoke.md", command="pytest").read_text()
    assert text.count("\n## ") == 6  # 04-08 and 11, each with its times
    assert text.count("GRPO ") == 6 and text.count("notebook wall time ") == 6
