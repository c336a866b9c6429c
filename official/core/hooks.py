"""Hooks: small callbacks the trainer calls at fixed points.

A hook is a `keras.callbacks.Callback` (every event a no-op by default) with
two more events, `on_loop_end(step, logs)` after each `steps_per_loop` train
loop and `on_eval_end(step, logs)` after each evaluation. The trainer sets
`hook.trainer` before `on_train_begin`. A hook stops training by setting
`trainer.stop_training = True`.

Built in (from the trainer config): `BestCheckpoint`, `EarlyStopping`,
`Profiler`. Checkpoints every `checkpoint_interval` steps, TensorBoard
scalars and the progress line with its ETA are the trainer's own.

Example:
```python
from official.core.hooks import Hook

class PrintLoss(Hook):
    def on_loop_end(self, step, logs):
        print(step, logs["loss"])
```
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf
from absl import logging


class Hook(keras.callbacks.Callback):
    """Base class of trainer hooks; every event is a no-op."""

    trainer = None

    def on_loop_end(self, step: int, logs: dict) -> None:
        """After each train loop, with its mean loss, metrics and learning rate."""

    def on_eval_end(self, step: int, logs: dict) -> None:
        """After each evaluation, with its metrics."""


def _better(mode: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value > best if mode == "max" else value < best


def _metric(logs: dict, metric: str) -> float:
    if metric not in logs:
        raise KeyError(
            f"Evaluation metric {metric!r} does not exist. Evaluation reports: "
            f"{', '.join(sorted(logs))}."
        )
    return float(logs[metric])


class BestCheckpoint(Hook):
    """Keeps the checkpoint with the best evaluation `metric` in `model_dir/best/`.

    Args:
        metric: str, an evaluation metric name (e.g. "accuracy").
        mode: "max" or "min".
    """

    def __init__(self, metric: str, mode: str = "max"):
        super().__init__()
        self.metric = metric
        self.mode = mode
        self.best: float | None = None

    def on_train_begin(self, logs=None):
        path = os.path.join(self.trainer.model_dir, "best", "best.json")
        if tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path) as f:
                self.best = json.load(f)[self.metric]

    def on_eval_end(self, step, logs):
        value = _metric(logs, self.metric)
        if not _better(self.mode, value, self.best):
            return
        self.best = value
        if not getattr(self.trainer, "is_chief", True):
            return
        best_dir = os.path.join(self.trainer.model_dir, "best")
        tf.io.gfile.makedirs(best_dir)
        prefix = self.trainer.checkpoint.write(os.path.join(best_dir, "ckpt"))
        with tf.io.gfile.GFile(os.path.join(best_dir, "best.json"), "w") as f:
            json.dump(
                {"step": step, self.metric: value, "checkpoint": prefix}, f, indent=2
            )
        logging.info(
            "New best %s=%.4g at step %d: %s.", self.metric, value, step, prefix
        )


class EarlyStopping(Hook):
    """Stops training when `metric` has not improved for `patience` evaluations.

    Args:
        metric: str, an evaluation metric name.
        patience: int >= 1, evaluations without improvement allowed.
        mode: "max" or "min".
    """

    def __init__(self, metric: str, patience: int, mode: str = "max"):
        super().__init__()
        self.metric = metric
        self.patience = patience
        self.mode = mode
        self.best: float | None = None
        self.waited = 0

    def on_eval_end(self, step, logs):
        value = _metric(logs, self.metric)
        if _better(self.mode, value, self.best):
            self.best, self.waited = value, 0
            return
        self.waited += 1
        if self.waited >= self.patience:
            logging.info(
                "Early stopping at step %d: %s has not improved on %.4g for %d "
                "evaluation(s).",
                step,
                self.metric,
                self.best,
                self.waited,
            )
            self.trainer.stop_training = True


class Profiler(Hook):
    """Records a TensorFlow profile of train steps [start, end) in model_dir/profile.

    Steps are counted at loop boundaries: the window opens at the first loop
    end at or after `start_step` and closes at the first at or after
    `end_step`.
    """

    def __init__(self, start_step: int, end_step: int):
        super().__init__()
        self.start_step = start_step
        self.end_step = end_step
        self.active = False

    def on_loop_end(self, step, logs):
        if not self.active and self.start_step <= step < self.end_step:
            tf.profiler.experimental.start(
                os.path.join(self.trainer.model_dir, "profile")
            )
            self.active = True
        elif self.active and step >= self.end_step:
            tf.profiler.experimental.stop()
            self.active = False
            logging.info(
                "Profile written to %s.",
                os.path.join(self.trainer.model_dir, "profile"),
            )

    def on_train_end(self, logs=None):
        if self.active:
            tf.profiler.experimental.stop()
            self.active = False


def build_hooks(trainer_config) -> list[Hook]:
    """The built-in hooks that `trainer_config` turns on."""
    hooks: list[Hook] = []
    if trainer_config.best_checkpoint_metric:
        hooks.append(
            BestCheckpoint(
                trainer_config.best_checkpoint_metric,
                trainer_config.best_checkpoint_mode,
            )
        )
    if trainer_config.early_stopping_metric:
        hooks.append(
            EarlyStopping(
                trainer_config.early_stopping_metric,
                trainer_config.early_stopping_patience,
                trainer_config.best_checkpoint_mode,
            )
        )
    if trainer_config.profile_steps:
        start, end = trainer_config.profile_steps
        hooks.append(Profiler(start, end))
    return hooks
