"""Resolving an experiment's config: factory, YAML files, then overrides.

Nothing here imports TensorFlow or Keras until it is needed (a remote config
path, or `validate()` checking registered constructors), so that the binaries
print `--help`, the experiment list and a mistyped key without starting it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from absl import logging

from official.base.config import load_yaml, parse_params_override, quote
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
    config = resolve_experiment_config(experiment, config_files, params_override)
    config.validate()
    return config


def resolve_experiment_config(
    experiment: str,
    config_files: Sequence[str] = (),
    params_override: str | dict | None = None,
) -> ExperimentConfig:
    """`load_experiment_config` without the final `validate()`.

    Unknown keys, wrong types, files that are missing or not mappings and the
    steps-versus-epochs conflicts are errors here already; no TensorFlow or
    Keras is imported for local files. The caller validates (which checks
    `params` against the registered Keras constructors).
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
            value = (
                load_yaml(raw, f"--params_override value of {quote(key)}")
                if isinstance(raw, str)
                else raw
            )
            keys |= _dotted_keys(value, key)
        _settle(config, before, keys, "--params_override")
    # Fields the data determines (e.g. classes and size of an image folder)
    # are filled before the epochs that need them become steps.
    for note in config.task.resolve_from_data():
        logging.info("From the data: %s", note)
    resolved = durations.resolve(config)
    if resolved:
        logging.info("Steps from epochs: %s", resolved)
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


def load_yaml_file(path: str | os.PathLike) -> dict[str, Any]:
    """Reads a YAML mapping from `path`; aliases are refused (`load_yaml`).

    A local path is read with `open`; a URL-like one (`gs://...`) with
    TensorFlow's gfile.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: one line naming `path`: unreadable, not UTF-8, invalid
            YAML, a YAML alias, or not a mapping.
    """
    path = os.fspath(path)
    if "://" in path:
        import tensorflow as tf  # gfile reads remote paths.

        exists, opener = tf.io.gfile.exists, tf.io.gfile.GFile
        read_errors: tuple[type[Exception], ...] = (OSError, tf.errors.OpError)
    else:
        exists, opener = os.path.exists, open
        read_errors = (OSError,)
    if not exists(path):
        raise FileNotFoundError(f"Config file {path!r} does not exist.")
    try:
        with opener(path, "rb") as f:
            text = f.read().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"Config file {path!r} is not UTF-8 text: {e}.") from None
    except read_errors as e:
        cause = getattr(e, "message", None) or str(e)
        raise ValueError(f"Config file {path!r} cannot be read: {cause}") from None
    data = load_yaml(text, f"Config file {path!r}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(
            f"Config file {path!r} must hold a mapping at the top level, got "
            f"{type(data).__name__}."
        )
    return data
