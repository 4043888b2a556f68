"""Launch lines: the paper run's 8-GPU ``accelerate launch`` and a local multi-process one (CPU: gloo)."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Sequence

__all__ = ["ACCELERATE_CONFIGS", "accelerate_config_path", "paper_launch_command", "local_launch_command"]

ACCELERATE_CONFIGS = {"zero3": "accelerate_zero3_8gpu.yaml", "ddp": "accelerate_ddp_8gpu.yaml"}


def accelerate_config_path(name: str = "zero3") -> Path:
    """Path of a shipped accelerate config: ``"zero3"`` (DeepSpeed ZeRO-3, 8 GPUs, bf16) or ``"ddp"``."""
    if name not in ACCELERATE_CONFIGS:
        raise ValueError(f"unknown accelerate config {name!r}; choose one of {sorted(ACCELERATE_CONFIGS)}")
    return Path(str(resources.files("samr1lib") / "configs" / ACCELERATE_CONFIGS[name]))


def paper_launch_command(config: str = "zero3", extra: Sequence[str] = ()) -> list[str]:
    """The exact ``accelerate launch`` command of the paper run (8 GPUs, preset ``paper``), as argv."""
    return [
        "accelerate", "launch", "--config_file", str(accelerate_config_path(config)), "--num_processes", "8",
        "-m", "samr1lib.train", "--preset", "paper", *extra,
    ]


def local_launch_command(num_processes: int = 2, preset: str = "smoke", overrides: Sequence[str] = (),
                         port: int | None = None) -> list[str]:
    """``accelerate launch`` of the trainer on this machine with ``num_processes`` processes, as argv. On a machine
    without GPUs ``--multi_gpu`` is what starts several (gloo) processes: accelerate's ``--cpu`` starts one."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if num_processes > 1:
        cmd += ["--multi_gpu", "--num_processes", str(num_processes)]
        cmd += ["--main_process_port", str(port)] if port else []
    else:
        cmd += ["--num_processes", "1"]
    return [*cmd, "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "-m", "samr1lib.train", "--preset", preset, *overrides]
