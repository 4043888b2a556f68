"""The tiny offline Qwen2.5-VL loads by path like the real one, processes an image and generates."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import json

import pytest
import torch
from PIL import Image

from samr1lib.policy import build_tiny_policy, load_policy
from samr1lib.policy.__main__ import main
from samr1lib.policy.tiny import QWEN2_5_VL_CHAT_TEMPLATE, QWEN_EXTRA_TOKENS, QWEN_SPECIAL_TOKENS
from samr1lib.parse import ObjectAnswer, format_completion
from samr1lib.prompt import build_messages


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    return build_tiny_policy(tmp_path_factory.mktemp("tiny_policy"), seed=0)


def test_reloads_like_a_hub_checkpoint_and_generates(policy_dir):
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    processor = AutoProcessor.from_pretrained(policy_dir)
    assert isinstance(processor, Qwen2_5_VLProcessor)
    assert type(processor.image_processor).__name__ == "Qwen2VLImageProcessor"
    assert type(processor.video_processor).__name__ == "Qwen2VLVideoProcessor"
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(policy_dir).eval()
    assert sum(p.numel() for p in model.parameters()) < 1_000_000

    tok = processor.tokenizer
    # config ids are the tokenizer's
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>") == processor.image_token_id
    assert model.config.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert model.config.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert model.config.vision_end_token_id == tok.convert_tokens_to_ids("<|vision_end|>")
    assert model.config.text_config.vocab_size == len(tok)
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"

    text = processor.apply_chat_template(build_messages("the red square"), add_generation_prompt=True, tokenize=False)
    assert "<|vision_start|><|image_pad|><|vision_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")
    image = Image.new("RGB", (112, 112), (200, 20, 20))
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    assert inputs["image_grid_thw"].tolist() == [[1, 8, 8]]
    assert int((inputs["input_ids"] == model.config.image_token_id).sum()) == 16  # 8 x 8 patches / merge 2x2
    torch.manual_seed(0)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=5, do_sample=True)
    new = out[0, inputs["input_ids"].shape[1] :]
    assert 1 <= new.numel() <= 5
    assert isinstance(processor.decode(new), str)


def test_tokenizer_special_tokens_first_and_digits_round_trip(policy_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(policy_dir)
    for i, t in enumerate(QWEN_SPECIAL_TOKENS + QWEN_EXTRA_TOKENS):
        assert tok.convert_tokens_to_ids(t) == i
    assert 500 <= len(tok) <= 2048
    ids = tok.encode("123", add_special_tokens=False)
    assert len(ids) == 3 and [tok.decode([i]) for i in ids] == ["1", "2", "3"]
    assert tok.decode(ids) == "123"
    completion = format_completion(ObjectAnswer(box=(12, 340, 567, 839), point=(290, 601), label="the red square"),
                                   think="the square is on the left")
    ids = tok.encode(completion, add_special_tokens=False)
    assert tok.decode(ids) == completion
    digit_pieces = [tok.decode([i]) for i in ids if tok.decode([i]).strip().isdigit()]
    assert all(len(p.strip()) == 1 for p in digit_pieces)  # every digit is its own token
    # special tokens are single tokens inside text
    assert tok.encode("<|im_start|>user", add_special_tokens=False)[0] == 1


def test_chat_template_is_qwen2_5_vl_byte_for_byte(policy_dir):
    from trl.chat_template_utils import qwen2_5_vl_chat_template
    from transformers import AutoProcessor

    assert QWEN2_5_VL_CHAT_TEMPLATE == qwen2_5_vl_chat_template
    assert AutoProcessor.from_pretrained(policy_dir).chat_template == qwen2_5_vl_chat_template


def test_load_policy_and_missing_processor_error(policy_dir, tmp_path):
    model, processor = load_policy(policy_dir, device="cpu", dtype="float32")
    assert model.dtype == torch.float32 and processor.image_token == "<|image_pad|>"
    info = json.loads((policy_dir / "tiny_policy.json").read_text())
    assert info["num_parameters"] == sum(p.numel() for p in model.parameters())

    bare = tmp_path / "bare"
    model.save_pretrained(bare)  # a checkpoint without tokenizer / processor files
    with pytest.raises(FileNotFoundError, match="no processor files"):
        load_policy(bare)
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_policy(tmp_path)


def test_cli_build(tmp_path, capsys):
    assert main(["build", str(tmp_path / "cli"), "--seed", "3"]) == 0
    assert (tmp_path / "cli" / "model.safetensors").exists()
    assert str(tmp_path / "cli") in capsys.readouterr().out
    assert json.loads((tmp_path / "cli" / "tiny_policy.json").read_text())["seed"] == 3
