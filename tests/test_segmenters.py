"""Segmenters: GrabCut on synthetic shapes, SAM2 at random init (shapes, batching, one encoding
per distinct image), coordinate frames, and bad input."""

import numpy as np
import pytest
from PIL import Image

from samr1lib.frames import qwen_frame, scale_answer, scale_box, scale_point
from samr1lib.metrics import mask_iou
from samr1lib.parse import parse_completion
from samr1lib.segmenters import SegPrompt, build_segmenter, prompts_from_answer, segment_many


def scene(h=112, w=112, shape="square"):
    img = np.full((h, w, 3), (240, 240, 230), np.uint8)
    yy, xx = np.mgrid[:h, :w]
    if shape == "square":
        gt = (yy >= 30) & (yy < 70) & (xx >= 40) & (xx < 90)
    else:
        gt = (yy - 56) ** 2 + (xx - 50) ** 2 < 22 ** 2
    img[gt] = (30, 60, 200)
    return img, gt


@pytest.mark.parametrize("shape", ["square", "circle"])
def test_grabcut_recovers_shape_from_good_box(shape):
    img, gt = scene(shape=shape)
    ys, xs = np.nonzero(gt)
    box = (xs.min() - 3, ys.min() - 3, xs.max() + 4, ys.max() + 4)
    seg = build_segmenter("grabcut")
    (mask,) = seg.segment(img, [SegPrompt(box=box, points=((xs.mean(), ys.mean()),), labels=(1,))])
    assert mask.dtype == bool and mask.shape == gt.shape
    assert mask_iou(mask, gt) > 0.9


def test_grabcut_points_only_negative_points_and_degenerate_prompts():
    img, gt = scene()
    seg = build_segmenter("grabcut")
    masks = seg.segment(Image.fromarray(img), [
        SegPrompt(points=((60, 50),), labels=(1,)),
        SegPrompt(box=(35, 25, 95, 75), points=((60, 50), (37, 27)), labels=(1, 0)),
        SegPrompt(box=(0, 0, 112, 112)),  # the whole frame: no background pixels to model
        SegPrompt(box=(50.2, 50.2, 50.4, 50.4)),  # sub-pixel box
    ])
    assert len(masks) == 4 and all(m.shape == gt.shape for m in masks)
    assert mask_iou(masks[1], gt) > 0.9
    assert masks[3].sum() >= 1 and masks[3].sum() < 10
    again = seg.segment(img, [SegPrompt(points=((60, 50),), labels=(1,))])
    assert (again[0] == masks[0]).all()  # deterministic


def test_segprompt_validation():
    with pytest.raises(ValueError, match="labels"):
        SegPrompt(points=((1, 2),), labels=())
    with pytest.raises(ValueError, match="box or at least one point"):
        SegPrompt()


def test_bad_images_raise():
    seg = build_segmenter("grabcut")
    p = [SegPrompt(box=(1, 1, 5, 5))]
    with pytest.raises(TypeError, match="list"):
        seg.segment([[1, 2, 3]], p)
    with pytest.raises(ValueError, match="HxWx3"):
        seg.segment(np.zeros((8, 8), np.uint8), p)
    with pytest.raises(ValueError, match="float32"):
        seg.segment(np.zeros((8, 8, 3), np.float32), p)
    with pytest.raises(ValueError, match="unknown segmenter 'sam3'"):
        build_segmenter("sam3")


@pytest.fixture(scope="module")
def sam2_tiny():
    return build_segmenter("sam2", config="sam2.1_hiera_t", device="cpu", image_size=256)


def test_sam2_shapes_and_batching(sam2_tiny):
    img = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    prompts = [
        SegPrompt(box=(10, 10, 60, 50), points=((30, 30),), labels=(1,)),
        SegPrompt(box=(20, 15, 70, 55)),
        SegPrompt(points=((40, 40), (80, 70)), labels=(1, 0)),
        SegPrompt(box=(12, 11, 61, 52), points=((31, 30),), labels=(1,)),
    ]
    before = sam2_tiny.encode_count
    masks = sam2_tiny.segment(img, prompts)
    assert sam2_tiny.encode_count - before == 1  # three prompt structures, one image encoding
    assert len(masks) == 4 and all(m.shape == (90, 120) and m.dtype == bool for m in masks)
    naive = sam2_tiny.segment_naive(img, prompts)
    assert all(mask_iou(a, b) > 0.999 for a, b in zip(masks, naive))  # same masks, batched or not


def test_segment_many_encodes_each_distinct_image_once(sam2_tiny):
    rng = np.random.default_rng(1)
    img_a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    img_b = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    p = [SegPrompt(box=(5, 5, 40, 40))]
    # a GRPO batch: 2 prompts x G=4 completions; rows decode to distinct but equal arrays
    images = [img_a.copy() for _ in range(4)] + [Image.fromarray(img_b) for _ in range(4)]
    prompts = [p, p, [], p * 2, p, p, p, p]
    before = sam2_tiny.encode_count
    out = segment_many(sam2_tiny, images, prompts)
    assert sam2_tiny.encode_count - before == 2
    assert [len(o) for o in out] == [1, 1, 0, 2, 1, 1, 1, 1]


def test_sam2_multimask_best_score():
    seg = build_segmenter("sam2", config="sam2.1_hiera_t", image_size=256, multimask=True)
    img = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    masks = seg.segment(img, [SegPrompt(points=((20, 20),), labels=(1,))] * 2)
    assert len(masks) == 2 and masks[0].shape == (64, 80)


def test_sam2_bad_config_and_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="unknown SAM2 config 'sam2_hiera_xxl'.*sam2.1_hiera_l"):
        build_segmenter("sam2", config="sam2_hiera_xxl")
    missing = tmp_path / "sam2.1_hiera_large.pt"
    with pytest.raises(FileNotFoundError, match="sam2.1_hiera_large.pt"):
        build_segmenter("sam2", config="sam2.1_hiera_l", checkpoint=str(missing))


def test_frames_round_trip_and_qwen_resize():
    assert scale_point((420, 210), (840, 840), (640, 480)) == (320, 120)
    box = scale_box((84, 84, 840, 420), (840, 840), (640, 480))
    assert box == pytest.approx((64, 48, 640, 240))
    assert scale_box(box, (640, 480), (840, 840)) == pytest.approx((84, 84, 840, 420))
    assert qwen_frame(840, 840) == (840, 840)  # §4.1: 840 = 30 x 28 keeps its size
    w, h = qwen_frame(640, 480)
    assert w % 28 == 0 and h % 28 == 0
    with pytest.raises(ValueError, match="positive"):
        scale_point((1, 1), (0, 10), (10, 10))


def test_prompts_from_answer_maps_every_point():
    text = ('<think>x</think><answer>{"bbox_2d": [84, 168, 420, 840], "point_2d": [210, 420], "label": "a",'
            ' "points_2d": [[100, 200]], "point_labels": [0]}</answer>')
    ans = parse_completion(text).answer
    (p,) = prompts_from_answer(ans, (840, 840), (420, 210))
    assert p.box == pytest.approx((42, 42, 210, 210))
    assert p.points == (pytest.approx((105, 105)), pytest.approx((50, 50))) and p.labels == (1, 0)
    scaled = scale_answer(ans, (840, 840), (420, 210))
    assert scaled.first.box == pytest.approx(p.box)
