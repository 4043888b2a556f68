"""Generation: a policy answers a batch of (image, query) pairs with completion texts, through transformers
(CPU or GPU) or vLLM (GPU). Both build the same chat-templated prompt (:mod:`samr1lib.prompt`)."""

from __future__ import annotations

from typing import Any, Protocol, Sequence

from ..prompt import build_messages

__all__ = ["Policy", "prompt_text", "HFPolicy", "VLLMPolicy"]


class Policy(Protocol):
    """Anything that answers a batch of (image, query) pairs with completion texts."""

    def generate(self, images: Sequence[Any], queries: Sequence[str]) -> list[str]: ...


def prompt_text(processor, query: str, negative_points: bool) -> str:
    """The chat-templated prompt of one query, ready for generation (the same for every generation backend)."""
    return processor.apply_chat_template(build_messages(query, negative_points), tokenize=False,
                                         add_generation_prompt=True)


class HFPolicy:
    """Qwen2.5-VL through transformers' ``generate`` (greedy by default), on CPU or GPU.

    ``negative_points``: ask for labelled points too (the prompt a ``negative_points`` / Seg-R1 run was trained
    on; a policy is evaluated on the prompt it was trained with)."""

    def __init__(self, model, processor, max_new_tokens: int = 256, greedy: bool = True, temperature: float = 1.0,
                 negative_points: bool = False):
        self.model, self.processor = model, processor
        self.max_new_tokens, self.greedy, self.temperature = max_new_tokens, greedy, temperature
        self.negative_points = negative_points
        processor.tokenizer.padding_side = "left"  # decoder-only batched generation pads on the left

    def generate(self, images: Sequence[Any], queries: Sequence[str]) -> list[str]:
        import torch

        texts = [prompt_text(self.processor, q, self.negative_points) for q in queries]
        inputs = self.processor(text=texts, images=list(images), padding=True, return_tensors="pt")
        inputs = inputs.to(self.model.device)
        kwargs = {"do_sample": False} if self.greedy else {"do_sample": True, "temperature": self.temperature}
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, **kwargs)
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)


class VLLMPolicy:
    """vLLM generation (GPU only; ``pip install samr1lib[gpu]``). Same prompts as HFPolicy."""

    def __init__(self, model_path: str, max_new_tokens: int = 256, greedy: bool = True, negative_points: bool = False,
                 **llm_kwargs):
        from transformers import AutoProcessor
        from vllm import LLM, SamplingParams

        self.processor = AutoProcessor.from_pretrained(model_path)
        self.llm = LLM(model=model_path, limit_mm_per_prompt={"image": 1}, **llm_kwargs)
        self.params = SamplingParams(max_tokens=max_new_tokens, temperature=0.0 if greedy else 1.0)
        self.negative_points = negative_points

    def generate(self, images: Sequence[Any], queries: Sequence[str]) -> list[str]:
        requests = [
            {"prompt": prompt_text(self.processor, q, self.negative_points), "multi_modal_data": {"image": img}}
            for img, q in zip(images, queries)
        ]
        return [o.outputs[0].text for o in self.llm.generate(requests, self.params)]
