"""The paper run at first contact (8 GPUs, real weights; none here): what would crash or silently mis-train is
checked on the CPU. The pinned GPU stack's lowest transformers, the loggers, vLLM's fields, the off-policy preset
(the clip range acts), the reward on the original image, fp32 master weights under DDP, LoRA's merged model, resume
refusing a changed config, the LR schedule, the memory estimate."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from samr1lib.config import load_config
from samr1lib.train import build_grpo_config
from samr1lib.train.run import config_changes, weights_dtype

ROOT = Path(__file__).resolve().parents[1]
LOWEST_TRANSFORMERS = "5.10.4"  # vLLM 0.31.0 (the gpu extra's pin) requires transformers>=5.10.4,<5.18


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


# --------------------------------------------------------------------------- 1. the GPU stack

def test_gpu_extra_pins_vllm_inside_trls_range_with_what_it_requires():
    text = (ROOT / "pyproject.toml").read_text()
    gpu = text.split("gpu = [", 1)[1].split("]", 1)[0]
    assert '"vllm==0.31.0"' in gpu and "tensorboard" in gpu and "deepspeed" in gpu  # TRL 1.16: vLLM 0.22-0.31
    env = (ROOT / "environment-gpu.yml").read_text()
    assert "vllm==0.31.0" in env and "torch==2.13.0" in env and "transformers>=5.10.4,<5.18" in env


@pytest.mark.slow
def test_paper_grpo_config_builds_on_the_lowest_transformers_the_pinned_vllm_allows(tmp_path):
    """A small venv holding only transformers 5.10.4 (and its kernels pin), in front of the main environment's
    packages: the paper preset's GRPOConfig must build there. An unknown keyword (transformers renamed
    gradient_checkpointing in 5.2x) raises a TypeError."""
    venv = ROOT / "runs" / f"venv-transformers-{LOWEST_TRANSFORMERS}"
    py = venv / "bin" / "python"
    if not (venv / ".ready").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        f"transformers[kernels]=={LOWEST_TRANSFORMERS}"], check=True, timeout=900)
        site = subprocess.run([str(py), "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True,
                              text=True, check=True).stdout.strip()
        main_site = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
        Path(site, "zz_main_environment.pth").write_text(main_site + "\n")  # after the venv's own packages
        (venv / ".ready").touch()
    code = ("import transformers, json; from samr1lib.config import load_config; "
            "from samr1lib.train import build_grpo_config; a = build_grpo_config(load_config('paper')); "
            "print(json.dumps([transformers.__version__, a.gradient_checkpointing, a.steps_per_generation, "
            "a.vllm_max_model_length, str(a.lr_scheduler_type)]))")
    r = subprocess.run([str(py), "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    version, checkpointing, spg, max_len, schedule = json.loads(r.stdout.strip().splitlines()[-1])
    assert version == LOWEST_TRANSFORMERS and checkpointing is True and spg == 4 and max_len == 3072
    assert schedule.endswith("CONSTANT") or schedule == "constant"


# --------------------------------------------------------------------------- 2-3. loggers and vLLM

def test_missing_logger_fails_before_any_model_loads(tmp_path, monkeypatch):
    from samr1lib.train import train

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    cfg = load_config("smoke", overrides=["report_to=tensorboard", f"output_dir={tmp_path / 'out'}"])
    with pytest.raises(ModuleNotFoundError, match="tensorboard is not installed"):
        train(cfg)
    assert not (tmp_path / "out").exists()


def test_vllm_fields_reach_trl_and_are_checked():
    args = build_grpo_config(load_config("paper"))
    assert args.vllm_max_model_length == 3072 and args.vllm_gpu_memory_utilization == 0.3
    assert args.vllm_importance_sampling_correction and args.vllm_importance_sampling_mode == "sequence_mask"
    off = build_grpo_config(load_config("paper", overrides=["vllm_importance_sampling=off"]))
    assert not off.vllm_importance_sampling_correction
    with pytest.raises(ValueError, match="vllm_max_model_length=2048 < 2180"):  # 900 image + 256 + 1024
        load_config("paper", overrides=["vllm_max_model_length=2048"])


# --------------------------------------------------------------------------- 4. off-policy

def test_paper_preset_is_off_policy_and_the_on_policy_switch_is_kept():
    paper, on = load_config("paper"), load_config("paper_on_policy")
    assert paper.steps_per_generation == 4 and on.steps_per_generation == 1
    # 8 per GPU x 4 steps x 8 GPUs = 256 rollouts per generation batch = 32 whole groups of G = 8
    assert paper.per_device_train_batch_size * paper.steps_per_generation * paper.num_processes == 256
    assert build_grpo_config(paper).generation_batch_size == 8 * 4  # per process


def _clip_run(tmp_path, spg: int) -> list[dict]:
    from samr1lib.data import training_dataset
    from samr1lib.policy import ensure_tiny_policy
    from samr1lib.segmenters import build_segmenter
    from samr1lib.train.rollout_log import RolloutLoggingTrainer

    out = tmp_path / f"spg{spg}"
    cfg = load_config("smoke", overrides=[f"output_dir={out}", "max_steps=4", "save_steps=100",
                                          f"steps_per_generation={spg}", "learning_rate=0.05"])

    def length_reward(completions, **kwargs):  # varies inside groups, so advantages are not all 0
        return [float(len(c[0]["content"]) % 7) for c in completions]

    trainer = RolloutLoggingTrainer(
        model=str(ensure_tiny_policy(out, cfg.seed)), reward_funcs=[length_reward], args=build_grpo_config(cfg),
        train_dataset=training_dataset(cfg, out), normalization="group", segmenter=build_segmenter("grabcut"))
    trainer.train()
    return [r for r in _rows(out / "metrics.jsonl") if "clip_ratio/region_mean" in r]


@pytest.mark.slow
def test_off_policy_updates_reach_the_clip_range_on_policy_ones_cannot(tmp_path):
    off, on = _clip_run(tmp_path, 4), _clip_run(tmp_path, 1)
    assert max(r["clip_ratio/region_mean"] for r in off) > 0  # 4 optimizer steps per generation batch
    assert all(r["clip_ratio/region_mean"] == 0 for r in on)  # ratio exactly 1


# --------------------------------------------------------------------------- 5. the reward on the original image

class BoxSegmenter:
    """Segments exactly the prompt's box, and remembers the size of every image it was given."""

    def __init__(self):
        self.sizes = []

    def segment(self, image, prompts):
        self.sizes.append(image.shape[:2])
        out = []
        for p in prompts:
            m = np.zeros(image.shape[:2], bool)
            x1, y1, x2, y2 = (int(round(v)) for v in p.box)
            m[y1:y2, x1:x2] = True
            out.append(m)
        return out


