"""Training: ``python -m samr1lib.train --preset smoke [--config file.yaml] [key=value ...] [--no-resume]``.

- :mod:`.run`: one job, wired in data-flow order (:func:`train`);
- :mod:`.trainer`: :class:`SAMR1GRPOTrainer`, TRL's GRPOTrainer with the loss of SAM-R1's Eq. 4 (or Eq. 2) and
  StAR's REST (imports TRL: load it explicitly, ``from samr1lib.train.trainer import SAMR1GRPOTrainer``);
- :mod:`.rollout_log`: one segmentation per completion per step, the shuffled control, the rollout log;
- :mod:`.launch`: the paper's 8-GPU ``accelerate launch`` line and a local multi-process one.
"""

from .launch import accelerate_config_path, local_launch_command, paper_launch_command
from .run import build_grpo_config, check_columns, lora_config, train, world_size

__all__ = ["train", "build_grpo_config", "check_columns", "lora_config", "world_size", "accelerate_config_path",
           "paper_launch_command", "local_launch_command"]
