"""A tiny, randomly initialised, offline Qwen2.5-VL policy: the fixture every test and CPU run loads by path.

SAM-R1 trains Qwen2.5-VL-7B-Instruct (SAM-R1 §4.1). Tests, smoke runs and CI have neither a GPU
nor the Hub, so :func:`build_tiny_policy` writes a directory that has the *same layout and the same
classes* as ``Qwen/Qwen2.5-VL-7B-Instruct`` -- a ``Qwen2_5_VLForConditionalGeneration`` checkpoint,
a tokenizer, Qwen2.5-VL's chat template, and a ``Qwen2_5_VLProcessor`` (image and video processor)
-- only tiny and random. Everything downstream loads it by path exactly as it would load the hub
id (``AutoProcessor.from_pretrained(dir)``, ``Qwen2_5_VLForConditionalGeneration.from_pretrained(dir)``),
so the code paths under test are the paper-scale ones.

The tokenizer is a byte-level BPE trained here with ``tokenizers`` on text made from the project's
own prompt template and answer format (:mod:`samr1lib.prompt`, :mod:`samr1lib.parse`) with many random numbers. Its
pre-tokenizer is Qwen2's (the same split regex, in which ``\\p{N}`` makes every digit its own
piece, followed by a byte-level step), so numbers tokenise digit by digit as in Qwen2.5-VL and
"123" round-trips. Qwen's special tokens come first (ids 0, 1, ...), in Qwen's order. It is
wrapped as a plain ``PreTrainedTokenizerFast``: wrapped as ``Qwen2TokenizerFast`` it would reload
with Qwen's own pre-tokenizer settings rather than the trained file's (measured here with transformers 5.x).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Iterator

from ..parse import Answer, ObjectAnswer, format_completion
from ..prompt import SYSTEM_PROMPT, build_prompt

__all__ = ["QWEN_SPECIAL_TOKENS", "QWEN_EXTRA_TOKENS", "QWEN2_5_VL_CHAT_TEMPLATE", "TINY_POLICY",
           "build_tiny_tokenizer", "build_tiny_policy", "ensure_tiny_policy"]

# Qwen2 / Qwen2.5-VL special tokens, in the order of their ids in Qwen's vocabulary (151643...).
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# Added but not "special" in Qwen's tokenizer (they survive skip_special_tokens).
QWEN_EXTRA_TOKENS: tuple[str, ...] = (
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
)

# Qwen2's pre-tokenizer split pattern (tokenizer.json of Qwen2 / Qwen2.5 / Qwen2.5-VL): \p{N} alone
# makes every digit a separate piece.
QWEN_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Qwen2.5-VL-7B-Instruct's chat template, byte for byte (TRL recognises it by identity, see
# trl/chat_templates/qwen2_5_vl.jinja).
QWEN2_5_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_QUERIES = (
    "the red square", "the blue circle on the left", "a green triangle", "the largest object",
    "the small yellow star", "the object closest to the top", "person in a white shirt",
    "the dog lying on the sofa", "the second car from the right", "a cup of coffee",
)
_WORDS = (
    "the object is at the center of the image so the box covers it and the point lies inside it "
    "I look at the shapes colours and positions first then I choose the target left right top "
    "bottom near far large small red green blue yellow white black square circle triangle star "
    "person man woman child dog cat horse bird car bus truck bicycle chair table sofa bed cup bottle "
    "plate bowl book phone laptop window door tree sky road grass water wall floor picture image "
    "which where what there here this that these those with without behind front next above below "
    "between around inside outside holding wearing sitting standing walking looking open closed "
    "first second third last only other same different because since therefore answer think box "
    "point label target region pixel coordinate corner edge middle half part whole shape colour"
).split()


def _training_corpus(n: int, seed: int) -> Iterator[str]:
    """Text in the project's prompt and answer format, with many numbers (for the BPE trainer)."""
    rng = random.Random(seed)
    yield SYSTEM_PROMPT
    yield "You are a helpful assistant."
    for i in range(n):
        query = _QUERIES[i % len(_QUERIES)]
        yield build_prompt(query, negative_points=(i % 3 == 0))
        x1, y1 = rng.randint(0, 700), rng.randint(0, 700)
        x2, y2 = rng.randint(x1 + 1, 840), rng.randint(y1 + 1, 840)
        obj = ObjectAnswer(box=(x1, y1, x2, y2), point=((x1 + x2) // 2, (y1 + y2) // 2), label=query)
        think = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 15)))
        answer: Any = obj if i % 4 else Answer(objects=(obj, obj), is_list=True)
        yield format_completion(answer, think=think)
        yield " ".join(str(rng.randint(0, 10 ** rng.randint(1, 4))) for _ in range(8))


