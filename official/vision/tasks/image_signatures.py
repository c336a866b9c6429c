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

# The most pixels (width x height) an image given to `image_bytes` or
# `tf_example` may declare: 40 MP, 120 MB as uint8 RGB, 480 MB as float32.
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
_HEADER_BYTES = 32  # every header field read below lies in the first 32 bytes


def image_signatures(
    image_tensor: Callable[[tf.Tensor], dict],
    image_bytes: Callable[[tf.Tensor], dict],
    channels: int = 3,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> dict[str, tuple]:
    """`{name: (fn, input_signature)}` for `Task.serving_signatures`.

    `image_bytes` and `tf_example` refuse, before decoding, any image whose
    header declares more than `max_image_pixels` (`check_image_pixels`;
    0: no limit), so a 1 MB PNG declaring 20000x20000 pixels cannot make
    the server allocate gigabytes, behind Garden's server or stock TF Serving.
    """

    def checked_image_bytes(encoded):
        return image_bytes(check_image_pixels(encoded, max_image_pixels))

    def tf_example(examples):
        features = tf.io.parse_example(
            examples, {"image/encoded": tf.io.FixedLenFeature([], tf.string)}
        )
        return checked_image_bytes(features["image/encoded"])

    return {
        "image_tensor": (
            image_tensor,
            [tf.TensorSpec([None, None, None, channels], tf.uint8, name="images")],
        ),
        "image_bytes": (
            checked_image_bytes,
            [tf.TensorSpec([None], tf.string, name="image_bytes")],
        ),
        "tf_example": (tf_example, [tf.TensorSpec([None], tf.string, name="examples")]),
    }


def check_image_pixels(encoded: tf.Tensor, max_image_pixels: int) -> tf.Tensor:
    """`encoded` (a batch of image strings), once no image is over the limit.

    The pixels each image declares are read from its header without decoding
    (`image_pixels`); an image over `max_image_pixels` fails the call with
    InvalidArgumentError naming the limit. 0: no check.
    """
    if not max_image_pixels:
        return encoded
    pixels = tf.map_fn(image_pixels, encoded, fn_output_signature=tf.int64)
    check = tf.debugging.assert_less_equal(
        pixels,
        tf.constant(max_image_pixels, tf.int64),
        message=(
            f"An image declares more pixels (width x height in its header) than "
            f"the limit of {max_image_pixels} this model was exported with "
            f"(serving.export --max_image_pixels); refused before decoding. "
            f"Pixels per image:"
        ),
    )
    with tf.control_dependencies([check]):
        return tf.identity(encoded)


def image_pixels(encoded: tf.Tensor) -> tf.Tensor:
    """int64 width x height one encoded image declares; 0 if not recognized.

    JPEG through `tf.image.extract_jpeg_shape` (header only); PNG (IHDR),
    GIF (logical screen), BMP (signed 32-bit sizes, as TensorFlow reads
    them) and WebP (VP8X canvas, VP8L or VP8 frame header) from the first
    32 bytes. Bytes of no known format give 0: `decode_image` refuses them.
    """
    head = tf.strings.substr(encoded, 0, _HEADER_BYTES)
    head = tf.strings.substr(head + b"\0" * _HEADER_BYTES, 0, _HEADER_BYTES)
    b = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64)

    def starts(offset: int, text: bytes) -> tf.Tensor:
        want = tf.constant(list(text), tf.int64)
        return tf.reduce_all(tf.equal(b[offset : offset + len(text)], want))

    def number(offset: int, size: int, big_endian: bool = False) -> tf.Tensor:
        order = range(size) if big_endian else reversed(range(size))
        value = tf.constant(0, tf.int64)
        for i in order:
            value = value * 256 + b[offset + i]
        return value

    def signed32(offset: int) -> tf.Tensor:
        value = number(offset, 4)
        return tf.abs(tf.where(value >= 2**31, value - 2**32, value))

    bits = number(21, 4)
    formats = [
        (
            starts(0, b"\x89PNG\r\n\x1a\n") & starts(12, b"IHDR"),
            number(16, 4, True) * number(20, 4, True),
        ),
        (starts(0, b"GIF8"), number(6, 2) * number(8, 2)),
        (starts(0, b"BM"), signed32(18) * signed32(22)),
        (
            starts(0, b"RIFF") & starts(8, b"WEBPVP8X"),
            (number(24, 3) + 1) * (number(27, 3) + 1),
        ),
        (
            starts(0, b"RIFF") & starts(8, b"WEBPVP8L"),
            (bits % 2**14 + 1) * (bits // 2**14 % 2**14 + 1),
        ),
        (
            starts(0, b"RIFF") & starts(8, b"WEBPVP8 "),
            (number(26, 2) % 2**14) * (number(28, 2) % 2**14),
        ),
    ]
    pixels = tf.constant(0, tf.int64)
    for matches, count in reversed(formats):
        pixels = tf.where(matches, count, pixels)

    def jpeg_pixels():
        shape = tf.cast(tf.image.extract_jpeg_shape(encoded), tf.int64)
        return shape[0] * shape[1]

    return tf.cond(starts(0, b"\xff\xd8"), jpeg_pixels, lambda: tf.identity(pixels))
