"""Tests of `official.vision.dataloaders.augment`.

Every function runs both eagerly and inside `Dataset.map` (STYLE R16); each
is checked for shape, dtype, value range, reproducibility with a seed, and
(mixup / cutmix) the label mass.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageEnhance, ImageOps

from official.vision.dataloaders.augment import augment_ops as ops
from official.vision.dataloaders.augment import autoaugment, mixup_cutmix
from official.vision.dataloaders.augment.color_jitter import color_jitter
from official.vision.dataloaders.augment.random_erasing import random_erasing
from official.vision.dataloaders.augment.scale_jitter import scale_jitter

MODES = ["eager", "map"]


def _run(fn, inputs, mode: str):
    """`fn(inputs)` eagerly, or as the single element of a mapped dataset."""
    if mode == "eager":
        return fn(inputs)
    # `map` spreads a tuple over arguments: pack it again.
    mapped = tf.data.Dataset.from_tensors(inputs).map(
        lambda *parts: fn(parts if len(parts) > 1 else parts[0])
    )
    return next(iter(mapped))


def _image(height=24, width=20, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)


# ---- AutoAugment / RandAugment -----------------------------------------------

OPERATIONS = sorted(
    set(autoaugment.RANDAUGMENT_OPS)
    | {name for pairs in autoaugment.POLICY_V0 for name, _, _ in pairs}
)


@pytest.mark.parametrize("mode", MODES)
def test_every_operation_keeps_shape_and_dtype(mode):
    image = tf.constant(_image())

    def apply_all(x):  # One trace for all operations inside `map`.
        seed = tf.constant([1, 2])
        level = tf.constant(7.0)
        return {
            name: autoaugment._operation(name, level, seed, 0.45, 0.18)(x)
            for name in OPERATIONS
        }

    outputs = _run(apply_all, image, mode)
    assert sorted(outputs) == OPERATIONS
    for name, out in outputs.items():
        assert out.shape == image.shape and out.dtype == tf.uint8, name
    changed = [n for n, out in outputs.items() if not np.array_equal(out, image)]
    assert len(changed) == len(OPERATIONS)


def test_operations_match_pillow():
    image = _image(17, 13, seed=1)
    pil = Image.fromarray(image)
    exact = {
        "equalize": (ops.equalize(image), ImageOps.equalize(pil)),
        "autocontrast": (ops.autocontrast(image), ImageOps.autocontrast(pil)),
        "invert": (ops.invert(image), ImageOps.invert(pil)),
        "posterize": (ops.posterize(image, 3), ImageOps.posterize(pil, 3)),
        "solarize": (ops.solarize(image, 100), ImageOps.solarize(pil, 100)),
    }
    for name, (ours, theirs) in exact.items():
        np.testing.assert_array_equal(ours.numpy(), np.asarray(theirs), err_msg=name)
    enhanced = {
        "color": (ops.color, ImageEnhance.Color),
        "contrast": (ops.contrast, ImageEnhance.Contrast),
        "brightness": (ops.brightness, ImageEnhance.Brightness),
        "sharpness": (ops.sharpness, ImageEnhance.Sharpness),
    }
    for name, (ours, theirs) in enhanced.items():
        for factor in (0.1, 0.7, 1.6):
            got = ours(image, factor).numpy().astype(int)
            want = np.asarray(theirs(pil).enhance(factor)).astype(int)
            # Pillow's integer gray levels and rounding: within 2 levels.
            assert np.abs(got - want).max() <= 2, (name, factor)


def test_geometric_operations():
    image = _image(8, 8)
    np.testing.assert_array_equal(ops.rotate(image, 0.0).numpy(), image)
    np.testing.assert_array_equal(ops.rotate(image, 90.0).numpy(), np.rot90(image))
    np.testing.assert_array_equal(ops.shear_x(image, 0.0).numpy(), image)
    moved = ops.translate_x(image, 2.0).numpy()
    np.testing.assert_array_equal(moved[:, 2:], image[:, :-2])
    assert (moved[:, :2] == ops.FILL_VALUE).all()
    moved = ops.translate_y(image, -3.0).numpy()
    np.testing.assert_array_equal(moved[:-3], image[3:])
    cut = ops.cutout(image, 4, 0, 0).numpy()
    assert (cut[:2, :2] == ops.FILL_VALUE).all()
    np.testing.assert_array_equal(cut[2:], image[2:])


def _over_seeds(fn, seeds, mode: str) -> list[np.ndarray]:
    """`fn(seed)` for each seed: eagerly, or in one mapped dataset (one trace)."""
    seeds = tf.constant(seeds)
    if mode == "eager":
        return [fn(seed).numpy() for seed in seeds]
    return [out.numpy() for out in tf.data.Dataset.from_tensor_slices(seeds).map(fn)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("policy", ["randaugment", "autoaugment_v0"])
def test_policies_are_reproducible_with_a_seed(policy, mode):
    image = tf.constant(_image(32, 32))
    seeds = [[3, 4], [3, 4]] + [[s, 0] for s in range(6)]
    outputs = _over_seeds(
        lambda seed: autoaugment.apply_policy(image, policy, 2, 9.0, seed), seeds, mode
    )
    assert outputs[0].shape == (32, 32, 3) and outputs[0].dtype == np.uint8
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert any(not np.array_equal(outputs[2], o) for o in outputs[3:])
    assert any(not np.array_equal(image.numpy(), o) for o in outputs)


def test_policy_errors_list_the_choices():
    with pytest.raises(ValueError, match="randaugment"):
        autoaugment.apply_policy(_image(), "autoaug", 2, 9.0)
    with pytest.raises(ValueError, match="magnitude"):
        autoaugment.randaugment(_image(), 2, 11.0)
    with pytest.raises(TypeError, match="uint8"):
        autoaugment.randaugment(np.zeros((4, 4, 3), np.float32))


# ---- color jitter -------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_color_jitter_range_shape_and_seed(mode):
    image = tf.constant(_image())

    def jitter(seed):
        return _run(lambda x: color_jitter(x, 0.4, 0.4, 0.4, 0.1, seed), image, mode)

    out = jitter(tf.constant([1, 1]))
    assert out.shape == image.shape and out.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(out)) and float(tf.reduce_max(out)) <= 255.0
    np.testing.assert_array_equal(out.numpy(), jitter(tf.constant([1, 1])).numpy())
    assert not np.allclose(out.numpy(), jitter(tf.constant([2, 1])).numpy())
    unchanged = _run(lambda x: color_jitter(x, seed=[0, 0]), image, mode)
    np.testing.assert_allclose(unchanged.numpy(), _image(), atol=1e-3)
    with pytest.raises(ValueError, match="hue"):
        color_jitter(image, hue=0.6)


# ---- random erasing -----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_random_erasing_area_and_seed(mode):
    image = tf.ones((32, 32, 3))

    def erase(seed, probability=1.0, fill="zero"):
        fn = lambda x: random_erasing(x, probability, fill=fill, seed=seed)  # noqa: E731
        return _run(fn, image, mode).numpy()

    for s in range(5):
        out = erase(tf.constant([s, 7]))
        erased = (out == 0).all(-1)
        assert out.shape == (32, 32, 3) and out.dtype == np.float32
        assert 1 <= erased.sum() <= 32 * 32 / 3 + 32  # area_range (0.02, 1/3).
        rows, cols = np.nonzero(erased)
        assert erased[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()
    np.testing.assert_array_equal(
        erase([1, 2], fill="normal"), erase([1, 2], fill="normal")
    )
    np.testing.assert_array_equal(erase([1, 2], probability=0.0), image.numpy())
    with pytest.raises(TypeError, match="float"):
        random_erasing(np.zeros((4, 4, 3), np.uint8))


# ---- scale jitter -------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_scale_jitter_shapes_crop_and_pad(mode):
    image = tf.constant(_image(30, 40))

    def jitter(scale, seed=(0, 0), pad=0.0):
        fn = lambda x: scale_jitter(x, (20, 20), scale, tf.constant(seed), pad)  # noqa: E731
        return _run(fn, image, mode).numpy()

    # Scale 1: the image fits 20 x 20 as 15 x 20, then 5 padded rows.
    out = jitter((1.0, 1.0), pad=7.0)
    assert out.shape == (20, 20, 3) and out.dtype == np.float32
    expected = tf.image.resize(tf.cast(image, tf.float32), (15, 20)).numpy()
    np.testing.assert_allclose(out[:15], expected, atol=1e-4)
    assert (out[15:] == 7.0).all()
    # Scale 2: 30 x 40 resized to 30 x 40, a random 20 x 20 window of it.
    big = jitter((2.0, 2.0), seed=(1, 2))
    assert big.shape == (20, 20, 3) and not (big == 0).all(-1).any()
    np.testing.assert_array_equal(big, jitter((2.0, 2.0), seed=(1, 2)))
    assert any(
        not np.array_equal(big, jitter((2.0, 2.0), seed=(s, 9))) for s in range(4)
    )


# ---- mixup and cutmix ---------------------------------------------------------


def _batch(batch=6, num_classes=4, seed=0):
    images = tf.random.stateless_uniform([batch, 8, 8, 3], seed=[seed, 0])
    labels = tf.one_hot(tf.range(batch) % num_classes, num_classes)
    return images, labels


@pytest.mark.parametrize("mode", MODES)
def test_mixup_mixes_images_and_labels_alike(mode):
    images, labels = _batch()
    mixed, soft = _run(
        lambda b: mixup_cutmix.mixup(b[0], b[1], 0.4, seed=[5, 6]),
        (images, labels),
        mode,
    )
    assert mixed.shape == images.shape and soft.shape == (6, 4)
    np.testing.assert_allclose(tf.reduce_sum(soft, -1), 1.0, atol=1e-6)
    lam = float(soft[0, 0])  # Example 0 (class 0) pairs with example 5 (class 1).
    expected = lam * images[0] + (1 - lam) * images[5]
    np.testing.assert_allclose(mixed[0].numpy(), expected.numpy(), atol=1e-5)
    again = mixup_cutmix.mixup(images, labels, 0.4, seed=[5, 6])
    np.testing.assert_array_equal(again[0].numpy(), mixed.numpy())


@pytest.mark.parametrize("mode", MODES)
def test_cutmix_label_weights_are_the_pasted_area(mode):
    images, labels = _batch()
    mixed, soft = _run(
        lambda b: mixup_cutmix.cutmix(b[0], b[1], 1.0, seed=[1, 3]),
        (images, labels),
        mode,
    )
    np.testing.assert_allclose(tf.reduce_sum(soft, -1), 1.0, atol=1e-6)
    from_partner = np.all(mixed[0].numpy() == images[5].numpy(), axis=-1)
    from_self = np.all(mixed[0].numpy() == images[0].numpy(), axis=-1)
    assert (from_partner | from_self).all()
    np.testing.assert_allclose(float(soft[0, 1]), from_partner.mean(), atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_mixup_or_cutmix_with_label_smoothing(mode):
    images, labels = _batch(num_classes=5)

    def mix(batch):
        return mixup_cutmix.mixup_or_cutmix(
            batch[0], batch[1], 0.2, 1.0, seed=[2, 2], label_smoothing=0.1
        )

    mixed, soft = _run(mix, (images, labels), mode)
    assert mixed.shape == images.shape and soft.dtype == tf.float32
    np.testing.assert_allclose(tf.reduce_sum(soft, -1), 1.0, atol=1e-6)
    assert float(tf.reduce_min(soft)) >= 0.1 / 5 - 1e-6
    # switch_prob picks the method: cutmix keeps pixel values, mixup blends.
    only_cutmix = mixup_cutmix.mixup_or_cutmix(images, labels, 0.2, 1.0, 1.0, [0, 1])
    partner = images.numpy()[::-1]
    pixels = only_cutmix[0].numpy()
    assert np.all((pixels == images.numpy()).all(-1) | (pixels == partner).all(-1))
    only_mixup = mixup_cutmix.mixup_or_cutmix(images, labels, 0.2, 1.0, 0.0, [0, 1])
    assert not np.all((only_mixup[0].numpy() == images.numpy()).all(-1))
    smoothed = mixup_cutmix.mixup_or_cutmix(
        images, labels, 0.0, 0.0, label_smoothing=0.2
    )
    np.testing.assert_allclose(smoothed[1].numpy(), labels.numpy() * 0.8 + 0.04)


def test_mixup_needs_batched_one_hot_labels():
    with pytest.raises(ValueError, match="one-hot labels"):
        mixup_cutmix.mixup(tf.zeros([2, 4, 4, 3]), tf.constant([0, 1]), 0.2)
    with pytest.raises(ValueError, match="alpha"):
        mixup_cutmix.sample_beta(0.0, tf.constant([0, 0]))
