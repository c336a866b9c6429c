"""Random erasing (Zhong et al., 2020): overwrite one random rectangle.

With probability `probability`, a rectangle covering a fraction of the image
drawn from `area_range`, with an aspect ratio (height / width) drawn
log-uniformly from `aspect_ratio_range`, is placed uniformly inside the image
(clipped to it) and filled with standard normal noise (`fill="normal"`, for
normalized images, as timm's "pixel" mode) or zeros (`fill="zero"`).

Example:
```python
import numpy as np
from official.vision.dataloaders.augment.random_erasing import random_erasing

image = np.ones((16, 16, 3), np.float32)
out = random_erasing(image, probability=1.0, fill="zero", seed=[0, 1])
assert 0 < int((out.numpy() == 0).all(-1).sum()) < 16 * 16
```
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import tensorflow as tf

from official.vision.dataloaders.augment import random_seeds

FILLS = ("normal", "zero")


@tf.autograph.experimental.do_not_convert
def random_erasing(
    image,
    probability: float = 0.25,
    area_range: Sequence[float] = (0.02, 1.0 / 3.0),
    aspect_ratio_range: Sequence[float] = (0.3, 3.3),
    fill: str = "normal",
    seed: tf.Tensor | None = None,
) -> tf.Tensor:
    """Erases one random rectangle of `image` with probability `probability`.

    Args:
        image: float `[height, width, channels]`, typically normalized.
        probability: chance of erasing, 0..1. Default 0.25.
        area_range: `(min, max)` fraction of the image area erased.
        aspect_ratio_range: `(min, max)` height / width of the rectangle.
        fill: "normal" (standard normal noise) or "zero".
        seed: int `[2]` seed of the stateless draws, or None.

    Returns:
        The image with the same shape and dtype.
    """
    if fill not in FILLS:
        raise ValueError(f"Unknown fill {fill!r}. Valid: {', '.join(FILLS)}.")
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability must be in [0, 1]. Received: {probability}.")
    if not 0.0 < area_range[0] <= area_range[1] <= 1.0:
        raise ValueError(
            f"area_range must be 0 < min <= max <= 1. Received: {area_range}."
        )
    if not 0.0 < aspect_ratio_range[0] <= aspect_ratio_range[1]:
        raise ValueError(
            f"aspect_ratio_range must be 0 < min <= max. Received: {aspect_ratio_range}."
        )
    image = tf.convert_to_tensor(image)
    if not image.dtype.is_floating:
        raise TypeError(f"random_erasing takes a float image. Received {image.dtype}.")
    apply_seed, area_seed, ratio_seed, y_seed, x_seed, noise_seed = random_seeds.split(
        seed, 6
    )
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    area = tf.cast(height * width, tf.float32) * random_seeds.uniform(
        area_seed, area_range[0], area_range[1]
    )
    log_ratio = random_seeds.uniform(
        ratio_seed, math.log(aspect_ratio_range[0]), math.log(aspect_ratio_range[1])
    )
    ratio = tf.exp(log_ratio)
    box_h = tf.clip_by_value(
        tf.cast(tf.round(tf.sqrt(area * ratio)), tf.int32), 1, height
    )
    box_w = tf.clip_by_value(
        tf.cast(tf.round(tf.sqrt(area / ratio)), tf.int32), 1, width
    )
    top = tf.random.stateless_uniform([], y_seed, 0, height - box_h + 1, tf.int32)
    left = tf.random.stateless_uniform([], x_seed, 0, width - box_w + 1, tf.int32)
    rows = tf.range(height)[:, None, None]
    cols = tf.range(width)[None, :, None]
    inside = (
        (rows >= top) & (rows < top + box_h) & (cols >= left) & (cols < left + box_w)
    )
    erase = inside & (random_seeds.uniform(apply_seed) < probability)
    if fill == "normal":
        values = tf.random.stateless_normal(shape, noise_seed, dtype=image.dtype)
    else:
        values = tf.zeros_like(image)
    return tf.where(erase, values, image)
