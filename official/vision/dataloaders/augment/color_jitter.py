"""Color jitter: random brightness, contrast, saturation and hue.

Factors follow torchvision's `ColorJitter`: brightness, contrast and
saturation factors are drawn uniformly from `[1 - s, 1 + s]` and blend the
image with black, its mean gray level and its grayscale version; hue shifts
by a delta drawn from `[-hue, hue]` (a fraction of the color circle). The
operations run in that fixed order, each clipped to the valid range.

Example:
```python
import numpy as np
from official.vision.dataloaders.augment.color_jitter import color_jitter

image = np.random.default_rng(0).integers(0, 256, (8, 8, 3)).astype(np.float32)
out = color_jitter(image, brightness=0.4, contrast=0.4, saturation=0.4,
                   seed=[1, 2])
assert out.shape == (8, 8, 3) and 0.0 <= float(out.numpy().min())
```
"""

from __future__ import annotations

import tensorflow as tf

from official.vision.dataloaders.augment import random_seeds


@tf.autograph.experimental.do_not_convert
def color_jitter(
    image,
    brightness: float = 0.0,
    contrast: float = 0.0,
    saturation: float = 0.0,
    hue: float = 0.0,
    seed: tf.Tensor | None = None,
) -> tf.Tensor:
    """Jitters the colors of an RGB image with values in 0..255.

    Args:
        image: `[height, width, 3]` (or `[batch, height, width, 3]`, one
            draw for the whole batch), uint8 or float in 0..255.
        brightness: factor drawn from `[1 - brightness, 1 + brightness]`.
        contrast: factor drawn from `[1 - contrast, 1 + contrast]`.
        saturation: factor drawn from `[1 - saturation, 1 + saturation]`.
        hue: hue delta drawn from `[-hue, hue]`, at most 0.5.
        seed: int `[2]` seed of the stateless draws, or None.

    Returns:
        float32 image in 0..255, same shape. Zero strengths skip their
        operation.
    """
    for name, value, limit in (
        ("brightness", brightness, 1.0),
        ("contrast", contrast, 1.0),
        ("saturation", saturation, 1.0),
        ("hue", hue, 0.5),
    ):
        if not 0.0 <= value <= limit:
            raise ValueError(
                f"{name} must be in [0, {limit}]. Received: {name}={value}."
            )
    x = tf.cast(image, tf.float32) / 255.0
    b_seed, c_seed, s_seed, h_seed = random_seeds.split(seed, 4)

    def factor(strength, op_seed):
        return random_seeds.uniform(op_seed, 1.0 - strength, 1.0 + strength)

    if brightness:
        x = tf.clip_by_value(x * factor(brightness, b_seed), 0.0, 1.0)
    if contrast:
        gray = tf.image.rgb_to_grayscale(x)
        mean = tf.reduce_mean(gray, axis=[-3, -2, -1], keepdims=True)
        x = tf.clip_by_value(mean + factor(contrast, c_seed) * (x - mean), 0.0, 1.0)
    if saturation:
        gray = tf.image.rgb_to_grayscale(x)
        x = tf.clip_by_value(gray + factor(saturation, s_seed) * (x - gray), 0.0, 1.0)
    if hue:
        x = tf.image.adjust_hue(x, random_seeds.uniform(h_seed, -hue, hue))
        x = tf.clip_by_value(x, 0.0, 1.0)
    return x * 255.0