def test_a_perfect_answer_scores_iou_1_on_a_non_square_original(tmp_path):
    """640x480 original, 840x840 policy frame: the reward maps the answer back and segments the original image,
    so a perfect answer scores IoU 1 (Eq. 5 tier 4); segmenting the 840 copy and shrinking the mask would not."""
    from PIL import Image

    from samr1lib.data import build_policy_dataset
    from samr1lib.masks import encode_rle
    from samr1lib.parse import ObjectAnswer, format_completion
    from samr1lib.rewards import SegmentationReward
    from samr1lib.rewards.segmentation import ORIGINAL

    gt = np.zeros((480, 640), bool)
    gt[48:72, 64:96] = True  # a small object: 32 x 24 px
    Image.fromarray(np.full((480, 640, 3), 128, np.uint8)).save(tmp_path / "im.jpg")
    rec = dict(image_path=str(tmp_path / "im.jpg"), query="the box", mask=encode_rle(gt), height=480, width=640,
               box=[64.0, 48.0, 96.0, 72.0], sample_id="a", dataset="refcocog")
    ds = build_policy_dataset([rec], str(tmp_path / "ds"))
    row = ds[0]
    assert row["image"].size == (840, 840) and row["policy_box"] == [84.0, 84.0, 126.0, 126.0]
    perfect = format_completion(ObjectAnswer(box=tuple(row["policy_box"]), point=(105.0, 105.0), label="box"))
    seg = BoxSegmenter()
    columns = {k: [row[k]] for k in ds.column_names}
    reward = SegmentationReward(seg, image_column=ORIGINAL)
    assert reward([perfect], **columns) == [4.0]
    assert seg.sizes == [(480, 640)]  # the original, not the 840 x 840 copy
    (outcome,) = reward.segment([perfect], **columns)
    assert reward.ious([outcome], **columns) == [1.0] and outcome.prediction.shape == (480, 640)


# --------------------------------------------------------------------------- 6. master weights

