"""A synthetic semantic segmentation dataset: shapes with exact masks.

Each image has a random smooth background (a color gradient with noise)
and one to three shapes, each a circle, a square or a triangle in a random
color, size and position; later shapes cover earlier ones. The mask holds
the class of every pixel (0 background, 1 circle, 2 square, 3 triangle),
decided by the same pixel-center test that paints the image, so it is
exact. Colors carry no class information: the model must learn shapes.

Written as segmentation `tf.Example`s (the format of
`tools/convert_voc_segmentation.py`: PNG `image/encoded`, single-channel PNG
`image/segmentation/class/encoded`):

    DIR/train-0000N-of-00002.tfrecord, DIR/validation-00000-of-00001.tfrecord,
    DIR/labels.txt, DIR/manifest.json

Generation is deterministic (`seed`) and idempotent: when `manifest.json`
matches the request and the files exist, nothing is rewritten.

Run:

    python -m official.datasets.shapes --output_dir=/tmp/shapes

Example:
```python
import tempfile
from official.datasets import shapes

images, masks = shapes.generate(4, image_size=32, seed=0)
assert images.shape == (4, 32, 32, 3) and masks.shape == (4, 32, 32)
assert set(masks.reshape(-1)) <= {0, 1, 2, 3}
summary = shapes.write_shapes_tfrecords(tempfile.mkdtemp(), num_train=8,
                                        num_validation=4, image_size=32)
assert summary["validation"]["num_examples"] == 4
```
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from official.datasets import generated_dataset
from official.datasets import tfrecord_writer as tw

CLASS_NAMES = ("background", "circle", "square", "triangle")
NUM_CLASSES = len(CLASS_NAMES)
_VERSION = 1


def _paint_shape(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean `[size, size]` mask of one shape of class `kind` at a random place."""
    ys, xs = np.mgrid[0:size, 0:size] + 0.5  # Pixel centers.
    radius = rng.uniform(0.12, 0.25) * size
    cy, cx = rng.uniform(radius, size - radius, 2)
    if kind == 1:  # Circle.
        return (ys - cy) ** 2 + (xs - cx) ** 2 <= radius**2
    if kind == 2:  # Axis-aligned square.
        return (np.abs(ys - cy) <= radius * 0.85) & (np.abs(xs - cx) <= radius * 0.85)
    # Upward triangle: apex on top, base at the bottom.
    top, bottom = cy - radius, cy + radius
    half_width = (ys - top) / (bottom - top) * radius * 1.1
    return (ys >= top) & (ys <= bottom) & (np.abs(xs - cx) <= half_width)


def generate_one(
    image_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One `(uint8 [s, s, 3] image, uint8 [s, s] mask)` pair."""
    ys, xs = np.mgrid[0:image_size, 0:image_size] / max(image_size - 1, 1)
    corner, dy, dx = rng.uniform(0, 255, (3, 3))
    image = (
        corner
        + (dy - corner) * ys[..., None] * 0.5
        + (dx - corner) * xs[..., None] * 0.5
    )
    mask = np.zeros((image_size, image_size), np.uint8)
    for _ in range(rng.integers(1, 4)):
        kind = int(rng.integers(1, NUM_CLASSES))
        shape = _paint_shape(kind, image_size, rng)
        color = rng.uniform(0, 255, 3)
        # Keep the shape visible against the background under it.
        while np.abs(color - image[shape].mean(axis=0)).max() < 60:
            color = rng.uniform(0, 255, 3)
        image[shape] = color
        mask[shape] = kind
    image += rng.normal(0, 8, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), mask


def generate(
    num: int, image_size: int = 64, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """`num` images and masks: uint8 `[num, s, s, 3]` and `[num, s, s]`."""
    rng = np.random.default_rng(seed)
    pairs = [generate_one(image_size, rng) for _ in range(num)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def segmentation_example(image: np.ndarray, mask: np.ndarray) -> tf.train.Example:
    """A segmentation `tf.Example` (PNG image and PNG class mask)."""
    height, width = mask.shape
    return tw.example(
        {
            "image/encoded": tw.bytes_feature(tf.io.encode_png(image).numpy()),
            "image/format": tw.bytes_feature("png"),
            "image/height": tw.int64_feature(height),
            "image/width": tw.int64_feature(width),
            "image/segmentation/class/encoded": tw.bytes_feature(
                tf.io.encode_png(mask[:, :, None]).numpy()
            ),
            "image/segmentation/class/format": tw.bytes_feature("png"),
        }
    )


def write_shapes_tfrecords(
    output_dir: str,
    num_train: int = 1024,
    num_validation: int = 128,
    image_size: int = 64,
    seed: int = 0,
    num_shards: tuple[int, int] = (2, 1),
) -> dict[str, Any]:
    """Writes the shapes dataset as segmentation TFRecords (idempotent).

    Args:
        output_dir: folder to write into (created if missing).
        num_train: training examples. Default 1024.
        num_validation: validation examples (drawn after the training ones,
            from the same seed). Default 128.
        image_size: side of the square images, >= 16. Default 64.
        seed: generator seed. Default 0.
        num_shards: `(train, validation)` number of files. Default (2, 1).

    Returns:
        `{"output_dir", "image_size", "num_classes", "labels_path", "skipped",
        "train": {"files", "pattern", "num_examples"}, "validation": {...}}`.
    """
    if image_size < 16:
        raise ValueError(
            f"image_size must be >= 16. Received: image_size={image_size}."
        )
    if num_train < 1 or num_validation < 1:
        raise ValueError(
            "num_train and num_validation must be >= 1. Received: "
            f"num_train={num_train}, num_validation={num_validation}."
        )
    files = generated_dataset.shard_plan(
        {"train": num_train, "validation": num_validation}, num_shards
    )
    manifest = {
        "version": _VERSION,
        "seed": seed,
        "image_size": image_size,
        "num_shards": list(num_shards),
        "files": files,
    }

    def write_files():
        generated_dataset.write_seeded_splits(
            output_dir,
            seed,
            [
                ("train", num_train, num_shards[0]),
                ("validation", num_validation, num_shards[1]),
            ],
            lambda rng: segmentation_example(*generate_one(image_size, rng)),
        )

    return generated_dataset.write_once(
        output_dir, manifest, CLASS_NAMES, write_files, "Shapes"
    )


if __name__ == "__main__":
    generated_dataset.run_cli(write_shapes_tfrecords)
