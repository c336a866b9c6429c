"""Scale jitter: resize by a random scale, then crop or pad to a fixed size.

The "large scale jitter" of Ghiasi et al. (2021) and the TF Model Garden's
`resize_and_crop_image`: a scale `s` is drawn uniformly from `scale_range`;
the image is resized, keeping its aspect ratio, to the largest size that fits
in `s * output_size`; a random `output_size` window is cropped where the
result is larger, and the rest is padded (bottom and right) with
`pad_value`.

Example:
```python
import numpy as np
from official.vision.dataloaders.augment.scale_jitter import scale_jitter

image = np.full((30, 40, 3), 200, np.uint8)
out = scale_jitter(image, (16, 16), scale_range=(0.5, 0.5), seed=[0, 0])
# Fits 8 x 8: resized to 6 x 8, padded to 16 x 16.
assert out.shape == (16, 16, 3) and float(out[5, 7, 0]) == 200.0
assert float(out[6, 0, 0]) == 0.0
```
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from official.vision.dataloaders.augment import random_seeds


@tf.autograph.experimental.do_not_convert
def scale_jitter(
    image,
    output_size: Sequence[int],
    scale_range: Sequence[float] = (0.1, 2.0),
    seed: tf.Tensor | None = None,
    pad_value: float | Sequence[float] = 0.0,
) -> tf.Tensor:
    """Resizes `image` by a random scale and crops or pads it to `output_size`.

    Args:
        image: `[height, width, channels]`, uint8 or float.
        output_size: `(height, width)` of the result.
        scale_range: `(min, max)` scale of `output_size`. Default (0.1, 2.0).
        seed: int `[2]` seed of the stateless draws, or None.
        pad_value: value of the padded pixels (a scalar or one per channel).

    Returns:
        float32 `[output_size[0], output_size[1], channels]`.
    """
    if len(scale_range) != 2 or not 0.0 < scale_range[0] <= scale_range[1]:
        raise ValueError(
            f"scale_range must be (min, max) with 0 < min <= max. Received: {scale_range}."
        )
    out_h, out_w = (int(s) for s in output_size)
    scale_seed, y_seed, x_seed = random_seeds.split(seed, 3)
    image = tf.cast(tf.convert_to_tensor(image), tf.float32)
    shape = tf.shape(image)
    height = tf.cast(shape[0], tf.float32)
    width = tf.cast(shape[1], tf.float32)
    scale = random_seeds.uniform(scale_seed, scale_range[0], scale_range[1])
    ratio = tf.minimum(scale * out_h / height, scale * out_w / width)
    new_h = tf.maximum(tf.cast(tf.round(height * ratio), tf.int32), 1)
    new_w = tf.maximum(tf.cast(tf.round(width * ratio), tf.int32), 1)
    resized = tf.image.resize(image, tf.stack([new_h, new_w]), method="bilinear")
    offset_y = tf.random.stateless_uniform(
        [], y_seed, 0, tf.maximum(new_h - out_h, 0) + 1, tf.int32
    )
    offset_x = tf.random.stateless_uniform(
        [], x_seed, 0, tf.maximum(new_w - out_w, 0) + 1, tf.int32
    )
    cropped = resized[offset_y : offset_y + out_h, offset_x : offset_x + out_w, :]
    pad = tf.constant(pad_value, tf.float32)
    padded = tf.image.pad_to_bounding_box(cropped - pad, 0, 0, out_h, out_w) + pad
    channels = image.shape[-1]
    return tf.ensure_shape(padded, [out_h, out_w, channels])
