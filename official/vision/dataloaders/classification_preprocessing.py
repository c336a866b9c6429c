"""Image transforms of the classification pipeline: crops, resize, normalize.

The eval transform (center crop of `center_crop_fraction` of the shorter
side, bilinear resize, normalization) is shared with `preprocess_for_serving`,
so a served model sees exactly what it was evaluated on. The serving functions
use only slicing, `tf.image.resize` (bilinear) and arithmetic, which convert
to TFLite builtins.

Training crops come from `random_crop_window` (Inception-style random resized
crop, stateless) and, for JPEG bytes, are decoded with
`tf.image.decode_and_crop_jpeg`, which decodes only the window.

Example:
```python
import numpy as np
import tensorflow as tf
from official.vision.dataloaders import classification_preprocessing as cp

image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), np.uint8)
encoded = tf.io.encode_jpeg(image)
window_fn = lambda shape: cp.random_crop_window(shape, (0.08, 1.0), 0.875, [1, 2])
crop = cp.decode_and_crop(encoded, window_fn)
assert crop.dtype == tf.uint8 and crop.shape[-1] == 3
assert crop.shape == cp.crop(image, window_fn).shape
served = cp.preprocess_for_serving(image[None], (32, 32), 0.875)
assert served.shape == (1, 32, 32, 3)
```
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STDDEV_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)

# Aspect ratios (width / height) of the training random resized crop.
ASPECT_RATIO_RANGE = (3.0 / 4.0, 4.0 / 3.0)
MAX_CROP_ATTEMPTS = 10


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


def center_crop_window(shape: tf.Tensor, fraction: float) -> tf.Tensor:
    """`[offset_y, offset_x, size, size]` of the centered square crop.

    `shape` starts with `(height, width)`; the square keeps `fraction` of
    the shorter side.
    """
    height, width = shape[0], shape[1]
    short_side = tf.cast(tf.minimum(height, width), tf.float32)
    size = tf.maximum(tf.cast(short_side * fraction, tf.int32), 1)
    offset_y = (height - size + 1) // 2
    offset_x = (width - size + 1) // 2
    return tf.stack([offset_y, offset_x, size, size])


def center_crop_and_resize(
    images: tf.Tensor, output_size: Sequence[int], center_crop_fraction: float
) -> tf.Tensor:
    """Center crop then bilinear resize; `images` is [h, w, c] or [b, h, w, c].

    Returns float32 pixel values (not normalized) of shape
    `[..., output_size[0], output_size[1], c]`.
    """
    shape = tf.shape(images)
    window = center_crop_window(shape[-3:], center_crop_fraction)
    offset_y, offset_x, size = window[0], window[1], window[2]
    cropped = images[..., offset_y : offset_y + size, offset_x : offset_x + size, :]
    return tf.image.resize(
        tf.cast(cropped, tf.float32), list(output_size), method="bilinear"
    )


def preprocess_for_serving(
    images_uint8: tf.Tensor,
    output_size: Sequence[int],
    center_crop_fraction: float = 0.875,
) -> tf.Tensor:
    """The eval transform, batch-wise: center crop, bilinear resize, normalize.

    Args:
        images_uint8: uint8 `[batch, height, width, 3]`, any height and width.
        output_size: `(height, width)` of the model input.
        center_crop_fraction: fraction of the shorter side kept by the crop.

    Returns:
        float32 `[batch, output_size[0], output_size[1], 3]`, normalized like
        the eval `Parser`'s output.
    """
    return normalize_image(
        center_crop_and_resize(images_uint8, output_size, center_crop_fraction)
    )


def resize_for_serving(
    images_uint8: tf.Tensor,
    output_size: Sequence[int],
    center_crop_fraction: float = 0.875,
) -> tf.Tensor:
    """The crop and resize of the eval transform, rounded back to uint8.

    `normalize_image(resize_for_serving(x))` equals
    `preprocess_for_serving(x)` up to the uint8 rounding (at most 0.5 / 255 of
    a pixel value before normalization).

    Returns:
        uint8 `[batch, output_size[0], output_size[1], 3]`.
    """
    resized = center_crop_and_resize(images_uint8, output_size, center_crop_fraction)
    return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)


def random_crop_window(
    shape: tf.Tensor,
    area_range: Sequence[float],
    center_crop_fraction: float,
    seed: tf.Tensor,
) -> tf.Tensor:
    """`[offset_y, offset_x, height, width]` of a random resized crop.

    The crop covers `area_range` of the image with an aspect ratio in
    `ASPECT_RATIO_RANGE`. When sampling fails (the op then returns the whole
    image, which is no random crop either) the eval center crop is used.

    Args:
        shape: int `[3]` `(height, width, channels)` of the image.
        area_range: `(min, max)` fraction of the image area.
        center_crop_fraction: the fallback crop's fraction of the short side.
        seed: int `[2]` seed of the stateless draw.
    """
    shape = tf.cast(shape, tf.int32)
    whole_image = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, shape=[1, 1, 4])
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        bounding_boxes=whole_image,
        seed=seed,
        min_object_covered=area_range[0],
        aspect_ratio_range=ASPECT_RATIO_RANGE,
        area_range=area_range,
        max_attempts=MAX_CROP_ATTEMPTS,
        use_image_if_no_bounding_boxes=True,
    )
    failed = tf.reduce_all(tf.equal(size[:2], shape[:2]))
    window = tf.stack([begin[0], begin[1], size[0], size[1]])
    return tf.cond(
        failed, lambda: center_crop_window(shape, center_crop_fraction), lambda: window
    )


def decode_rgb(encoded: tf.Tensor) -> tf.Tensor:
    """JPEG / PNG / GIF / BMP bytes -> uint8 `[height, width, 3]`."""
    image = tf.io.decode_image(
        encoded, channels=3, dtype=tf.uint8, expand_animations=False
    )
    image.set_shape([None, None, 3])
    return image


def decode_and_crop(
    encoded: tf.Tensor, window_fn: Callable[[tf.Tensor], tf.Tensor]
) -> tf.Tensor:
    """Decodes the window `window_fn(shape)` of encoded image bytes.

    `window_fn` maps the int32 `[height, width, 3]` shape to `[offset_y,
    offset_x, height, width]`. JPEG reads its shape from the header and
    decodes only the window (`decode_and_crop_jpeg`); other formats decode
    the whole image, then slice.

    Returns:
        uint8 `[window height, window width, 3]`.
    """

    def jpeg():
        shape = tf.concat([tf.io.extract_jpeg_shape(encoded)[:2], [3]], 0)
        return tf.image.decode_and_crop_jpeg(encoded, window_fn(shape), channels=3)

    def other():
        return crop(decode_rgb(encoded), window_fn)

    image = tf.cond(tf.io.is_jpeg(encoded), jpeg, other)
    image.set_shape([None, None, 3])
    return image


def crop(image: tf.Tensor, window_fn: Callable[[tf.Tensor], tf.Tensor]) -> tf.Tensor:
    """The window `window_fn(tf.shape(image))` of a decoded `[h, w, c]` image."""
    window = window_fn(tf.shape(image))
    return image[window[0] : window[0] + window[2], window[1] : window[1] + window[3]]
