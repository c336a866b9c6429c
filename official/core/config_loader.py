"""Resolving an experiment's config: factory, YAML files, then overrides."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf  # gfile reads local and remote paths alike.
import yaml
from absl import logging

from official.base.config import parse_params_override
from official.core import durations, exp_factory
from official.core.experiment_config import ExperimentConfig


def load_experiment_config(
    experiment: str,
    config_files: Sequence[str] = (),
    params_override: str | dict | None = None,
) -> ExperimentConfig:
    """Builds and validates the config of a run.

    Settings apply in order: the experiment factory's defaults, each YAML file
    in `config_files`, then `params_override` (`"a.b=1,c=x"` or a dict of
    dotted keys). Then the step fields stated in epochs are derived from
    `task.train_data.num_examples` and the global batch size, and logged
    (`official/core/durations.py`: a layer that sets a step field replaces
    the epochs of earlier layers; one that sets a step field and its epochs
    twin to values that disagree is an error). `validate()` runs once, at
    the end.

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
        values = load_yaml_file(path)
        before = config.copy()
        try:
            config.override(values)
        except (KeyError, TypeError) as e:
            message = e.args[0] if e.args else str(e)
            raise type(e)(f"In config file {path!r}: {message}") from None
        _settle(config, before, _dotted_keys(values), f"Config file {path!r}")
    if params_override:
        items = (
            parse_params_override(params_override)
            if isinstance(params_override, str)
            else dict(params_override)
        )
        before = config.copy()
        config.override_dotted(items)
        keys = set()
        for key, raw in items.items():
            keys |= _dotted_keys(
                yaml.safe_load(raw) if isinstance(raw, str) else raw, key
            )
        _settle(config, before, keys, "--params_override")
    resolved = durations.resolve(config)
    if resolved:
        logging.info("Steps from epochs: %s", resolved)
    config.validate()
    return config


def _settle(
    config: ExperimentConfig, before: ExperimentConfig, keys: set[str], source: str
) -> None:
    for note in durations.settle_layer(config, before, keys, source):
        logging.info("%s", note)


def _dotted_keys(value: Any, prefix: str = "") -> set[str]:
    """The dotted keys a layer of settings sets (nested mappings flattened)."""
    keys = {prefix} if prefix else set()
    if isinstance(value, dict):
        for key, item in value.items():
            keys |= _dotted_keys(item, f"{prefix}.{key}" if prefix else str(key))
    return keys


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
