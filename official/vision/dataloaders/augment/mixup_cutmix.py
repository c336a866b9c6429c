"""Batch-level mixup and cutmix with soft labels and label smoothing.

Both pair every example with the batch in reverse order (example `i` with
`batch - 1 - i`, as timm does) and draw one mixing weight `lam ~ Beta(alpha,
alpha)` per batch:

- mixup (Zhang et al., 2018): `lam * x + (1 - lam) * x_reversed`, labels
  alike;
- cutmix (Yun et al., 2019): a box covering `1 - lam` of the image, centered
  uniformly and clipped at the borders, is pasted from the partner; `lam`
  becomes the uncovered fraction, so labels weigh exactly the pixels shown.

Labels are one-hot (or already soft) `[batch, num_classes]`; label smoothing
`(1 - s) * y + s / num_classes` is applied before mixing. Every label row
keeps a mass of 1. (Smoothing is linear, so smoothing before or after mixing
gives the same labels.)

Example:
```python
import numpy as np
import tensorflow as tf
from official.vision.dataloaders.augment import mixup_cutmix

images = tf.random.stateless_uniform([4, 8, 8, 3], seed=[0, 0])
labels = tf.one_hot([0, 1, 2, 3], 5)
mixed, soft = mixup_cutmix.mixup_or_cutmix(
    images, labels, mixup_alpha=0.2, cutmix_alpha=1.0, seed=[1, 2],
    label_smoothing=0.1)
assert mixed.shape == (4, 8, 8, 3) and soft.shape == (4, 5)
np.testing.assert_allclose(tf.reduce_sum(soft, -1), 1.0, atol=1e-6)
```
"""

from __future__ import annotations

import tensorflow as tf

from official.vision.dataloaders.augment import random_seeds


def smooth_labels(labels, label_smoothing: float) -> tf.Tensor:
    """`(1 - s) * labels + s / num_classes` in float32."""
    labels = tf.cast(labels, tf.float32)
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(
            f"label_smoothing must be in [0, 1). Received: {label_smoothing}."
        )
    if not label_smoothing:
        return labels
    num_classes = tf.cast(tf.shape(labels)[-1], tf.float32)
    return labels * (1.0 - label_smoothing) + label_smoothing / num_classes


def sample_beta(alpha: float, seed: tf.Tensor) -> tf.Tensor:
    """One float32 draw from Beta(alpha, alpha), stateless."""
    if alpha <= 0.0:
        raise ValueError(f"alpha must be > 0. Received: {alpha}.")
    seed_a, seed_b = random_seeds.split(seed, 2)
    a = tf.random.stateless_gamma([], seed_a, alpha)
    b = tf.random.stateless_gamma([], seed_b, alpha)
    return a / tf.maximum(a + b, 1e-12)


def _check(images, labels) -> tuple[tf.Tensor, tf.Tensor]:
    images = tf.convert_to_tensor(images)
    labels = tf.convert_to_tensor(labels)
    if images.shape.rank != 4 or labels.shape.rank != 2:
        raise ValueError(
            "mixup and cutmix take images [batch, height, width, channels] and "
            f"one-hot labels [batch, num_classes]. Received shapes {images.shape} "
            f"and {labels.shape}."
        )
    if not images.dtype.is_floating:
        images = tf.cast(images, tf.float32)
    return images, labels


def _mix_labels(labels: tf.Tensor, lam: tf.Tensor) -> tf.Tensor:
    return lam * labels + (1.0 - lam) * tf.reverse(labels, [0])


