"""The config an export uses: the run's own `params.yaml`, then the flags.

`python -m serving.export --checkpoint_path=model_dir` needs nothing else:
the training run wrote its resolved config to `model_dir/params.yaml`
(`official/core/train_lib.py`), and the checkpoint sits beside it. Layers
apply in the usual order (`official/core/config_loader.py`): an experiment
factory, `params.yaml`, each `--config_file`, then `--params_override`.

Without `--experiment` the factory is the one named on `params.yaml`'s first
line (`# experiment: NAME`, written by the training binary). A file without
that line (written by other code) is matched by its `task` keys: the
registered task config class whose fields are exactly the file's `task` keys
(one class, or an error asking for `--experiment`), and the first registered
experiment, by name, of that class. That experiment only supplies the class
and defaults for keys the file lacks; `params.yaml` sets every key it holds.

The export needs validation input for its parity examples (and int8
calibration); a config without one is refused here, naming the keys to set.

Example:
```python
import os, tempfile
from official.core import config_loader, train_lib
from serving import run_config

model_dir = tempfile.mkdtemp()
train_lib.write_params(
    config_loader.load_experiment_config(
        "resnet_digits",
        params_override="task.validation_data.input_path=/data/validation-*",
    ),
    model_dir,
)
config, source = run_config.load_run_config(model_dir)
assert config.task.validation_data.input_path == "/data/validation-*"
assert "params.yaml" in source
```
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

from official.base.config import ConfigError
from official.base.registries import EXPERIMENTS, TASKS
from official.core import exp_factory
from official.core.config_loader import load_experiment_config, load_yaml_file
from official.core.experiment_config import ExperimentConfig
from official.core.train_lib import EXPERIMENT_HEADER

PARAMS_FILE = "params.yaml"


def run_directory(checkpoint_path: str) -> str:
    """The run directory of `checkpoint_path` (a model_dir or a prefix in one)."""
    import tensorflow as tf

    if tf.io.gfile.isdir(checkpoint_path):
        return checkpoint_path
    return os.path.dirname(checkpoint_path) or "."


def params_file(checkpoint_path: str) -> str | None:
    """`params.yaml` of the run `checkpoint_path` belongs to, or None."""
    import tensorflow as tf

    if not checkpoint_path:
        return None
    path = os.path.join(run_directory(checkpoint_path), PARAMS_FILE)
    return path if tf.io.gfile.exists(path) else None


def recorded_experiment(path: str) -> str:
    """The experiment named on `params.yaml`'s first line, if registered, else ""."""
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "r") as f:
        first = f.readline().strip()
    header = EXPERIMENT_HEADER.strip()
    if not first.startswith(header):
        return ""
    name = first[len(header) :].strip()
    return name if name in EXPERIMENTS else ""


def experiment_for_params(path: str) -> str:
    """A registered experiment whose task config class fits `path`'s `task` keys.

    Raises:
        ConfigError: no registered task config class, or several, have
            exactly those keys (pass `--experiment`).
    """
    task = load_yaml_file(path).get("task")
    if not isinstance(task, dict):
        raise ConfigError(f"{path} has no `task` mapping; pass --experiment.")
    keys = set(task)
    classes = [
        cls
        for cls in TASKS.names()
        if isinstance(cls, type)
        and dataclasses.is_dataclass(cls)
        and {f.name for f in dataclasses.fields(cls)} == keys
    ]
    if len(classes) != 1:
        found = ", ".join(cls.__name__ for cls in classes) or "none"
        raise ConfigError(
            f"Cannot tell the experiment of {path}: registered task configs with "
            f"exactly its task keys: {found}. Pass --experiment=NAME "
            "(`python -m official.train --experiment=list` lists them)."
        )
    # The first such experiment, preferring a plain `ExperimentConfig`: a
    # subclass may add checks of its own recipe (e.g. a required
    # init_checkpoint) that a run of another recipe need not pass.
    matching = []
    for name in sorted(EXPERIMENTS.names()):
        config = exp_factory.get_exp_config(name)
        if type(config.task) is classes[0]:
            matching.append((type(config) is not ExperimentConfig, name))
    if matching:
        return min(matching)[1]
    raise ConfigError(
        f"No registered experiment uses {classes[0].__name__}, the task config of "
        f"{path}. Pass --experiment=NAME."
    )


def load_run_config(
    checkpoint_path: str,
    experiment: str | None = None,
    config_files: Sequence[str] = (),
    params_override: str = "",
    load: Callable[..., ExperimentConfig] = load_experiment_config,
) -> tuple[ExperimentConfig, str]:
    """The export's config, and a one-line description of where it came from.

    Args:
        checkpoint_path: a model_dir or a checkpoint prefix; its directory's
            `params.yaml` is read when present.
        experiment: the factory; found from `params.yaml` when None.
        config_files: YAML files applied after `params.yaml`.
        params_override: dotted overrides applied last.
        load: `config_loader.load_experiment_config` or a stand-in with its
            arguments (the export binary passes its own reference).

    Raises:
        ConfigError: neither `params.yaml` nor `--experiment`/`--config_file`
            gives a config, or the config has no validation input.
    """
    run_params = params_file(checkpoint_path)
    config_files = [f for f in config_files if not _same_file(f, run_params)]
    if not experiment:
        if run_params is None:
            raise ConfigError(
                f"No config for the export: {checkpoint_path!r} has no "
                f"{PARAMS_FILE} beside it (training writes one into its "
                "model_dir), and no --experiment was given. Pass "
                "--checkpoint_path=MODEL_DIR of a training run, or "
                "--experiment=NAME [--config_file=...]."
            )
        experiment = recorded_experiment(run_params)
        if experiment:
            base = f"experiment {experiment} (recorded in {PARAMS_FILE})"
        else:
            experiment = experiment_for_params(run_params)
            base = f"experiment {experiment} (found from {PARAMS_FILE}'s task keys)"
    else:
        base = f"--experiment={experiment}"
    layers = ([run_params] if run_params else []) + list(config_files)
    config = load(experiment, layers, params_override)
    parts = [base, *layers] + (
        [f"--params_override={params_override}"] if params_override else []
    )
    if isinstance(config, ExperimentConfig):  # Not a test's stand-in.
        check_validation_input(config)
    return config, "Export config: " + " -> ".join(parts) + "."


def check_validation_input(config: ExperimentConfig) -> None:
    """Raises ConfigError unless `task.validation_data` names a source."""
    data = config.task.validation_data
    if not (data.input_path or data.tfds_name):
        raise ConfigError(
            "The export needs validation input for its parity examples (and int8 "
            "calibration), and the config has none: set "
            "task.validation_data.input_path (TFRecords, or an image folder with "
            "task.validation_data.input_format=image_folder) or "
            "task.validation_data.tfds_name, e.g. --params_override="
            "task.validation_data.input_path=DIR/validation-*."
        )


def _same_file(path: str, other: str | None) -> bool:
    return other is not None and os.path.abspath(path) == os.path.abspath(other)
