"""Bilinear resizing to another tensor's spatial size, static or dynamic."""

from __future__ import annotations

import keras


def resize_bilinear(images, height, width):
    """Resizes `(batch, h, w, c)` images to `(height, width)` bilinearly.

    Uses `keras.ops.image.resize` when the size is static (Python ints). A
    dynamic size (tensors, e.g. from a `(None, None, 3)` input traced in a
    `tf.function`) goes to TensorFlow's resize, which accepts tensor sizes;
    both use half-pixel centers, so they give the same values.

    Args:
        images: float tensor `(batch, h, w, c)`.
        height: int or scalar int tensor, the output height.
        width: int or scalar int tensor, the output width.

    Returns:
        Tensor `(batch, height, width, c)` of the input's dtype.
    """
    if isinstance(height, int) and isinstance(width, int):
        return keras.ops.image.resize(images, (height, width), interpolation="bilinear")
    import tensorflow as tf

    resized = tf.image.resize(images, tf.stack([height, width]), method="bilinear")
    return tf.cast(resized, images.dtype)


@keras.saving.register_keras_serializable(package="official")
class UpsampleLike(keras.layers.Layer):
    """Resizes a feature map bilinearly to the height and width of a reference.

    Call arguments:
        inputs: float tensor `(batch, h, w, c)`, e.g. logits at stride 8.
        reference: tensor `(batch, H, W, ...)`, e.g. the input images.

    Returns:
        Tensor `(batch, H, W, c)` of `inputs`' dtype.

    Example:
    ```python
    import numpy as np
    from official.vision.heads.upsample_like import UpsampleLike

    logits = np.ones((2, 4, 4, 5), "float32")
    images = np.ones((2, 32, 32, 3), "float32")
    assert tuple(UpsampleLike()(logits, images).shape) == (2, 32, 32, 5)
    ```
    """

    def call(self, inputs, reference):
        shape = keras.ops.shape(reference)
        return resize_bilinear(inputs, shape[1], shape[2])

    def compute_output_shape(self, inputs_shape, reference_shape):
        return (
            inputs_shape[0],
            reference_shape[1],
            reference_shape[2],
            inputs_shape[-1],
        )
