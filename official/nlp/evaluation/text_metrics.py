"""Metrics of sentence prediction and masked LM, as summable Keras metrics.

Every metric keeps sums in its variables (a confusion matrix, moments, hit
counts), so the trainer's summing of metric variables over replicas and
workers gives the metric of the whole evaluation; `SpearmanCorrelation`,
which needs every prediction, keeps a buffer and is exact on one worker.

Example:
```python
import numpy as np
from official.nlp.evaluation.text_metrics import F1Score, MatthewsCorrelation

labels = np.array([1, 1, 0, 0])
logits = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
f1 = F1Score(num_classes=2)
f1.update_state(labels, logits)
assert abs(float(f1.result()) - 2 / 3) < 1e-6  # precision 1, recall 1/2
mcc = MatthewsCorrelation(num_classes=2)
mcc.update_state(labels, logits)
assert abs(float(mcc.result()) - 1 / np.sqrt(3)) < 1e-6
```
"""

from __future__ import annotations

import keras
import tensorflow as tf


class _ConfusionMatrixMetric(keras.metrics.Metric):
    """Accumulates a `(num_classes, num_classes)` confusion matrix
    (rows: labels, columns: argmax predictions)."""

    def __init__(self, num_classes, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.matrix = self.add_variable(
            shape=(num_classes, num_classes),
            initializer="zeros",
            dtype="float64",
            name="confusion_matrix",
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = tf.reshape(tf.cast(y_true, tf.int32), [-1])
        preds = tf.argmax(tf.reshape(y_pred, [-1, self.num_classes]), -1, tf.int32)
        self.matrix.assign_add(
            tf.math.confusion_matrix(
                labels, preds, num_classes=self.num_classes, dtype=tf.float64
            )
        )

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


class F1Score(_ConfusionMatrixMetric):
    """F1 of argmax predictions: of class 1 (`average="binary"`, GLUE's
    MRPC/QQP F1) or the mean over classes (`"macro"`).

    Args:
        num_classes: int, number of classes (2 for `binary`).
        average: str, `binary` or `macro`. Defaults to `binary`.
        name: str. Defaults to "f1".
    """

    def __init__(self, num_classes, average="binary", name="f1", **kwargs):
        if average not in ("binary", "macro"):
            raise ValueError(
                f"`average` must be 'binary' or 'macro'. Received: {average!r}."
            )
        if average == "binary" and num_classes != 2:
            raise ValueError(
                f"average='binary' needs num_classes=2. Received: {num_classes}."
            )
        super().__init__(num_classes, name=name, **kwargs)
        self.average = average

    def result(self):
        m = tf.convert_to_tensor(self.matrix)
        tp = tf.linalg.diag_part(m)
        predicted = tf.reduce_sum(m, axis=0)
        actual = tf.reduce_sum(m, axis=1)
        f1 = tf.math.divide_no_nan(2.0 * tp, predicted + actual)
        value = f1[1] if self.average == "binary" else tf.reduce_mean(f1)
        return tf.cast(value, tf.float32)

    def get_config(self):
        return {**super().get_config(), "average": self.average}


class MatthewsCorrelation(_ConfusionMatrixMetric):
    """Matthews correlation of argmax predictions (multi-class form,
    Gorodkin 2004; the binary MCC for two classes). 0 when undefined."""

    def __init__(self, num_classes, name="matthews_corr", **kwargs):
        super().__init__(num_classes, name=name, **kwargs)

    def result(self):
        m = tf.convert_to_tensor(self.matrix)
        total = tf.reduce_sum(m)
        correct = tf.reduce_sum(tf.linalg.diag_part(m))
        predicted = tf.reduce_sum(m, axis=0)
        actual = tf.reduce_sum(m, axis=1)
        numerator = correct * total - tf.reduce_sum(predicted * actual)
        denominator = tf.sqrt(
            (total**2 - tf.reduce_sum(predicted**2))
            * (total**2 - tf.reduce_sum(actual**2))
        )
        return tf.cast(tf.math.divide_no_nan(numerator, denominator), tf.float32)


def _scores(y_pred) -> tf.Tensor:
    return tf.reshape(tf.cast(y_pred, tf.float64), [-1])


class PearsonCorrelation(keras.metrics.Metric):
    """Pearson correlation of predicted and true scores (from running sums)."""

    def __init__(self, name="pearson_corr", **kwargs):
        super().__init__(name=name, **kwargs)
        self.sums = self.add_variable(
            shape=(6,), initializer="zeros", dtype="float64", name="sums"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        x, y = _scores(y_true), _scores(y_pred)
        n = tf.cast(tf.size(x), tf.float64)
        self.sums.assign_add(
            tf.stack(
                [
                    n,
                    tf.reduce_sum(x),
                    tf.reduce_sum(y),
                    tf.reduce_sum(x * x),
                    tf.reduce_sum(y * y),
                    tf.reduce_sum(x * y),
                ]
            )
        )

    def result(self):
        n, sx, sy, sxx, syy, sxy = tf.unstack(tf.convert_to_tensor(self.sums))
        cov = n * sxy - sx * sy
        var = (n * sxx - sx * sx) * (n * syy - sy * sy)
        return tf.cast(tf.math.divide_no_nan(cov, tf.sqrt(var)), tf.float32)


def average_ranks(values: tf.Tensor) -> tf.Tensor:
    """1-based ranks, ties sharing their average rank (as scipy's rankdata)."""
    ordered = tf.sort(values)
    left = tf.searchsorted(ordered, values, side="left")
    right = tf.searchsorted(ordered, values, side="right")
    return tf.cast(left + right + 1, tf.float64) / 2.0


class SpearmanCorrelation(keras.metrics.Metric):
    """Spearman rank correlation (ties at their average rank).

    Keeps the first `capacity` predictions and labels of an evaluation in a
    buffer (an evaluation with more is an error naming `capacity`); exact on
    one worker.

    Args:
        capacity: int, most examples per evaluation. Defaults to 65536.
        name: str. Defaults to "spearman_corr".
    """

    def __init__(self, capacity=65536, name="spearman_corr", **kwargs):
        super().__init__(name=name, **kwargs)
        self.capacity = capacity
        self.labels = self.add_variable(
            shape=(capacity,), initializer="zeros", dtype="float64", name="labels"
        )
        self.predictions = self.add_variable(
            shape=(capacity,), initializer="zeros", dtype="float64", name="predictions"
        )
        self.count = self.add_variable(
            shape=(), initializer="zeros", dtype="int64", name="count"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        x, y = _scores(y_true), _scores(y_pred)
        start = tf.convert_to_tensor(self.count)
        index = start + tf.range(tf.size(x, out_type=tf.int64))
        tf.debugging.assert_less_equal(
            start + tf.size(x, out_type=tf.int64),
            tf.constant(self.capacity, tf.int64),
            message=(
                f"SpearmanCorrelation keeps at most capacity={self.capacity} "
                "examples per evaluation; build it with a larger capacity."
            ),
        )
        self.labels.assign(tf.tensor_scatter_nd_update(self.labels, index[:, None], x))
        self.predictions.assign(
            tf.tensor_scatter_nd_update(self.predictions, index[:, None], y)
        )
        self.count.assign_add(tf.size(x, out_type=tf.int64))

    def result(self):
        n = tf.convert_to_tensor(self.count)
        x = average_ranks(tf.convert_to_tensor(self.labels)[:n])
        y = average_ranks(tf.convert_to_tensor(self.predictions)[:n])
        x -= tf.reduce_mean(x)
        y -= tf.reduce_mean(y)
        value = tf.math.divide_no_nan(
            tf.reduce_sum(x * y),
            tf.sqrt(tf.reduce_sum(x * x) * tf.reduce_sum(y * y)),
        )
        return tf.cast(value, tf.float32)

    def get_config(self):
        return {**super().get_config(), "capacity": self.capacity}


class MaskedLMAccuracy(keras.metrics.Metric):
    """Fraction of the masked WordPieces predicted exactly (weighted by
    `masked_lm_weights`)."""

    def __init__(self, name="masked_lm_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.sums = self.add_variable(
            shape=(2,), initializer="zeros", dtype="float64", name="sums"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = tf.cast(y_true["masked_lm_ids"], tf.int32)
        weights = tf.cast(y_true["masked_lm_weights"], tf.float64)
        hits = tf.cast(tf.equal(tf.argmax(y_pred, -1, tf.int32), labels), tf.float64)
        self.sums.assign_add(
            tf.stack([tf.reduce_sum(hits * weights), tf.reduce_sum(weights)])
        )

    def result(self):
        hits, total = tf.unstack(tf.convert_to_tensor(self.sums))
        return tf.cast(tf.math.divide_no_nan(hits, total), tf.float32)
