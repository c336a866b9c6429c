"""The image operations of AutoAugment and RandAugment (PIL semantics).

Every function takes and returns a uint8 `[height, width, channels]` image
and is deterministic given its arguments; `autoaugment.py` draws which
operation runs, with which magnitude and sign. Geometric operations fill the
uncovered area with `FILL_VALUE` (mid gray).

Example:
```python
import numpy as np
from official.vision.dataloaders.augment import augment_ops

image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), np.uint8)
out = augment_ops.rotate(augment_ops.equalize(image), degrees=30.0)
assert out.shape == (16, 16, 3) and out.dtype == np.uint8
```
"""

from __future__ import annotations

import math

import tensorflow as tf

FILL_VALUE = 128


def _uint8(image) -> tf.Tensor:
    image = tf.convert_to_tensor(image)
    if image.dtype != tf.uint8:
        raise TypeError(f"Expected a uint8 image. Received dtype {image.dtype}.")
    return image


def blend(image1: tf.Tensor, image2: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """`image1 + factor * (image2 - image1)`, clipped to uint8 (PIL's blend).

    `factor` 0 gives `image1`, 1 gives `image2`; other values interpolate
    (0..1) or extrapolate (> 1).
    """
    a = tf.cast(image1, tf.float32)
    b = tf.cast(image2, tf.float32)
    mixed = a + tf.cast(factor, tf.float32) * (b - a)
    return tf.cast(tf.clip_by_value(tf.round(mixed), 0.0, 255.0), tf.uint8)


def _gray(image: tf.Tensor) -> tf.Tensor:
    gray = tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))
    return tf.broadcast_to(gray, tf.shape(image))


def invert(image) -> tf.Tensor:
    """`255 - image`."""
    return 255 - _uint8(image)


def autocontrast(image) -> tf.Tensor:
    """Stretches each channel's range to 0..255 (a flat channel is kept)."""
    image = _uint8(image)
    # Pillow's arithmetic: float64, then truncation.
    x = tf.cast(image, tf.float64)
    lo = tf.reduce_min(x, axis=[0, 1], keepdims=True)
    hi = tf.reduce_max(x, axis=[0, 1], keepdims=True)
    scale = tf.where(hi > lo, 255.0 / tf.maximum(hi - lo, 1.0), 1.0)
    offset = tf.where(hi > lo, -lo * scale, 0.0)
    out = tf.floor(x * scale + offset)
    return tf.cast(tf.clip_by_value(out, 0.0, 255.0), tf.uint8)


def equalize(image) -> tf.Tensor:
    """Histogram equalization of each channel (PIL's `ImageOps.equalize`)."""
    image = _uint8(image)
    channels = image.shape[-1]
    values = tf.cast(image, tf.int32)
    # One 256-bin histogram per channel: [channels, 256].
    flat = tf.transpose(tf.reshape(values, [-1, channels]))
    offsets = tf.range(channels)[:, None] * 256
    histogram = tf.math.bincount(
        tf.reshape(flat + offsets, [-1]),
        minlength=256 * channels,
        maxlength=256 * channels,
    )
    histogram = tf.reshape(histogram, [channels, 256])
    # Pillow: step = (pixels - count of the last non-empty bin) // 255.
    last = tf.reduce_max(tf.where(histogram > 0, tf.range(256)[None], -1), axis=1)
    last_count = tf.gather(histogram, last, axis=1, batch_dims=1)
    step = (tf.reduce_sum(histogram, axis=1) - last_count) // 255
    safe_step = tf.maximum(step, 1)[:, None]
    lut = (tf.cumsum(histogram, axis=1) + safe_step // 2) // safe_step
    lut = tf.clip_by_value(tf.pad(lut[:, :-1], [[0, 0], [1, 0]]), 0, 255)
    # A channel with a single level (step 0) is kept as is.
    lut = tf.where(step[:, None] > 0, lut, tf.range(256)[None])
    equalized = tf.gather(lut, flat, axis=1, batch_dims=1)
    out = tf.reshape(tf.transpose(equalized), tf.shape(image))
    return tf.cast(out, tf.uint8)


def posterize(image, bits: tf.Tensor) -> tf.Tensor:
    """Keeps the `bits` (1..8) most significant bits of every value."""
    shift = tf.cast(8 - tf.clip_by_value(bits, 1, 8), tf.uint8)
    return tf.bitwise.left_shift(tf.bitwise.right_shift(_uint8(image), shift), shift)


def solarize(image, threshold: tf.Tensor) -> tf.Tensor:
    """Inverts the values at or above `threshold` (0..256)."""
    image = _uint8(image)
    x = tf.cast(image, tf.int32)
    return tf.cast(tf.where(x < tf.cast(threshold, tf.int32), x, 255 - x), tf.uint8)


def solarize_add(image, addition: tf.Tensor, threshold: int = 128) -> tf.Tensor:
    """Adds `addition` to the values below `threshold`, clipped to 0..255."""
    x = tf.cast(_uint8(image), tf.int32)
    added = tf.clip_by_value(x + tf.cast(addition, tf.int32), 0, 255)
    return tf.cast(tf.where(x < threshold, added, x), tf.uint8)


def color(image, factor: tf.Tensor) -> tf.Tensor:
    """Saturation: 0 gives the grayscale image, 1 the image (PIL's Color)."""
    image = _uint8(image)
    return blend(_gray(image), image, factor)


def contrast(image, factor: tf.Tensor) -> tf.Tensor:
    """0 gives flat mean gray, 1 the image (PIL's Contrast)."""
    image = _uint8(image)
    mean = tf.reduce_mean(_gray(image))
    return blend(tf.fill(tf.shape(image), mean), image, factor)


def brightness(image, factor: tf.Tensor) -> tf.Tensor:
    """0 gives black, 1 the image (PIL's Brightness)."""
    image = _uint8(image)
    return blend(tf.zeros_like(image), image, factor)


def sharpness(image, factor: tf.Tensor) -> tf.Tensor:
    """0 gives PIL's SMOOTH filter of the image (borders kept), 1 the image."""
    image = _uint8(image)
    channels = image.shape[-1]
    kernel = tf.constant([[1, 1, 1], [1, 5, 1], [1, 1, 1]], tf.float32) / 13.0
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, channels, 1])
    x = tf.cast(image, tf.float32)[None]
    smooth = tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "VALID")[0]
    smooth = tf.pad(tf.round(smooth), [[1, 1], [1, 1], [0, 0]])
    interior = tf.pad(tf.ones_like(smooth[1:-1, 1:-1]), [[1, 1], [1, 1], [0, 0]])
    degenerate = tf.where(interior > 0, smooth, tf.cast(image, tf.float32))
    return blend(degenerate, image, factor)


