"""Rollout viewer: read a training run's rollout log, filter, sort, render, and browse it with ipywidgets.

The log is what ``samr1lib.train`` writes, one JSON line per rollout (``rollouts.rank{r}.jsonl``): step,
query, completion, parsed answer or failure reason, IoU, every reward component, the advantage, the
predicted mask (RLE), the GT mask (RLE) and the image path.

Pure functions (tested without a browser)::

    df = load_rollouts("runs/toy/rollouts.rank0.jsonl")
    view = filter_rollouts(df, steps=(0, 50), min_reward=2, failure="ok")
    view = sort_rollouts(view, by="advantage")
    png = render_rollout(view.iloc[0])        # PNG bytes: image, GT mask, predicted box, points and mask
    rollout_grid(df, "figures/rollouts.png")  # the best and worst rollouts, for headless runs

In a notebook: ``RolloutViewer(df).widget`` (filters: step range, minimum reward, parse failure; sort by
reward, advantage or IoU; an index slider; the image, the think text and a table of reward components).
"""

from __future__ import annotations

import html
import io
import json
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..frames import scale_box, scale_point
from ..masks import decode_rle
from .plots import pyplot, save_figure

__all__ = [
    "SORT_KEYS",
    "load_rollouts",
    "failure_choices",
    "filter_rollouts",
    "sort_rollouts",
    "think_text",
    "render_rollout",
    "rollout_grid",
    "RolloutViewer",
]

SORT_KEYS = ("reward", "advantage", "iou", "step")
_THINK = re.compile(r"<think>(.*?)</think>", re.S)


def load_rollouts(paths: str | os.PathLike | Sequence[str | os.PathLike]):
    """Rollout rows of one or several logs as a pandas DataFrame (a ``row_id`` column keeps each row's identity).

    A folder means every ``rollouts.rank*.jsonl`` in it. A bad line raises naming the file and line."""
    import pandas as pd

    if isinstance(paths, (str, os.PathLike)):
        p = Path(paths)
        paths = sorted(p.glob("rollouts.rank*.jsonl")) if p.is_dir() else [p]
        if not paths:
            raise FileNotFoundError(f"no rollouts.rank*.jsonl in {p}")
    rows = []
    for path in paths:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{path}:{n}: not a JSON line ({e})") from None
    if not rows:
        raise ValueError(f"no rollouts in {[str(p) for p in paths]}")
    df = pd.DataFrame(rows)
    for col, default in (("iou", np.nan), ("failure", None), ("advantage", 0.0), ("answer", None)):
        if col not in df:
            df[col] = default
    df["iou"] = df["iou"].astype(float)
    df["row_id"] = np.arange(len(df))
    return df


def failure_choices(df) -> list[str]:
    """Values of the failure filter: "any", "ok" (parsed), "failed" (any reason), then each reason present."""
    reasons = sorted({str(f) for f in df["failure"] if f is not None and f == f})
    return ["any", "ok", "failed", *reasons]


def filter_rollouts(df, steps: tuple[int, int] | None = None, min_reward: float | None = None,
                    max_reward: float | None = None, failure: str = "any", query: str | None = None):
    """Rows with step in ``steps`` (inclusive), reward in [min_reward, max_reward], and the failure filter
    ("any", "ok", "failed" or one reason), optionally whose query contains ``query`` (case-insensitive)."""
    keep = np.ones(len(df), dtype=bool)
    if steps is not None:
        keep &= (df["step"] >= steps[0]).to_numpy() & (df["step"] <= steps[1]).to_numpy()
    if min_reward is not None:
        keep &= (df["reward"] >= min_reward).to_numpy()
    if max_reward is not None:
        keep &= (df["reward"] <= max_reward).to_numpy()
    failed = df["failure"].map(lambda f: f is not None and f == f).to_numpy()
    if failure == "ok":
        keep &= ~failed
    elif failure == "failed":
        keep &= failed
    elif failure != "any":
        if failure not in set(df["failure"].dropna()):
            raise ValueError(f"failure filter {failure!r} not among {failure_choices(df)}")
        keep &= (df["failure"] == failure).to_numpy()
    if query:
        keep &= df["query"].astype(str).str.contains(query, case=False, regex=False).to_numpy()
    return df[keep]


def sort_rollouts(df, by: str = "reward", descending: bool = True):
    """Sorted by ``by`` (one of :data:`SORT_KEYS`); ties keep log order; NaN (no IoU) last."""
    if by not in SORT_KEYS:
        raise ValueError(f"sort key {by!r} not one of {SORT_KEYS}")
    return df.sort_values([by, "row_id"], ascending=[not descending, True], na_position="last", kind="stable")


