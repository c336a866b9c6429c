"""RetinaNet losses: sigmoid focal loss and Huber box loss over anchors.

Both are sums over anchors divided by the number of positive anchors. Under
a distribution strategy with several replicas, the count is summed over the
replicas (`positives_normalizer`): each replica's loss is its own sum over
the global mean count of positives per replica, so the trainer's mean over
replicas equals the sum over the global batch divided by its positives, as
on one device with the whole batch.

Example:
```python
import numpy as np
from official.vision.losses import detection_losses

logits = np.array([[[2.0, -1.0]]], np.float32)  # one anchor, two classes
targets = np.array([[1]])                       # class 1
loss = detection_losses.focal_loss(logits, targets, np.ones((1, 1)), 0.25, 1.5)
assert float(loss) > 0
```
"""

from __future__ import annotations

import tensorflow as tf


def focal_loss(logits, cls_targets, weights, alpha: float, gamma: float) -> tf.Tensor:
    """Sigmoid focal loss (Lin et al. 2017), summed over anchors and classes.

    Args:
        logits: float `[B, N, C]`.
        cls_targets: int `[B, N]` class ids; < 0 is background (all targets 0).
        weights: float `[B, N]`, 0 for ignored anchors.
        alpha: weight of the positive targets (1 - alpha for the negatives).
        gamma: focusing exponent of `(1 - p_t)`.

    Returns:
        float32 scalar sum `sum w * alpha_t * (1 - p_t)**gamma * CE(p_t)`.
    """
    logits = tf.cast(logits, tf.float32)
    num_classes = tf.shape(logits)[-1]
    targets = tf.one_hot(tf.cast(cls_targets, tf.int32), num_classes, dtype=tf.float32)
    cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(
        labels=targets, logits=logits
    )
    probs = tf.sigmoid(logits)
    p_t = targets * probs + (1.0 - targets) * (1.0 - probs)
    alpha_t = targets * alpha + (1.0 - targets) * (1.0 - alpha)
    loss = alpha_t * tf.pow(1.0 - p_t, gamma) * cross_entropy
    return tf.reduce_sum(loss * tf.cast(weights, tf.float32)[..., None])


def huber_box_loss(box_outputs, box_targets, weights, delta: float) -> tf.Tensor:
    """Huber loss of box regression, averaged over the 4 coordinates, summed
    over anchors weighted by `weights` (1 for positives)."""
    error = tf.cast(box_outputs, tf.float32) - tf.cast(box_targets, tf.float32)
    absolute = tf.abs(error)
    quadratic = tf.minimum(absolute, delta)
    huber = 0.5 * quadratic**2 + delta * (absolute - quadratic)
    return tf.reduce_sum(tf.reduce_mean(huber, axis=-1) * tf.cast(weights, tf.float32))


def positives_normalizer(box_weights) -> tf.Tensor:
    """Positive anchors per replica, averaged over replicas; at least 1.

    In a replica context of several replicas the count is all-reduced, so
    every replica divides by the same number.
    """
    count = tf.reduce_sum(tf.cast(box_weights, tf.float32))
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        count = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
        count = count / context.num_replicas_in_sync
    return tf.maximum(count, 1.0)


def retinanet_loss(
    outputs: dict,
    labels: dict,
    alpha: float,
    gamma: float,
    huber_delta: float,
    box_loss_weight: float,
) -> dict[str, tf.Tensor]:
    """`{"total", "cls_loss", "box_loss"}`: total = cls + box_loss_weight * box.

    `outputs` has `cls_outputs` `[B, N, C]` and `box_outputs` `[B, N, 4]`;
    `labels` has `cls_targets`, `box_targets`, `cls_weights`, `box_weights`
    (`official.vision.ops.target_assigner.AnchorLabeler`, batched).
    """
    normalizer = positives_normalizer(labels["box_weights"])
    cls_loss = (
        focal_loss(
            outputs["cls_outputs"],
            labels["cls_targets"],
            labels["cls_weights"],
            alpha,
            gamma,
        )
        / normalizer
    )
    box_loss = (
        huber_box_loss(
            outputs["box_outputs"],
            labels["box_targets"],
            labels["box_weights"],
            huber_delta,
        )
        / normalizer
    )
    return {
        "total": cls_loss + box_loss_weight * box_loss,
        "cls_loss": cls_loss,
        "box_loss": box_loss,
    }
