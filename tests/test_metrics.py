"""IoU, gIoU / cIoU (PAPER.md §9 conventions), box IoU and RLE handling on crafted masks."""

import numpy as np
import pytest

from samr1lib.masks import as_mask, decode_rle, encode_rle, mask_to_box, polygons_to_mask
from samr1lib.metrics import box_accuracy, box_iou, giou_ciou, intersection_union, mask_iou


def rect(h, w, y1, y2, x1, x2):
    m = np.zeros((h, w), bool)
    m[y1:y2, x1:x2] = True
    return m


def test_mask_iou_on_crafted_masks():
    a, b = rect(10, 10, 0, 4, 0, 5), rect(10, 10, 2, 6, 0, 5)  # 20 px each, overlap 10
    assert intersection_union(a, b) == (10, 30)
    assert mask_iou(a, b) == pytest.approx(1 / 3)
    assert mask_iou(a, a) == 1.0
    assert mask_iou(a, np.zeros_like(a)) == 0.0


def test_empty_conventions():
    empty = np.zeros((5, 5), bool)
    assert mask_iou(empty, empty) == 1.0  # empty/empty scores 1 in gIoU
    assert mask_iou(None, empty) == 1.0  # a failed parse is an empty prediction
    assert mask_iou(None, rect(5, 5, 0, 2, 0, 2)) == 0.0


def test_giou_ciou_differ_as_defined():
    gts = [rect(10, 10, 0, 10, 0, 10), rect(10, 10, 0, 1, 0, 2)]  # 100 px and 2 px
    preds = [rect(10, 10, 0, 10, 0, 5), None]  # IoU 0.5; failed parse -> 0
    giou, ciou = giou_ciou(preds, gts)
    assert giou == pytest.approx((0.5 + 0.0) / 2)
    assert ciou == pytest.approx(50 / (100 + 2))


def test_giou_counts_empty_empty_as_one_and_all_empty_ciou_as_one():
    empty = np.zeros((4, 4), bool)
    assert giou_ciou([empty, rect(4, 4, 0, 2, 0, 2)], [empty, rect(4, 4, 0, 2, 0, 2)]) == (1.0, 1.0)
    assert giou_ciou([None], [empty]) == (1.0, 1.0)


def test_ignore_region_excluded_from_both_terms():
    gt = rect(10, 10, 0, 5, 0, 10)  # top half
    pred = rect(10, 10, 0, 10, 0, 10)  # everything
    ignore = rect(10, 10, 5, 10, 0, 10)  # bottom half ignored: the over-prediction does not count
    assert mask_iou(pred, gt) == pytest.approx(0.5)
    assert mask_iou(pred, gt, ignore) == 1.0
    assert giou_ciou([pred], [gt], [ignore]) == (1.0, 1.0)


def test_rle_and_arrays_mix():
    gt = rect(12, 9, 2, 8, 1, 6)
    pred = rect(12, 9, 2, 8, 1, 4)
    assert mask_iou(encode_rle(pred), encode_rle(gt)) == mask_iou(pred, gt)
    assert (decode_rle(encode_rle(gt)) == gt).all()
    uncompressed = {"size": [3, 2], "counts": [1, 2, 3]}  # column-major runs: 0, 1 1, 0 0 0
    assert decode_rle(uncompressed).sum() == 2
    assert (as_mask(gt.astype(float) * 0.9) == gt).all()


def test_bad_input_raises_naming_the_problem():
    with pytest.raises(ValueError, match="shape"):
        mask_iou(np.zeros((3, 3), bool), np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="empty split"):
        giou_ciou([], [])
    with pytest.raises(ValueError, match="predictions"):
        giou_ciou([None], [])
    with pytest.raises(ValueError, match="corrupt RLE in sample 7"):
        decode_rle({"size": [4, 4], "counts": "not-an-rle!!"}, where="sample 7")
    with pytest.raises(ValueError, match="corrupt polygon 0 in ann 3"):
        polygons_to_mask([[1, 2, 3]], 5, 5, where="ann 3")
    with pytest.raises(ValueError, match="HxW"):
        as_mask(np.zeros((2, 2, 2)))


def test_polygon_rasterises_known_square():
    m = polygons_to_mask([[2, 2, 6, 2, 6, 6, 2, 6]], 10, 10)
    assert mask_to_box(m) == (2, 2, 7, 7) or mask_to_box(m) == (2, 2, 6, 6)
    assert 16 <= m.sum() <= 25
    assert mask_to_box(np.zeros((3, 3), bool)) is None


def test_box_iou_and_accuracy():
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert box_iou([0, 0, 1, 1], [2, 2, 3, 3]) == 0.0
    assert box_iou(None, [0, 0, 1, 1]) == 0.0
    gts = [[0, 0, 10, 10]] * 3
    assert box_accuracy([[0, 0, 10, 10], [0, 0, 10, 4], None], gts) == pytest.approx(1 / 3)
    # Acc@0.5 counts IoU >= 0.5: exactly 0.5 is a hit, just below is a miss
    assert box_accuracy([[0, 0, 10, 5]], [[0, 0, 10, 10]]) == 1.0
    assert box_accuracy([[0, 0, 10, 4.99]], [[0, 0, 10, 10]]) == 0.0


def test_s_measure_stable_name():
    from samr1lib.metrics import s_measure

    gt = rect(20, 20, 5, 15, 5, 15)
    assert s_measure(gt, gt) == pytest.approx(1.0)
    assert s_measure(np.zeros_like(gt), gt) < 0.5  # an empty prediction scores low (PAPER.md §7)
