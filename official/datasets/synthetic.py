"""Synthetic ImageNet-format TFRecords for tests.

Each image is a flat color chosen by its class plus Gaussian noise, so a
small model can learn the classes in a few steps.

Example:
```python
import os, tempfile
from official.datasets.synthetic import write_synthetic_classification_tfrecords

path = os.path.join(tempfile.mkdtemp(), "train.tfrecord")
labels = write_synthetic_classification_tfrecords(
    path, num_examples=4, image_size=8, num_classes=2, seed=0)
assert len(labels) == 4
```
"""

from __future__ import annotations

import colorsys
import os

import numpy as np
import tensorflow as tf

IMAGE_FORMATS = ("jpeg", "png")


def _bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64_feature(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def classification_example(
    image: np.ndarray, label: int, image_format: str = "png"
) -> tf.train.Example:
    """An ImageNet-format `tf.Example` from a uint8 `[h, w, 3]` image.

    Args:
        image: uint8 `[height, width, 3]`.
        label: the class id (`image/class/label`).
        image_format: `"png"` or `"jpeg"`, the encoding of `image/encoded`.

    Returns:
        A `tf.train.Example` with `image/encoded`, `image/format`,
        `image/class/label`, `image/height` and `image/width`.
    """
    if image_format not in IMAGE_FORMATS:
        raise ValueError(
            f"Unknown image_format {image_format!r}. Valid: {', '.join(IMAGE_FORMATS)}."
        )
    if image_format == "png":
        encoded = tf.io.encode_png(image).numpy()
    else:
        encoded = tf.io.encode_jpeg(image, quality=95).numpy()
    height, width = image.shape[:2]
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "image/encoded": _bytes_feature(encoded),
                "image/format": _bytes_feature(image_format.encode()),
                "image/class/label": _int64_feature(label),
                "image/height": _int64_feature(height),
                "image/width": _int64_feature(width),
            }
        )
    )


def class_colors(num_classes: int) -> np.ndarray:
    """`num_classes` RGB colors spread around the hue circle, float [0, 255]."""
    return (
        np.array(
            [
                colorsys.hsv_to_rgb(i / num_classes, 0.8, 0.9 - 0.4 * (i % 2))
                for i in range(num_classes)
            ],
            np.float32,
        )
        * 255.0
    )


def write_synthetic_classification_tfrecords(
    path: str,
    num_examples: int,
    image_size: int | tuple[int, int],
    num_classes: int,
    seed: int,
    image_format: str = "jpeg",
) -> list[int]:
    """Writes one TFRecord file of synthetic classification examples.

    Args:
        path: the TFRecord file to write (its folder is created).
        num_examples: number of examples.
        image_size: side of the square images, or `(height, width)`.
        num_classes: labels are drawn uniformly from `[0, num_classes)`.
        seed: seeds labels and noise; the same seed writes the same file.
        image_format: `"jpeg"` (default) or `"png"`.

    Returns:
        The labels, in the order written.
    """
    if image_format not in IMAGE_FORMATS:
        raise ValueError(
            f"Unknown image_format {image_format!r}. Valid: {', '.join(IMAGE_FORMATS)}."
        )
    if isinstance(image_size, int):
        height = width = image_size
    else:
        height, width = image_size
    rng = np.random.default_rng(seed)
    colors = class_colors(num_classes)
    labels = rng.integers(0, num_classes, size=num_examples).tolist()
    parent = os.path.dirname(path)
    if parent:
        tf.io.gfile.makedirs(parent)
    with tf.io.TFRecordWriter(path) as writer:
        for label in labels:
            noise = rng.normal(0.0, 20.0, size=(height, width, 3))
            image = np.clip(colors[label] + noise, 0, 255).astype(np.uint8)
            writer.write(
                classification_example(image, label, image_format).SerializeToString()
            )
    return labels