@tf.autograph.experimental.do_not_convert
def mixup(
    images,
    labels,
    alpha: float,
    seed: tf.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Mixup of a batch with its reverse.

    Args:
        images: `[batch, height, width, channels]` (float; ints are cast).
        labels: one-hot or soft `[batch, num_classes]`.
        alpha: Beta(alpha, alpha) concentration, > 0.
        seed: int `[2]` seed of the stateless draws, or None.
        label_smoothing: smoothing of the labels before mixing.

    Returns:
        `(images, labels)`: mixed float images and float32 soft labels.
    """
    images, labels = _check(images, labels)
    labels = smooth_labels(labels, label_smoothing)
    lam = sample_beta(alpha, random_seeds.resolve(seed))
    mixed = tf.cast(lam, images.dtype) * images + tf.cast(1.0 - lam, images.dtype) * (
        tf.reverse(images, [0])
    )
    return mixed, _mix_labels(labels, lam)


@tf.autograph.experimental.do_not_convert
def cutmix(
    images,
    labels,
    alpha: float,
    seed: tf.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Cutmix: a box of each image replaced by the same box of its partner.

    Args and returns as `mixup`; the label weight is the area actually kept.
    """
    images, labels = _check(images, labels)
    labels = smooth_labels(labels, label_smoothing)
    lam_seed, y_seed, x_seed = random_seeds.split(seed, 3)
    lam = sample_beta(alpha, lam_seed)
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    cut = tf.sqrt(1.0 - lam)
    cut_h = tf.cast(cut * tf.cast(height, tf.float32), tf.int32)
    cut_w = tf.cast(cut * tf.cast(width, tf.float32), tf.int32)
    center_y = tf.random.stateless_uniform([], y_seed, 0, height, tf.int32)
    center_x = tf.random.stateless_uniform([], x_seed, 0, width, tf.int32)
    top = tf.clip_by_value(center_y - cut_h // 2, 0, height)
    bottom = tf.clip_by_value(center_y + cut_h // 2, 0, height)
    left = tf.clip_by_value(center_x - cut_w // 2, 0, width)
    right = tf.clip_by_value(center_x + cut_w // 2, 0, width)
    rows = tf.range(height)[None, :, None, None]
    cols = tf.range(width)[None, None, :, None]
    inside = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
    mixed = tf.where(inside, tf.reverse(images, [0]), images)
    box_area = tf.cast((bottom - top) * (right - left), tf.float32)
    kept = 1.0 - box_area / tf.cast(height * width, tf.float32)
    return mixed, _mix_labels(labels, kept)


@tf.autograph.experimental.do_not_convert
def mixup_or_cutmix(
    images,
    labels,
    mixup_alpha: float,
    cutmix_alpha: float,
    switch_prob: float = 0.5,
    seed: tf.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Mixup, cutmix, or (both on) cutmix with probability `switch_prob`.

    Args:
        images: `[batch, height, width, channels]`.
        labels: one-hot or soft `[batch, num_classes]`.
        mixup_alpha: mixup's Beta concentration; 0 turns mixup off.
        cutmix_alpha: cutmix's Beta concentration; 0 turns cutmix off.
        switch_prob: with both on, the chance of cutmix for a batch.
        seed: int `[2]` seed of the stateless draws, or None.
        label_smoothing: smoothing of the labels before mixing.

    Returns:
        `(images, labels)` with float32 soft labels (only smoothed when both
        alphas are 0).
    """
    if mixup_alpha < 0.0 or cutmix_alpha < 0.0 or not 0.0 <= switch_prob <= 1.0:
        raise ValueError(
            "mixup_alpha and cutmix_alpha must be >= 0 and switch_prob in [0, 1]. "
            f"Received: mixup_alpha={mixup_alpha}, cutmix_alpha={cutmix_alpha}, "
            f"switch_prob={switch_prob}."
        )
    switch_seed, op_seed = random_seeds.split(seed, 2)
    if mixup_alpha and cutmix_alpha:
        images, labels = _check(images, labels)
        use_cutmix = random_seeds.uniform(switch_seed) < switch_prob
        return tf.cond(
            use_cutmix,
            lambda: cutmix(images, labels, cutmix_alpha, op_seed, label_smoothing),
            lambda: mixup(images, labels, mixup_alpha, op_seed, label_smoothing),
        )
    if mixup_alpha:
        return mixup(images, labels, mixup_alpha, op_seed, label_smoothing)
    if cutmix_alpha:
        return cutmix(images, labels, cutmix_alpha, op_seed, label_smoothing)
    images, labels = _check(images, labels)
    return images, smooth_labels(labels, label_smoothing)
