"""`Parser`: one decoded example -> (normalized image, label), with augmentation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from official.vision.dataloaders import classification_preprocessing as cp
from official.vision.dataloaders.augment import autoaugment, random_seeds
from official.vision.dataloaders.augment.color_jitter import color_jitter
from official.vision.dataloaders.augment.random_erasing import random_erasing
from official.vision.dataloaders.augment.scale_jitter import scale_jitter
from official.vision.dataloaders.image_normalization import MEAN_RGB, normalize_image

_MAX_SEED = 2**31 - 1


class Parser:
    """Decoded example -> `(normalized float32 image, int32 label)`.

    Training, in order: the crop (random resized crop covering
    `crop_area_range`; or scale jitter; or the eval center crop), horizontal
    flip, resize to `output_size`, `aug_policy` (AutoAugment v0 or
    RandAugment, on uint8), color jitter, normalization, random erasing.
    Evaluation: center crop of `center_crop_fraction` of the shorter side,
    bilinear resize, normalization (the serving transform).

    Every random draw is stateless, from the per-example `seed` the input
    reader passes (or, called without one, from a seed drawn with op seed
    `seed`): the same seed gives the same example.

    Args:
        output_size: `(height, width)` of the output image.
        num_classes: labels must lie in `[0, num_classes)`; checked per example.
        is_training: training augmentation (True) or the eval transform.
        aug_random_crop: training; random resized crop (3/4..4/3 aspect
            ratio; the center crop when sampling fails). Default True.
        crop_area_range: `(min, max)` fraction of the image area kept by the
            random crop. Default (0.08, 1.0).
        aug_rand_hflip: training; random horizontal flip. Default True.
        center_crop_fraction: eval crop, fraction of the shorter side.
            Default 0.875.
        seed: op seed of the per-call seed drawn when `__call__` gets none.
        aug_policy: "", "autoaugment_v0" or "randaugment". Default "".
        randaug_num_layers: RandAugment's operations per image. Default 2.
        randaug_magnitude: RandAugment's level, 0..10. Default 10.
        color_jitter: brightness, contrast and saturation strength (factors
            in `[1 - s, 1 + s]`); 0 is off. Default 0.
        scale_jitter_range: `(min, max)` scale of the output size; replaces
            the random crop (needs `aug_random_crop=False`). Default () (off).
        random_erasing_prob: probability of erasing a rectangle. Default 0.

    Call arguments:
        decoded: `{"image": uint8 [h, w, 3], "label": int []}` or
            `{"encoded": JPEG/PNG bytes, "label": int []}` (training then
            decodes only the crop of a JPEG).
        seed: optional int `[2]` seed of this example's random draws.

    Returns:
        `(image float32 [height, width, 3], label int32 [])`.

    Example:
    ```python
    import numpy as np
    from official.vision.dataloaders.classification_parser import Parser
    parser = Parser(output_size=(16, 16), num_classes=10, is_training=True,
                    aug_policy="randaugment", random_erasing_prob=0.5)
    image = np.random.randint(0, 256, (20, 30, 3), np.uint8)
    x, y = parser({"image": image, "label": 7}, seed=[0, 1])  # x: (16, 16, 3)
    x2, _ = parser({"image": image, "label": 7}, seed=[0, 1])
    assert np.array_equal(x, x2)
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
        aug_policy: str = "",
        randaug_num_layers: int = 2,
        randaug_magnitude: float = 10.0,
        color_jitter: float = 0.0,
        scale_jitter_range: Sequence[float] = (),
        random_erasing_prob: float = 0.0,
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
        if aug_policy not in autoaugment.POLICIES:
            raise ValueError(
                f"Unknown aug_policy {aug_policy!r}. Valid: "
                f"{', '.join(repr(p) for p in autoaugment.POLICIES)}."
            )
        if scale_jitter_range and (
            len(scale_jitter_range) != 2 or aug_random_crop and is_training
        ):
            raise ValueError(
                "scale_jitter_range must be (min, max) and replaces the random crop: "
                "set aug_random_crop=False with it. Received: scale_jitter_range="
                f"{scale_jitter_range!r}, aug_random_crop={aug_random_crop}."
            )
        self.output_size = tuple(int(s) for s in output_size)
        self.num_classes = num_classes
        self.is_training = is_training
        self.aug_random_crop = aug_random_crop
        self.crop_area_range = tuple(float(a) for a in crop_area_range)
        self.aug_rand_hflip = aug_rand_hflip
        self.center_crop_fraction = center_crop_fraction
        self.seed = seed
        self.aug_policy = aug_policy
        self.randaug_num_layers = randaug_num_layers
        self.randaug_magnitude = randaug_magnitude
        self.color_jitter = color_jitter
        self.scale_jitter_range = tuple(float(s) for s in scale_jitter_range)
        self.random_erasing_prob = random_erasing_prob

    @tf.autograph.experimental.do_not_convert
    def __call__(
        self, decoded: dict[str, Any], seed: tf.Tensor | None = None
    ) -> tuple[tf.Tensor, tf.Tensor]:
        label = tf.cast(decoded["label"], tf.int32)
        in_range = tf.logical_and(label >= 0, label < self.num_classes)
        checked = tf.debugging.Assert(
            in_range,
            [f"label must be in [0, num_classes={self.num_classes}). Received:", label],
        )
        with tf.control_dependencies([checked]):
            label = tf.identity(label)
        if "image" in decoded:
            source = tf.convert_to_tensor(decoded["image"])
            encoded = False
        elif "encoded" in decoded:
            source = tf.convert_to_tensor(decoded["encoded"])
            encoded = True
        else:
            raise KeyError(
                "Parser needs decoded['image'] (uint8 pixels) or decoded['encoded'] "
                f"(image bytes). Received keys: {sorted(decoded)}."
            )
        if self.is_training:
            if seed is None:
                seed = tf.random.uniform(
                    [2], maxval=_MAX_SEED, dtype=tf.int64, seed=self.seed
                )
            image = self._train_transform(source, encoded, seed)
        else:
            image = cp.decode_rgb(source) if encoded else source
            image = normalize_image(
                cp.center_crop_and_resize(
                    image, self.output_size, self.center_crop_fraction
                )
            )
        image.set_shape([*self.output_size, 3])
        return image, label

    def _crop(self, source: tf.Tensor, encoded: bool, seed: tf.Tensor) -> tf.Tensor:
        """The training crop: uint8 at any size, or (scale jitter) float32 at
        `output_size`."""
        if self.scale_jitter_range:
            image = cp.decode_rgb(source) if encoded else source
            return scale_jitter(
                image, self.output_size, self.scale_jitter_range, seed, MEAN_RGB
            )
        if self.aug_random_crop:

            def window_fn(shape):
                return cp.random_crop_window(
                    shape, self.crop_area_range, self.center_crop_fraction, seed
                )

        else:

            def window_fn(shape):
                return cp.center_crop_window(shape, self.center_crop_fraction)

        if encoded:
            return cp.decode_and_crop(source, window_fn)
        return cp.crop(source, window_fn)

    def _train_transform(
        self, source: tf.Tensor, encoded: bool, seed: tf.Tensor
    ) -> tf.Tensor:
        crop_seed, flip_seed, policy_seed, color_seed, erase_seed = random_seeds.split(
            seed, 5
        )
        image = self._crop(source, encoded, crop_seed)
        if self.aug_rand_hflip:  # Before the resize: fewer (uint8) pixels.
            image = tf.image.stateless_random_flip_left_right(image, flip_seed)
        if not self.scale_jitter_range:
            image = tf.image.resize(
                tf.cast(image, tf.float32), self.output_size, method="bilinear"
            )
        if self.aug_policy:
            pixels = tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)
            pixels.set_shape([*self.output_size, 3])
            pixels = autoaugment.apply_policy(
                pixels,
                self.aug_policy,
                self.randaug_num_layers,
                self.randaug_magnitude,
                policy_seed,
            )
            image = tf.cast(pixels, tf.float32)
        if self.color_jitter:
            strength = self.color_jitter
            image = color_jitter(image, strength, strength, strength, seed=color_seed)
        image = normalize_image(image)
        if self.random_erasing_prob:
            image.set_shape([*self.output_size, 3])
            image = random_erasing(image, self.random_erasing_prob, seed=erase_seed)
        return image
