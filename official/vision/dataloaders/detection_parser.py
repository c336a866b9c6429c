"""Object detection preprocessing: flips, scale jitter, crop and pad with exact boxes.

Boxes travel in pixels with the image through every step: a horizontal flip
maps `x` to `width - x`; a resize by `new / old` scales them by the same
factor in each axis (the continuous-coordinate mapping of
`tf.image.resize`); a crop subtracts its offset and clips to the crop;
padding (bottom and right, with the mean pixel, 0 after normalization)
leaves them in place. Boxes with no area left after a training crop are
dropped (COCO skips degenerate boxes). Every random draw is stateless, from
the example's seed.

Training: flip, then the image is resized to fit the output size times a
random factor in `[aug_scale_min, aug_scale_max]`, cropped at a random
offset to at most the output size and padded to it. Evaluation: resized to
fit the output size (aspect ratio kept) and padded.

Labels (`DetectionParser`) hold the anchor targets of
`official.vision.ops.target_assigner.AnchorLabeler` and the ground truth
for the COCO metric: `groundtruth_boxes` (pixels of the image `image_info`
describes: the original image in evaluation, the augmented one in
training), `groundtruth_classes` (-1 for padding), `groundtruth_is_crowd`,
`groundtruth_area`, all padded to `max_num_boxes`, and `image_info`
`[height, width, scale_y, scale_x]`: the model input shows that image
scaled by `(scale_y, scale_x)` from its top-left corner.

Example:
```python
import numpy as np
import tensorflow as tf
from official.vision.dataloaders import detection_parser as dp

image = tf.zeros((40, 80, 3), tf.uint8)
boxes = tf.constant([[10.0, 20.0, 30.0, 60.0]])
resized, scaled, scale = dp.resize_and_pad(image, boxes, (32, 32))
assert resized.shape == (32, 32, 3) and np.allclose(scale.numpy(), [0.4, 0.4])
assert np.allclose(scaled.numpy(), [[4.0, 8.0, 12.0, 24.0]])
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from official.vision.dataloaders.image_normalization import MEAN_RGB, normalize_image
from official.vision.ops import box_ops

_MAX_SEED = 2**31 - 1


def flip_boxes(boxes: tf.Tensor, width) -> tf.Tensor:
    """Pixel boxes of an image of `width` flipped left-right."""
    width = tf.cast(width, tf.float32)
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return tf.stack([ymin, width - xmax, ymax, width - xmin], axis=-1)


def random_flip(image, boxes, seed):
    """Flips image and pixel boxes left-right together, with probability 1/2."""
    flip = tf.random.stateless_uniform([], seed) < 0.5
    width = tf.shape(image)[1]
    image = tf.cond(flip, lambda: image[:, ::-1], lambda: image)
    boxes = tf.cond(flip, lambda: flip_boxes(boxes, width), lambda: boxes)
    return image, boxes


def _resize(image, boxes, scale):
    """Resizes by `scale` (rounded to whole pixels); returns the exact factors."""
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    new_size = tf.maximum(tf.cast(tf.round(size * scale), tf.int32), 1)
    factors = tf.cast(new_size, tf.float32) / size
    image = tf.image.resize(tf.cast(image, tf.float32), new_size, method="bilinear")
    boxes = boxes * tf.tile(factors, [2])
    return image, boxes, factors


def pad_to(image, height: int, width: int):
    """Pads bottom and right to `(height, width)` with `MEAN_RGB`."""
    shape = tf.shape(image)
    paddings = [[0, height - shape[0]], [0, width - shape[1]], [0, 0]]
    mean = tf.constant(MEAN_RGB, tf.float32)
    return tf.pad(tf.cast(image, tf.float32) - mean, paddings) + mean


def resize_and_pad(image, boxes, output_size: Sequence[int]):
    """Fits the image in `output_size` (aspect kept), pads; boxes follow.

    Returns:
        `(float32 [H, W, 3] image, boxes, float32 [2] (scale_y, scale_x))`.
    """
    height, width = output_size
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.minimum(height / size[0], width / size[1])
    image, boxes, factors = _resize(image, boxes, scale)
    image = pad_to(image, height, width)
    image.set_shape([height, width, 3])
    return image, boxes, factors


def random_scale_crop_pad(
    image, boxes, output_size: Sequence[int], scale_min: float, scale_max: float, seed
):
    """Scale jitter: fit x random factor, random crop to the output size, pad.

    Returns:
        `(float32 [H, W, 3] image, clipped boxes)`; boxes may have no area.
    """
    height, width = output_size
    scale_seed, y_seed, x_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 3)
    )
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    fit = tf.minimum(height / size[0], width / size[1])
    jitter = tf.random.stateless_uniform([], scale_seed, scale_min, scale_max)
    image, boxes, _ = _resize(image, boxes, fit * jitter)
    shape = tf.shape(image)
    y0 = tf.random.stateless_uniform(
        [], y_seed, 0, tf.maximum(shape[0] - height, 0) + 1, dtype=tf.int32
    )
    x0 = tf.random.stateless_uniform(
        [], x_seed, 0, tf.maximum(shape[1] - width, 0) + 1, dtype=tf.int32
    )
    image = image[y0 : y0 + height, x0 : x0 + width]
    crop = tf.shape(image)
    offset = tf.cast(tf.stack([y0, x0, y0, x0]), tf.float32)
    boxes = box_ops.clip_boxes(boxes - offset, crop[0], crop[1])
    image = pad_to(image, height, width)
    image.set_shape([height, width, 3])
    return image, boxes


def pad_boxes(values: tf.Tensor, count: int, pad_value) -> tf.Tensor:
    """The first `count` rows of `values`, padded with `pad_value` to `count`."""
    values = values[:count]
    pad = count - tf.shape(values)[0]
    paddings = [[0, pad]] + [[0, 0]] * (values.shape.rank - 1)
    padded = tf.pad(values, paddings, constant_values=tf.cast(pad_value, values.dtype))
    padded.set_shape([count, *values.shape[1:]])
    return padded


class DetectionParser:
    """Decoded example -> `(normalized image, labels)` (module docstring).

    Args:
        output_size: `(height, width)` of the model input.
        anchor_labeler: an `AnchorLabeler` for anchors of `output_size`.
        is_training: bool, augment (True) or evaluate.
        aug_rand_hflip: bool, random horizontal flips. Default True.
        aug_scale_min: float, smallest scale jitter. Default 1.0.
        aug_scale_max: float, largest scale jitter. Default 1.0.
        max_num_boxes: int, boxes kept per image (padding to it). Default 100.

    Call arguments:
        decoded: `detection_input.decode_example`'s dict.
        seed: int64 `[2]` (training); None draws one.

    Returns:
        `(float32 [H, W, 3], labels dict)`.
    """

    def __init__(
        self,
        output_size: Sequence[int],
        anchor_labeler: Any,
        is_training: bool,
        aug_rand_hflip: bool = True,
        aug_scale_min: float = 1.0,
        aug_scale_max: float = 1.0,
        max_num_boxes: int = 100,
    ):
        self.output_size = (int(output_size[0]), int(output_size[1]))
        self.anchor_labeler = anchor_labeler
        self.is_training = is_training
        self.aug_rand_hflip = aug_rand_hflip
        self.aug_scale_min = aug_scale_min
        self.aug_scale_max = aug_scale_max
        self.max_num_boxes = max_num_boxes

    def __call__(self, decoded: dict[str, Any], seed: tf.Tensor | None = None):
        image = tf.convert_to_tensor(decoded["image"])
        size = tf.cast(tf.shape(image)[:2], tf.float32)
        boxes = tf.cast(decoded["boxes"], tf.float32) * tf.tile(size, [2])
        classes = tf.cast(decoded["classes"], tf.int32)
        crowd = tf.cast(decoded["is_crowd"], tf.int32)
        area = tf.cast(decoded["area"], tf.float32)
        height, width = self.output_size
        if self.is_training:
            if seed is None:
                seed = tf.random.uniform([2], maxval=_MAX_SEED, dtype=tf.int64)
            flip_seed, crop_seed = tf.unstack(
                tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
            )
            if self.aug_rand_hflip:
                image, boxes = random_flip(image, boxes, flip_seed)
            image, boxes = random_scale_crop_pad(
                image,
                boxes,
                self.output_size,
                self.aug_scale_min,
                self.aug_scale_max,
                crop_seed,
            )
            keep = box_ops.area(boxes) > 0.0
            boxes, classes, crowd = (
                tf.boolean_mask(boxes, keep),
                tf.boolean_mask(classes, keep),
                tf.boolean_mask(crowd, keep),
            )
            area = box_ops.area(boxes)
            input_boxes = groundtruth_boxes = boxes
            image_info = tf.constant([height, width, 1.0, 1.0], tf.float32)
        else:
            groundtruth_boxes = boxes
            image, input_boxes, factors = resize_and_pad(image, boxes, self.output_size)
            image_info = tf.concat([size, factors], axis=0)
        count = self.max_num_boxes
        input_boxes = pad_boxes(input_boxes, count, 0.0)
        classes = pad_boxes(classes, count, -1)
        crowd = pad_boxes(crowd, count, 0)
        labels = dict(self.anchor_labeler(input_boxes, classes, crowd))
        labels.update(
            {
                "groundtruth_boxes": pad_boxes(groundtruth_boxes, count, 0.0),
                "groundtruth_classes": classes,
                "groundtruth_is_crowd": crowd,
                "groundtruth_area": pad_boxes(area, count, 0.0),
                "image_info": image_info,
            }
        )
        image = normalize_image(image)
        image.set_shape([height, width, 3])
        return image, labels
