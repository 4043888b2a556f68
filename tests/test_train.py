"""Training entry point: config defaults and errors, a smoke run that logs rollouts, checkpoints and resumes,
and a two-process launch under the shipped DDP accelerate config (CPU, gloo)."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from samr1lib.config import TrainConfig, check_generation_batch, field_docs, load_config, parse_value
from samr1lib.presets import PRESETS
from samr1lib.train import accelerate_config_path, check_columns, lora_config, paper_launch_command

REPO = Path(__file__).resolve().parents[1]


def _env():
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return env


def _run(args, timeout=300, **kw):
    return subprocess.run(args, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=timeout, **kw)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------- config

def test_defaults_are_the_papers():
    c = TrainConfig()
    assert c.policy == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert c.segmenter == "sam2" and c.sam2_config == "sam2.1_hiera_l"
    assert c.num_generations == 8  # §4.2
    assert c.epsilon_low == 0.2 and c.epsilon_high == 0.3  # §3.2 / §4.2
    assert c.learning_rate == 1e-6  # §4.2
    assert c.image_size == 840  # §4.1
    assert c.n_train == 3000 and c.dataset == "refcocog" and c.split == "train"  # §4.1
    assert c.beta > 0  # KL kept (A.1)
    assert c.normalization == "group" and c.tiers == "eq5"  # Eq. 4, Eq. 5
    assert c.negative_points == "none" and c.lora is False
    assert c.use_vllm and c.vllm_mode == "colocate" and c.bf16 and c.num_processes == 8
    assert load_config("paper") == c


def test_every_field_has_a_docstring_naming_its_source():
    import dataclasses
    import re

    docs = field_docs()
    assert set(docs) == {f.name for f in dataclasses.fields(TrainConfig)}
    for name, doc in docs.items():  # a section / equation / table, a peer, or "not stated" / "not the paper's"
        assert re.search(r"§|Eq\.|Table|Appendix|not stated|not the paper|ours|StAR|Seg-R1|synthetic|None =", doc), name


def test_help_lists_every_field_with_its_docstring_and_choices():
    r = _run([sys.executable, "-m", "samr1lib.train", "--help"], timeout=120)
    assert r.returncode == 0, r.stderr
    assert "normalization (one of group | sequence; default 'group')" in r.stdout
    assert "Eq. 4: \"group\" = one token normaliser" in r.stdout
    for name in field_docs():
        assert f"  {name} (" in r.stdout


def test_presets_load_and_differ_where_a_cpu_needs_it():
    smoke, toy = load_config("smoke"), load_config("toy")
    assert smoke.policy == "tiny" and smoke.segmenter == "grabcut" and not smoke.bf16 and not smoke.use_vllm
    assert toy.world_position_gradient > 0 and toy.world_image_size == 112 and toy.data_source == "toy"
    # the objective's paper values survive in the CPU presets
    assert smoke.epsilon_high == toy.epsilon_high == 0.3 and smoke.normalization == "group"


@pytest.mark.parametrize(
    "preset, overrides, match",
    [
        ("nope", [], r"unknown preset 'nope'; valid presets: paper, paper_on_policy, segr1_toy, smoke, star_toy, toy, toy_smoke"),
        ("smoke", ["not_a_field=1"], r"unknown config field 'not_a_field'; valid fields: .*beta"),
        ("smoke", ["num_generations=abc"], r"'num_generations' expects int"),
        ("smoke", ["learning_rate=fast"], r"'learning_rate' expects float"),
        ("smoke", ["bf16=maybe"], r"'bf16' expects bool"),
        ("smoke", ["normalization=token"], r"'normalization' must be one of \('group', 'sequence'\)"),
        ("smoke", ["tiers=fixed2"], r"tiers must be 'eq5' or 'fixed<t>'"),
        ("smoke", ["negative_points=all"], r"'negative_points' must be one of"),
        ("smoke", ["beta"], r"must look like key=value"),
    ],
)
def test_bad_config_errors(preset, overrides, match):
    with pytest.raises(ValueError, match=match):
        load_config(preset, overrides=overrides)


def test_yaml_then_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"beta": 0.005, "epsilon_high": 0.28, "lora": True, "tiers": "fixed0.7"}))
    c = load_config("smoke", p, ["beta=0", "bf16=false", "use_cpu=none", "max_steps=7"])
    assert c.beta == 0.0  # key=value wins over the file
    assert c.epsilon_high == 0.28 and c.lora is True and c.tiers == "fixed0.7" and c.max_steps == 7
    assert c.use_cpu is None and c.bf16 is False
    bad = tmp_path / "bad.yaml"
    bad.write_text("bogus: 1\n")
    with pytest.raises(ValueError, match="unknown config field 'bogus'"):
        load_config("smoke", bad)
    assert parse_value("num_train_epochs", "2") == 2.0 and parse_value("report_to", "none") == "none"


def test_generation_batch_divisibility():
    with pytest.raises(ValueError, match=r"G=3 must divide the generation batch .* = 4"):
        load_config("smoke", overrides=["num_generations=3"])
    c = load_config("smoke", overrides=["num_generations=8"], world_size=2)  # 4 x 1 x 2 = 8
    with pytest.raises(ValueError, match="must divide"):
        check_generation_batch(c, world_size=1)
    assert check_generation_batch(TrainConfig()) == 256  # the paper: 8 per GPU x 4 steps x 8 GPUs


def test_dataset_column_check():
    full = ["prompt", "image", "mask", "ignore", "image_path", "width", "height", "policy_frame"]
    check_columns(full)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['mask'\]"):
        check_columns([c for c in full if c != "mask"])


def test_policy_without_processor_fails_before_loading(tmp_path):
    from samr1lib.train import train

    (tmp_path / "config.json").write_text("{}")
    cfg = load_config("smoke", overrides=[f"policy={tmp_path}", f"output_dir={tmp_path / 'out'}"])
    with pytest.raises(FileNotFoundError, match="no processor"):
        train(cfg)
    assert not (tmp_path / "out").exists()


def test_missing_sam2_checkpoint_or_data_fails_before_loading(tmp_path):
    from samr1lib.train import train

    out = tmp_path / "out"
    cfg = load_config("smoke", overrides=["segmenter=sam2", f"sam2_checkpoint={tmp_path / 'nope.pt'}",
                                          f"output_dir={out}"])
    with pytest.raises(FileNotFoundError, match="SAM2 checkpoint"):
        train(cfg)
    cfg = load_config("smoke", overrides=["data_source=refer", f"data_root={tmp_path}", f"output_dir={out}"])
    with pytest.raises(FileNotFoundError, match="REFER data not found"):
        train(cfg)
    assert not out.exists()


def test_cli_rejects_bad_input_fast():
    t = time.time()
    r = _run([sys.executable, "-m", "samr1lib.train", "--preset", "nope"], timeout=60)
    assert r.returncode == 2 and "valid presets: paper, paper_on_policy, segr1_toy, smoke, star_toy, toy, toy_smoke" in r.stderr
    r = _run([sys.executable, "-m", "samr1lib.train", "--preset", "smoke", "num_generations=3"], timeout=60)
    assert r.returncode == 2 and "must divide the generation batch" in r.stderr
    assert time.time() - t < 30  # no model, no TRL import


def test_shipped_accelerate_configs_and_launch_command():
    z3 = yaml.safe_load(accelerate_config_path("zero3").read_text())
    assert z3["distributed_type"] == "DEEPSPEED" and z3["deepspeed_config"]["zero_stage"] == 3
    assert z3["num_processes"] == 8 and z3["mixed_precision"] == "bf16"
    ddp = yaml.safe_load(accelerate_config_path("ddp").read_text())
    assert ddp["distributed_type"] == "MULTI_GPU" and ddp["num_processes"] == 8
    cmd = paper_launch_command()
    assert cmd[:4] == ["accelerate", "launch", "--config_file", str(accelerate_config_path("zero3"))]
    assert cmd[-4:] == ["-m", "samr1lib.train", "--preset", "paper"]
    assert "--num_processes" in cmd and cmd[cmd.index("--num_processes") + 1] == "8"
    assert set(PRESETS) == {"paper", "paper_on_policy", "smoke", "toy", "toy_smoke", "segr1_toy", "star_toy"}


@pytest.mark.parametrize(
    "variant, extra",
    [("none", []), ("free", []), ("point_value", ["point_value_reward"]), ("in_box", ["in_box_point_reward"])],
)
def test_reward_functions_per_variant(variant, extra):
    from samr1lib.rewards import build_rewards
    from samr1lib.segmenters import build_segmenter

    cfg = load_config("smoke", overrides=[f"negative_points={variant}", "tiers=fixed0.8"])
    funcs = build_rewards(cfg, build_segmenter("grabcut"))
    names = [f.__name__ for f in funcs]
    assert names == ["reasoning_format_reward", "segmentation_format_reward", "segmentation_reward", *extra]
    assert funcs[2].tiers == ((0.8, 4.0),) and funcs[2].ignore_column == "ignore"
    assert build_rewards(load_config("smoke"), build_segmenter("grabcut"))[2].tiers is None  # None = Eq. 5
    star = [f.__name__ for f in build_rewards(load_config("star_toy"), build_segmenter("grabcut"))]
    assert star == ["reasoning_format_reward", "segmentation_format_reward", "star_reward", "non_repeat_reward",
                    "label_reward"]


def test_lora_option_targets_language_model_linears():
    import re

    assert lora_config(load_config("smoke")) is None
    lc = lora_config(load_config("smoke", overrides=["lora=true"]))
    assert lc.r == 64 and lc.lora_alpha == 64
    pat = re.compile(lc.target_modules)
    assert pat.fullmatch("model.language_model.layers.0.self_attn.q_proj")
    assert pat.fullmatch("model.language_model.layers.1.mlp.down_proj")
    assert not pat.fullmatch("model.visual.blocks.0.attn.qkv") and not pat.fullmatch("model.visual.merger.mlp.0")
    assert not pat.fullmatch("model.visual.blocks.0.mlp.down_proj")  # vision frozen


# --------------------------------------------------------------------------- smoke runs

@pytest.mark.slow
def test_smoke_run_logs_rollouts_checkpoints_and_resumes(tmp_path):
    out = tmp_path / "run"
    base = [sys.executable, "-m", "samr1lib.train", "--preset", "smoke", f"output_dir={out}", "save_steps=2"]
    r = _run(base + ["max_steps=2"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out / "checkpoint-2" / "trainer_state.json").exists()
    rows = _rows(out / "rollouts.rank0.jsonl")
    assert len(rows) == 2 * 4  # 2 steps x (1 question x G=4)
    for row in rows:
        assert isinstance(row["completion"], str) and row["query"] and row["sample_id"]
        assert set(row["rewards"]) == {"reasoning_format_reward", "segmentation_format_reward", "segmentation_reward"}
        assert isinstance(row["advantage"], float) and row["step"] in (0, 1)
        assert "failure" in row and "mask_rle" in row and "iou" in row
        assert (row["answer"] is None) == (row["failure"] is not None)
    assert sorted({r["step"] for r in rows}) == [0, 1]
    metrics = _rows(out / "metrics.jsonl")
    assert any("seg/mean_iou" in m and "rewards/segmentation_reward/mean" in m and "parse/failure_rate" in m
               for m in metrics)

    r = _run(base + ["max_steps=3"])  # resumes from checkpoint-2, trains one more step
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((out / "summary.rank0.json").read_text())
    assert summary["resumed_from"].endswith("checkpoint-2") and summary["global_step"] == 3
    rows2 = _rows(out / "rollouts.rank0.jsonl")
    assert rows2[: len(rows)] == rows and len(rows2) == len(rows) + 4
    assert {r["step"] for r in rows2[len(rows):]} == {2}  # continued at step 2, not from 0
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 3


def _two_process_smoke(tmp_path, config: str, extra_launch=(), timeout=240):
    out = tmp_path / config
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_config_path(config)),
           "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", str(_free_port()),
           *extra_launch, "-m", "samr1lib.train", "--preset", "smoke", f"output_dir={out}"]
    r = _run(cmd, timeout=timeout)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-4000:])
    for rank in (0, 1):
        s = json.loads((out / f"summary.rank{rank}.json").read_text())
        assert s["world_size"] == 2 and s["rank"] == rank and s["global_step"] == 2
        rows = _rows(out / f"rollouts.rank{rank}.jsonl")
        assert len(rows) == 2 * 4 and {r["rank"] for r in rows} == {rank}
    # data sharding: the two processes scored different questions in the same step
    q0 = {(r["step"], r["sample_id"]) for r in _rows(out / "rollouts.rank0.jsonl")}
    q1 = {(r["step"], r["sample_id"]) for r in _rows(out / "rollouts.rank1.jsonl")}
    assert q0 != q1
    assert (out / "checkpoint-2").exists()


@pytest.mark.slow
def test_two_processes_ddp_on_cpu(tmp_path):
    _two_process_smoke(tmp_path, "ddp")


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None,
                    reason="deepspeed not installed (DS_BUILD_OPS=0 pip install deepspeed ninja)")
def test_two_processes_zero3_on_cpu(tmp_path):
    _two_process_smoke(tmp_path, "zero3")


@pytest.mark.slow
def test_rollout_rows_align_rewards_and_advantages(tmp_path):
    """In-process: with a reward that varies inside groups, each logged row's reward is its own completion's,
    and its advantage is Eq. 1's group-standardised reward."""
    import numpy as np

    from samr1lib.data import training_dataset
    from samr1lib.policy import ensure_tiny_policy
    from samr1lib.rewards import build_rewards
    from samr1lib.segmenters import build_segmenter
    from samr1lib.train import build_grpo_config
    from samr1lib.train.rollout_log import RolloutLoggingTrainer

    cfg = load_config("smoke", overrides=[f"output_dir={tmp_path}", "max_steps=2", "save_steps=100"])
    policy = ensure_tiny_policy(tmp_path, cfg.seed)
    args = build_grpo_config(cfg)
    segmenter = build_segmenter("grabcut", iterations=1)
    seg = build_rewards(cfg, segmenter)[2]

    def length_reward(completions, **kwargs):
        return [float(len(c[0]["content"]) % 5) for c in completions]

    log = tmp_path / "rollouts.rank0.jsonl"
    trainer = RolloutLoggingTrainer(
        model=str(policy), reward_funcs=[length_reward, seg], args=args, train_dataset=training_dataset(cfg, tmp_path),
        normalization="group", rollout_log_path=str(log), segmenter=segmenter,
    )
    trainer.train()
    rows = _rows(log)
    assert len(rows) == 8
    for row in rows:
        assert row["rewards"]["length_reward"] == len(row["completion"]) % 5
        assert row["reward"] == pytest.approx(sum(row["rewards"].values()))
    spread = False
    for key in {(r["step"], r["group"]) for r in rows}:
        group = [r for r in rows if (r["step"], r["group"]) == key]
        assert len(group) == 4 and len({r["sample_id"] for r in group}) == 1
        rew = np.array([r["reward"] for r in group])
        adv = np.array([r["advantage"] for r in group])
        expected = (rew - rew.mean()) / (rew.std(ddof=1) + 1e-4)  # Eq. 1 (TRL: unbiased std, + 1e-4)
        np.testing.assert_allclose(adv, expected, rtol=1e-4, atol=1e-4)
        spread = spread or rew.std() > 0
    assert spread, "the length reward should vary inside at least one group"


@pytest.mark.slow
def test_star_step_segments_each_completion_once(tmp_path, monkeypatch):
    """Under StAR (matched reward + non-repeat + label, REST) one training step segments each completion once: the
    trainer's one segmentation is handed to every reward and to the rollout log (before, a monitor reward segmented
    every completion a second time to fill the log)."""
    import samr1lib.rewards.segmentation as seg_module
    from samr1lib.train import train

    segmented = []
    real = seg_module.answer_masks

    def counting(completions, *args, **kwargs):
        segmented.append(len(completions))
        return real(completions, *args, **kwargs)

    monkeypatch.setattr(seg_module, "answer_masks", counting)
    cfg = load_config("smoke", overrides=["seg_reward=star", "label_reward=true", "rest_k=1", f"output_dir={tmp_path}",
                                          "max_steps=2", "save_steps=100"])
    train(cfg)
    rows = _rows(tmp_path / "rollouts.rank0.jsonl")
    assert len(rows) == 8 and set(rows[0]["rewards"]) == {"reasoning_format_reward", "segmentation_format_reward",
                                                          "star_reward", "non_repeat_reward", "label_reward"}
    assert segmented == [4, 4]  # one call per step, each completion once