def think_text(completion: str) -> str:
    """The reasoning inside <think>...</think> ("" when absent)."""
    m = _THINK.search(completion or "")
    return m.group(1).strip() if m else ""


def _image(row) -> np.ndarray:
    h, w = int(row.get("height") or 0), int(row.get("width") or 0)
    path = row.get("image_path")
    if path and os.path.exists(path):
        return np.asarray(Image.open(path).convert("RGB"))
    gt = row.get("gt_mask_rle")
    if isinstance(gt, dict):
        h, w = gt["size"]
    return np.full((max(h, 1), max(w, 1), 3), 200, np.uint8)  # image moved: draw on grey, say so in the title


def _draw(ax, row, title: bool = True) -> None:
    from matplotlib.patches import Rectangle

    img = _image(row)
    h, w = img.shape[:2]
    ax.imshow(img)
    # outlines, not fills: a tint would change the object's own colour (a red target reads olive under green)
    for key, colour, style in (("gt_mask_rle", "lime", "solid"), ("mask_rle", "magenta", "dashed")):
        if isinstance(row.get(key), dict):
            outline(ax, decode_rle(row[key], key), colour, style)
    ans = row.get("answer")
    frame = tuple(row.get("policy_frame") or (w, h))
    objs = ans if isinstance(ans, list) else [ans] if isinstance(ans, dict) else []
    for obj in objs:
        if "bbox_2d" in obj:
            x1, y1, x2, y2 = scale_box(obj["bbox_2d"], frame, (w, h))
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="cyan", linewidth=1.5))
        pts = [(obj["point_2d"], 1)] if "point_2d" in obj else []
        pts += list(zip(obj.get("points_2d", []), obj.get("point_labels", [])))
        for p, lab in pts:
            x, y = scale_point(p, frame, (w, h))
            ax.plot(x, y, marker="o" if lab == 1 else "x", color="lime" if lab == 1 else "red", markersize=7,
                    markeredgecolor="black" if lab == 1 else "red")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        iou, fail = row.get("iou"), failure_of(row)
        status = f"failed: {fail}" if fail else f"IoU {iou:.2f}" if iou is not None and iou == iou else "no mask"
        query = str(row.get("query"))
        query = query if len(query) <= 26 else query[:25] + "…"  # one line in a grid panel
        step = row.get("step")
        head = (f"held-out | tier {row.get('reward', 0):.0f}" if step is None or step != step  # an evaluation row
                else f"step {step} | R {row.get('reward', 0):.2f} | A {row.get('advantage', 0):+.2f}")
        ax.set_title(f"{head}\n{query}\n{status}", fontsize=8)


def outline(ax, mask: np.ndarray, colour: str, style: str = "solid") -> None:
    """The mask's outline (a contour at 0.5), so the object's own colours stay visible inside it."""
    if mask.any():
        ax.contour(mask.astype(float), levels=[0.5], colors=[colour], linewidths=1.6, linestyles=style)


def failure_of(row) -> str | None:
    """The row's parse-failure reason, or None (also for a missing or NaN cell)."""
    fail = row.get("failure")
    return None if fail is None or fail != fail else str(fail)


def render_rollout(row, size: float = 3.6) -> bytes:
    """PNG bytes of one rollout: image, GT mask outline (green), predicted mask outline (magenta, dashed),
    predicted box (cyan), points (o foreground, x background)."""
    plt = pyplot()
    row = row.to_dict() if hasattr(row, "to_dict") else dict(row)
    fig, ax = plt.subplots(figsize=(size, size))
    _draw(ax, row)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def rollout_grid(df, out_png: str | os.PathLike, n: int = 6, by: str = "reward", title: str = "rollouts") -> Path:
    """A static figure: the ``n`` best (top row) and ``n`` worst (bottom row) rollouts by ``by``."""
    plt = pyplot()
    ordered = sort_rollouts(df, by=by, descending=True)
    n = max(1, min(n, len(ordered)))
    best, worst = ordered.head(n), ordered.tail(n).iloc[::-1]
    fig, axes = plt.subplots(2, n, figsize=(2.6 * n, 6.6), squeeze=False)
    for r, part in enumerate((best, worst)):
        for c in range(n):
            ax = axes[r][c]
            if c < len(part):
                _draw(ax, part.iloc[c].to_dict())
            else:
                ax.axis("off")
    axes[0][0].set_ylabel(f"best by {by}")
    axes[1][0].set_ylabel(f"worst by {by}")
    fig.suptitle(f"{title}: GT outline green, predicted mask outline magenta (dashed), box cyan, points o fg / x bg", fontsize=9)
    return save_figure(fig, out_png)


