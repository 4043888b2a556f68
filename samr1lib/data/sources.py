"""Where a training run's records come from: a registry of data sources, chosen by ``TrainConfig.data_source``.

- ``refer``: a REFER folder (``data_root``), the paper run (SAM-R1 §4.1: RefCOCOg umd train);
- ``synthetic``: a small synthetic REFER world written once into ``<work_dir>/world`` (the smoke preset);
- ``toy``: the toy world's training half under ``data_root`` (:mod:`samr1lib.data.toy_world`), written once.

A source is ``fn(cfg, work_dir) -> (records, description)``; :func:`register_source` adds one. The functions read
these fields of the config: data_root, dataset, split, seed, data_seed and ``world`` (the synthetic worlds' size).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

from .draw import sample_refer
from .policy_dataset import build_policy_dataset
from .refer import load_refer
from .synthetic import write_refer_world
from .toy_world import train_records, write_toy_world

__all__ = ["SOURCES", "register_source", "check_source", "source_records", "training_dataset"]

Source = Callable[[Any, Path], "tuple[list[dict], str]"]


def check_source(cfg) -> None:
    """The cheap check before anything is loaded: a REFER source's folder must exist."""
    if cfg.data_source == "refer" and not Path(cfg.data_root, cfg.dataset).is_dir():
        raise FileNotFoundError(f"REFER data not found: {Path(cfg.data_root, cfg.dataset)} (set data_root=DIR holding "
                                f"{cfg.dataset}/refs(...).p, {cfg.dataset}/instances.json and images/mscoco/...)")


def _refer(cfg, work_dir: Path) -> tuple[list[dict], str]:
    root = Path(cfg.data_root)
    check_source(cfg)
    return list(load_refer(str(root), cfg.dataset, cfg.split)), f"{root} {cfg.dataset} {cfg.split}"


def _synthetic(cfg, work_dir: Path) -> tuple[list[dict], str]:
    root = work_dir / "world"
    if not (root / cfg.dataset / "instances.json").exists():
        write_refer_world(str(root), n_images=cfg.world_images, seed=cfg.seed, size=(cfg.world_image_size, cfg.world_image_size),
                          position_gradient=cfg.world_position_gradient)
    return list(load_refer(str(root), cfg.dataset, cfg.split)), f"{root} {cfg.dataset} {cfg.split}"


def _toy(cfg, work_dir: Path) -> tuple[list[dict], str]:
    write_toy_world(cfg.data_root, n_train_images=cfg.world_images, n_heldout=None, size=cfg.world_image_size,
                    position_gradient=cfg.world_position_gradient, seed=cfg.data_seed)
    return train_records(cfg.data_root), f"the toy world {cfg.data_root}"


SOURCES: dict[str, Source] = {"refer": _refer, "synthetic": _synthetic, "toy": _toy}


def register_source(name: str, fn: Source) -> None:
    """Add a data source (``fn(cfg, work_dir) -> (records, description)``) under ``name``."""
    SOURCES[name] = fn


def source_records(cfg, work_dir: str | Path) -> tuple[list[dict], str]:
    """The records of ``cfg.data_source`` and a description of where they came from."""
    if cfg.data_source not in SOURCES:
        raise ValueError(f"unknown data_source {cfg.data_source!r}; registered: {sorted(SOURCES)}")
    return SOURCES[cfg.data_source](cfg, Path(work_dir))


_DATASET_KEYS = ("data_source", "data_root", "dataset", "split", "n_train", "data_seed", "image_size", "world_images",
                 "world_image_size", "world_position_gradient", "negative_points")


def training_dataset(cfg, work_dir: str | Path):
    """The policy dataset of a run: ``cfg.n_train`` records drawn (seed ``data_seed``, SAM-R1 §4.1's 3k) from the
    source, images resized to ``image_size`` (§4.1's 840), prompts asking for labelled points when the config's
    variant does. Cached in ``<work_dir>/data/policy_<hash of the data fields>`` (a resumed run reuses it)."""
    from datasets import load_from_disk

    keys = [getattr(cfg, k) for k in _DATASET_KEYS] + ([] if cfg.data_source == "toy" else [cfg.seed])
    out = Path(work_dir) / "data" / f"policy_{hashlib.sha1(json.dumps(keys).encode()).hexdigest()[:12]}"
    if (out / "dataset_info.json").exists():
        return load_from_disk(str(out))
    records, where = source_records(cfg, work_dir)
    if cfg.n_train > len(records):
        raise ValueError(f"n_train={cfg.n_train} but {where} has only {len(records)} records")
    records = sample_refer(records, n=cfg.n_train, seed=cfg.data_seed)
    return build_policy_dataset(records, str(out), size=(cfg.image_size, cfg.image_size),
                                negative_points=cfg.negative_points != "none")