def test_bf16_weights_only_where_the_optimizer_keeps_fp32_masters():
    assert weights_dtype(bf16=True, deepspeed=True) == "bfloat16"
    assert weights_dtype(bf16=True, deepspeed=False) == "float32"  # DDP: fp32 weights, bf16 autocast
    assert weights_dtype(bf16=False, deepspeed=False) == "float32"
    # why: AdamW at the paper's lr 1e-6 on bf16 weights leaves most of them unchanged
    torch.manual_seed(0)
    changed = {}
    for dtype in (torch.bfloat16, torch.float32):
        w = torch.nn.Parameter(torch.randn(256, 256).to(dtype))
        before = w.detach().clone()
        opt = torch.optim.AdamW([w], lr=1e-6)
        for _ in range(20):
            opt.zero_grad()
            (w.float() ** 2).sum().backward()
            opt.step()
        changed[dtype] = (w.detach() != before).float().mean().item()
    assert changed[torch.bfloat16] < 0.1 and changed[torch.float32] > 0.99


# --------------------------------------------------------------------------- 7. LoRA on several processes

@pytest.mark.slow
def test_lora_on_two_processes_saves_a_merged_model_that_loads(tmp_path):
    from samr1lib.policy import load_policy
    from samr1lib.train import accelerate_config_path

    out = tmp_path / "lora"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_config_path("ddp")),
           "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", "29631", "-m", "samr1lib.train",
           "--preset", "smoke", f"output_dir={out}", "lora=true"]
    r = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out / "final_adapter" / "adapter_config.json").exists()
    assert not (out / "final" / "adapter_config.json").exists()
    model, _ = load_policy(out / "final")
    assert not any("lora" in n for n, _ in model.named_parameters())


# --------------------------------------------------------------------------- 8. resume

def test_changed_fields_that_shape_training_are_named():
    cfg = load_config("smoke")
    saved = {**__import__("dataclasses").asdict(cfg), "beta": 0.0, "max_steps": 99, "world_size": 2}
    assert config_changes(saved, cfg) == {"beta": (0.0, 0.04)}  # max_steps may change on a resume


@pytest.mark.slow
def test_resume_refuses_a_changed_config_unless_asked(tmp_path):
    from samr1lib.train import train

    out = tmp_path / "run"
    base = [f"output_dir={out}", "save_steps=2"]
    train(load_config("smoke", overrides=base + ["max_steps=2"]))
    with pytest.raises(ValueError, match=r"other values of \['beta'\]"):
        train(load_config("smoke", overrides=base + ["max_steps=3", "beta=0"]))
    s = train(load_config("smoke", overrides=base + ["max_steps=3", "beta=0", "allow_config_change=true"]))
    assert s["resumed_from"].endswith("checkpoint-2") and s["global_step"] == 3


# --------------------------------------------------------------------------- 9. schedule and memory

def test_lr_schedule_and_warmup_are_config_fields():
    paper, toy = build_grpo_config(load_config("paper")), build_grpo_config(load_config("toy"))
    assert str(paper.lr_scheduler_type).lower().endswith("constant") and paper.warmup_steps == 0.0
    assert str(toy.lr_scheduler_type).lower().endswith("linear")  # what the toy's learning rate was chosen with
    assert build_grpo_config(load_config("paper", overrides=["warmup_ratio=0.05"])).warmup_steps == 0.05


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="deepspeed not installed")
def test_estimate_memory_counts_parameters_and_uses_deepspeeds_estimator():
    r = subprocess.run([sys.executable, "-m", "samr1lib.train", "--preset", "paper", "--estimate-memory"], cwd=ROOT,
                       env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = json.loads(r.stdout.strip().splitlines()[-1])["per_gpu_gib"]
    states = rows[0]
    assert "8,292,166,656 params" in states["how"] and states["gib"] == pytest.approx(19.4, abs=0.05)
    assert any("vLLM" in row["item"] for row in rows) and any("224,446,642" in row["how"] for row in rows)


@pytest.mark.slow
def test_the_gpu_check_runs_end_to_end_on_the_cpu_at_tiny_sizes(tmp_path):
    """scripts/gpu_check.sh's checks, on this machine's CPU at tiny sizes: the script cannot rot where no GPU is."""
    out = tmp_path / "gpu_check.json"
    r = subprocess.run([sys.executable, "-m", "samr1lib.experiments.gpu_check", "--device", "cpu", "--quick",
                        "--out", str(out)], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["sam2_reward"]["lowest_mask_iou_between_paths"] >= 0.999
    assert res["grpo_bf16"]["weights_dtype_during_training"] == ["torch.float32"]
    assert res["grpo_bf16"]["share_of_weights_changed"] > 0.5
    assert max(res["grpo_clip"]["clip_ratio_region"]) > 0  # off-policy at a large lr: the clip range acts
    assert "skipped" in res["vllm_colocate"]
