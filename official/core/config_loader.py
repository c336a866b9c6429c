"""Resolving an experiment's config: factory, YAML files, then overrides."""

from __future__ import annotations

from typing import Any, Sequence

import tensorflow as tf  # gfile reads local and remote paths alike.
import yaml

from official.base.config import parse_params_override
from official.core import exp_factory
from official.core.experiment_config import ExperimentConfig


def load_experiment_config(
    experiment: str,
    config_files: Sequence[str] = (),
    params_override: str | dict | None = None,
) -> ExperimentConfig:
    """Builds and validates the config of a run.

    Settings apply in order: the experiment factory's defaults, each YAML file
    in `config_files`, then `params_override` (`"a.b=1,c=x"` or a dict of
    dotted keys). `validate()` runs once, at the end.

    Example:
    ```python
    from official.core.config_loader import load_experiment_config
    cfg = load_experiment_config(
        "resnet_digits", params_override="trainer.train_steps=10")
    assert cfg.trainer.train_steps == 10
    ```
    """
    config = exp_factory.get_exp_config(experiment)
    for path in config_files:
        try:
            config.override(load_yaml_file(path))
        except (KeyError, TypeError) as e:
            message = e.args[0] if e.args else str(e)
            raise type(e)(f"In config file {path!r}: {message}") from None
    if params_override:
        items = (
            parse_params_override(params_override)
            if isinstance(params_override, str)
            else dict(params_override)
        )
        config.override_dotted(items)
    config.validate()
    return config


def load_yaml_file(path: str) -> dict[str, Any]:
    """Reads a YAML mapping from `path` with `safe_load`."""
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"Config file {path!r} does not exist.")
    with tf.io.gfile.GFile(path, "r") as f:
        data = yaml.safe_load(f)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(
            f"Config file {path!r} must hold a mapping at the top level, got "
            f"{type(data).__name__}."
        )
    return data
