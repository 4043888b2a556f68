"""Training configuration: one dataclass whose defaults ARE the SAM-R1 paper run (:mod:`.fields`), and its loading
from a preset, a YAML file and ``key=value`` overrides (:mod:`.load`).

    cfg = load_config("smoke", yaml_path=None, overrides=["max_steps=3", "beta=0"])
"""

from .fields import TrainConfig
from .load import check_generation_batch, field_docs, load_config, parse_value, to_dict, validate

__all__ = ["TrainConfig", "load_config", "parse_value", "validate", "check_generation_batch", "field_docs", "to_dict"]
