"""Image classification input: decoders, the `Parser`, serving preprocessing.

Records are ImageNet-format `tf.Example`s (`image/encoded` JPEG or PNG bytes,
`image/class/label` int64), or TFDS `{"image", "label"}` dicts. The eval
transform (center crop of `center_crop_fraction` of the shorter side, bilinear
resize, normalization) is shared with `preprocess_for_serving`, so a served
model sees exactly what it was evaluated on. The serving functions use only
slicing, `tf.image.resize` (bilinear) and arithmetic, which convert to TFLite
builtins.

Example:
```python
import numpy as np
import tensorflow as tf
from official.vision.dataloaders import classification_input as ci

image = tf.constant(np.random.randint(0, 256, (40, 50, 3), np.uint8))
parser = ci.Parser(output_size=(32, 32), num_classes=10, is_training=False)
x, y = parser({"image": image, "label": tf.constant(3)})
served = ci.preprocess_for_serving(image[None], (32, 32), 0.875)
assert x.shape == (32, 32, 3) and int(y) == 3
np.testing.assert_allclose(served[0], x, atol=1e-4)
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from official.core.experiment_config import DataConfig
from official.core.input_reader import InputReader

MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STDDEV_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)

# Aspect ratios (width / height) of the training random resized crop.
ASPECT_RATIO_RANGE = (3.0 / 4.0, 4.0 / 3.0)
_MAX_CROP_ATTEMPTS = 10

_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string),
    "image/class/label": tf.io.FixedLenFeature((), tf.int64),
}


# ---- decoders ---------------------------------------------------------------


def decode_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Decodes an ImageNet-format `tf.Example`.

    Args:
        serialized: a scalar string tensor, one serialized `tf.Example` with
            `image/encoded` (JPEG or PNG bytes) and `image/class/label` (int64).

    Returns:
        `{"image": uint8 [height, width, 3], "label": int32 []}`.
    """
    parsed = tf.io.parse_single_example(serialized, _FEATURES)
    image = tf.io.decode_image(
        parsed["image/encoded"], channels=3, dtype=tf.uint8, expand_animations=False
    )
    image.set_shape([None, None, 3])
    return {"image": image, "label": tf.cast(parsed["image/class/label"], tf.int32)}


