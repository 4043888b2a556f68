"""The answer parser: every failure reason, clipping, lists, and never raising on model text."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samr1lib.parse import Answer, Failure, ObjectAnswer, format_completion, parse_completion
from samr1lib.prompt import build_messages, build_prompt

GOOD = {"bbox_2d": [100, 120, 300, 400], "point_2d": [200, 250], "label": "red cup"}


def wrap(payload, think="the cup is on the left"):
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return f"<think>{think}</think><answer>{body}</answer>"


def test_good_answer_parses():
    r = parse_completion(wrap(GOOD))
    assert r.ok and r.failure is None
    obj = r.answer.first
    assert obj.box == (100, 120, 300, 400) and obj.point == (200, 250) and obj.label == "red cup"
    assert r.think == "the cup is on the left"
    assert not r.answer.is_list


def test_code_fence_inside_answer_is_accepted():
    r = parse_completion(f"<think>x</think><answer>```json\n{json.dumps(GOOD)}\n```</answer>")
    assert r.ok


def test_list_of_objects_and_empty_list():
    r = parse_completion(wrap([GOOD, {**GOOD, "label": "blue cup"}]))
    assert r.ok and r.answer.is_list and [o.label for o in r.answer.objects] == ["red cup", "blue cup"]
    empty = parse_completion(wrap([]))
    assert empty.ok and empty.answer.objects == ()


FAILURE_CASES = [
        ("<think>no answer here</think>", Failure.NO_ANSWER_TAG),
        ("<answer>{unclosed", Failure.NO_ANSWER_TAG),
        (wrap("{'bbox_2d': [1, 2, 3, 4]}"), Failure.BAD_JSON),
        (wrap(""), Failure.BAD_JSON),
        (wrap("42"), Failure.WRONG_STRUCTURE),
        (wrap('"a string"'), Failure.WRONG_STRUCTURE),
        (wrap([GOOD, 3]), Failure.WRONG_STRUCTURE),
        (wrap({"point_2d": [1, 2], "label": "x"}), Failure.MISSING_KEY),
        (wrap({"bbox_2d": [1, 2, 3, 4], "label": "x"}), Failure.MISSING_KEY),
        (wrap({"bbox_2d": [1, 2, 3, 4], "point_2d": [1, 2]}), Failure.MISSING_KEY),
        (wrap({**GOOD, "bbox_2d": [1, 2, 3]}), Failure.WRONG_TYPE),
        (wrap({**GOOD, "bbox_2d": "1,2,3,4"}), Failure.WRONG_TYPE),
        (wrap({**GOOD, "bbox_2d": ["1", 2, 3, 4]}), Failure.WRONG_TYPE),
        (wrap({**GOOD, "point_2d": [True, 2]}), Failure.WRONG_TYPE),
        (wrap({**GOOD, "label": 7}), Failure.WRONG_TYPE),
        (wrap({**GOOD, "label": "   "}), Failure.WRONG_TYPE),
        (wrap('{"bbox_2d": [NaN, 2, 3, 4], "point_2d": [1, 2], "label": "x"}'), Failure.NON_FINITE),
        (wrap('{"bbox_2d": [1, 2, Infinity, 4], "point_2d": [1, 2], "label": "x"}'), Failure.NON_FINITE),
        (wrap('{"bbox_2d": [1, 2, 1e999, 4], "point_2d": [1, 2], "label": "x"}'), Failure.NON_FINITE),
        (wrap('{"bbox_2d": [1, 2, ' + "9" * 400 + ', 4], "point_2d": [1, 2], "label": "x"}'), Failure.NON_FINITE),
        (wrap({**GOOD, "bbox_2d": [300, 120, 100, 400]}), Failure.DEGENERATE_BOX),
        (wrap({**GOOD, "bbox_2d": [100, 120, 100, 400]}), Failure.DEGENERATE_BOX),
        (wrap({**GOOD, "bbox_2d": [900, 900, 1000, 1000]}), Failure.OUT_OF_FRAME),
        (wrap({**GOOD, "bbox_2d": [-50, 10, -1, 40]}), Failure.OUT_OF_FRAME),
        (wrap({**GOOD, "points_2d": [[1, 2]], "point_labels": [2]}), Failure.BAD_POINT_LABELS),
        (wrap({**GOOD, "points_2d": [[1, 2], [3, 4]], "point_labels": [1]}), Failure.BAD_POINT_LABELS),
        (wrap({**GOOD, "points_2d": [[1, 2]], "point_labels": [True]}), Failure.BAD_POINT_LABELS),
        (wrap({**GOOD, "points_2d": [[1, 2]]}), Failure.BAD_POINT_LABELS),
        (wrap({**GOOD, "points_2d": "none", "point_labels": []}), Failure.WRONG_TYPE),
]


@pytest.mark.parametrize("text, reason", FAILURE_CASES)
def test_failure_reasons(text, reason):
    r = parse_completion(text)
    assert not r.ok and r.answer is None
    assert r.failure is reason, r.detail
    assert r.detail


def test_every_failure_reason_is_exercised():
    # keeps the parametrised list above honest when a reason is added
    covered = {reason for _, reason in FAILURE_CASES}
    assert covered == set(Failure)


def test_coordinates_are_clipped_to_the_frame():
    r = parse_completion(wrap({**GOOD, "bbox_2d": [-20, 10, 900, 1000], "point_2d": [-5, 2000]}), frame=(840, 840))
    assert r.answer.first.box == (0, 10, 840, 840)
    assert r.answer.first.point == (0, 840)
    r = parse_completion(wrap({**GOOD, "bbox_2d": [10, 10, 200, 90], "point_2d": [150, 50]}), frame=(112, 80))
    assert r.answer.first.box == (10, 10, 112, 80) and r.answer.first.point == (112, 50)


def test_labelled_points_parse():
    payload = {**GOOD, "points_2d": [[150, 160], [20, 30]], "point_labels": [1, 0]}
    obj = parse_completion(wrap(payload)).answer.first
    assert obj.points == ((150, 160), (20, 30)) and obj.point_labels == (1, 0)
    pts, labels = obj.prompt_points()
    assert pts == [(200, 250), (150, 160), (20, 30)] and labels == [1, 1, 0]


def test_first_answer_block_is_used():
    text = wrap(GOOD) + "<answer>garbage</answer>"
    assert parse_completion(text).ok


def test_format_completion_round_trips():
    obj = ObjectAnswer(box=(10.4, 20.6, 30.0, 40.0), point=(15.0, 25.0), label="dog",
                       points=((12.0, 22.0),), point_labels=(0,))
    text = format_completion(obj, think="a dog")
    r = parse_completion(text)
    assert r.ok and r.answer.first.box == (10, 21, 30, 40) and r.answer.first.point_labels == (0,)
    assert format_completion(Answer(objects=(), is_list=True)).endswith("<answer>[]</answer>")


def test_prompt_and_messages():
    p = build_prompt("the red cup")
    assert "the red cup" in p and "bbox_2d" in p and "point_2d" in p and "<think>" in p
    assert "point_labels" in build_prompt("x", negative_points=True)
    msgs = build_messages("the red cup")
    assert msgs[-1]["content"][0] == {"type": "image"}
    with pytest.raises(ValueError, match="query"):
        build_prompt("  ")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parser_never_raises_on_arbitrary_text(text):
    r = parse_completion(text)
    assert r.ok != (r.failure is not None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(
        st.sampled_from(["bbox_2d", "point_2d", "label", "points_2d", "point_labels", "x"]), children, max_size=6),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(json_values, st.sampled_from([(840, 840), (112, 80), (1, 1)]))
def test_parser_never_raises_on_arbitrary_json(value, frame):
    r = parse_completion(wrap(json.dumps(value)), frame=frame)
    if r.ok:
        for obj in r.answer.objects:
            x1, y1, x2, y2 = obj.box
            assert 0 <= x1 < x2 <= frame[0] and 0 <= y1 < y2 <= frame[1]
            assert all(math.isfinite(v) for v in (x1, y1, x2, y2))
            assert 0 <= obj.point[0] <= frame[0] and 0 <= obj.point[1] <= frame[1]


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=3), st.text(max_size=3))
def test_parser_never_raises_on_mutated_good_text(cut, op, junk):
    text = wrap(GOOD)
    i = cut % len(text)
    mutated = [text[:i] + text[i + 1:], text[:i] + junk + text[i:], text[:i], text[i:]][op]
    r = parse_completion(mutated)
    assert r.ok != (r.failure is not None)
