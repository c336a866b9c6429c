"""Synthetic image data for tests and benchmarks.

`write_synthetic_classification_tfrecords`: ImageNet-format TFRecords; each
image is a flat color chosen by its class plus Gaussian noise, so a small
model can learn the classes in a few steps.

`write_synthetic_image_folder`: a class-per-directory folder of JPEG or PNG
files (`ROOT/class_03/00012.jpg`) with photo-like content (a class color,
smooth random shading and texture), for the image folder source, the
converters and input benchmarks.

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

from official.datasets import tfrecord_writer as tw

IMAGE_FORMATS = ("jpeg", "png")


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
    return tw.example(
        {
            "image/encoded": tw.bytes_feature(encoded),
            "image/format": tw.bytes_feature(image_format),
            "image/class/label": tw.int64_feature(label),
            "image/height": tw.int64_feature(height),
            "image/width": tw.int64_feature(width),
        }
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


def synthetic_photo(
    rng: np.random.Generator, height: int, width: int, color: np.ndarray
) -> np.ndarray:
    """A uint8 `[height, width, 3]` image: `color`, smooth shading, texture."""
    coarse = rng.normal(0.0, 40.0, size=(max(height // 32, 2), max(width // 32, 2), 3))
    shading = tf.image.resize(coarse[None].astype(np.float32), (height, width))[0]
    texture = rng.normal(0.0, 12.0, size=(height, width, 3))
    image = color + shading.numpy() + texture
    return np.clip(image, 0, 255).astype(np.uint8)


def write_synthetic_image_folder(
    root: str,
    num_images: int,
    image_size: int | tuple[int, int],
    num_classes: int,
    seed: int,
    image_format: str = "jpeg",
    size_jitter: float = 0.0,
) -> list[str]:
    """Writes a class-per-directory image folder.

    Args:
        root: the folder; classes go to `root/class_00`, `root/class_01`...
        num_images: number of images, classes drawn uniformly.
        image_size: side of square images, or `(height, width)`.
        num_classes: number of class directories (all created).
        seed: the same seed writes the same files.
        image_format: "jpeg" (quality 90, `.jpg`) or "png".
        size_jitter: each side varies uniformly by up to this fraction.

    Returns:
        The written paths, in the order written.
    """
    if image_format not in IMAGE_FORMATS:
        raise ValueError(
            f"Unknown image_format {image_format!r}. Valid: {', '.join(IMAGE_FORMATS)}."
        )
    if isinstance(image_size, int):
        height, width = image_size, image_size
    else:
        height, width = image_size
    rng = np.random.default_rng(seed)
    colors = class_colors(num_classes)
    for c in range(num_classes):
        tf.io.gfile.makedirs(os.path.join(root, f"class_{c:02d}"))
    extension = "jpg" if image_format == "jpeg" else "png"
    paths = []
    for i in range(num_images):
        label = int(rng.integers(0, num_classes))
        scale_h, scale_w = 1.0 + size_jitter * rng.uniform(-1.0, 1.0, size=2)
        h, w = max(int(height * scale_h), 1), max(int(width * scale_w), 1)
        image = synthetic_photo(rng, h, w, colors[label])
        if image_format == "jpeg":
            encoded = tf.io.encode_jpeg(image, quality=90).numpy()
        else:
            encoded = tf.io.encode_png(image).numpy()
        path = os.path.join(root, f"class_{label:02d}", f"{i:05d}.{extension}")
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(encoded)
        paths.append(path)
    return paths
