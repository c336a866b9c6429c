"""The `Task` interface: what a trainer and an exporter need from a task.

A task builds its model, its input pipelines, its loss and its metrics. It
never touches the distribution strategy: the trainer owns strategy, loops,
gradients and checkpoints.
"""

from __future__ import annotations

import abc
from typing import Any

import keras
import tensorflow as tf

from official.core.experiment_config import DataConfig, TaskConfig


class Task(abc.ABC):
    """Base class of every task.

    Args:
        config: the task's config (a `TaskConfig` subclass).
    """

    def __init__(self, config: TaskConfig):
        self.config = config

    @abc.abstractmethod
    def build_model(self) -> keras.Model:
        """Returns the (unbuilt or built) Keras model."""

    @abc.abstractmethod
    def build_inputs(
        self, data: DataConfig, input_context: tf.distribute.InputContext | None = None
    ) -> tf.data.Dataset:
        """Returns a dataset of `(features, labels)` batches of per-replica size."""

    @abc.abstractmethod
    def build_losses(self, labels: Any, outputs: Any, aux_losses: Any = None) -> tf.Tensor:
        """Returns the scalar loss averaged over the (per-replica) batch."""

    def build_metrics(self, training: bool = True) -> list[keras.metrics.Metric]:
        """Metrics updated with `(labels, outputs)` each step."""
        return []

    def update_metrics(self, metrics: list, labels: Any, outputs: Any) -> None:
        for metric in metrics:
            metric.update_state(labels, outputs)

    # ---- export hooks -----------------------------------------------------

    @abc.abstractmethod
    def serving_signatures(self, model: keras.Model) -> dict[str, tuple]:
        """`{signature_name: (fn, input_signature)}` for the SavedModel export.

        Each `fn` takes the tensors of its `input_signature` (a list of named
        `tf.TensorSpec`s) and returns a dict of named output tensors. The
        first entry is also exported as `serving_default`.
        """

    @abc.abstractmethod
    def tflite_signature(self, model: keras.Model) -> tuple:
        """`(fn, input_signature)` with static shapes, for TFLite conversion."""

    @abc.abstractmethod
    def serving_examples(self, num_examples: int) -> tuple[Any, Any]:
        """`(inputs, labels)` numpy arrays from the validation data, in the
        format `tflite_signature` takes: used for int8 calibration and parity."""
