"""Confusion-matrix metrics of semantic segmentation: mIoU, pixel accuracy,
per-class IoU.

`ConfusionMatrixMeanIoU` accumulates one `(num_classes, num_classes)`
float64 confusion matrix (rows: true class, columns: predicted) over the
whole evaluation; its state is a sum, so states of several replicas or
workers add up to the matrix of the whole set, and the IoUs are computed from
the total. `PixelAccuracy` and `ClassIoU` are views: they own no state and
read the matrix of the metric they are given, so every number of one
evaluation comes from the same counts (list the source metric first).

Example:
```python
import numpy as np
from official.vision.evaluation.segmentation_metrics import (
    ClassIoU, ConfusionMatrixMeanIoU, PixelAccuracy)

miou = ConfusionMatrixMeanIoU(num_classes=2, ignore_label=255)
labels = np.array([[[0, 0, 1, 255]]])
classes = np.array([[[0, 1, 1, 0]]])
miou.update_state(labels, classes)
# IoU(0) = 1 / 2, IoU(1) = 1 / 2; the ignored pixel does not count.
assert abs(float(miou.result()) - 0.5) < 1e-9
assert abs(float(PixelAccuracy(miou).result()) - 2 / 3) < 1e-9
assert abs(float(ClassIoU(miou, 1).result()) - 0.5) < 1e-9
```
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="official")
class ConfusionMatrixMeanIoU(keras.metrics.Metric):
    """Mean intersection over union from a confusion matrix.

    Args:
        num_classes: int, number of classes.
        ignore_label: int, label of pixels that are not counted. Labels
            outside `[0, num_classes)` are not counted either. Default 255.
        name: str. Default "mean_iou".
        **kwargs: base metric arguments.

    Call arguments (`update_state`):
        labels: int tensor `(batch, height, width)` (or trailing 1).
        predictions: int class map of the labels' shape, or float logits /
            probabilities with a trailing `num_classes` axis (argmax taken).

    Returns (`result`):
        float64 scalar: the mean of `TP / (TP + FP + FN)` over the classes
        that occur in the labels or the predictions (0 when none do).
    """

    def __init__(self, num_classes, ignore_label=255, name="mean_iou", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self.confusion = self.add_variable(
            shape=(num_classes, num_classes),
            initializer="zeros",
            dtype="float64",
            name="confusion",
        )

    def update_state(self, labels, predictions, sample_weight=None):
        del sample_weight  # Pixels are weighted by the ignore label only.
        labels = tf.cast(labels, tf.int32)
        predictions = tf.convert_to_tensor(predictions)
        if predictions.dtype.is_floating:
            predictions = tf.argmax(predictions, axis=-1, output_type=tf.int32)
        predictions = tf.cast(predictions, tf.int32)
        labels = tf.reshape(labels, [-1])
        predictions = tf.reshape(predictions, [-1])
        valid = tf.logical_and(labels >= 0, labels < self.num_classes)
        valid = tf.logical_and(valid, tf.not_equal(labels, self.ignore_label))
        matrix = tf.math.confusion_matrix(
            tf.boolean_mask(labels, valid),
            tf.clip_by_value(
                tf.boolean_mask(predictions, valid), 0, self.num_classes - 1
            ),
            num_classes=self.num_classes,
            dtype=tf.float64,
        )
        self.confusion.assign_add(matrix)

    def class_iou(self) -> tf.Tensor:
        """float64 `(num_classes,)` IoU per class; NaN for a class that occurs
        neither in the labels nor in the predictions."""
        matrix = tf.convert_to_tensor(self.confusion)
        true_positives = tf.linalg.diag_part(matrix)
        union = tf.reduce_sum(matrix, 0) + tf.reduce_sum(matrix, 1) - true_positives
        nan = tf.constant(np.nan, tf.float64)
        return tf.where(union > 0, true_positives / tf.maximum(union, 1.0), nan)

    def pixel_accuracy(self) -> tf.Tensor:
        """float64 scalar: correct pixels / counted pixels (0 when none)."""
        matrix = tf.convert_to_tensor(self.confusion)
        return tf.math.divide_no_nan(
            tf.reduce_sum(tf.linalg.diag_part(matrix)), tf.reduce_sum(matrix)
        )

    def result(self):
        iou = self.class_iou()
        present = tf.logical_not(tf.math.is_nan(iou))
        return tf.math.divide_no_nan(
            tf.reduce_sum(tf.where(present, iou, tf.zeros_like(iou))),
            tf.reduce_sum(tf.cast(present, tf.float64)),
        )

    def reset_state(self):
        self.confusion.assign(tf.zeros_like(self.confusion))

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "ignore_label": self.ignore_label,
        }


class _ConfusionMatrixView(keras.metrics.Metric):
    """A metric without state that reads a `ConfusionMatrixMeanIoU`'s matrix."""

    def __init__(self, source: ConfusionMatrixMeanIoU, name: str, **kwargs):
        super().__init__(name=name, **kwargs)
        # Not tracked: the view must not list the source's variables as its
        # own, or summing every metric's variables across workers would
        # count the matrix twice.
        object.__setattr__(self, "_source", source)

    @property
    def source(self) -> ConfusionMatrixMeanIoU:
        """The metric whose confusion matrix is read."""
        return self._source

    def update_state(self, *args, **kwargs):
        del args, kwargs  # The source metric counts.

    def reset_state(self):
        pass  # The source metric resets its own matrix.


class PixelAccuracy(_ConfusionMatrixView):
    """Pixel accuracy read from a `ConfusionMatrixMeanIoU` (no state of its own).

    Args:
        source: the `ConfusionMatrixMeanIoU` whose matrix is read.
        name: str. Default "pixel_accuracy".

    Returns (`result`):
        float64 scalar, correct / counted pixels.
    """

    def __init__(
        self, source: ConfusionMatrixMeanIoU, name: str = "pixel_accuracy", **kwargs
    ):
        super().__init__(source, name, **kwargs)

    def result(self):
        return self.source.pixel_accuracy()


class ClassIoU(_ConfusionMatrixView):
    """The IoU of one class, read from a `ConfusionMatrixMeanIoU`.

    Args:
        source: the `ConfusionMatrixMeanIoU` whose matrix is read.
        class_id: int, the class.
        name: str. Default "iou/class_<class_id>".

    Returns (`result`):
        float64 scalar; NaN when the class occurs neither in the labels nor
        in the predictions.
    """

    def __init__(
        self, source: ConfusionMatrixMeanIoU, class_id: int, name: str = "", **kwargs
    ):
        super().__init__(source, name or f"iou/class_{class_id}", **kwargs)
        self.class_id = class_id

    def result(self):
        return self.source.class_iou()[self.class_id]
