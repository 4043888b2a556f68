"""Loading a :class:`TrainConfig`: preset <- YAML <- ``key=value``, each value parsed to its field's type (a
``Literal`` field to one of its choices), then the values checked together. Every error is a ``ValueError`` naming
the field and the value, raised before any model or dataset is loaded."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import typing
from pathlib import Path
from typing import Any, Iterable, Literal

from ..presets import PRESETS
from .fields import TrainConfig

__all__ = ["load_config", "parse_value", "validate", "check_generation_batch", "field_docs", "to_dict"]


def field_docs() -> dict[str, str]:
    """Each field's docstring (the string literal under it in the class body), whitespace collapsed."""
    tree = ast.parse(inspect.getsource(TrainConfig))
    body = tree.body[0].body
    docs = {}
    for prev, node in zip(body, body[1:]):
        if isinstance(prev, ast.AnnAssign) and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            docs[prev.target.id] = " ".join(str(node.value.value).split())
    return docs


def _fields() -> dict[str, Any]:
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainConfig)}


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _scalar(name: str, base: type, value: Any) -> Any:
    """``value`` as ``base`` (bool, int, float or str); ValueError when it is not one."""
    text = str(value).strip().lower()
    if base is bool and (isinstance(value, bool) or text in _TRUE + _FALSE):
        return value if isinstance(value, bool) else text in _TRUE
    if isinstance(value, bool) or base is bool:  # True is an int in Python, not a number of steps
        raise ValueError
    if base is int and not (isinstance(value, float) and not value.is_integer()):
        return int(value.strip()) if isinstance(value, str) else int(value)
    if base in (float, str):
        return base(value)
    raise ValueError(f"config field {name!r} cannot hold {value!r}")


def parse_value(name: str, value: Any) -> Any:
    """Convert ``value`` (a string from the CLI, or a YAML scalar) to field ``name``'s type; a Literal field must
    take one of its choices."""
    types = _fields()
    if name not in types:
        raise ValueError(f"unknown config field {name!r}; valid fields: {', '.join(sorted(types))}")
    tp = types[name]
    if typing.get_origin(tp) is Literal:
        choices = typing.get_args(tp)
        if str(value) not in choices:
            raise ValueError(f"config field {name!r} must be one of {choices}, got {value!r}")
        return str(value)
    args = typing.get_args(tp)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), tp) if args else tp
    if value is None or (optional and isinstance(value, str) and value.strip().lower() in ("none", "null", "~")):
        if optional:
            return None
        raise ValueError(f"config field {name!r} ({base.__name__}) cannot be None")
    try:
        return _scalar(name, base, value)
    except (TypeError, ValueError):
        raise ValueError(f"config field {name!r} expects {base.__name__}, got {value!r}") from None


def check_generation_batch(cfg: TrainConfig, world_size: int | None = None) -> int:
    """G must divide the generation batch (per-device batch x steps_per_generation x world size)."""
    ws = cfg.num_processes if world_size is None else int(world_size)
    gen_batch = cfg.per_device_train_batch_size * cfg.steps_per_generation * ws
    if gen_batch % cfg.num_generations:
        raise ValueError(
            f"num_generations G={cfg.num_generations} must divide the generation batch per_device_train_batch_size "
            f"({cfg.per_device_train_batch_size}) x steps_per_generation ({cfg.steps_per_generation}) x world size "
            f"({ws}) = {gen_batch}; change one of them (e.g. per_device_train_batch_size={cfg.num_generations})"
        )
    return gen_batch


_TIERS = re.compile(r"eq5|fixed0(\.\d+)?")
_POSITIVE = ("vllm_max_model_length", "per_device_train_batch_size", "gradient_accumulation_steps",
             "steps_per_generation", "num_processes", "max_completion_length", "image_size", "save_steps",
             "logging_steps", "n_train")


def validate(cfg: TrainConfig, world_size: int | None = None) -> TrainConfig:
    """Check the values together (each field's type is checked by :func:`parse_value`)."""
    for name, tp in _fields().items():
        if typing.get_origin(tp) is Literal and getattr(cfg, name) not in typing.get_args(tp):
            raise ValueError(f"config field {name!r} must be one of {typing.get_args(tp)}, got {getattr(cfg, name)!r}")
    if not _TIERS.fullmatch(cfg.tiers):
        raise ValueError(f"tiers must be 'eq5' or 'fixed<t>' with 0 <= t < 1 (Table 3: fixed0.5/0.7/0.8), "
                         f"got {cfg.tiers!r}")
    if cfg.num_generations < 2:
        raise ValueError(f"num_generations must be >= 2 (Eq. 1 needs a group), got {cfg.num_generations}")
    for name in _POSITIVE:
        if getattr(cfg, name) < 1:
            raise ValueError(f"config field {name!r} must be >= 1, got {getattr(cfg, name)}")
    if not 0 <= cfg.epsilon_low < 1 or cfg.epsilon_high < 0:
        raise ValueError(f"need 0 <= epsilon_low < 1 and epsilon_high >= 0, got {cfg.epsilon_low}, {cfg.epsilon_high}")
    if cfg.beta < 0:
        raise ValueError(f"beta must be >= 0, got {cfg.beta}")
    if cfg.max_steps <= 0 and cfg.num_train_epochs <= 0:
        raise ValueError("set max_steps > 0 or num_train_epochs > 0")
    if cfg.data_source != "refer" and cfg.world_images < 1:
        raise ValueError(f"data_source={cfg.data_source!r} writes a world: it needs world_images >= 1")
    if cfg.rest_k < 0 or (cfg.rest_k and 2 * cfg.rest_k >= cfg.num_generations):
        raise ValueError(f"rest_k={cfg.rest_k} must be 0 (off) or keep fewer than G={cfg.num_generations} "
                         "rollouts (2 x rest_k < num_generations)")
    if not 0.0 <= cfg.warmup_ratio < 1.0:
        raise ValueError(f"warmup_ratio must be in [0, 1), got {cfg.warmup_ratio}")
    if cfg.use_vllm:
        need = (cfg.image_size // 28) ** 2 + 256 + cfg.max_completion_length  # Qwen2.5-VL: one token per 28x28
        if cfg.vllm_max_model_length < need:
            raise ValueError(f"vllm_max_model_length={cfg.vllm_max_model_length} < {need}: the image's tokens "
                             f"({(cfg.image_size // 28) ** 2}) + 256 for the prompt + max_completion_length "
                             f"({cfg.max_completion_length}) would not fit")
    check_generation_batch(cfg, world_size)
    return cfg


def load_config(preset: str = "paper", yaml_path: str | Path | None = None, overrides: Iterable[str] = (),
                world_size: int | None = None) -> TrainConfig:
    """Defaults <- preset (:data:`samr1lib.presets.PRESETS`) <- YAML file (a mapping of field: value) <- ``key=value``
    overrides, then validated. ``world_size`` (default: ``num_processes``) is the one the G check uses."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid presets: {', '.join(sorted(PRESETS))}")
    values: dict[str, Any] = dict(PRESETS[preset])
    if yaml_path is not None:
        import yaml

        with open(yaml_path) as f:
            data = yaml.safe_load(f) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{yaml_path}: a config file must be a mapping of field: value, got {type(data).__name__}")
        values.update({str(k): v for k, v in data.items()})
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value")
        k, v = item.split("=", 1)
        values[k.strip()] = v
    return validate(TrainConfig(**{k: parse_value(k, v) for k, v in values.items()}), world_size)


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