def _components_html(row) -> str:
    rewards = row.get("rewards") or {}
    cells = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{float(v):.3f}</td></tr>" for k, v in rewards.items())
    extra = [("total reward", row.get("reward")), ("advantage", row.get("advantage")), ("IoU", row.get("iou"))]
    cells += "".join(f"<tr><td><b>{k}</b></td><td>{'-' if v is None or v != v else f'{float(v):.3f}'}</td></tr>"
                     for k, v in extra)
    fail = failure_of(row)
    cells += f"<tr><td><b>parse failure</b></td><td>{html.escape(fail) if fail else 'no failure'}</td></tr>"
    return f"<table class='samr1-rewards'>{cells}</table>"


class RolloutViewer:
    """An ipywidgets browser over a rollout DataFrame (:func:`load_rollouts`).

    Widgets carry CSS classes (``samr1-step``, ``samr1-min-reward``, ``samr1-failure``, ``samr1-sort``,
    ``samr1-index``, ``samr1-image``, ``samr1-think``, ``samr1-info``) so a browser test can drive them.
    ``viewer.current`` is the row shown; ``viewer.view`` the filtered, sorted rows.
    """

    def __init__(self, df, sort_by: str = "reward"):
        import ipywidgets as W

        if len(df) == 0:
            raise ValueError("no rollouts to view")
        self.df = df
        lo, hi = int(df["step"].min()), int(df["step"].max())
        rmin, rmax = float(df["reward"].min()), float(df["reward"].max())
        self.step = W.IntRangeSlider(value=(lo, hi), min=lo, max=max(hi, lo + 1), description="steps")
        self.min_reward = W.FloatSlider(value=rmin, min=rmin, max=max(rmax, rmin + 1e-3), step=0.05,
                                        description="min reward")
        self.failure = W.Dropdown(options=failure_choices(df), value="any", description="parse")
        self.sort = W.Dropdown(options=[f"{k} ↓" for k in SORT_KEYS] + [f"{k} ↑" for k in SORT_KEYS],
                               value=f"{sort_by} ↓", description="sort by")
        self.index = W.IntSlider(value=0, min=0, max=0, description="rollout")
        self.image = W.Image(format="png", layout=W.Layout(width="360px", height="360px"))
        self.think = W.HTML()
        self.info = W.HTML()
        self.count = W.HTML()
        for w, cls in ((self.step, "samr1-step"), (self.min_reward, "samr1-min-reward"), (self.failure, "samr1-failure"),
                       (self.sort, "samr1-sort"), (self.index, "samr1-index"), (self.image, "samr1-image"),
                       (self.think, "samr1-think"), (self.info, "samr1-info"), (self.count, "samr1-count")):
            w.add_class(cls)
        for w in (self.step, self.min_reward, self.failure, self.sort):
            w.observe(self._refilter, names="value")
        self.index.observe(self._show, names="value")
        controls = W.VBox([self.step, self.min_reward, self.failure, self.sort, self.index, self.count])
        # align_items flex-start: an HBox otherwise stretches the image to the height of the table beside it
        self.widget = W.VBox([controls, W.HBox([self.image, W.VBox([self.info, self.think])],
                                               layout=W.Layout(align_items="flex-start"))])
        self.view = df
        self.current = None
        self._refilter()

    def _refilter(self, *_):
        by, arrow = self.sort.value.split(" ")
        view = filter_rollouts(self.df, steps=tuple(self.step.value), min_reward=self.min_reward.value,
                               failure=self.failure.value)
        self.view = sort_rollouts(view, by=by, descending=arrow == "↓")
        self.count.value = f"<span class='samr1-n'>{len(self.view)} of {len(self.df)} rollouts</span>"
        self.index.max = max(len(self.view) - 1, 0)
        self.index.value = 0
        self._show()

    def _show(self, *_):
        if len(self.view) == 0:
            self.current = None
            self.image.value = b""
            self.info.value = "<i>no rollout matches the filters</i>"
            self.think.value = ""
            return
        row = self.view.iloc[min(self.index.value, len(self.view) - 1)].to_dict()
        self.current = row
        self.image.value = render_rollout(row)
        self.info.value = (f"<div class='samr1-row' data-row='{row['row_id']}'><b>{html.escape(str(row.get('query')))}"
                           f"</b> (step {row.get('step')})</div>" + _components_html(row))
        self.think.value = ("<div><b>think:</b> " + html.escape(think_text(row.get("completion", ""))) +
                            "</div><pre style='white-space:pre-wrap;font-size:11px'>" +
                            html.escape(str(row.get("completion", ""))) + "</pre>")
