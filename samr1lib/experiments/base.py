"""The toy base model: a tiny Qwen2.5-VL that sees its image, built the way real VLMs are built (the role
Qwen2.5-VL-7B-Instruct plays for SAM-R1), on fresh scenes of the toy world at every step.

1. **Dense vision pretraining**: the vision tower and its merger learn, for each of the 16 merged image tokens (a 4 x
   4 grid over a 112 x 112 image), the token's grid position, how much of it objects cover, the colour and shape of
   the object covering most of it, and that object's box: linear heads read these off the token embeddings the
   language model will see. Qwen2.5-VL has no absolute position embedding, and at this size the language model's
   M-RoPE cannot tell the 16 image positions apart, so position has to be in the tokens' content.
2. **Grounding**, a curriculum for the language model (the vision tower frozen): a short prompt (the expression
   alone) answered with a box, first on one-object scenes, then on scenes of 1-3 objects with RefCOCO-style
   expressions; then the project's full prompt answered in the full schema (reasoning, box, point, label).

``python -m samr1lib.bench base`` builds it (``build_base``) and reports the held-out box IoU, the box-centre
correlation and the loss with each answer's own image vs another's. The loose-box warm start of the learning
benchmark then starts from it.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..data.synthetic import COLOURS, SHAPES, expressions, scene
from ..metrics import box_iou
from ..parse import ObjectAnswer, format_completion, parse_completion
from ..policy import build_tiny_policy, load_policy
from ..prompt import build_messages

__all__ = ["BaseRecipe", "token_targets", "pretrain_vision", "ground", "build_base"]

GRID, SIDE = 4, 112  # merged image tokens per side (patch 14 x merge 2 = 28 px), image side
COLOUR_NAMES, SHAPE_NAMES = list(COLOURS), list(SHAPES)


@dataclass
class BaseRecipe:
    """Sizes and schedule of the toy base (every value is this project's choice, tuned on its CPU)."""

    policy: dict[str, Any] = field(default_factory=lambda: dict(
        hidden_size=96, num_layers=3, intermediate_size=256, vision_hidden_size=64, vision_depth=2, vision_heads=4))
    vision_steps: int = 600
    vision_lr: float = 2e-3
    # (steps, most objects per scene, full prompt?): one object and the expression alone, then 1-3 objects (the
    # expression must be read), then the project's full prompt and answer schema
    ground: tuple[tuple[int, int, bool], ...] = ((1000, 1, False), (6000, 3, False), (2500, 3, True))
    ground_lr: float = 2e-3
    batch_size: int = 32
    gradient: float = 0.5  # the toy world's background position cue
    seed: int = 0

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def _masks(objs: Sequence[dict], size: int = SIDE) -> list[np.ndarray]:
    out = []
    for o in objs:
        im = Image.new("L", (size, size), 0)
        ImageDraw.Draw(im).polygon(o["poly"], fill=1)
        out.append(np.asarray(im, dtype=bool))
    return out


def _box(o: dict) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in o["poly"]], [p[1] for p in o["poly"]]
    return min(xs), min(ys), max(xs), max(ys)


def token_targets(objs: Sequence[dict]) -> dict[str, torch.Tensor]:
    """Per merged token (row-major over the 4 x 4 grid): cover (share of its pixels on any object), the colour and
    shape class of the object covering most of it (0 = none), its grid position in [0, 1], and that object's box
    in [0, 1] (``box_mask`` where there is one)."""
    cell = SIDE // GRID
    masks = _masks(objs)
    cover, colour, shape = torch.zeros(GRID * GRID), torch.zeros(GRID * GRID, dtype=torch.long), \
        torch.zeros(GRID * GRID, dtype=torch.long)
    box, box_mask = torch.zeros(GRID * GRID, 4), torch.zeros(GRID * GRID)
    rowcol = torch.tensor([[r / (GRID - 1), c / (GRID - 1)] for r in range(GRID) for c in range(GRID)])
    for t in range(GRID * GRID):
        r, c = divmod(t, GRID)
        window = [m[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell].mean() for m in masks]
        cover[t] = float(min(1.0, sum(window)))
        if window and max(window) > 0.05:
            k = int(np.argmax(window))
            colour[t] = 1 + COLOUR_NAMES.index(objs[k]["colour"])
            shape[t] = 1 + SHAPE_NAMES.index(objs[k]["shape"])
            box[t] = torch.tensor(_box(objs[k])) / SIDE
            box_mask[t] = 1.0
    return {"cover": cover, "colour": colour, "shape": shape, "rowcol": rowcol, "box": box, "box_mask": box_mask}


def _cosine(step: int, total: int, warmup: int = 20) -> float:
    return min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / max(total, 1)))


