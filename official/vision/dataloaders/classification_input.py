"""Image classification input: decoders and the dataset of `(images, labels)`.

Sources: ImageNet-format `tf.Example`s (`image/encoded` JPEG or PNG bytes,
`image/class/label` int64), class-per-directory image folders, or TFDS
`{"image", "label"}` dicts. Training decodes only the random crop of a JPEG
(`decode_and_crop_jpeg`); the per-example transforms are the `Parser` of
`classification_parser`.

With `mixup_alpha` or `cutmix_alpha` set, training batches carry soft labels:
float32 `[batch, num_classes]` one-hot rows mixed within the batch (label
smoothing stays with the loss: it is linear, so smoothing the mixed labels
equals mixing smoothed ones). Otherwise labels are int32 `[batch]`.

Example:
```python
import numpy as np
import tensorflow as tf
from official.datasets.synthetic import classification_example
from official.vision.dataloaders import classification_input as ci

image = np.random.randint(0, 256, (40, 50, 3), np.uint8)
serialized = classification_example(image, label=3).SerializeToString()
decoded = ci.decode_example(tf.constant(serialized))
assert decoded["image"].shape == (40, 50, 3) and int(decoded["label"]) == 3
```
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from official.core.experiment_config import DataConfig
from official.core.input_reader import InputReader
from official.vision.dataloaders.augment import mixup_cutmix
from official.vision.dataloaders.classification_parser import Parser

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


def read_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parses an ImageNet-format `tf.Example` without decoding the image.

    Returns:
        `{"encoded": string [], "label": int32 []}` for the `Parser`, which
        decodes (in training, only the crop of a JPEG).
    """
    parsed = tf.io.parse_single_example(serialized, _FEATURES)
    return {
        "encoded": parsed["image/encoded"],
        "label": tf.cast(parsed["image/class/label"], tf.int32),
    }


def read_image_folder_record(record: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """An image folder entry of the `InputReader` -> `{"encoded", "label"}`."""
    return {
        "encoded": record["image/encoded"],
        "label": tf.cast(record["image/class/label"], tf.int32),
    }


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


# ---- dataset ----------------------------------------------------------------


def batch_mixer(
    data: DataConfig, num_classes: int
) -> Callable[[Any, tf.Tensor], Any] | None:
    """The batch-level mixup / cutmix of a training split, or None when off.

    Returns:
        `((images, labels), seed) -> (images, soft_labels)` with soft labels
        float32 `[batch, num_classes]`.
    """
    if not data.is_training or not (data.mixup_alpha or data.cutmix_alpha):
        return None
    mixup_alpha, cutmix_alpha = data.mixup_alpha, data.cutmix_alpha

    def mix(batch, seed):
        images, labels = batch
        one_hot = tf.one_hot(labels, num_classes, dtype=tf.float32)
        return mixup_cutmix.mixup_or_cutmix(
            images, one_hot, mixup_alpha, cutmix_alpha, seed=seed
        )

    return mix


def build_classification_dataset(
    data: DataConfig,
    model_config: Any,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """`(images, labels)` batches for an image classification task.

    Args:
        data: a `ClassificationDataConfig` (TFRecords of `tf.Example`s or an
            image folder via `input_path`, or TFDS via `tfds_name`).
        model_config: an `ImageClassificationModelConfig`; its `input_size`
            `[height, width, 3]` and `num_classes` shape the output.
        input_context: from `strategy.distribute_datasets_from_function`.

    Returns:
        A dataset of `(float32 [b, h, w, 3], labels)` with `b` the
        per-replica batch size; labels are int32 `[b]`, or float32
        `[b, num_classes]` soft labels when training with mixup or cutmix.
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
        aug_policy=data.aug_policy,
        randaug_num_layers=data.randaug_num_layers,
        randaug_magnitude=data.randaug_magnitude,
        color_jitter=data.color_jitter,
        scale_jitter_range=data.scale_jitter_range,
        random_erasing_prob=data.random_erasing_prob,
    )
    if data.tfds_name:
        decoder = decode_tfds_example
    elif data.input_format == "image_folder":
        decoder = read_image_folder_record
    else:
        decoder = read_example
    reader = InputReader(
        data,
        decoder,
        parser,
        postprocess_fn=batch_mixer(data, model_config.num_classes),
        stateless_seeds=True,
    )
    return reader.read(input_context)
