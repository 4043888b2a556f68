"""SAM2 as the reward provider (SAM-R1 §3.1: a frozen SAM2-Large turns box + point into a mask).

Uses the ``sam2`` package's ``SAM2ImagePredictor``. Within one ``segment`` call the image is
encoded once (``set_image``) and every prompt of that image is decoded in batched ``predict``
calls, one per prompt structure (box or not, number of points), so a GRPO group of G rollouts
costs one image encoding instead of G (the peers' reward code re-encodes the image for every rollout).
"""

from __future__ import annotations

import contextlib
import os
from importlib import resources
from typing import Sequence

import numpy as np
import torch

from .base import SegPrompt, as_rgb
from .batch import image_key
from .cache import FeatureCache, model_key

# The paper run: SAM2-Large (§3.1, §4.1); SAM2.1 is the maintained release of the same model.
DEFAULT_CONFIG = "sam2.1_hiera_l"


def available_configs() -> dict[str, str]:
    """Config names shipped in the sam2 package -> the name hydra composes (``configs/...yaml``)."""
    root = resources.files("sam2") / "configs"
    out = {}
    for sub in ("sam2", "sam2.1"):
        for entry in (root / sub).iterdir():
            if entry.name.endswith(".yaml"):
                out[entry.name[: -len(".yaml")]] = f"configs/{sub}/{entry.name}"
    return out


def resolve_config(config: str) -> str:
    """Accept ``sam2.1_hiera_l``, ``sam2.1_hiera_l.yaml`` or ``configs/sam2.1/sam2.1_hiera_l.yaml``."""
    known = available_configs()
    stem = os.path.basename(config)
    stem = stem[: -len(".yaml")] if stem.endswith(".yaml") else stem
    if stem not in known:
        raise ValueError(f"unknown SAM2 config {config!r}; the sam2 package ships: {', '.join(sorted(known))}")
    return known[stem]