def _vision_loss(heads: torch.nn.Module, emb: torch.Tensor, targets: list[dict[str, torch.Tensor]]) -> dict:
    t = {k: torch.cat([x[k] for x in targets]) for k in targets[0]}
    out = heads(emb)
    n_col, n_shape = len(COLOUR_NAMES) + 1, len(SHAPE_NAMES) + 1
    cover, colour, shape = out[:, 0], out[:, 1:1 + n_col], out[:, 1 + n_col:1 + n_col + n_shape]
    rowcol, box = out[:, 1 + n_col + n_shape:3 + n_col + n_shape], out[:, 3 + n_col + n_shape:]
    m = t["box_mask"][:, None]
    parts = {
        "cover": torch.nn.functional.binary_cross_entropy_with_logits(cover, t["cover"]),
        "colour": torch.nn.functional.cross_entropy(colour, t["colour"]),
        "shape": torch.nn.functional.cross_entropy(shape, t["shape"]),
        "rowcol": 10 * torch.nn.functional.mse_loss(rowcol, t["rowcol"]),
        "box": 10 * ((box - t["box"]) ** 2 * m).sum() / (4 * m.sum()).clamp(min=1),
    }
    return parts


def pretrain_vision(model, processor, steps: int, batch_size: int, lr: float, gradient: float,
                    rng: np.random.Generator, log=print) -> dict[str, float]:
    """Stage 1: the vision tower and merger learn each token's position and what covers it (see the module doc)."""
    vis = model.model.visual
    hidden = model.config.text_config.hidden_size
    heads = torch.nn.Linear(hidden, 1 + len(COLOUR_NAMES) + 1 + len(SHAPE_NAMES) + 1 + 2 + 4)
    params = list(vis.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _cosine(s, steps))
    vis.train()
    history = []
    for step in range(steps):
        scenes = [scene(rng, SIDE, 3, gradient) for _ in range(batch_size)]
        px = processor.image_processor(images=[im for im, _ in scenes], return_tensors="pt")
        emb = vis(px["pixel_values"], grid_thw=px["image_grid_thw"]).pooler_output
        parts = _vision_loss(heads, emb, [token_targets(objs) for _, objs in scenes])
        loss = sum(parts.values())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        history.append({k: float(v.detach()) for k, v in parts.items()})
        if (step + 1) % max(1, steps // 5) == 0:
            mean = {k: round(float(np.mean([h[k] for h in history[-50:]])), 4) for k in history[-1]}
            log(f"[base] vision step {step + 1}/{steps}: {mean}")
    vis.eval()
    return {k: float(np.mean([h[k] for h in history[-50:]])) for k in history[-1]}


def _sample(rng: np.random.Generator, max_objects: int, gradient: float) -> tuple[Image.Image, dict, str]:
    """A scene, one of its objects as the target, and a RefCOCO-style expression that singles it out."""
    image, objs = scene(rng, SIDE, max_objects, gradient)
    t = int(rng.integers(len(objs)))
    options = expressions(objs, t, "refcoco")
    return image, objs[t], options[int(rng.integers(len(options)))]


def _texts(processor, target: dict, expr: str, full: bool) -> tuple[str, str]:
    """(prompt, answer) in the short form (expression -> "[x1, y1, x2, y2]") or the project's full schema."""
    x1, y1, x2, y2 = _box(target)
    if full:
        prompt = processor.apply_chat_template(build_messages(expr), tokenize=False, add_generation_prompt=True)
        obj = ObjectAnswer(box=(x1, y1, x2, y2), point=((x1 + x2) / 2, (y1 + y2) / 2), label=target["shape"])
        return prompt, format_completion(obj, think=expr)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": expr}]}]
    prompt = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return prompt, f"[{round(x1)}, {round(y1)}, {round(x2)}, {round(y2)}]"


def _lm_batch(processor, images, prompts: list[str], answers: list[str]):
    """Tokenised prompt + answer + end of turn, labels on the answer only (left padding)."""
    eos = processor.tokenizer.eos_token
    full = processor(text=[p + a + eos for p, a in zip(prompts, answers)], images=list(images), padding=True,
                     return_tensors="pt")
    plen = [len(x) for x in processor(text=prompts, images=list(images))["input_ids"]]
    labels = full["input_ids"].clone()
    lengths = full["attention_mask"].sum(1).tolist()
    width = labels.shape[1]
    for i, (n, p) in enumerate(zip(lengths, plen)):
        labels[i, : width - n + p] = -100  # left padding, then the prompt
    return full, labels


def ground(model, processor, phases: Sequence[tuple[int, int, bool]], batch_size: int, lr: float, gradient: float,
           rng: np.random.Generator, log=print) -> list[float]:
    """Stage 2: the language model learns to answer with the target's box, the vision tower frozen. ``phases``:
    (steps, most objects per scene, full prompt?) in curriculum order, each with its own warmup and cosine decay
    from ``lr`` (one decay over all phases left the last one too small a step to move grounding from the short to
    the full prompt: a build that way answered the full prompt nearly blind)."""
    for p in model.model.visual.parameters():
        p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    losses = []
    for steps, max_objects, full in phases:
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s, n=steps: _cosine(s, n))
        for step in range(steps):
            samples = [_sample(rng, max_objects, gradient) for _ in range(batch_size)]
            texts = [_texts(processor, target, expr, full) for _, target, expr in samples]
            inputs, labels = _lm_batch(processor, [im for im, _, _ in samples], [p for p, _ in texts],
                                       [a for _, a in texts])
            loss = model(**inputs, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            if (step + 1) % max(1, steps // 4) == 0:
                log(f"[base] ground ({max_objects} objects, {'full' if full else 'short'} prompt) step "
                    f"{step + 1}/{steps}: loss {np.mean(losses[-50:]):.4f}")
    for p in model.model.visual.parameters():
        p.requires_grad_(True)
    model.eval()
    return losses


@torch.no_grad()
def probe(model, processor, n: int = 128, full: bool = True, max_objects: int = 3, gradient: float = 0.5,
          seed: int = 10_000) -> dict[str, float]:
    """Held-out scenes (a fixed seed): greedy answers -> box IoU and the correlation of predicted and GT box
    centres; and the answers' loss with each scene's own image vs the next scene's (equal: blind)."""
    rng = np.random.default_rng(seed)
    samples = [_sample(rng, max_objects, gradient) for _ in range(n)]
    texts = [_texts(processor, target, expr, full) for _, target, expr in samples]
    images = [im for im, _, _ in samples]
    processor.tokenizer.padding_side = "left"
    ious, pred_c, gt_c = [], [], []
    for i in range(0, n, 32):
        inputs = processor(text=[p for p, _ in texts[i:i + 32]], images=images[i:i + 32], padding=True,
                           return_tensors="pt")
        out = model.generate(**inputs, max_new_tokens=64 if full else 24, do_sample=False)
        for j, seq in enumerate(processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)):
            gt = _box(samples[i + j][1])
            box = None
            if full:
                res = parse_completion(seq, (SIDE, SIDE))
                box = res.answer.first.box if res.ok and res.answer.first else None
            else:
                try:
                    vals = json.loads(seq.strip())
                    box = tuple(float(v) for v in vals) if len(vals) == 4 else None
                except (ValueError, TypeError):
                    box = None
            ious.append(box_iou(box, gt))
            if box is not None:
                pred_c.append(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2))
                gt_c.append(((gt[0] + gt[2]) / 2, (gt[1] + gt[3]) / 2))
    pc, gc = np.array(pred_c), np.array(gt_c)
    corr = [float(np.corrcoef(pc[:, a], gc[:, a])[0, 1]) if len(pc) > 2 and pc[:, a].std() > 0 else 0.0
            for a in (0, 1)]
    own = _mean_loss(model, processor, images, texts)
    other = _mean_loss(model, processor, images[1:] + images[:1], texts)
    return {"n": n, "mean_box_iou": float(np.mean(ious)), "answered": len(pc) / n, "corr_x": corr[0],
            "corr_y": corr[1], "loss_own_image": own, "loss_other_image": other}


