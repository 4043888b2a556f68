"""The SAM2 feature cache: decode-only on a warm cache with the same masks, bad entries detected and recomputed,
atomic writes under concurrent writers, the size cap, and the precompute command."""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from samr1lib.experiments.reward_bench import make_group_inputs, run_cache_bench
from samr1lib.segmenters.cache import FeatureCache, bytes_per_image, feature_shapes
from samr1lib.segmenters.sam2_backend import SAM2Segmenter

ROOT = Path(__file__).resolve().parents[1]
SIZE = 256  # a small SAM2 input keeps these tests fast; shapes scale with it


def test_an_entry_is_8_mib_at_1024_in_bf16():
    assert bytes_per_image(1024) == 8 * 2**20  # image embedding + two high-resolution maps
    assert feature_shapes(1024)["image_embed"] == (1, 256, 64, 64)


def _features(value=1.0, size=SIZE):
    shapes = feature_shapes(size)
    return {"image_embed": torch.full(shapes["image_embed"], value),
            "high_res_feats": [torch.full(shapes["high_res_0"], value), torch.full(shapes["high_res_1"], value)]}


def test_bad_entries_are_detected_deleted_and_missed(tmp_path):
    cache = FeatureCache(tmp_path, "model-a", SIZE)
    cache.save("ab12", _features(), (480, 640))
    feats, hw = cache.load("ab12")
    assert hw == (480, 640) and feats["image_embed"].dtype == torch.bfloat16 and cache.hits == 1
    path = cache.path("ab12")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated
    assert cache.load("ab12") is None and cache.bad == 1 and not path.exists()
    other = FeatureCache(tmp_path, "model-b", SIZE)  # another model's entry copied under this model's folder
    other.save("cd34", _features(), (10, 10))
    cache.path("cd34").parent.mkdir(parents=True, exist_ok=True)
    cache.path("cd34").write_bytes(other.path("cd34").read_bytes())
    assert cache.load("cd34") is None and cache.bad == 2
    wrong = FeatureCache(tmp_path, "model-a", SIZE * 2)  # same folder, other input size: wrong shapes
    assert wrong.load("cd34") is None
    cache.save("ef56", _features(float("nan")), (10, 10))
    assert cache.load("ef56") is None and cache.bad == 3  # non-finite values
    with pytest.raises(ValueError, match="the cache expects"):  # our own bug raises instead of writing junk
        cache.save("gh78", _features(size=SIZE * 2), (10, 10))


def test_the_cap_evicts_the_least_recently_used(tmp_path):
    one = bytes_per_image(SIZE)
    cache = FeatureCache(tmp_path, "m", SIZE, max_bytes=int(2.5 * one))
    for key in ("a1", "b2", "c3"):
        cache.save(key, _features(), (1, 1))
        if key == "b2":
            cache.load("a1")  # a1 is used again: b2 becomes the least recently used
    assert cache.evicted >= 1 and cache.load("b2") is None and cache.load("c3") is not None


def _writer(args):
    root, n = args
    cache = FeatureCache(root, "m", SIZE)
    for i in range(n):
        cache.save("same", _features(float(i % 3)), (5, 5))
    return True


def test_concurrent_writers_never_leave_a_torn_file(tmp_path):
    with mp.get_context("spawn").Pool(2) as pool:
        assert all(pool.map(_writer, [(str(tmp_path), 6)] * 2))
    cache = FeatureCache(tmp_path, "m", SIZE)
    assert cache.load("same") is not None and not list(cache.dir.rglob("*.tmp"))


@pytest.mark.slow
def test_warm_cache_decodes_only_and_gives_the_cold_masks(tmp_path):
    items = make_group_inputs(2, 4, 120, 160)
    seg = SAM2Segmenter(config="sam2.1_hiera_t", image_size=SIZE, cache_dir=str(tmp_path))
    cold = [seg.segment(i, p) for i, p in items]
    warm = [seg.segment(i, p) for i, p in items]
    assert seg.encode_count == 2 and seg.cache.hits == 2  # the second pass encoded nothing
    assert all((a == b).all() for ga, gb in zip(cold, warm) for a, b in zip(ga, gb))
    again = SAM2Segmenter(config="sam2.1_hiera_t", image_size=SIZE, cache_dir=str(tmp_path))  # a new process
    assert [again.segment(i, p) for i, p in items] and again.encode_count == 0
    res = run_cache_bench("sam2.1_hiera_t", SIZE, group_size=4, groups=1, height=120, width=160,
                          compile_decoder=False, log=lambda *_: None)
    assert res.cold_equals_warm and res.lowest_iou_warm_vs_batched > 0.99 and res.warm_s < res.batched_s


@pytest.mark.slow
def test_precompute_command_fills_the_cache_for_the_training_draw(tmp_path):
    r = subprocess.run([sys.executable, "-m", "samr1lib.segmenters", "cache", "--preset", "smoke", "--random-init",
                        "segmenter=sam2", f"sam2_cache_dir={tmp_path / 'cache'}", f"output_dir={tmp_path / 'run'}",
                        "n_train=4"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    counts = eval(r.stdout.strip().splitlines()[-1])  # the printed dict
    assert counts["records"] == 4 and counts["encoded"] == counts["images"] == counts["misses"] >= 1
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == counts["images"]
