"""Training-curve figures: every run is in the legend and keeps one colour across panels, also when it does not
log every metric (StAR logs no `segmentation_reward`)."""

import json

from samr1lib.view import plots


def test_training_curves_legend_and_colours_cover_runs_missing_a_panel(tmp_path, monkeypatch):
    def write(name, keys):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"step": s, **{k: s * 0.1 for k in keys}}) + "\n" for s in (1, 2, 3)))
        return str(path)

    runs = {"a": write("a", ["r", "len"]), "b": write("b", ["len"]), "c": write("c", ["r", "len"])}
    seen = {}
    save = plots.save_figure

    def keep(fig, out_png, **kw):
        seen["legend"] = [t.get_text() for t in fig.legends[0].get_texts()]
        seen["colours"] = [[(line.get_label(), line.get_color()) for line in ax.get_lines()] for ax in fig.axes]
        seen["markers"] = {line.get_marker() for ax in fig.axes for line in ax.get_lines()}
        return save(fig, out_png, **kw)

    monkeypatch.setattr(plots, "save_figure", keep)
    out = plots.training_curves(runs, tmp_path / "curves.png", keys={"r": "reward", "len": "length"})
    assert out.exists()
    assert seen["legend"] == ["a", "b", "c"]  # b has no "r" (first panel) and is still listed
    first, second = (dict(panel) for panel in seen["colours"])
    assert set(first) == {"a", "c"} and set(second) == {"a", "b", "c"}
    assert first["a"] == second["a"] and first["c"] == second["c"]  # one colour per run across panels
    assert len(set(second.values())) == 3
    assert seen["markers"] == {"o"}  # three logged steps: points drawn, not only a line (one point draws none)
