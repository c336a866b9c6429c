"""The three serving signatures every image task exports, from two functions.

`image_tensor` (uint8 `[batch, height, width, channels]`, any size),
`image_bytes` (encoded JPEG/PNG strings) and `tf_example` (serialized
`tf.Example`s whose `image/encoded` feature is passed to `image_bytes`), in
that order: the first is also exported as `serving_default`.

Example:
```python
import tensorflow as tf
from official.vision.tasks.image_signatures import image_signatures

signatures = image_signatures(
    lambda images: {"mean": tf.reduce_mean(tf.cast(images, tf.float32), [1, 2, 3])},
    lambda encoded: {"count": tf.size(encoded)},
)
assert list(signatures) == ["image_tensor", "image_bytes", "tf_example"]
```
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf


def image_signatures(
    image_tensor: Callable[[tf.Tensor], dict],
    image_bytes: Callable[[tf.Tensor], dict],
    channels: int = 3,
) -> dict[str, tuple]:
    """`{name: (fn, input_signature)}` for `Task.serving_signatures`."""

    def tf_example(examples):
        features = tf.io.parse_example(
            examples, {"image/encoded": tf.io.FixedLenFeature([], tf.string)}
        )
        return image_bytes(features["image/encoded"])

    return {
        "image_tensor": (
            image_tensor,
            [tf.TensorSpec([None, None, None, channels], tf.uint8, name="images")],
        ),
        "image_bytes": (
            image_bytes,
            [tf.TensorSpec([None], tf.string, name="image_bytes")],
        ),
        "tf_example": (tf_example, [tf.TensorSpec([None], tf.string, name="examples")]),
    }
