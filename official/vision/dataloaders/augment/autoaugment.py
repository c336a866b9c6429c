"""AutoAugment (the v0 policy) and RandAugment on uint8 images.

AutoAugment v0 (Cubuk et al., 2019, the ImageNet policy as published with the
TPU EfficientNet code): one of 25 sub-policies is drawn uniformly; each
applies two operations, each with its own probability and magnitude level.
RandAugment (Cubuk et al., 2020): `num_layers` times, one operation is drawn
uniformly from 16 (or none, with the same chance as any one operation) and
applied at `magnitude`.

Levels run from 0 to `MAX_LEVEL` (10) and map to arguments as in the
reference implementation: rotate up to 30 degrees, shear up to 0.3, translate
up to `translate_fraction` of the image side, enhancement factors 0.1..1.9,
solarize threshold 256..0 (inverted: level 10 solarizes most), solarize-add
up to 110, cutout up to `cutout_fraction` of the shorter side. Signed
operations flip their sign with probability 1/2. Posterize keeps
`4 + level * 4 / 10` bits (the published 4..8 range; level 0 keeps 4 bits
and the image recognizable, unlike the TPU code's 0..4).

Example:
```python
import numpy as np
import tensorflow as tf
from official.vision.dataloaders.augment import autoaugment

image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)
a = autoaugment.randaugment(image, num_layers=2, magnitude=9, seed=[1, 2])
b = autoaugment.randaugment(image, num_layers=2, magnitude=9, seed=[1, 2])
assert a.dtype == tf.uint8 and np.array_equal(a, b)
c = autoaugment.autoaugment_v0(image, seed=tf.constant([3, 4]))
assert c.shape == (32, 32, 3)
```
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

from official.vision.dataloaders.augment import augment_ops as ops
from official.vision.dataloaders.augment import random_seeds

# ClassificationDataConfig.aug_policy values ("" = none).
POLICIES = ("", "autoaugment_v0", "randaugment")
MAX_LEVEL = 10.0

# (operation, probability, level) pairs of the v0 ImageNet policy.
POLICY_V0 = (
    (("Equalize", 0.8, 1), ("ShearY", 0.8, 4)),
    (("Color", 0.4, 9), ("Equalize", 0.6, 3)),
    (("Color", 0.4, 1), ("Rotate", 0.6, 8)),
    (("Solarize", 0.8, 3), ("Equalize", 0.4, 7)),
    (("Solarize", 0.4, 2), ("Solarize", 0.6, 2)),
    (("Color", 0.2, 0), ("Equalize", 0.8, 8)),
    (("Equalize", 0.4, 8), ("SolarizeAdd", 0.8, 3)),
    (("ShearX", 0.2, 9), ("Rotate", 0.6, 8)),
    (("Color", 0.6, 1), ("Equalize", 1.0, 2)),
    (("Invert", 0.4, 9), ("Rotate", 0.6, 0)),
    (("Equalize", 1.0, 9), ("ShearY", 0.6, 3)),
    (("Color", 0.4, 7), ("Equalize", 0.6, 0)),
    (("Posterize", 0.4, 6), ("AutoContrast", 0.4, 7)),
    (("Solarize", 0.6, 8), ("Color", 0.6, 9)),
    (("Solarize", 0.2, 4), ("Rotate", 0.8, 9)),
    (("Rotate", 1.0, 7), ("TranslateY", 0.8, 9)),
    (("ShearX", 0.0, 0), ("Solarize", 0.8, 4)),
    (("ShearY", 0.8, 0), ("Color", 0.6, 4)),
    (("Color", 1.0, 0), ("Rotate", 0.6, 2)),
    (("Equalize", 0.8, 4), ("Equalize", 0.0, 8)),
    (("Equalize", 1.0, 4), ("AutoContrast", 0.6, 2)),
    (("ShearY", 0.4, 7), ("SolarizeAdd", 0.6, 7)),
    (("Posterize", 0.8, 2), ("Solarize", 0.6, 10)),
    (("Solarize", 0.6, 8), ("Equalize", 0.6, 1)),
    (("Color", 0.8, 6), ("Rotate", 0.4, 5)),
)

RANDAUGMENT_OPS = (
    "AutoContrast",
    "Equalize",
    "Invert",
    "Rotate",
    "Posterize",
    "Solarize",
    "Color",
    "Contrast",
    "Brightness",
    "Sharpness",
    "ShearX",
    "ShearY",
    "TranslateX",
    "TranslateY",
    "Cutout",
    "SolarizeAdd",
)


def _signed(value: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    return tf.where(random_seeds.uniform(seed) < 0.5, -value, value)


def _operation(
    name: str,
    level: tf.Tensor,
    seed: tf.Tensor,
    translate_fraction: float,
    cutout_fraction: float,
) -> Callable[[tf.Tensor], tf.Tensor]:
    """`image -> image` for operation `name` at `level` (0..MAX_LEVEL)."""
    fraction = tf.cast(level, tf.float32) / MAX_LEVEL
    sign_seed, y_seed, x_seed = random_seeds.split(seed, 3)

    def side(image, axis):
        return tf.cast(tf.shape(image)[axis], tf.float32)

    def enhance(fn):
        return lambda image: fn(image, fraction * 1.8 + 0.1)

    def signed(fn, magnitude):
        return lambda image: fn(image, _signed(magnitude(image), sign_seed))

    def cutout(image):
        shape = tf.shape(image)
        short = tf.minimum(side(image, 0), side(image, 1))
        size = tf.cast(fraction * cutout_fraction * short, tf.int32) * 2
        cy = tf.random.stateless_uniform([], y_seed, 0, shape[0], tf.int32)
        cx = tf.random.stateless_uniform([], x_seed, 0, shape[1], tf.int32)
        return ops.cutout(image, size, cy, cx)

    table = {
        "AutoContrast": ops.autocontrast,
        "Equalize": ops.equalize,
        "Invert": ops.invert,
        "Rotate": signed(ops.rotate, lambda image: fraction * 30.0),
        "Posterize": lambda image: ops.posterize(
            image, 4 + tf.cast(fraction * 4.0, tf.uint8)
        ),
        "Solarize": lambda image: ops.solarize(
            image, tf.cast(256.0 - fraction * 256.0, tf.int32)
        ),
        "SolarizeAdd": lambda image: ops.solarize_add(
            image, tf.cast(fraction * 110.0, tf.int32)
        ),
        "Color": enhance(ops.color),
        "Contrast": enhance(ops.contrast),
        "Brightness": enhance(ops.brightness),
        "Sharpness": enhance(ops.sharpness),
        "ShearX": signed(ops.shear_x, lambda image: fraction * 0.3),
        "ShearY": signed(ops.shear_y, lambda image: fraction * 0.3),
        "TranslateX": signed(
            ops.translate_x,
            lambda image: fraction * translate_fraction * side(image, 1),
        ),
        "TranslateY": signed(
            ops.translate_y,
            lambda image: fraction * translate_fraction * side(image, 0),
        ),
        "Cutout": cutout,
    }
    return table[name]


def _check_image(image) -> tf.Tensor:
    image = tf.convert_to_tensor(image)
    if image.dtype != tf.uint8 or image.shape.rank != 3:
        raise TypeError(
            "AutoAugment and RandAugment take one uint8 [height, width, channels] "
            f"image. Received {image.dtype.name} of shape {image.shape}."
        )
    return image


def _apply_one_of(
    image: tf.Tensor,
    names: Sequence[str],
    index: tf.Tensor,
    level: tf.Tensor,
    seed: tf.Tensor,
    translate_fraction: float,
    cutout_fraction: float,
) -> tf.Tensor:
    """Applies operation `names[index]` at `level`; `index == len(names)`: none.

    One `switch_case` over the distinct operations keeps the traced graph
    small: a policy's table of (operation, probability, level) entries is
    looked up with tensors, not built into a branch per entry.
    """

    def branch(fn):
        return lambda: fn(image)

    branches = [
        branch(_operation(name, level, seed, translate_fraction, cutout_fraction))
        for name in names
    ]
    branches.append(lambda: tf.identity(image))
    return tf.ensure_shape(tf.switch_case(index, branches), image.shape)


@tf.autograph.experimental.do_not_convert
def autoaugment_v0(
    image,
    seed: tf.Tensor | None = None,
    translate_fraction: float = 0.45,
) -> tf.Tensor:
    """AutoAugment with the v0 ImageNet policy.

    Args:
        image: uint8 `[height, width, channels]`.
        seed: int `[2]` seed of the stateless draws, or None.
        translate_fraction: largest translation, as a fraction of the side.
            Default 0.45 (150 of 331 pixels, as published).

    Returns:
        The augmented uint8 image, same shape.
    """
    image = _check_image(image)
    names = sorted({name for pairs in POLICY_V0 for name, _, _ in pairs})
    operation = tf.constant(
        [[names.index(n) for n, _, _ in pairs] for pairs in POLICY_V0]
    )
    probability = tf.constant([[p for _, p, _ in pairs] for pairs in POLICY_V0])
    level = tf.constant([[float(v) for _, _, v in pairs] for pairs in POLICY_V0])
    choice_seed, *slot_seeds = random_seeds.split(seed, 5)
    chosen = tf.random.stateless_uniform(
        [], choice_seed, 0, len(POLICY_V0), dtype=tf.int32
    )
    for slot in range(2):
        apply_seed, op_seed = slot_seeds[2 * slot], slot_seeds[2 * slot + 1]
        applied = random_seeds.uniform(apply_seed) < probability[chosen, slot]
        index = tf.where(applied, operation[chosen, slot], len(names))
        image = _apply_one_of(
            image, names, index, level[chosen, slot], op_seed, translate_fraction, 0.0
        )
    return image


@tf.autograph.experimental.do_not_convert
def randaugment(
    image,
    num_layers: int = 2,
    magnitude: float = 10.0,
    seed: tf.Tensor | None = None,
    translate_fraction: float = 0.45,
    cutout_fraction: float = 0.18,
) -> tf.Tensor:
    """RandAugment: `num_layers` operations drawn uniformly, at `magnitude`.

    Args:
        image: uint8 `[height, width, channels]`.
        num_layers: operations applied in sequence (each may be "none").
        magnitude: level 0..10 of every operation.
        seed: int `[2]` seed of the stateless draws, or None.
        translate_fraction: largest translation, as a fraction of the side.
            Default 0.45.
        cutout_fraction: largest cutout half-side, as a fraction of the
            shorter side. Default 0.18 (40 of 224 pixels).

    Returns:
        The augmented uint8 image, same shape.
    """
    image = _check_image(image)
    if num_layers < 1 or not 0.0 <= magnitude <= MAX_LEVEL:
        raise ValueError(
            f"randaugment needs num_layers >= 1 and 0 <= magnitude <= {MAX_LEVEL:g}. "
            f"Received: num_layers={num_layers}, magnitude={magnitude}."
        )
    level = tf.constant(float(magnitude))
    for layer_seed in random_seeds.split(seed, num_layers):
        choice_seed, op_seed = random_seeds.split(layer_seed, 2)
        # One more outcome than operations: the last one leaves the image.
        index = tf.random.stateless_uniform(
            [], choice_seed, 0, len(RANDAUGMENT_OPS) + 1, dtype=tf.int32
        )
        image = _apply_one_of(
            image,
            RANDAUGMENT_OPS,
            index,
            level,
            op_seed,
            translate_fraction,
            cutout_fraction,
        )
    return image


@tf.autograph.experimental.do_not_convert
def apply_policy(
    image,
    policy: str,
    num_layers: int,
    magnitude: float,
    seed: tf.Tensor | None = None,
) -> tf.Tensor:
    """Applies a `POLICIES` entry ("" returns the image unchanged)."""
    if policy not in POLICIES:
        raise ValueError(
            f"Unknown augmentation policy {policy!r}. Valid: "
            f"{', '.join(repr(p) for p in POLICIES)}."
        )
    if policy == "autoaugment_v0":
        return autoaugment_v0(image, seed)
    if policy == "randaugment":
        return randaugment(image, num_layers, magnitude, seed)
    return tf.convert_to_tensor(image)
