"""The one image normalization of every vision input pipeline and export.

Training and evaluation parsers (classification and segmentation) and the
exported serving signatures (`image_tensor`, `image_bytes`, `tf_example` and
the TFLite signature) all call `normalize_image`, so a served model sees the
pixel values it was trained and evaluated on.

Example:
```python
import numpy as np
from official.vision.dataloaders.image_normalization import MEAN_RGB, normalize_image

pixels = np.full((2, 4, 4, 3), MEAN_RGB, np.float32)
assert np.allclose(normalize_image(pixels), 0.0, atol=1e-5)
```
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# ImageNet's per-channel mean and standard deviation, in 0..255 pixel units.
MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STDDEV_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)


def normalize_image(images: tf.Tensor) -> tf.Tensor:
    """`(images - MEAN_RGB) / STDDEV_RGB` in float32; any leading dims.

    Computed as `images * scale + offset`. When the last three dimensions are
    static, `scale` and `offset` are constants of that full shape: a
    broadcast over the 3 channels of every pixel runs element by element in
    TensorFlow's kernels and cost more than the crop and resize together
    (about 1.8 ms of 2 ms per 224 x 224 image here).
    """
    images = tf.cast(images, tf.float32)
    scale = 1.0 / np.asarray(STDDEV_RGB, np.float32)
    offset = -np.asarray(MEAN_RGB, np.float32) * scale
    inner = images.shape[-3:]
    if (
        images.shape.rank is not None
        and images.shape.rank >= 3
        and inner.is_fully_defined()
    ):
        scale = np.broadcast_to(scale, inner.as_list())
        offset = np.broadcast_to(offset, inner.as_list())
    return images * tf.constant(scale) + tf.constant(offset)
