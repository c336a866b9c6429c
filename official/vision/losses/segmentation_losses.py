"""Per-pixel losses of semantic segmentation: cross-entropy with an ignore
label, class weights and top-k pixel mining, and EncNet's SE loss.

Example:
```python
import numpy as np
from official.vision.losses.segmentation_losses import pixel_cross_entropy

labels = np.array([[[0, 255]]])                  # one valid pixel
logits = np.zeros((1, 1, 2, 3), "float32")       # uniform over 3 classes
loss = pixel_cross_entropy(labels, logits, ignore_label=255)
assert abs(float(loss) - np.log(3)) < 1e-6
```
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import tensorflow as tf


def pixel_cross_entropy(
    labels,
    logits,
    ignore_label: int = 255,
    class_weights: Sequence[float] = (),
    top_k_percent_pixels: float = 1.0,
) -> tf.Tensor:
    """Softmax cross-entropy per pixel, averaged over the weighted valid pixels.

    A pixel labelled `ignore_label` (or with any label outside
    `[0, num_classes)`) has weight 0. Otherwise its weight is
    `class_weights[label]` (1 when `class_weights` is empty). With
    `top_k_percent_pixels` < 1, only the `ceil(fraction * pixels)` pixels of
    the batch with the highest weighted loss are kept (online hard example
    mining; ignored pixels rank last). The result is `sum(weight * loss) / sum(weight)` over
    the kept pixels, and 0 when no pixel has weight.

    Args:
        labels: int tensor `(batch, height, width)` (or with a trailing 1).
        logits: float tensor `(batch, height, width, num_classes)`.
        ignore_label: int, the label of pixels that do not count. Default 255.
        class_weights: one float per class, or empty. Default ().
        top_k_percent_pixels: float in (0, 1], the fraction of pixels kept.
            Default 1.0.

    Returns:
        float32 scalar.
    """
    logits = tf.cast(logits, tf.float32)
    num_classes = logits.shape[-1]
    labels = tf.cast(labels, tf.int32)
    if labels.shape.rank == logits.shape.rank:
        labels = tf.squeeze(labels, -1)
    valid = tf.logical_and(
        tf.not_equal(labels, ignore_label),
        tf.logical_and(labels >= 0, labels < num_classes),
    )
    safe_labels = tf.where(valid, labels, tf.zeros_like(labels))
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=safe_labels, logits=logits
    )
    weights = tf.cast(valid, tf.float32)
    if len(class_weights):
        if len(class_weights) != num_classes:
            raise ValueError(
                f"class_weights needs one weight per class ({num_classes}); "
                f"received {len(class_weights)}."
            )
        weights *= tf.gather(tf.constant(list(class_weights), tf.float32), safe_labels)
    weights = tf.reshape(weights, [-1])
    weighted = tf.reshape(losses, [-1]) * weights
    if top_k_percent_pixels < 1.0:
        # k counts all pixels of the batch, so it is static when the shape is
        # (XLA needs that). Ignored pixels have weighted loss 0: they rank
        # last and, if selected, add nothing to either sum.
        num_pixels = weighted.shape[0]
        if num_pixels is None:
            total = tf.cast(tf.size(weighted), tf.float32)
            k = tf.maximum(
                tf.cast(tf.math.ceil(total * top_k_percent_pixels), tf.int32), 1
            )
        else:
            k = max(1, math.ceil(num_pixels * top_k_percent_pixels))
        weighted, indices = tf.math.top_k(weighted, k=k)
        weights = tf.gather(weights, indices)
    return tf.math.divide_no_nan(tf.reduce_sum(weighted), tf.reduce_sum(weights))


def present_classes(labels, num_classes: int, ignore_label: int = 255) -> tf.Tensor:
    """Which classes occur in each label map: float32 `(batch, num_classes)` of 0/1.

    `ignore_label` and labels outside `[0, num_classes)` are not counted.
    """
    labels = tf.cast(labels, tf.int32)
    labels = tf.reshape(labels, [tf.shape(labels)[0], -1])
    valid = tf.logical_and(labels >= 0, labels < num_classes)
    valid = tf.logical_and(valid, tf.not_equal(labels, ignore_label))
    one_hot = tf.one_hot(tf.where(valid, labels, -1), num_classes)  # -1 -> zeros.
    return tf.cast(tf.reduce_max(one_hot, axis=1) > 0, tf.float32)


def se_loss(labels, se_logits, ignore_label: int = 255) -> tf.Tensor:
    """EncNet's semantic encoding loss: binary cross-entropy on class presence.

    Args:
        labels: int tensor `(batch, height, width)`.
        se_logits: float tensor `(batch, num_classes)`.
        ignore_label: int, not a class. Default 255.

    Returns:
        float32 scalar, the mean over images and classes.
    """
    se_logits = tf.cast(se_logits, tf.float32)
    targets = present_classes(labels, se_logits.shape[-1], ignore_label)
    return tf.reduce_mean(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=se_logits)
    )