def _transform(image: tf.Tensor, matrix: list) -> tf.Tensor:
    """Projective transform; `matrix` maps output to input coordinates."""
    transforms = tf.cast(tf.stack(matrix)[None], tf.float32)
    shape = tf.shape(image)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transforms,
        output_shape=shape[:2],
        fill_value=float(FILL_VALUE),
        interpolation="NEAREST",
        fill_mode="CONSTANT",
    )
    return tf.ensure_shape(out[0], image.shape)


def rotate(image, degrees: tf.Tensor) -> tf.Tensor:
    """Rotates counterclockwise by `degrees` about the center."""
    image = _uint8(image)
    angle = tf.cast(degrees, tf.float32) * (math.pi / 180.0)
    shape = tf.cast(tf.shape(image), tf.float32)
    h, w = shape[0] - 1.0, shape[1] - 1.0
    cos, sin = tf.cos(angle), tf.sin(angle)
    x_offset = (w - (cos * w - sin * h)) / 2.0
    y_offset = (h - (sin * w + cos * h)) / 2.0
    zero = tf.constant(0.0)
    return _transform(image, [cos, -sin, x_offset, sin, cos, y_offset, zero, zero])


def shear_x(image, level: tf.Tensor) -> tf.Tensor:
    """Horizontal shear: output `(x, y)` reads input `(x + level * y, y)`."""
    image = _uint8(image)
    one, zero = tf.constant(1.0), tf.constant(0.0)
    level = tf.cast(level, tf.float32)
    return _transform(image, [one, level, zero, zero, one, zero, zero, zero])


def shear_y(image, level: tf.Tensor) -> tf.Tensor:
    """Vertical shear: output `(x, y)` reads input `(x, y + level * x)`."""
    image = _uint8(image)
    one, zero = tf.constant(1.0), tf.constant(0.0)
    level = tf.cast(level, tf.float32)
    return _transform(image, [one, zero, zero, level, one, zero, zero, zero])


def translate_x(image, pixels: tf.Tensor) -> tf.Tensor:
    """Moves the content `pixels` to the right (negative: left)."""
    image = _uint8(image)
    one, zero = tf.constant(1.0), tf.constant(0.0)
    dx = -tf.cast(pixels, tf.float32)
    return _transform(image, [one, zero, dx, zero, one, zero, zero, zero])


def translate_y(image, pixels: tf.Tensor) -> tf.Tensor:
    """Moves the content `pixels` down (negative: up)."""
    image = _uint8(image)
    one, zero = tf.constant(1.0), tf.constant(0.0)
    dy = -tf.cast(pixels, tf.float32)
    return _transform(image, [one, zero, zero, zero, one, dy, zero, zero])


def cutout(image, size: tf.Tensor, center_y: tf.Tensor, center_x: tf.Tensor):
    """Fills a `size` x `size` square centered at `(center_y, center_x)`.

    The square is clipped at the borders and filled with `FILL_VALUE`.
    """
    image = _uint8(image)
    shape = tf.shape(image)
    half = tf.cast(size, tf.int32) // 2
    rows = tf.range(shape[0])[:, None, None]
    cols = tf.range(shape[1])[None, :, None]
    inside = (
        (rows >= center_y - half)
        & (rows < center_y - half + size)
        & (cols >= center_x - half)
        & (cols < center_x - half + size)
    )
    return tf.where(inside, tf.constant(FILL_VALUE, tf.uint8), image)