def _mean_loss(model, processor, images, texts) -> float:
    total = count = 0.0
    for i in range(0, len(images), 32):
        inputs, labels = _lm_batch(processor, images[i:i + 32], [p for p, _ in texts[i:i + 32]],
                                   [a for _, a in texts[i:i + 32]])
        k = int((labels[:, 1:] != -100).sum())
        total, count = total + float(model(**inputs, labels=labels).loss) * k, count + k
    return total / count


def build_base(out_dir: str | Path, recipe: BaseRecipe | None = None, log=print) -> dict[str, Any]:
    """All stages from a random tiny Qwen2.5-VL; saves model and processor to ``out_dir`` (loadable by path) with
    ``base.json`` (the recipe, its key, the times and the held-out probe)."""
    recipe = recipe or BaseRecipe()
    out = Path(out_dir)
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    with tempfile.TemporaryDirectory() as tmp:  # the random init is a starting point, not a result
        model, processor = load_policy(build_tiny_policy(Path(tmp) / "init", seed=recipe.seed, **recipe.policy))
    t0 = time.time()
    vision = pretrain_vision(model, processor, recipe.vision_steps, recipe.batch_size, recipe.vision_lr,
                             recipe.gradient, rng, log)
    t1 = time.time()
    ground(model, processor, recipe.ground, recipe.batch_size, recipe.ground_lr, recipe.gradient, rng, log)
    t2 = time.time()
    short, full = probe(model, processor, n=256, full=False), probe(model, processor, n=256, full=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    info = {"recipe": asdict(recipe), "recipe_key": recipe.key(), "seconds": {"vision": round(t1 - t0, 1),
            "ground": round(t2 - t1, 1)}, "vision_losses": vision, "probe_short_prompt": short,
            "probe_full_prompt": full, "torch_threads": torch.get_num_threads(),
            "num_parameters": sum(p.numel() for p in model.parameters())}
    (out / "base.json").write_text(json.dumps(info, indent=2))
    log(f"[base] {json.dumps(info)}")
    return info
