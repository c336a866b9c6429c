"""A synthetic object detection dataset: shapes on textured backgrounds, exact boxes.

Each image has a textured background (a color gradient, stripes of a random
period and direction, and noise) and one to four objects, each a circle, a
square or a triangle of random color, size (about 1/6 to 1/2 of the image
side) and position; an object overlaps the earlier ones by at most 0.2 IoU.
An object's box is the extent of the pixels painted for it (pixel-centre
tests), so boxes are exact; boxes of partly covered objects are the whole
shape's. Class ids are 1 circle, 2 square, 3 triangle (0 unused, as in COCO),
so `num_classes` is 4.

Written as detection `tf.Example`s (the format of `tools/convert_coco.py`:
PNG `image/encoded`, `image/object/bbox/{ymin,xmin,ymax,xmax}` normalized,
`image/object/class/label`, `image/object/class/text`,
`image/object/is_crowd`, `image/object/area`):

    DIR/train-0000N-of-00002.tfrecord, DIR/validation-00000-of-00001.tfrecord,
    DIR/labels.txt, DIR/manifest.json

Generation is deterministic (`seed`) and idempotent: when `manifest.json`
matches the request and the files exist, nothing is rewritten.

Run:

    python -m official.datasets.detection_shapes --output_dir=/tmp/detection_shapes

Example:
```python
import tempfile
import numpy as np
from official.datasets import detection_shapes

image, boxes, classes = detection_shapes.generate_one(64, np.random.default_rng(0))
assert image.shape == (64, 64, 3) and boxes.shape == (len(classes), 4)
assert set(classes) <= {1, 2, 3} and (boxes[:, 2:] > boxes[:, :2]).all()
summary = detection_shapes.write_detection_shapes(
    tempfile.mkdtemp(), num_train=8, num_validation=4, image_size=32)
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
MAX_OBJECTS = 4
_MAX_OVERLAP = 0.2
_VERSION = 1


def _shape_mask(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean `[size, size]` pixels of one object of class `kind`."""
    ys, xs = np.mgrid[0:size, 0:size] + 0.5  # Pixel centres.
    radius = rng.uniform(1 / 12, 1 / 4) * size
    cy, cx = rng.uniform(radius, size - radius, 2)
    if kind == 1:  # Circle.
        return (ys - cy) ** 2 + (xs - cx) ** 2 <= radius**2
    if kind == 2:  # Axis-aligned square.
        return (np.abs(ys - cy) <= radius * 0.85) & (np.abs(xs - cx) <= radius * 0.85)
    top, bottom = cy - radius, cy + radius  # Upward triangle.
    half_width = (ys - top) / (bottom - top) * radius * 1.1
    return (ys >= top) & (ys <= bottom) & (np.abs(xs - cx) <= half_width)


def _box(mask: np.ndarray) -> np.ndarray:
    """`[ymin, xmin, ymax, xmax]` pixel edges around the mask's pixels."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([rows[0], cols[0], rows[-1] + 1, cols[-1] + 1], np.float32)


def _iou(box: np.ndarray, others: list[np.ndarray]) -> float:
    best = 0.0
    for other in others:
        h = min(box[2], other[2]) - max(box[0], other[0])
        w = min(box[3], other[3]) - max(box[1], other[1])
        inter = max(h, 0.0) * max(w, 0.0)
        union = np.prod(box[2:] - box[:2]) + np.prod(other[2:] - other[:2]) - inter
        best = max(best, inter / union)
    return best


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    corner, dy, dx = rng.uniform(0, 255, (3, 3))
    image = (
        corner
        + (dy - corner) * ys[..., None] * 0.5
        + (dx - corner) * xs[..., None] * 0.5
    )
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(3, 12)
    phase = (ys * np.cos(angle) + xs * np.sin(angle)) * size / period
    image += rng.uniform(10, 30) * np.sin(2 * np.pi * phase)[..., None]
    return image


def generate_one(
    image_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(uint8 [s, s, 3] image, float32 [n, 4] pixel boxes, int64 [n] classes)`."""
    image = _background(image_size, rng)
    boxes: list[np.ndarray] = []
    classes: list[int] = []
    for _ in range(int(rng.integers(1, MAX_OBJECTS + 1))):
        for _attempt in range(10):
            kind = int(rng.integers(1, NUM_CLASSES))
            mask = _shape_mask(kind, image_size, rng)
            box = _box(mask)
            if _iou(box, boxes) <= _MAX_OVERLAP:
                break
        else:
            continue
        color = rng.uniform(0, 255, 3)
        while np.abs(color - image[mask].mean(axis=0)).max() < 60:
            color = rng.uniform(0, 255, 3)
        image[mask] = color
        boxes.append(box)
        classes.append(kind)
    image += rng.normal(0, 6, image.shape)
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return image, np.stack(boxes), np.asarray(classes, np.int64)


def detection_example(
    image: np.ndarray, boxes: np.ndarray, classes: np.ndarray
) -> tf.train.Example:
    """A detection `tf.Example` (PNG image, normalized boxes)."""
    height, width = image.shape[:2]
    scale = np.array([height, width, height, width], np.float32)
    normalized = boxes / scale
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return tw.example(
        {
            "image/encoded": tw.bytes_feature(tf.io.encode_png(image).numpy()),
            "image/format": tw.bytes_feature("png"),
            "image/height": tw.int64_feature(height),
            "image/width": tw.int64_feature(width),
            "image/object/bbox/ymin": tw.float_feature(normalized[:, 0].tolist()),
            "image/object/bbox/xmin": tw.float_feature(normalized[:, 1].tolist()),
            "image/object/bbox/ymax": tw.float_feature(normalized[:, 2].tolist()),
            "image/object/bbox/xmax": tw.float_feature(normalized[:, 3].tolist()),
            "image/object/class/label": tw.int64_feature([int(c) for c in classes]),
            "image/object/class/text": tw.bytes_feature(
                [CLASS_NAMES[c] for c in classes]
            ),
            "image/object/is_crowd": tw.int64_feature([0] * len(classes)),
            "image/object/area": tw.float_feature(areas.tolist()),
        }
    )


def write_detection_shapes(
    output_dir: str,
    num_train: int = 1024,
    num_validation: int = 128,
    image_size: int = 64,
    seed: int = 0,
    num_shards: tuple[int, int] = (2, 1),
) -> dict[str, Any]:
    """Writes the detection shapes as TFRecords (idempotent).

    Args:
        output_dir: folder to write into (created if missing).
        num_train: training examples. Default 1024.
        num_validation: validation examples (drawn after the training ones,
            from the same seed). Default 128.
        image_size: side of the square images, >= 32. Default 64.
        seed: generator seed. Default 0.
        num_shards: `(train, validation)` number of files. Default (2, 1).

    Returns:
        `{"output_dir", "image_size", "num_classes", "labels_path", "skipped",
        "train": {"files", "pattern", "num_examples"}, "validation": {...}}`.
    """
    if image_size < 32:
        raise ValueError(
            f"image_size must be >= 32. Received: image_size={image_size}."
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
        "kind": "detection",
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
            lambda rng: detection_example(*generate_one(image_size, rng)),
        )

    return generated_dataset.write_once(
        output_dir, manifest, CLASS_NAMES, write_files, "Detection shapes"
    )


if __name__ == "__main__":
    generated_dataset.run_cli(write_detection_shapes)
