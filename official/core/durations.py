"""Durations in epochs and in steps: the one place that converts.

Recipes state durations in epochs, with the training split's size in
`task.train_data.num_examples`; the trainer counts steps (optimizer updates
of `global_batch_size x gradient_accumulation_steps` examples). Each step
field below has an epochs twin; when the twin is > 0, `resolve` derives the
step field from it, so the steps follow the global batch size as the
learning rate does:

| steps (what the trainer reads)                     | epochs (what recipes state)             |
|----------------------------------------------------|-----------------------------------------|
| `trainer.train_steps`                              | `trainer.train_epochs`                  |
| `trainer.checkpoint_interval`                      | `trainer.checkpoint_interval_epochs`    |
| `trainer.validation_interval`                      | `trainer.validation_interval_epochs`    |
| `trainer.optimizer_config.warmup.warmup_steps`     | `...warmup.warmup_epochs`               |
| `trainer.optimizer_config.learning_rate.params.decay_steps` | `...learning_rate.decay_epochs` |

An epoch is `num_examples / (global_batch_size x gradient_accumulation_steps)`
steps (training repeats the data before batching, so no example is dropped
at an epoch's end); a duration is rounded up to whole steps, an interval to
whole loops of `trainer.steps_per_loop`.

`config_loader.load_experiment_config` applies the layers of settings in
order (the experiment's defaults, each YAML file, `--params_override`) and
calls `settle_layer` after each file and after the overrides: a later layer
that sets a step field replaces the epochs of earlier layers (the field's
epochs twin becomes 0), and a layer that sets both a step field and its
epochs twin is an error naming both keys, unless the two agree (a resolved
`params.yaml` records both). `resolve` then derives the steps once, before
`validate()`.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import TYPE_CHECKING

from official.base.config import ConfigError

if TYPE_CHECKING:
    from official.core.experiment_config import ExperimentConfig

NUM_EXAMPLES_KEY = "task.train_data.num_examples"


def _check_sizes(num_examples: int, global_batch_size: int) -> None:
    if num_examples <= 0 or global_batch_size <= 0:
        raise ValueError(
            f"num_examples and global_batch_size must be > 0. Received: "
            f"num_examples={num_examples}, global_batch_size={global_batch_size}."
        )


def steps_per_epoch(num_examples: int, global_batch_size: int) -> int:
    """Whole steps in one pass over `num_examples` (at least 1), e.g. for a
    `steps_per_loop` of about an epoch."""
    _check_sizes(num_examples, global_batch_size)
    return max(1, num_examples // global_batch_size)


def epochs_to_steps(epochs: float, num_examples: int, global_batch_size: int) -> int:
    """Steps in `epochs` passes over `num_examples` at `global_batch_size`.

    `epochs * num_examples / global_batch_size`, rounded up to whole steps,
    so `epochs_to_steps(steps_to_epochs(s, n, b), n, b)` gives back `s`.

    Example:
    ```python
    from official.core.durations import epochs_to_steps
    assert epochs_to_steps(2, num_examples=1000, global_batch_size=100) == 20
    assert epochs_to_steps(90, num_examples=1_281_167, global_batch_size=4096) == 28151
    ```
    """
    _check_sizes(num_examples, global_batch_size)
    exact = epochs * num_examples / global_batch_size
    # Rounding first keeps float noise (30000.000000004) from adding a step.
    return int(math.ceil(round(exact, 6)))


def steps_to_epochs(steps: int, num_examples: int, global_batch_size: int) -> float:
    """The epochs that `steps` steps at `global_batch_size` make.

    For recipes published in steps at a batch size (e.g. DeepLab's 30k steps
    of 16 images): stated in epochs, they keep their length in examples at
    another batch size.

    Example:
    ```python
    from official.core.durations import epochs_to_steps, steps_to_epochs
    epochs = steps_to_epochs(30_000, num_examples=10_582, global_batch_size=16)
    assert round(epochs, 2) == 45.36
    assert epochs_to_steps(epochs, 10_582, 16) == 30_000
    assert epochs_to_steps(epochs, 10_582, 8) == 60_000
    ```
    """
    _check_sizes(num_examples, global_batch_size)
    return steps * global_batch_size / num_examples


@dataclasses.dataclass(frozen=True)
class _Duration:
    """One step field of an `ExperimentConfig` and its epochs twin."""

    steps_key: str
    epochs_key: str
    steps: int | None
    epochs: float
    whole_loops: bool = False  # intervals: a multiple of trainer.steps_per_loop

    @property
    def epochs_name(self) -> str:
        return self.epochs_key.rsplit(".", 1)[-1]


def _durations(config: ExperimentConfig) -> list[_Duration]:
    trainer = config.trainer
    warmup = trainer.optimizer_config.warmup
    learning_rate = trainer.optimizer_config.learning_rate
    optimizer = "trainer.optimizer_config"
    return [
        _Duration(
            "trainer.train_steps",
            "trainer.train_epochs",
            trainer.train_steps,
            trainer.train_epochs,
        ),
        _Duration(
            "trainer.checkpoint_interval",
            "trainer.checkpoint_interval_epochs",
            trainer.checkpoint_interval,
            trainer.checkpoint_interval_epochs,
            whole_loops=True,
        ),
        _Duration(
            "trainer.validation_interval",
            "trainer.validation_interval_epochs",
            trainer.validation_interval,
            trainer.validation_interval_epochs,
            whole_loops=True,
        ),
        _Duration(
            f"{optimizer}.warmup.warmup_steps",
            f"{optimizer}.warmup.warmup_epochs",
            warmup.warmup_steps,
            warmup.warmup_epochs,
        ),
        _Duration(
            f"{optimizer}.learning_rate.params.decay_steps",
            f"{optimizer}.learning_rate.decay_epochs",
            learning_rate.params.get("decay_steps"),
            learning_rate.decay_epochs,
        ),
    ]


def _examples_per_step(config: ExperimentConfig) -> tuple[int, str]:
    """Examples per optimizer update, and how the log and errors spell it."""
    batch = config.task.train_data.global_batch_size
    accumulation = config.trainer.optimizer_config.gradient_accumulation_steps
    if accumulation > 1:
        return (
            batch * accumulation,
            f"(global_batch_size={batch} x gradient_accumulation_steps={accumulation})",
        )
    return batch, f"global_batch_size={batch}"


def _derive(config: ExperimentConfig, duration: _Duration) -> int:
    """The steps `duration.epochs` make in `config` (num_examples known)."""
    num_examples = config.task.train_data.num_examples
    per_step, _ = _examples_per_step(config)
    if not duration.whole_loops:
        return epochs_to_steps(duration.epochs, num_examples, per_step)
    loop = max(1, config.trainer.steps_per_loop)  # validate() rejects < 1.
    exact = duration.epochs * num_examples / per_step
    return max(1, round(exact / loop)) * loop


def _check_schedule_decays(config: ExperimentConfig, duration: _Duration) -> None:
    from official.base.registries import SCHEDULES

    learning_rate = config.trainer.optimizer_config.learning_rate
    if learning_rate.type not in SCHEDULES:
        return  # validate() names the unknown schedule.
    accepts = inspect.signature(SCHEDULES.get(learning_rate.type)).parameters
    if "decay_steps" not in accepts:
        raise ConfigError(
            f"{duration.epochs_key}={duration.epochs:g} needs a schedule with "
            f"`decay_steps`; {learning_rate.type!r} has none. Set "
            f"{duration.epochs_key}=0."
        )


def resolve(config: ExperimentConfig) -> str:
    """Sets every step field whose epochs twin is > 0; returns what it did.

    Idempotent. Returns one line for the log (empty when no field is in
    epochs), e.g. `trainer.train_steps=450411 from train_epochs=90 x
    num_examples=1281167 / global_batch_size=256; ...`.

    Raises:
        ConfigError: a field is in epochs but `task.train_data.num_examples`
            is 0 (unknown), or `decay_epochs` is set for a schedule without
            `decay_steps`.

    Example:
    ```python
    from official.core import durations
    from official.core.experiment_config import ExperimentConfig

    cfg = ExperimentConfig()
    cfg.task.train_data.num_examples = 1000
    cfg.task.train_data.global_batch_size = 100
    cfg.trainer.train_epochs = 3
    durations.resolve(cfg)
    assert cfg.trainer.train_steps == 30
    ```
    """
    num_examples = config.task.train_data.num_examples
    per_step, per_step_text = _examples_per_step(config)
    parts = []
    for duration in _durations(config):
        if not duration.epochs > 0 or per_step <= 0:
            continue  # In steps; validate() rejects negative values.
        if num_examples <= 0:
            raise ConfigError(
                f"{duration.epochs_key}={duration.epochs:g} needs "
                f"{NUM_EXAMPLES_KEY} (the size of the training split) to count "
                f"the steps of an epoch. Set it, or give {duration.steps_key} "
                f"instead."
            )
        if duration.steps_key.endswith(".decay_steps"):
            _check_schedule_decays(config, duration)
        steps = _derive(config, duration)
        config.override_dotted({duration.steps_key: steps})
        part = f"{duration.steps_key}={steps} from {duration.epochs_name}={duration.epochs:g}"
        if not parts:
            part += (
                f" x num_examples={num_examples} / {per_step_text} "
                f"({num_examples / per_step:.6g} steps per epoch)"
            )
        if duration.whole_loops:
            part += f" (rounded to whole loops of steps_per_loop={config.trainer.steps_per_loop})"
        parts.append(part)
    return "; ".join(parts)


def settle_layer(
    config: ExperimentConfig,
    before: ExperimentConfig,
    keys: set[str],
    source: str,
) -> list[str]:
    """Settles steps against epochs after one layer of settings.

    Args:
        config: the config with the layer applied.
        before: a copy of the config from before the layer.
        keys: the dotted keys the layer set (nested mappings flattened).
        source: what the layer is, for messages (a file path, or
            `--params_override`).

    Returns:
        One line per epochs field the layer replaced with steps, for the log.

    Raises:
        ConfigError: the layer sets a step field and its epochs twin (> 0)
            to values that disagree; the message names both keys.
    """
    notes = []
    for duration in _durations(config):
        sets_steps = duration.steps_key in keys
        sets_epochs = duration.epochs_key in keys and duration.epochs > 0
        if sets_steps and sets_epochs:
            _check_agree(config, duration, source)
        elif sets_steps and duration.epochs:
            config.override_dotted({duration.epochs_key: 0.0})
            notes.append(
                f"{duration.steps_key}={duration.steps} from {source} replaces "
                f"{duration.epochs_key}={duration.epochs:g}."
            )
    learning_rate = config.trainer.optimizer_config.learning_rate
    new_schedule = (
        learning_rate.type != before.trainer.optimizer_config.learning_rate.type
    )
    if (
        new_schedule
        and "trainer.optimizer_config.learning_rate.decay_epochs" not in keys
    ):
        # A new schedule starts from empty params, and without decay epochs.
        learning_rate.decay_epochs = 0.0
    return notes


def _check_agree(config: ExperimentConfig, duration: _Duration, source: str) -> None:
    derived = None
    if config.task.train_data.num_examples > 0 and _examples_per_step(config)[0] > 0:
        derived = _derive(config, duration)
        if derived == duration.steps:
            return  # A resolved config (e.g. params.yaml) records both.
    _, per_step_text = _examples_per_step(config)
    gives = (
        f"{duration.epochs:g} epochs are {derived} steps at num_examples="
        f"{config.task.train_data.num_examples} / {per_step_text}"
        if derived is not None
        else f"{NUM_EXAMPLES_KEY} is not set"
    )
    raise ConfigError(
        f"{source} sets both {duration.steps_key}={duration.steps} and "
        f"{duration.epochs_key}={duration.epochs:g} ({gives}). Set one of them: "
        f"steps, or epochs with the steps derived from the global batch size."
    )


def describe_training(config: ExperimentConfig) -> str:
    """One line on how long `config` trains, in steps and, when known, epochs.

    Example:
    ```python
    from official.core import durations
    from official.core.experiment_config import ExperimentConfig

    cfg = ExperimentConfig()
    cfg.task.train_data.num_examples = 1000
    cfg.task.train_data.global_batch_size = 100
    assert "100 epochs" in durations.describe_training(cfg)  # 1000 steps
    ```
    """
    steps = config.trainer.train_steps
    num_examples = config.task.train_data.num_examples
    per_step, per_step_text = _examples_per_step(config)
    line = f"Training {steps} steps of {per_step} examples"
    if num_examples <= 0 or per_step <= 0:
        return f"{line} ({NUM_EXAMPLES_KEY} not set: epochs unknown)."
    epochs = steps_to_epochs(steps, num_examples, per_step)
    return (
        f"{line}: {epochs:.4g} epochs of {NUM_EXAMPLES_KEY}={num_examples} "
        f"at {per_step_text}."
    )
