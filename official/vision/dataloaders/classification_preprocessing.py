"""Image transforms of the classification pipeline: crops and resize.

The eval transform is a center crop of `center_crop_fraction` of the shorter
side and a bilinear resize (`center_crop_and_resize`), then
`image_normalization.normalize_image`; every serving signature
(`image_tensor`, `image_bytes`, `tf_example`) and the TFLite file apply the
same two functions, so a served model sees exactly what it was evaluated on,
whichever way the picture arrives. `resize_for_serving` rounds a crop and
resize back to uint8: with `center_crop_fraction=1.0` (the central square),
the validation images of the export's parity check (`serving_examples`), in
the format of the TFLite signature.

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
resized = cp.resize_for_serving(image[None], (32, 32), 0.875)
assert resized.shape == (1, 32, 32, 3) and resized.dtype == tf.uint8
```
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

# Aspect ratios (width / height) of the training random resized crop.
ASPECT_RATIO_RANGE = (3.0 / 4.0, 4.0 / 3.0)
MAX_CROP_ATTEMPTS = 10


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


def resize_for_serving(
    images_uint8: tf.Tensor,
    output_size: Sequence[int],
    center_crop_fraction: float = 0.875,
) -> tf.Tensor:
    """The crop and resize of the eval transform, rounded back to uint8.

    Equals `center_crop_and_resize(x)` up to the uint8 rounding (at most half
    a pixel level).

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