def decode_tfds_example(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Decodes a TFDS image classification example (`{"image", "label"}`).

    Grayscale images (one channel) are repeated to RGB.

    Returns:
        `{"image": uint8 [height, width, 3], "label": int32 []}`.
    """
    image = tf.convert_to_tensor(features["image"])
    if image.dtype != tf.uint8:
        image = tf.image.convert_image_dtype(image, tf.uint8, saturate=True)
    channels = image.shape[-1]
    if channels == 1:
        image = tf.image.grayscale_to_rgb(image)
    elif channels is None:
        image = tf.cond(
            tf.shape(image)[-1] == 1,
            lambda: tf.image.grayscale_to_rgb(image),
            lambda: image[..., :3],
        )
    else:
        image = image[..., :3]
    image.set_shape([None, None, 3])
    return {"image": image, "label": tf.cast(features["label"], tf.int32)}


# ---- shared image ops (eval == serving) -------------------------------------


def normalize_image(images: tf.Tensor) -> tf.Tensor:
    """`(images - MEAN_RGB) / STDDEV_RGB` in float32; any leading dims."""
    images = tf.cast(images, tf.float32)
    mean = tf.constant(MEAN_RGB, tf.float32)
    std = tf.constant(STDDEV_RGB, tf.float32)
    return (images - mean) / std


def _center_crop_window(height: tf.Tensor, width: tf.Tensor, fraction: float):
    """Offsets and size of the centered square crop of `fraction` of the short side."""
    short_side = tf.cast(tf.minimum(height, width), tf.float32)
    size = tf.maximum(tf.cast(short_side * fraction, tf.int32), 1)
    offset_y = (height - size + 1) // 2
    offset_x = (width - size + 1) // 2
    return offset_y, offset_x, size


def center_crop_and_resize(
    images: tf.Tensor, output_size: Sequence[int], center_crop_fraction: float
) -> tf.Tensor:
    """Center crop then bilinear resize; `images` is [h, w, c] or [b, h, w, c].

    Returns float32 pixel values (not normalized) of shape
    `[..., output_size[0], output_size[1], c]`.
    """
    shape = tf.shape(images)
    height, width = shape[-3], shape[-2]
    offset_y, offset_x, size = _center_crop_window(height, width, center_crop_fraction)
    cropped = images[..., offset_y : offset_y + size, offset_x : offset_x + size, :]
    resized = tf.image.resize(
        tf.cast(cropped, tf.float32), list(output_size), method="bilinear"
    )
    return resized


def preprocess_for_serving(
    images_uint8: tf.Tensor,
    output_size: Sequence[int],
    center_crop_fraction: float = 0.875,
) -> tf.Tensor:
    """The eval transform, batch-wise: center crop, bilinear resize, normalize.

    Args:
        images_uint8: uint8 `[batch, height, width, 3]`, any height and width.
        output_size: `(height, width)` of the model input.
        center_crop_fraction: fraction of the shorter side kept by the crop.

    Returns:
        float32 `[batch, output_size[0], output_size[1], 3]`, normalized like
        the eval `Parser`'s output.
    """
    return normalize_image(
        center_crop_and_resize(images_uint8, output_size, center_crop_fraction)
    )


def resize_for_serving(
    images_uint8: tf.Tensor,
    output_size: Sequence[int],
    center_crop_fraction: float = 0.875,
) -> tf.Tensor:
    """The crop and resize of the eval transform, rounded back to uint8.

    `normalize_image(resize_for_serving(x))` equals
    `preprocess_for_serving(x)` up to the uint8 rounding (at most 0.5 / 255 of
    a pixel value before normalization).

    Returns:
        uint8 `[batch, output_size[0], output_size[1], 3]`.
    """
    resized = center_crop_and_resize(images_uint8, output_size, center_crop_fraction)
    return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)


# ---- parser -----------------------------------------------------------------


class Parser:
    """Decoded `{"image", "label"}` -> `(normalized float32 image, int32 label)`.

    Args:
        output_size: `(height, width)` of the output image.
        num_classes: labels must lie in `[0, num_classes)`; checked per example.
        is_training: training augmentation (True) or the eval transform.
        aug_random_crop: training only; random resized crop covering
            `crop_area_range` of the image with an aspect ratio in 3/4..4/3,
            falling back to the eval center crop when no crop is found.
            Default True.
        crop_area_range: `(min, max)` fraction of the image area kept by the
            random crop. Default (0.08, 1.0).
        aug_rand_hflip: training only; random horizontal flip. Default True.
        center_crop_fraction: eval crop, fraction of the shorter side.
            Default 0.875.
        seed: op seed of the random crop and flip, or None.

    Call arguments:
        decoded: `{"image": uint8 [h, w, 3], "label": int []}`.

    Returns:
        `(image float32 [height, width, 3], label int32 [])`.

    Example:
    ```python
    import numpy as np
    from official.vision.dataloaders.classification_input import Parser
    parser = Parser(output_size=(16, 16), num_classes=10, is_training=True, seed=1)
    image = np.random.randint(0, 256, (20, 30, 3), np.uint8)
    x, y = parser({"image": image, "label": 7})  # x: (16, 16, 3) float32
    ```
    """

    def __init__(
        self,
        output_size: Sequence[int],
        num_classes: int,
        is_training: bool,
        aug_random_crop: bool = True,
        crop_area_range: Sequence[float] = (0.08, 1.0),
        aug_rand_hflip: bool = True,
        center_crop_fraction: float = 0.875,
        seed: int | None = None,
    ):
        if len(output_size) != 2 or min(output_size) <= 0:
            raise ValueError(
                f"output_size must be (height, width) of positive ints. "
                f"Received: output_size={output_size!r}."
            )
        if (
            len(crop_area_range) != 2
            or not 0.0 < crop_area_range[0] <= crop_area_range[1] <= 1.0
        ):
            raise ValueError(
                "crop_area_range must be (min, max) with 0 < min <= max <= 1. "
                f"Received: crop_area_range={crop_area_range!r}."
            )
        if not 0.0 < center_crop_fraction <= 1.0:
            raise ValueError(
                "center_crop_fraction must be in (0, 1]. Received: "
                f"center_crop_fraction={center_crop_fraction!r}."
            )
        self.output_size = tuple(int(s) for s in output_size)
        self.num_classes = num_classes
        self.is_training = is_training
        self.aug_random_crop = aug_random_crop
        self.crop_area_range = tuple(float(a) for a in crop_area_range)
        self.aug_rand_hflip = aug_rand_hflip
        self.center_crop_fraction = center_crop_fraction
        self.seed = seed

    def __call__(self, decoded: dict[str, Any]) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.convert_to_tensor(decoded["image"])
        label = tf.cast(decoded["label"], tf.int32)
        tf.debugging.assert_non_negative(label, message="label must be >= 0")
        tf.debugging.assert_less(
            label,
            self.num_classes,
            message=f"label must be < num_classes={self.num_classes}",
        )
        if self.is_training:
            image = self._train_transform(image)
        else:
            image = center_crop_and_resize(
                image, self.output_size, self.center_crop_fraction
            )
        image = normalize_image(image)
        image.set_shape([*self.output_size, 3])
        return image, label

    def _train_transform(self, image: tf.Tensor) -> tf.Tensor:
        if self.aug_random_crop:
            image = self._random_crop(image)
        if self.aug_rand_hflip:
            seed = None if self.seed is None else self.seed + 1
            image = tf.image.random_flip_left_right(image, seed=seed)
        if self.aug_random_crop:
            return tf.image.resize(
                tf.cast(image, tf.float32), self.output_size, method="bilinear"
            )
        return center_crop_and_resize(
            image, self.output_size, self.center_crop_fraction
        )

    def _random_crop(self, image: tf.Tensor) -> tf.Tensor:
        """Random resized crop; the center crop when sampling fails."""
        shape = tf.shape(image)
        whole_image = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, shape=[1, 1, 4])
        begin, size, _ = tf.image.sample_distorted_bounding_box(
            shape,
            bounding_boxes=whole_image,
            seed=self.seed,
            min_object_covered=self.crop_area_range[0],
            aspect_ratio_range=ASPECT_RATIO_RANGE,
            area_range=self.crop_area_range,
            max_attempts=_MAX_CROP_ATTEMPTS,
            use_image_if_no_bounding_boxes=True,
        )
        # On failure the op returns the whole image; a crop of the whole image
        # is also not a random crop, so both fall back to the eval crop.
        failed = tf.reduce_all(tf.equal(size[:2], shape[:2]))

        def random_crop():
            return tf.slice(image, begin, size)

        def center_crop():
            offset_y, offset_x, crop = _center_crop_window(
                shape[0], shape[1], self.center_crop_fraction
            )
            return image[offset_y : offset_y + crop, offset_x : offset_x + crop, :]

        return tf.cond(failed, center_crop, random_crop)


# ---- dataset ----------------------------------------------------------------


def build_classification_dataset(
    data: DataConfig,
    model_config: Any,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """`(images, labels)` batches for an image classification task.

    Args:
        data: a `ClassificationDataConfig` (TFRecords of `tf.Example`s via
            `input_path`, or TFDS via `tfds_name`).
        model_config: an `ImageClassificationModelConfig`; its `input_size`
            `[height, width, 3]` and `num_classes` shape the output.
        input_context: from `strategy.distribute_datasets_from_function`.

    Returns:
        A dataset of `(float32 [b, h, w, 3], int32 [b])` with `b` the
        per-replica batch size.
    """
    height, width, channels = model_config.input_size
    if channels != 3:
        raise ValueError(
            "Image classification input is RGB: model.input_size must end with 3 "
            f"channels. Received: input_size={list(model_config.input_size)}."
        )
    parser = Parser(
        output_size=(height, width),
        num_classes=model_config.num_classes,
        is_training=data.is_training,
        aug_random_crop=data.aug_random_crop,
        crop_area_range=data.crop_area_range,
        aug_rand_hflip=data.aug_rand_hflip,
        center_crop_fraction=data.center_crop_fraction,
        seed=data.seed,
    )
    decoder = decode_tfds_example if data.tfds_name else decode_example
    return InputReader(data, decoder, parser).read(input_context)
