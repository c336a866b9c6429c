"""Semantic segmentation input: decoding, augmentation and the dataset.

Examples are `tf.Example`s with `image/encoded` (JPEG or PNG) and
`image/segmentation/class/encoded` (a single-channel PNG of class indices,
255 = ignore), as written by `tools/convert_voc_segmentation.py` and
`official.datasets.shapes`.

Training (`SegmentationParser`, every draw stateless from the example's
seed): random scale in `[scale_min, scale_max]` (image bilinear, mask
nearest), padding to at least the crop size (image with the mean pixel,
which normalizes to 0; mask with the ignore label), a random crop of the
output size at the same offset in both, and a horizontal flip of both.
Evaluation: image bilinear and mask nearest to the output size, or, at full
resolution, both padded to `groundtruth_padded_size`. Images are normalized
by `image_normalization.normalize_image`, as in the serving signatures.

Example:
```python
import numpy as np
import tensorflow as tf
from official.vision.dataloaders import segmentation_input as si

image = tf.constant(np.random.randint(0, 256, (20, 30, 3), np.uint8))
mask = tf.constant(np.random.randint(0, 3, (20, 30, 1), np.uint8))
parser = si.SegmentationParser((16, 16), is_training=True)
x, y = parser({"image": image, "label": mask}, seed=tf.constant([1, 2], tf.int64))
assert x.shape == (16, 16, 3) and y.shape == (16, 16) and y.dtype == tf.int32
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from official.core.experiment_config import DataConfig
from official.core.input_reader import InputReader
from official.vision.dataloaders.image_normalization import MEAN_RGB, normalize_image

IMAGE_KEY = "image/encoded"
MASK_KEY = "image/segmentation/class/encoded"
_FEATURES = {
    IMAGE_KEY: tf.io.FixedLenFeature((), tf.string),
    MASK_KEY: tf.io.FixedLenFeature((), tf.string),
}
_MAX_SEED = 2**31 - 1


def decode_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """A segmentation `tf.Example` -> `{"image": uint8 [h, w, 3], "label": uint8 [h, w, 1]}`."""
    parsed = tf.io.parse_single_example(serialized, _FEATURES)
    image = tf.io.decode_image(parsed[IMAGE_KEY], channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    label = tf.io.decode_png(parsed[MASK_KEY], channels=1)
    label.set_shape([None, None, 1])
    return {"image": image, "label": label}


def resize_pair(
    image: tf.Tensor, label: tf.Tensor, size
) -> tuple[tf.Tensor, tf.Tensor]:
    """Image bilinear (float32) and label nearest (its dtype) to `size` `[h, w]`."""
    image = tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear")
    label = tf.image.resize(label, size, method="nearest")
    return image, label


def random_scale(image, label, scale_min: float, scale_max: float, seed):
    """Resizes image and label by one random factor in `[scale_min, scale_max]`."""
    scale = tf.random.stateless_uniform([], seed, scale_min, scale_max)
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    new_size = tf.maximum(tf.cast(tf.round(size * scale), tf.int32), 1)
    return resize_pair(image, label, new_size)


def pad_pair(image, label, height, width, ignore_label: int):
    """Pads bottom and right to at least `(height, width)`.

    The image is padded with `MEAN_RGB` (0 after normalization), the label
    with `ignore_label`. Sizes already larger are kept.
    """
    shape = tf.shape(image)
    pad_h = tf.maximum(height - shape[0], 0)
    pad_w = tf.maximum(width - shape[1], 0)
    paddings = [[0, pad_h], [0, pad_w], [0, 0]]
    mean = tf.constant(MEAN_RGB, tf.float32)
    image = tf.pad(tf.cast(image, tf.float32) - mean, paddings) + mean
    label = tf.pad(label, paddings, constant_values=tf.cast(ignore_label, label.dtype))
    return image, label


def random_crop_pair(image, label, height: int, width: int, seed):
    """Crops `(height, width)` at one random offset from both (sizes must fit)."""
    shape = tf.shape(image)
    y_seed, x_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    max_y = shape[0] - height + 1
    max_x = shape[1] - width + 1
    y = tf.random.stateless_uniform([], y_seed, 0, max_y, dtype=tf.int32)
    x = tf.random.stateless_uniform([], x_seed, 0, max_x, dtype=tf.int32)
    return image[y : y + height, x : x + width], label[y : y + height, x : x + width]


def random_flip_pair(image, label, seed):
    """Flips image and label left-right together, with probability 1/2."""
    flip = tf.random.stateless_uniform([], seed) < 0.5
    image = tf.cond(flip, lambda: image[:, ::-1], lambda: image)
    label = tf.cond(flip, lambda: label[:, ::-1], lambda: label)
    return image, label


class SegmentationParser:
    """Decoded `{"image", "label"}` -> `(normalized image, int32 label map)`.

    Args:
        output_size: `(height, width)` of training crops and resized
            evaluation images.
        ignore_label: int, label of padding. Default 255.
        is_training: bool, augment (True) or evaluate. Default True.
        aug_scale_min: float, smallest random scale. Default 0.5.
        aug_scale_max: float, largest random scale. Default 2.0.
        aug_rand_hflip: bool, random horizontal flips. Default True.
        resize_eval_groundtruth: bool, evaluation resizes to `output_size`
            (True) or pads to `groundtruth_padded_size` (full resolution).
            Default True.
        groundtruth_padded_size: `(height, width)` for full-resolution
            evaluation; every image must fit. Default ().

    Call arguments:
        decoded: `{"image": uint8 [h, w, 3], "label": [h, w, 1] ints}`.
        seed: int64 `[2]` seed of this example's random draws (training);
            None draws one.

    Returns:
        `(float32 [H, W, 3], int32 [H, W])`.
    """

    def __init__(
        self,
        output_size: Sequence[int],
        ignore_label: int = 255,
        is_training: bool = True,
        aug_scale_min: float = 0.5,
        aug_scale_max: float = 2.0,
        aug_rand_hflip: bool = True,
        resize_eval_groundtruth: bool = True,
        groundtruth_padded_size: Sequence[int] = (),
    ):
        self.output_size = tuple(int(s) for s in output_size)
        self.ignore_label = ignore_label
        self.is_training = is_training
        self.aug_scale_min = aug_scale_min
        self.aug_scale_max = aug_scale_max
        self.aug_rand_hflip = aug_rand_hflip
        self.resize_eval_groundtruth = resize_eval_groundtruth
        self.groundtruth_padded_size = tuple(int(s) for s in groundtruth_padded_size)
        full_resolution = not is_training and not resize_eval_groundtruth
        if full_resolution and len(self.groundtruth_padded_size) != 2:
            raise ValueError(
                "Full-resolution evaluation (resize_eval_groundtruth=False) needs "
                "groundtruth_padded_size=(height, width). Received: "
                f"{groundtruth_padded_size!r}."
            )

    def __call__(self, decoded: dict[str, Any], seed: tf.Tensor | None = None):
        image = tf.convert_to_tensor(decoded["image"])
        label = tf.cast(decoded["label"], tf.int32)
        if label.shape.rank == 2:
            label = label[:, :, tf.newaxis]
        if self.is_training:
            if seed is None:
                seed = tf.random.uniform([2], maxval=_MAX_SEED, dtype=tf.int64)
            image, label = self._augment(image, label, seed)
        elif self.resize_eval_groundtruth:
            image, label = resize_pair(image, label, self.output_size)
        else:
            image, label = self._pad_full_resolution(image, label)
        image = normalize_image(image)
        height, width = (
            self.output_size
            if self.is_training or self.resize_eval_groundtruth
            else self.groundtruth_padded_size
        )
        image.set_shape([height, width, 3])
        label = tf.ensure_shape(label[:, :, 0], [height, width])
        return image, label

    def _augment(self, image, label, seed):
        scale_seed, crop_seed, flip_seed = tf.unstack(
            tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
        )
        height, width = self.output_size
        image, label = random_scale(
            image, label, self.aug_scale_min, self.aug_scale_max, scale_seed
        )
        image, label = pad_pair(image, label, height, width, self.ignore_label)
        image, label = random_crop_pair(image, label, height, width, crop_seed)
        if self.aug_rand_hflip:
            image, label = random_flip_pair(image, label, flip_seed)
        return image, label

    def _pad_full_resolution(self, image, label):
        height, width = self.groundtruth_padded_size
        shape = tf.shape(image)
        check = tf.debugging.assert_less_equal(
            shape[:2],
            tf.constant([height, width]),
            message=(
                f"An evaluation image is larger than groundtruth_padded_size "
                f"[{height}, {width}]; raise it to the largest image size."
            ),
        )
        with tf.control_dependencies([check]):
            return pad_pair(image, label, height, width, self.ignore_label)


def build_segmentation_dataset(
    data: DataConfig,
    model_config: Any,
    ignore_label: int,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """`(images, labels)` batches for semantic segmentation.

    Args:
        data: a `SegmentationDataConfig` (TFRecords via `input_path`).
        model_config: a `SemanticSegmentationModelConfig`; `input_size`
            gives the crop / resize size.
        ignore_label: int, the label of padding and of pixels not counted.
        input_context: from `strategy.distribute_datasets_from_function`.

    Returns:
        A dataset of `(float32 [b, h, w, 3], int32 [b, h, w])`, `b` the
        per-replica batch size.
    """
    if data.tfds_name or data.input_format != "tfrecord":
        raise ValueError(
            "Semantic segmentation reads TFRecords of segmentation tf.Examples "
            "(input_path, input_format=tfrecord); convert other sources with "
            "tools/convert_voc_segmentation.py. Received: "
            f"tfds_name={data.tfds_name!r}, input_format={data.input_format!r}."
        )
    height, width, channels = model_config.input_size
    if channels != 3:
        raise ValueError(
            "Segmentation input is RGB: model.input_size must end with 3 channels. "
            f"Received: input_size={list(model_config.input_size)}."
        )
    parser = SegmentationParser(
        (height, width),
        ignore_label=ignore_label,
        is_training=data.is_training,
        aug_scale_min=data.aug_scale_min,
        aug_scale_max=data.aug_scale_max,
        aug_rand_hflip=data.aug_rand_hflip,
        resize_eval_groundtruth=data.resize_eval_groundtruth,
        groundtruth_padded_size=data.groundtruth_padded_size,
    )
    reader = InputReader(data, decode_example, parser, stateless_seeds=True)
    return reader.read(input_context)