def build_tiny_tokenizer(vocab_size: int = 1024, seed: int = 0, corpus_size: int = 400):
    """Train a byte-level BPE (Qwen2 pre-tokenizer, Qwen special tokens first) and wrap it.

    Returns a ``PreTrainedTokenizerFast`` with Qwen2.5-VL's eos (``<|im_end|>``), pad
    (``<|endoftext|>``) and chat template.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers import processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(QWEN_SPECIAL_TOKENS + QWEN_EXTRA_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_corpus(corpus_size, seed), trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIAL_TOKENS])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in QWEN_EXTRA_TOKENS])
    for i, t in enumerate(QWEN_SPECIAL_TOKENS + QWEN_EXTRA_TOKENS):
        assert tok.token_to_id(t) == i, (t, tok.token_to_id(t))

    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
        padding_side="left",
        errors="replace",
    )
    wrapped.chat_template = QWEN2_5_VL_CHAT_TEMPLATE
    for text in ("123", "840", " 0, 12, 345]"):
        ids = wrapped.encode(text, add_special_tokens=False)
        if wrapped.decode(ids) != text:
            raise RuntimeError(f"tiny tokenizer does not round-trip {text!r}: {ids}")
    return wrapped


def _tiny_config(tokenizer, hidden_size: int, num_layers: int, num_heads: int, num_kv_heads: int,
                 intermediate_size: int, vision_depth: int, vision_hidden_size: int, vision_heads: int,
                 rope_theta: float):
    """The ``Qwen2_5_VLConfig`` of a tiny model whose special-token ids are ``tokenizer``'s."""
    from transformers import Qwen2_5_VLConfig

    if hidden_size % num_heads or num_heads % num_kv_heads:
        raise ValueError("hidden_size must divide by num_heads and num_heads by num_kv_heads")
    head_dim = hidden_size // num_heads
    if head_dim % 2:
        raise ValueError(f"head_dim = hidden_size / num_heads = {head_dim} must be even")
    if vision_hidden_size % vision_heads:
        raise ValueError("vision_hidden_size must divide by vision_heads")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    # mrope splits head_dim/2 rotary frequencies into (temporal, height, width) sections; Qwen uses
    # [16, 24, 24] for head_dim 128. Same proportions here, and the sections must sum to head_dim/2.
    half = head_dim // 2
    t_sec = max(1, half // 4)
    h_sec = (half - t_sec) // 2
    text = dict(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_kv_heads,
        max_position_embeddings=4096,
        rope_parameters={"rope_type": "default", "rope_theta": float(rope_theta),
                         "mrope_section": [t_sec, h_sec, half - t_sec - h_sec]},
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=False,
    )
    vision = dict(
        depth=vision_depth, hidden_size=vision_hidden_size, intermediate_size=2 * vision_hidden_size,
        num_heads=vision_heads, out_hidden_size=hidden_size, patch_size=14, spatial_merge_size=2,
        temporal_patch_size=2, window_size=112, fullatt_block_indexes=[vision_depth - 1],
    )
    return Qwen2_5_VLConfig(
        text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=False,
    )


def _save_processor(out: Path, tokenizer, min_pixels: int, max_pixels: int) -> None:
    """Qwen2.5-VL's processor (image + video processor, which its constructor requires) with the tiny tokenizer."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(min_pixels=min_pixels, max_pixels=max_pixels),
        chat_template=QWEN2_5_VL_CHAT_TEMPLATE,
    )
    processor.save_pretrained(out)


def build_tiny_policy(
    out_dir: str | Path, seed: int = 0, *, vocab_size: int = 1024, hidden_size: int = 64, num_layers: int = 2,
    num_heads: int = 4, num_kv_heads: int = 2, intermediate_size: int = 128, vision_depth: int = 1,
    vision_hidden_size: int = 32, vision_heads: int = 2, rope_theta: float = 1000000.0,
    min_pixels: int = 56 * 56, max_pixels: int = 112 * 112,
) -> Path:
    """Build, save and return the directory of a tiny random Qwen2.5-VL with its processor.

    The directory loads with ``AutoProcessor.from_pretrained`` and
    ``Qwen2_5_VLForConditionalGeneration.from_pretrained`` like ``Qwen/Qwen2.5-VL-7B-Instruct``.
    Defaults give ~0.3M parameters (built and saved in seconds). With the default pixel bounds a
    112x112 image becomes 16 image tokens. Qwen2.5-VL's own patch 14 / merge 2 / temporal patch 2
    are kept, so coordinates mean the same as in the real model. ``rope_theta`` is the LLM's rotary base
    (Qwen2.5-VL's 1e6 by default); with a 16-wide head, M-RoPE's height / width sections then barely rotate over
    a 4 x 4 grid of image tokens, so ``bench localisation`` can try a smaller one.
    """
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    tokenizer = build_tiny_tokenizer(vocab_size=vocab_size, seed=seed)
    config = _tiny_config(tokenizer, hidden_size, num_layers, num_heads, num_kv_heads, intermediate_size,
                          vision_depth, vision_hidden_size, vision_heads, rope_theta)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    eos, pad = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model.generation_config = GenerationConfig(bos_token_id=pad, eos_token_id=[eos, pad], pad_token_id=pad,
                                               do_sample=True, temperature=1.0)
    model.save_pretrained(out)
    _save_processor(out, tokenizer, min_pixels, max_pixels)
    (out / "tiny_policy.json").write_text(json.dumps({
        "what": "randomly initialised tiny Qwen2.5-VL built by samr1lib.policy.build_tiny_policy", "seed": seed,
        "num_parameters": sum(p.numel() for p in model.parameters()), "min_pixels": min_pixels,
        "max_pixels": max_pixels,
    }, indent=2))
    return out


TINY_POLICY = "tiny"  # TrainConfig.policy sentinel: build the tiny policy into <output_dir>/tiny_policy


def ensure_tiny_policy(out: str | Path, seed: int) -> Path:
    """Build the tiny policy into ``out/tiny_policy`` once, safely when several processes race.

    Each process that finds no finished build writes its own copy (deterministic: same seed, same files)
    into a private folder and renames it into place; a losing process discards its copy.
    """
    import os
    import shutil

    final = Path(out) / "tiny_policy"
    if (final / "tiny_policy.json").exists():
        return final
    tmp = Path(out) / f".tiny_policy.tmp.{os.getpid()}"
    build_tiny_policy(tmp, seed=seed)
    try:
        os.rename(tmp, final)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    if not (final / "tiny_policy.json").exists():
        raise RuntimeError(f"{final} exists but holds no finished tiny policy; delete it and rerun")
    return final
