"""A real GRPOTrainer step (SAMR1GRPOTrainer) has the loss and gradient of grpo_objective (Eq. 2/4).

The trainer runs on the tiny offline Qwen2.5-VL with an in-memory image dataset. A recording
subclass keeps what the loss saw (per-token log-probs, advantages, masks, reference log-probs,
old log-probs) and an ``row_id`` that follows each row through TRL's shuffle and split, so the
whole generation batch can be put back in group order and handed to the reference.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import pytest
import torch
from PIL import Image

from samr1lib.losses import grpo_objective, per_token_terms, token_weights
from samr1lib.policy import build_tiny_policy
from samr1lib.prompt import build_messages
from samr1lib.train.trainer import SAMR1GRPOTrainer

EPS_LOW, EPS_HIGH, BETA = 0.2, 0.3, 0.04


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    return build_tiny_policy(tmp_path_factory.mktemp("tiny_policy"), seed=0)


def _dataset():
    from datasets import Dataset

    colours = [(200, 30, 30), (30, 30, 200), (30, 200, 30), (20, 20, 20)]
    queries = ["the red square", "a blue circle", "the green shape", "the dark object"]
    return Dataset.from_list(
        [{"prompt": build_messages(q), "image": Image.new("RGB", (112, 112), c)} for q, c in zip(queries, colours)]
    )


def _reward(completions, **kwargs):
    """Dummy reward with spread inside every group (depends on position and length)."""
    return [float(i % 3) + 0.05 * len(c[0]["content"]) for i, c in enumerate(completions)]


class RecordingTrainer(SAMR1GRPOTrainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.generation_batches, self.loss_calls, self._last_logps = [], [], None

    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        out["row_id"] = torch.arange(out["completion_ids"].shape[0])  # follows rows through shuffle/split
        self.generation_batches.append(dict(out))
        return out

    def _get_per_token_logps_and_entropies(self, *args, **kwargs):
        result = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        if kwargs.get("compute_entropy"):  # the call made by the loss
            self._last_logps = result[0]
        return result

    def _compute_loss(self, model, inputs):
        loss = super()._compute_loss(model, inputs)
        self.loss_calls.append({"inputs": inputs, "logps": self._last_logps.detach().clone(), "loss": loss.detach()})
        return loss


def _grad_capture():
    from transformers import TrainerCallback

    class GradCapture(TrainerCallback):
        grads: list = []

        def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
            self.grads.append({n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None})

    cb = GradCapture()
    cb.grads = []
    return cb


def _make_trainer(policy_dir, tmp_path, normalization, *, num_generations, batch, accum, spg=None, lr=0.0,
                  max_steps=1, beta=BETA, loss_type="dapo"):
    from transformers import Qwen2_5_VLForConditionalGeneration
    from trl import GRPOConfig

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(policy_dir)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # move the policy away from the reference (loaded from the same path): KL != 0
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=batch,
        num_generations=num_generations,
        gradient_accumulation_steps=accum,
        steps_per_generation=spg,
        max_completion_length=12,
        max_steps=max_steps,
        learning_rate=lr,
        max_grad_norm=0.0,  # no clipping: captured gradients are the raw accumulated ones
        beta=beta,
        epsilon=EPS_LOW,
        epsilon_high=EPS_HIGH,
        loss_type=loss_type,
        use_bias_correction_kl=False,
        # EOS (<|im_end|>, id 2) made likely, so completion lengths differ and Eq. 2 != Eq. 4
        generation_kwargs={"sequence_bias": {(2,): 6.0}},
        report_to="none",
        use_cpu=True,
        bf16=False,
        logging_steps=1,
        save_strategy="no",
        seed=0,
        data_seed=0,
    )
    from transformers import AutoProcessor

    cb = _grad_capture()
    trainer = RecordingTrainer(
        model=model,
        reward_funcs=_reward,
        args=args,
        train_dataset=_dataset(),
        processing_class=AutoProcessor.from_pretrained(policy_dir),
        callbacks=[cb],
        normalization=normalization,
    )
    return trainer, cb


def _in_group_order(calls, key):
    """Concatenate a per-row tensor over micro-batches and put rows back in generation order."""
    rows = torch.cat([c["inputs"]["row_id"] for c in calls])
    vals = torch.cat([c["logps"] if key == "logps" else c["inputs"][key] for c in calls])
    out = torch.empty_like(vals)
    out[rows] = vals
    return out


def _reference_gradient(trainer, batch, normalization, group_size):
    """Gradient of grpo_objective on the WHOLE generation batch, recomputed in one forward pass."""
    model = trainer.model
    model.zero_grad(set_to_none=True)
    logps, _, _ = trainer._get_per_token_logps_and_entropies(
        model,
        torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1),
        torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1),
        batch["completion_ids"].size(1),
        batch_size=batch["completion_ids"].size(0),
        pixel_values=batch["pixel_values"],
        image_grid_thw=batch["image_grid_thw"],
        num_images=batch["num_images"],
        mm_token_type_ids=batch["mm_token_type_ids"],
    )
    loss = grpo_objective(
        logps, None, batch["ref_per_token_logps"], batch["advantages"], batch["completion_mask"], group_size,
        EPS_LOW, EPS_HIGH, BETA, normalization,
    )
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return loss.detach(), grads


def _assert_grads_close(got, ref):
    assert got.keys() == ref.keys()
    num = sum(float((got[n] - ref[n]).pow(2).sum()) for n in ref) ** 0.5
    den = sum(float(ref[n].pow(2).sum()) for n in ref) ** 0.5
    assert den > 0
    assert num / den < 1e-4, f"relative gradient error {num / den:.2e}"


@pytest.mark.slow
@pytest.mark.parametrize("normalization", ["group", "sequence"])
def test_one_microbatch_loss_and_gradient_equal_reference(policy_dir, tmp_path, normalization):
    # 4 rows per step = 2 groups of G = 2, one micro-batch (TRL still shuffles its rows).
    trainer, cb = _make_trainer(policy_dir, tmp_path, normalization, num_generations=2, batch=4, accum=1)
    trainer.train()
    (call,) = trainer.loss_calls
    (batch,) = trainer.generation_batches
    inputs = call["inputs"]
    assert "old_per_token_logps" not in inputs  # on-policy path (TRL skips pi_old, line 2657)
    logps = _in_group_order([call], "logps")
    mask = batch["completion_mask"]
    lengths = mask.sum(1)
    assert len(set(lengths.tolist())) > 1, "completion lengths should differ for a discriminating test"

    expected = grpo_objective(logps, None, batch["ref_per_token_logps"], batch["advantages"], mask, 2,
                              EPS_LOW, EPS_HIGH, BETA, normalization)
    torch.testing.assert_close(call["loss"], expected, rtol=1e-5, atol=1e-7)
    other = "sequence" if normalization == "group" else "group"
    wrong = grpo_objective(logps, None, batch["ref_per_token_logps"], batch["advantages"], mask, 2,
                           EPS_LOW, EPS_HIGH, BETA, other)
    assert abs(float(wrong - expected)) > 1e-5, "Eq. 2 and Eq. 4 coincide on this batch; test not discriminating"
    # group_token_count is the total of the row's whole group
    group_totals = lengths.view(-1, 2).sum(1).repeat_interleave(2).float()
    torch.testing.assert_close(batch["group_token_count"], group_totals)

    ref_loss, ref_grads = _reference_gradient(trainer, batch, normalization, 2)
    torch.testing.assert_close(ref_loss, expected, rtol=1e-5, atol=1e-7)
    (grads,) = cb.grads
    _assert_grads_close(grads, ref_grads)

    logged = trainer.state.log_history[0]
    for key in ("kl", "entropy", "clip_ratio/region_mean", "clip_ratio/high_max", "clip_ratio/low_min"):
        assert key in logged
    assert logged["kl"] > 0
    assert logged["loss"] == pytest.approx(float(call["loss"]), rel=1e-5, abs=1e-7)

    if normalization == "sequence":
        # Eq. 2 is exactly TRL's own loss_type="grpo" (with the plain k3 KL): same inputs, same value.
        from trl import GRPOTrainer

        trainer.loss_type = "grpo"
        trl_loss = GRPOTrainer._compute_loss(trainer, trainer.model, inputs)
        torch.testing.assert_close(trl_loss.detach(), call["loss"], rtol=1e-5, atol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("normalization", ["group", "sequence"])
def test_groups_split_over_accumulated_microbatches(policy_dir, tmp_path, normalization):
    # Generation batch of 8 rows = 2 groups of G = 4, shuffled and split into 2 micro-batches of 4
    # (gradient_accumulation_steps = steps_per_generation = 2). Eq. 4 needs each whole group's count.
    trainer, cb = _make_trainer(policy_dir, tmp_path, normalization, num_generations=4, batch=4, accum=2)
    trainer.train()
    assert len(trainer.loss_calls) == 2 and len(trainer.generation_batches) == 1
    batch = trainer.generation_batches[0]
    mixed = [len(set((c["inputs"]["row_id"] // 4).tolist())) > 1 for c in trainer.loss_calls]
    assert any(mixed), "the shuffle left every micro-batch with one whole group; pick another seed"
    for c in trainer.loss_calls:
        assert "old_per_token_logps" not in c["inputs"]
        lengths = batch["completion_mask"].sum(1).view(2, 4).sum(1)
        torch.testing.assert_close(c["inputs"]["group_token_count"], lengths[c["inputs"]["row_id"] // 4].float())

    group_totals = batch["completion_mask"].sum(1).view(2, 4).sum(1)
    assert group_totals[0] != group_totals[1], "equal group totals: TRL's dapo would coincide with Eq. 4 here"
    logps = _in_group_order(trainer.loss_calls, "logps")
    torch.testing.assert_close(_in_group_order(trainer.loss_calls, "advantages"), batch["advantages"])
    expected = grpo_objective(logps, None, batch["ref_per_token_logps"], batch["advantages"],
                              batch["completion_mask"], 4, EPS_LOW, EPS_HIGH, BETA, normalization)
    other = grpo_objective(logps, None, batch["ref_per_token_logps"], batch["advantages"],
                           batch["completion_mask"], 4, EPS_LOW, EPS_HIGH, BETA,
                           "sequence" if normalization == "group" else "group")
    assert abs(float(other - expected)) > 1e-5
    total = sum(c["loss"] for c in trainer.loss_calls)
    torch.testing.assert_close(total, expected, rtol=1e-5, atol=1e-7)

    ref_loss, ref_grads = _reference_gradient(trainer, batch, normalization, 4)
    torch.testing.assert_close(ref_loss, expected, rtol=1e-5, atol=1e-7)
    (grads,) = cb.grads  # one optimizer step, after both micro-batches
    _assert_grads_close(grads, ref_grads)


@pytest.mark.slow
def test_off_policy_microbatches_with_old_logps(policy_dir, tmp_path):
    # steps_per_generation = 2 > gradient_accumulation_steps = 1: one generation batch serves two
    # optimizer steps, so TRL computes pi_old and the second step sees ratios != 1 (lr > 0).
    trainer, cb = _make_trainer(policy_dir, tmp_path, "group", num_generations=4, batch=4, accum=1, spg=2,
                                lr=0.05, max_steps=2)
    trainer.train()
    assert len(trainer.loss_calls) == 2 and len(trainer.generation_batches) == 1
    batch = trainer.generation_batches[0]
    assert "old_per_token_logps" in batch
    group_totals = batch["completion_mask"].sum(1).view(2, 4).sum(1)
    assert group_totals[0] != group_totals[1]
    logps = _in_group_order(trainer.loss_calls, "logps")
    old, ref, adv, mask = (batch[k] for k in ("old_per_token_logps", "ref_per_token_logps", "advantages",
                                                "completion_mask"))
    second = trainer.loss_calls[1]
    log_ratio = second["logps"] - second["inputs"]["old_per_token_logps"]
    assert log_ratio[second["inputs"]["completion_mask"].bool()].abs().max() > 1e-4  # the first step moved pi_theta

    weights = token_weights(mask, 4, "group", dtype=logps.dtype)
    terms = per_token_terms(logps, old, ref, adv, EPS_LOW, EPS_HIGH, BETA).objective
    for c in trainer.loss_calls:
        rows = c["inputs"]["row_id"]
        # each optimizer step holds half the generation batch: its loss is the Eq. 4 contribution of
        # its rows, scaled by steps_per_generation / gradient_accumulation_steps = 2 (TRL's dapo convention)
        expected_m = -(weights[rows] * terms[rows]).sum() * 2
        torch.testing.assert_close(c["loss"], expected_m, rtol=1e-5, atol=1e-7)
    total = sum(c["loss"] for c in trainer.loss_calls)
    expected = grpo_objective(logps, old, ref, adv, mask, 4, EPS_LOW, EPS_HIGH, BETA, "group")
    torch.testing.assert_close(total, 2 * expected, rtol=1e-5, atol=1e-7)


def test_rejects_unsupported_options(policy_dir, tmp_path):
    with pytest.raises(ValueError, match="normalization"):
        SAMR1GRPOTrainer(model=str(policy_dir), reward_funcs=_reward, normalization="token")
    with pytest.raises(ValueError, match="importance_sampling_level"):
        from trl import GRPOConfig

        args = GRPOConfig(output_dir=str(tmp_path), importance_sampling_level="sequence", loss_type="grpo",
                          report_to="none", use_cpu=True, bf16=False, per_device_train_batch_size=2, num_generations=2)
        SAMR1GRPOTrainer(model=str(policy_dir), reward_funcs=_reward, args=args, train_dataset=_dataset())


# ---- two processes: a group spread over processes AND micro-batches -----------------------------
# This file doubles as the worker: `torchrun --nproc_per_node 2 tests/test_trainer_loss.py ...`.
# 3 rows per micro-batch, steps_per_generation = 2, G = 4: each process generates 6 rows, the global
# generation batch is 12 rows = 3 groups, and group 1 has 2 rows on each process (one of them
# possibly in each micro-batch). Gradients are DDP-averaged over the two processes (gloo on CPU).


def _ddp_worker(policy_dir: str, out_json: str, normalization: str) -> None:
    import json
    import sys

    from accelerate.utils import gather_object

    trainer, cb = _make_trainer(Path(policy_dir), Path(out_json).parent / "work", normalization,
                                num_generations=4, batch=3, accum=2)
    acc = trainer.accelerator
    trainer.train()
    gb = {k: (v.cpu() if torch.is_tensor(v) else v) for k, v in trainer.generation_batches[0].items()}
    gb["losses"] = [float(c["loss"]) for c in trainer.loss_calls]
    batches = gather_object([gb])
    if acc.is_main_process:
        model = acc.unwrap_model(trainer.model)
        model.zero_grad(set_to_none=True)
        width = max(b["completion_ids"].shape[1] for b in batches)  # each process pads to its own width

        def pad(x):
            return torch.nn.functional.pad(x, (0, width - x.shape[1]))

        cols = {"logps": [], "ref": [], "adv": [], "mask": []}
        for b in batches:
            lp, _, _ = trainer._get_per_token_logps_and_entropies(
                model, torch.cat([b["prompt_ids"], b["completion_ids"]], 1),
                torch.cat([b["prompt_mask"], b["completion_mask"]], 1), b["completion_ids"].shape[1],
                batch_size=b["completion_ids"].shape[0], pixel_values=b["pixel_values"],
                image_grid_thw=b["image_grid_thw"], num_images=b["num_images"],
                mm_token_type_ids=b["mm_token_type_ids"],
            )
            cols["logps"].append(pad(lp))
            cols["ref"].append(pad(b["ref_per_token_logps"]))
            cols["adv"].append(b["advantages"])
            cols["mask"].append(pad(b["completion_mask"]))
        cat = {k: torch.cat(v) for k, v in cols.items()}
        ref = grpo_objective(cat["logps"], None, cat["ref"], cat["adv"], cat["mask"], 4, EPS_LOW, EPS_HIGH, BETA,
                             normalization)
        ref.backward()
        ref_grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        got = cb.grads[0]
        err = sum(float((got[n] - ref_grads[n]).pow(2).sum()) for n in ref_grads) ** 0.5
        norm = sum(float(ref_grads[n].pow(2).sum()) for n in ref_grads) ** 0.5
        lengths = cat["mask"].sum(1)
        result = {
            "world_size": acc.num_processes,
            "rel_grad_err": err / norm,
            "mean_over_processes_of_summed_losses": sum(sum(b["losses"]) for b in batches) / len(batches),
            "reference_loss": float(ref),
            "group_token_count": [b["group_token_count"].tolist() for b in batches],
            "expected_group_token_count": lengths.view(-1, 4).sum(1).repeat_interleave(4).tolist(),
        }
        Path(out_json).write_text(json.dumps(result))
    acc.wait_for_everyone()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # NOTES.md: avoids a rare abort of a gloo process at interpreter exit


@pytest.mark.slow
def test_two_processes_group_spans_processes(policy_dir, tmp_path):
    import json
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                         os.environ.get("PYTHONPATH", "")])}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port), __file__, str(policy_dir), str(out), "group"]
    if torch.cuda.is_available() and torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA devices or a CPU-only machine for a 2-process run")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.exists(), f"worker failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    res = json.loads(out.read_text())
    assert res["world_size"] == 2
    flat = [c for counts in res["group_token_count"] for c in counts]
    assert flat == res["expected_group_token_count"]  # whole-group totals, gathered across processes
    assert res["mean_over_processes_of_summed_losses"] == pytest.approx(res["reference_loss"], rel=1e-5, abs=1e-7)
    assert res["rel_grad_err"] < 1e-4


if __name__ == "__main__":
    import sys

    _ddp_worker(*sys.argv[1:4])
