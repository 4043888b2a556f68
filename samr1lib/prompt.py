"""The one prompt of the project: system prompt, instruction template and the answer's JSON keys.

SAM-R1 (arXiv 2505.22596, §3.1, §3.3) has the policy write its reasoning in ``<think>...</think>`` and then, in
``<answer>...</answer>``, a JSON answer with a bounding box, one reference point and a short text label. The keys
follow Qwen2.5-VL's own grounding vocabulary (``bbox_2d`` ``[x1, y1, x2, y2]``, ``point_2d`` ``[x, y]``,
``label``). Labelled points for the negative-points ablation (Appendix A.2) and Seg-R1's fg/bg points use two
optional keys of the same object: ``points_2d`` ``[[x, y], ...]`` and ``point_labels`` ``[1, 0, ...]``.
The parser (:mod:`samr1lib.parse`) reads exactly these keys.
"""

from __future__ import annotations

from typing import Any

# §4.1: "every image resized to 840 x 840" before the policy (840 = 30 x 28, Qwen2.5-VL's patch x merge).
POLICY_FRAME: tuple[int, int] = (840, 840)  # (width, height)

BOX_KEY = "bbox_2d"
POINT_KEY = "point_2d"
LABEL_KEY = "label"
POINTS_KEY = "points_2d"
POINT_LABELS_KEY = "point_labels"
# §3.3, segmentation-format reward: box, reference point and text label are all required.
REQUIRED_KEYS: tuple[str, ...] = (BOX_KEY, POINT_KEY, LABEL_KEY)

SYSTEM_PROMPT = (
    "You are a helpful assistant that locates objects in images. "
    "You first think about the question and then give the answer."
)

PROMPT_TEMPLATE = (
    'Find "{query}" in the image. '
    "First output your reasoning inside <think> </think> tags. "
    "Then output the answer inside <answer> </answer> tags as JSON: "
    '{{"bbox_2d": [x1, y1, x2, y2], "point_2d": [x, y], "label": "short description"}}, '
    "where bbox_2d is the bounding box of the target, point_2d a point inside the target, "
    "both in pixels of the image."
)

NEGATIVE_POINTS_SUFFIX = (
    ' You may add "points_2d": [[x, y], ...] with "point_labels": [1 or 0, ...] '
    "(1 for a point on the target, 0 for a point on the background)."
)


def build_prompt(query: str, negative_points: bool = False) -> str:
    """The user instruction for one query (the one prompt template of the project)."""
    if not isinstance(query, str) or not query.strip():
        raise ValueError(f"query must be a non-empty string, got {query!r}")
    text = PROMPT_TEMPLATE.format(query=query.strip())
    return text + NEGATIVE_POINTS_SUFFIX if negative_points else text


def build_messages(query: str, negative_points: bool = False) -> list[dict[str, Any]]:
    """A conversational prompt (TRL / chat-template format) with one image placeholder."""
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {
            "role": "user",
            "content": [
                {"type": "image"},
                {"type": "text", "text": build_prompt(query, negative_points)},
            ],
        },
    ]