class SAM2Segmenter:
    """SAM2 image predictor behind the Segmenter protocol.

    ``checkpoint=None`` builds the model at random init (tests and benchmarks only: the masks
    mean nothing). ``multimask=True`` asks SAM2 for three masks per prompt and keeps the one with
    the highest predicted IoU. ``cache_dir``: keep every image's features on disk (:mod:`.cache`); an image seen
    before is then only decoded. With the cache on, features always pass through its storage dtype (bf16), on
    the first sight of an image as on later ones, so cached and freshly computed answers agree exactly.
    ``compile_decoder``: ``torch.compile`` the mask decoder (dynamic shapes: any number of prompts); on a 2-core CPU
    it decoded a group of 8 prompts 2.1x faster with identical masks, after ~20 s of compilation per process.
    """

    def __init__(
        self,
        config: str = DEFAULT_CONFIG,
        checkpoint: str | None = None,
        device: str = "cpu",
        multimask: bool = False,
        bf16: bool | None = None,
        seed: int = 0,
        image_size: int | None = None,
        cache_dir: str | None = None,
        cache_max_gib: float = 64.0,
        compile_decoder: bool = False,
    ):
        from sam2.build_sam import build_sam2
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        config_name = resolve_config(config)
        if checkpoint is not None and not os.path.isfile(checkpoint):
            raise FileNotFoundError(f"SAM2 checkpoint not found: {checkpoint}")
        overrides = []
        if image_size is not None:  # a smaller input resolution (tests, CPU benchmarks); SAM2 uses 1024
            if image_size % 32:
                raise ValueError(f"SAM2 image_size must be a multiple of 32, got {image_size}")
            overrides.append(f"++model.image_size={int(image_size)}")
        torch.manual_seed(seed)  # fixes the random init when no checkpoint is given
        model = build_sam2(config_name, ckpt_path=checkpoint, device=device, mode="eval", hydra_overrides_extra=overrides)
        if compile_decoder:
            model.sam_mask_decoder = torch.compile(model.sam_mask_decoder, dynamic=True)
        self.predictor = SAM2ImagePredictor(model)
        if image_size is not None:
            # The predictor hard-codes the backbone feature sizes of a 1024 input (strides 4, 8, 16).
            s = int(image_size)
            self.predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
        self.config, self.checkpoint, self.device = config_name, checkpoint, str(device)
        self.multimask = multimask
        # bf16 autocast on GPU, as in the sam2 package's own examples; fp32 on CPU.
        self.bf16 = self.device.startswith("cuda") if bf16 is None else bf16
        self.encode_count = 0  # image encodings so far (tests assert one per distinct image)
        self.cache = None
        if cache_dir:
            size = int(image_size or 1024)
            self.cache = FeatureCache(cache_dir, model_key(config_name, checkpoint, size, torch.bfloat16, seed), size,
                                      device=self.device, max_bytes=int(cache_max_gib * 2**30))

    def _autocast(self):
        if self.bf16:
            return torch.autocast(self.device.split(":")[0], dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _set_image(self, image: np.ndarray) -> None:
        if self.cache is None:
            self.predictor.set_image(image)
            self.encode_count += 1
            return
        key = image_key(image).hex()
        hit = self.cache.load(key)
        if hit is None:
            self.predictor.set_image(image)
            self.encode_count += 1
            feats, orig_hw = self.predictor._features, tuple(self.predictor._orig_hw[0])
            self.cache.save(key, feats, orig_hw)
            hit = ({"image_embed": feats["image_embed"].to(self.cache.dtype),
                    "high_res_feats": [f.to(self.cache.dtype) for f in feats["high_res_feats"]]}, orig_hw)
        self._use_features(*hit)

    def encode(self, image) -> None:
        """Encode one image (from the cache when it holds it), as ``segment`` does before decoding."""
        with torch.inference_mode(), self._autocast():
            self._set_image(as_rgb(image))

    def _use_features(self, feats, orig_hw: tuple[int, int]) -> None:
        """Give the predictor cached features, as ``set_image`` would have left them (in the model's dtype)."""
        dtype = self.predictor.model.sam_mask_decoder.iou_token.weight.dtype
        p = self.predictor
        p.reset_predictor()
        p._features = {"image_embed": feats["image_embed"].to(p.device, dtype),
                       "high_res_feats": [f.to(p.device, dtype) for f in feats["high_res_feats"]]}
        p._orig_hw = [tuple(orig_hw)]
        p._is_image_set = True

    def _decode(self, prompts: Sequence[SegPrompt]) -> list[np.ndarray]:
        """Decode prompts of one structure in one batched predict call on the image already set."""
        n = len(prompts)
        has_box, n_points = prompts[0].structure
        box = np.array([p.box for p in prompts], dtype=np.float32) if has_box else None
        coords = labels = None
        if n_points:
            coords = np.array([p.points for p in prompts], dtype=np.float32).reshape(n, n_points, 2)
            labels = np.array([p.labels for p in prompts], dtype=np.int32).reshape(n, n_points)
        masks, scores, _ = self.predictor.predict(
            point_coords=coords, point_labels=labels, box=box, multimask_output=self.multimask
        )
        h, w = masks.shape[-2:]
        masks = masks.reshape(n, -1, h, w)
        scores = np.asarray(scores).reshape(n, -1)
        best = scores.argmax(axis=1)
        return [masks[i, best[i]] > 0 for i in range(n)]

    def segment(self, image, prompts: Sequence[SegPrompt]) -> list[np.ndarray]:
        """One bool HxW mask per prompt; the image is encoded once for all of them."""
        if not prompts:
            return []
        image = as_rgb(image)
        with torch.inference_mode(), self._autocast():
            self._set_image(image)
            by_structure: dict[tuple[bool, int], list[int]] = {}
            for i, p in enumerate(prompts):
                by_structure.setdefault(p.structure, []).append(i)
            out: list[np.ndarray | None] = [None] * len(prompts)
            for idx in by_structure.values():
                for i, mask in zip(idx, self._decode([prompts[i] for i in idx])):
                    out[i] = mask
        return out  # type: ignore[return-value]

    def segment_naive(self, image, prompts: Sequence[SegPrompt]) -> list[np.ndarray]:
        """The peers' path: ``set_image`` and ``predict`` again for every prompt (benchmark baseline)."""
        image = as_rgb(image)
        out = []
        with torch.inference_mode(), self._autocast():
            for p in prompts:
                self._set_image(image)
                out.extend(self._decode([p]))
        return out
