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

from official.core import parity_measures
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
    def build_losses(
        self, labels: Any, outputs: Any, aux_losses: Any = None
    ) -> tf.Tensor:
        """Returns the scalar loss averaged over the (per-replica) batch."""

    def build_metrics(self, training: bool = True) -> list[keras.metrics.Metric]:
        """Metrics updated with `(labels, outputs)` each step."""
        return []

    def update_metrics(self, metrics: list, labels: Any, outputs: Any) -> None:
        for metric in metrics:
            metric.update_state(labels, outputs)

    def eval_details(self, model: keras.Model) -> dict[str, Any]:
        """Results of an evaluation beyond its metrics (e.g. generated text).

        Called by the trainer after each evaluation pass, with the weights
        just evaluated. Numbers join the evaluation's metrics (the log line,
        summaries, hooks and `eval_results.json`); other JSON-ready values
        are written to `eval_results.json` only. Default: none.
        """
        del model
        return {}

    def eval_report(self, logs: dict[str, float]) -> str:
        """Extra text the trainer logs after an evaluation's one-line summary
        (e.g. a per-class table); empty for none."""
        del logs
        return ""

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

    def parity_signature_inputs(self, num_examples: int) -> dict[str, list[Any]]:
        """Inputs of the serving signatures for the parity examples.

        `{signature name: [one numpy array per input, in the signature's
        order]}` holding the first `num_examples` examples of
        `serving_examples(num_examples)`, in each signature's own format (raw
        strings, serialized tf.Examples, several tensors). A signature left
        out gets the `serving_examples` images as its one input, PNG-encoded
        where it takes strings (`serving/parity.py`). Default: none.
        """
        del num_examples
        return {}

    # ---- parity hooks (export) ----------------------------------------------
    # The exporter compares every artifact's outputs with the Keras reference
    # through these (`official/core/parity_measures.py`). A task that is
    # exported defines all three; classification's are in
    # `official/vision/tasks/classification_parity.py`.

    def parity_measures(
        self, reference: dict[str, Any], candidate: dict[str, Any], labels: Any
    ) -> dict[str, float]:
        """Measures one artifact's outputs against the Keras reference.

        Args:
            reference: `{output_name: array [N, ...]}` from the Keras model.
            candidate: the artifact's outputs for the same N examples (already
                dequantized to float where the artifact has integer outputs).
            labels: the N labels from `serving_examples`.

        Returns:
            A flat `{measure_name: float}` dict, written to `parity.json` and
            checked by `parity_tolerance(kind).check`.
        """
        raise self._no_parity_hook("parity_measures")

    def parity_reference_measures(
        self, reference: dict[str, Any], labels: Any
    ) -> dict[str, float]:
        """Measures of the Keras reference alone (e.g. its accuracy), for the
        report."""
        raise self._no_parity_hook("parity_reference_measures")

    def parity_tolerance(self, kind: str) -> parity_measures.ParityTolerance:
        """What an artifact of `kind` must meet.

        Args:
            kind: one of `parity_measures.ARTIFACT_KINDS`: `saved_model`,
                `none` (float32 .tflite), `float16`, `dynamic`, `int8`, `onnx`.

        Returns:
            A frozen dataclass with `check(measures) -> list[str]` (one
            message per violated bound), e.g. `parity_measures.Bounds`.
        """
        raise self._no_parity_hook("parity_tolerance")

    def _no_parity_hook(self, name: str) -> NotImplementedError:
        return NotImplementedError(
            f"{type(self).__name__} does not define {name}: an exported task "
            f"defines parity_measures, parity_reference_measures and "
            f"parity_tolerance, which say how its artifacts must agree with the "
            f"Keras model (see official/core/parity_measures.py)."
        )
