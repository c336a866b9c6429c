"""Object detection input: the tf.Example format, decoding and the dataset.

Examples use the TF Object Detection API's keys, as `tools/convert_coco.py`
and `official.datasets.detection_shapes` write them: `image/encoded` (JPEG
or PNG), `image/object/bbox/{ymin,xmin,ymax,xmax}` (floats normalized to
0..1), `image/object/class/label` (int class ids), and optionally
`image/object/is_crowd` (0/1, default 0) and `image/object/area` (pixels of
the original image; default: the box's area).

Example:
```python
import numpy as np
import tensorflow as tf
from official.vision.dataloaders import detection_input as di

image = tf.io.encode_png(np.zeros((20, 30, 3), np.uint8)).numpy()
record = di.make_example(image, boxes=[[0.1, 0.2, 0.5, 0.6]], classes=[2])
decoded = di.decode_example(tf.constant(record))
assert decoded["boxes"].shape == (1, 4) and decoded["classes"].numpy().tolist() == [2]
assert np.allclose(decoded["area"].numpy(), [0.4 * 20 * 0.4 * 30])
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from official.core.experiment_config import DataConfig
from official.core.input_reader import InputReader

IMAGE_KEY = "image/encoded"
BOX_KEYS = (
    "image/object/bbox/ymin",
    "image/object/bbox/xmin",
    "image/object/bbox/ymax",
    "image/object/bbox/xmax",
)
CLASS_KEY = "image/object/class/label"
CROWD_KEY = "image/object/is_crowd"
AREA_KEY = "image/object/area"
_FEATURES = {
    IMAGE_KEY: tf.io.FixedLenFeature((), tf.string),
    **{key: tf.io.VarLenFeature(tf.float32) for key in BOX_KEYS},
    CLASS_KEY: tf.io.VarLenFeature(tf.int64),
    CROWD_KEY: tf.io.VarLenFeature(tf.int64),
    AREA_KEY: tf.io.VarLenFeature(tf.float32),
}


def make_example(
    encoded_image: bytes,
    boxes: Sequence[Sequence[float]],
    classes: Sequence[int],
    is_crowd: Sequence[int] | None = None,
    area: Sequence[float] | None = None,
) -> bytes:
    """A serialized detection tf.Example (normalized `[ymin, xmin, ymax, xmax]`)."""

    def floats(values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))

    def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))

    feature = {
        IMAGE_KEY: tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[encoded_image])
        ),
        CLASS_KEY: ints(int(c) for c in classes),
    }
    for i, key in enumerate(BOX_KEYS):
        feature[key] = floats(float(box[i]) for box in boxes)
    if is_crowd is not None:
        feature[CROWD_KEY] = ints(int(c) for c in is_crowd)
    if area is not None:
        feature[AREA_KEY] = floats(float(a) for a in area)
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString()


def decode_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """A detection tf.Example -> tensors.

    Returns:
        `image` uint8 `[h, w, 3]`, `boxes` float32 `[M, 4]` (normalized),
        `classes` int32 `[M]`, `is_crowd` bool `[M]` and `area` float32
        `[M]` (original pixels).
    """
    parsed = tf.io.parse_single_example(serialized, _FEATURES)
    image = tf.io.decode_image(parsed[IMAGE_KEY], channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    boxes = tf.stack([tf.sparse.to_dense(parsed[key]) for key in BOX_KEYS], axis=-1)
    classes = tf.cast(tf.sparse.to_dense(parsed[CLASS_KEY]), tf.int32)
    count = tf.shape(classes)[0]
    check = tf.debugging.assert_equal(
        tf.shape(boxes)[0],
        count,
        message=(
            "A detection example has a different number of boxes "
            "(image/object/bbox/*) and labels (image/object/class/label)."
        ),
    )
    with tf.control_dependencies([check]):
        boxes = tf.identity(boxes)
    crowd = tf.sparse.to_dense(parsed[CROWD_KEY])
    crowd = tf.cond(
        tf.equal(tf.size(crowd), count),
        lambda: crowd,
        lambda: tf.zeros([count], tf.int64),
    )
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    box_area = (
        (boxes[:, 2] - boxes[:, 0]) * size[0] * (boxes[:, 3] - boxes[:, 1]) * size[1]
    )
    area = tf.sparse.to_dense(parsed[AREA_KEY])
    area = tf.cond(
        tf.equal(tf.size(area), count), lambda: area, lambda: tf.maximum(box_area, 0.0)
    )
    return {
        "image": image,
        "boxes": boxes,
        "classes": classes,
        "is_crowd": tf.cast(crowd, tf.bool),
        "area": area,
    }


def build_detection_dataset(
    data: DataConfig,
    parser: Any,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """`(images, labels)` batches of detection tf.Examples.

    Args:
        data: a `DetectionDataConfig` (TFRecords via `input_path`).
        parser: a `detection_parser.DetectionParser`.
        input_context: from `strategy.distribute_datasets_from_function`.
    """
    if data.tfds_name or data.input_format != "tfrecord":
        raise ValueError(
            "Object detection reads TFRecords of detection tf.Examples "
            "(input_path, input_format=tfrecord); convert COCO with "
            "tools/convert_coco.py. Received: "
            f"tfds_name={data.tfds_name!r}, input_format={data.input_format!r}."
        )
    reader = InputReader(data, decode_example, parser, stateless_seeds=True)
    return reader.read(input_context)
