"""``python -m samr1lib.segmenters cache --preset paper [key=value ...]``: fill the SAM2 feature cache for a run's
training draw (every distinct image once, with a progress bar), so that its reward is decode-only from step one.

The draw is the training run's own (the same config, preset and overrides: data source, n_train, data_seed), and
the cache folder, SAM2 config and checkpoint are its ``sam2_cache_dir``, ``sam2_config``, ``sam2_checkpoint``.
"""

from __future__ import annotations

import argparse
import time
from typing import Sequence

from tqdm.auto import tqdm

from ..config import load_config
from ..data import open_image, sample_refer, source_records
from .sam2_backend import SAM2Segmenter


def fill_cache(cfg, device: str = "cpu", random_init: bool = False, work_dir: str | None = None) -> dict:
    """Encode every distinct image of ``cfg``'s training draw into ``cfg.sam2_cache_dir``; returns the counts."""
    if not cfg.sam2_cache_dir:
        raise ValueError("set sam2_cache_dir=DIR: the folder the feature cache lives in")
    records, where = source_records(cfg, work_dir or cfg.output_dir)
    records = sample_refer(records, n=min(cfg.n_train, len(records)), seed=cfg.data_seed)
    unique = list({r["image_path"]: r for r in records}.values())
    seg = SAM2Segmenter(config=cfg.sam2_config, checkpoint=None if random_init else cfg.sam2_checkpoint,
                        device=device, cache_dir=cfg.sam2_cache_dir, cache_max_gib=cfg.sam2_cache_max_gib)
    t0 = time.time()
    for rec in tqdm(unique, desc=f"SAM2 features of {where}", unit="image"):
        seg.encode(open_image(rec))
    return {"records": len(records), "images": len(unique), "encoded": seg.encode_count, **seg.cache.stats(),
            "seconds": round(time.time() - t0, 1), "cache": str(seg.cache.dir)}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m samr1lib.segmenters", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("cache", help="fill the SAM2 feature cache for a run's training draw")
    c.add_argument("--preset", default="paper")
    c.add_argument("--config", default=None, help="a YAML file of field: value")
    c.add_argument("--device", default="cpu")
    c.add_argument("--random-init", action="store_true", help="SAM2 at random init (tests; the features mean nothing)")
    c.add_argument("overrides", nargs="*", help="key=value overrides of TrainConfig fields")
    a = ap.parse_args(argv)
    try:
        cfg = load_config(a.preset, a.config, a.overrides)
    except ValueError as e:
        ap.error(str(e))
    print(fill_cache(cfg, a.device, a.random_init))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
