"""Segmentation input: image and mask stay aligned through every augmentation."""

import numpy as np
import pytest
import tensorflow as tf

from official.core.experiment_config import DataConfig
from official.datasets import shapes
from official.vision.configs.semantic_segmentation import (
    SegmentationDataConfig,
    SemanticSegmentationModelConfig,
)
from official.vision.dataloaders import segmentation_input as si
from official.vision.dataloaders.image_normalization import MEAN_RGB, STDDEV_RGB

PALETTE = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.float32)
MEAN = np.array(MEAN_RGB, np.float32)


def block_pair(height=24, width=40, block=8, seed=0):
    """A mask of constant blocks and the image painting each class's color."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 4, (height // block + 1, width // block + 1))
    mask = np.kron(blocks, np.ones((block, block), np.int64))[:height, :width]
    return PALETTE[mask].astype(np.uint8), mask.astype(np.uint8)[..., None]


def classes_of(image):
    """The palette class nearest to every pixel of a float image."""
    d = np.sum((np.asarray(image)[..., None, :] - PALETTE) ** 2, axis=-1)
    return np.argmin(d, axis=-1)


def position_pair(height=12, width=16):
    """Image encoding each pixel's position; the mask encodes it too."""
    index = np.arange(height * width).reshape(height, width)
    image = np.stack([index // 256, index % 256, np.zeros_like(index)], -1).astype(
        np.uint8
    )
    return image, (index % 200).astype(np.uint8)[..., None]


def mask_from_position(image):
    image = np.asarray(image).astype(np.int64)
    return (image[..., 0] * 256 + image[..., 1]) % 200


def test_crop_takes_the_same_window_from_both():
    image, mask = position_pair()
    for s in range(5):
        out_image, out_mask = si.random_crop_pair(
            image, mask, 5, 7, tf.constant([s, 3], tf.int64)
        )
        assert out_image.shape == (5, 7, 3) and out_mask.shape == (5, 7, 1)
        np.testing.assert_array_equal(mask_from_position(out_image), out_mask[..., 0])


def test_flip_flips_both_or_neither():
    image, mask = position_pair()
    flipped = 0
    for s in range(8):
        out_image, out_mask = si.random_flip_pair(
            image, mask, tf.constant([s, 1], tf.int64)
        )
        np.testing.assert_array_equal(mask_from_position(out_image), out_mask[..., 0])
        flipped += int(np.array_equal(np.asarray(out_mask), mask[:, ::-1]))
    assert 0 < flipped < 8


def test_pad_fills_image_with_the_mean_and_mask_with_ignore():
    image, mask = position_pair(4, 5)
    out_image, out_mask = si.pad_pair(image, mask, 6, 8, ignore_label=255)
    assert out_image.shape == (6, 8, 3)
    np.testing.assert_array_equal(np.asarray(out_image)[:4, :5], image)
    np.testing.assert_array_equal(np.asarray(out_mask)[:4, :5], mask)
    np.testing.assert_allclose(
        np.asarray(out_image)[4:], np.broadcast_to(MEAN, (2, 8, 3)), atol=1e-4
    )
    assert np.all(np.asarray(out_mask)[:, 5:] == 255)


def test_scale_resizes_the_mask_with_nearest_and_keeps_alignment():
    image, mask = block_pair()
    for s in range(4):
        out_image, out_mask = si.random_scale(
            image, mask, 0.5, 2.0, tf.constant([s, 0], tf.int64)
        )
        assert out_image.shape[:2] == out_mask.shape[:2]
        assert set(np.unique(out_mask)) <= set(np.unique(mask))  # No blended labels.
        agreement = np.mean(classes_of(out_image) == np.asarray(out_mask)[..., 0])
        assert agreement > 0.9


@pytest.mark.parametrize("eager", [True, False])
def test_training_parser_keeps_image_and_mask_aligned(eager):
    image, mask = block_pair(40, 40)
    parser = si.SegmentationParser((32, 32), ignore_label=255, is_training=True)
    seeds = tf.constant([[s, 7] for s in range(6)], tf.int64)
    if eager:
        outputs = [parser({"image": image, "label": mask}, seed) for seed in seeds]
    else:
        dataset = tf.data.Dataset.from_tensor_slices(seeds).map(
            lambda seed: parser({"image": image, "label": mask}, seed)
        )
        outputs = list(dataset)
    std = np.array(STDDEV_RGB, np.float32)
    for x, y in outputs:
        assert x.shape == (32, 32, 3) and y.shape == (32, 32) and y.dtype == tf.int32
        raw = np.asarray(x) * std + MEAN
        y = np.asarray(y)
        padded = y == 255
        np.testing.assert_allclose(np.asarray(x)[padded], 0.0, atol=1e-4)
        assert np.mean(classes_of(raw)[~padded] == y[~padded]) > 0.9


def test_training_parser_is_deterministic_per_seed():
    image, mask = block_pair(40, 40)
    parser = si.SegmentationParser((16, 16), is_training=True)
    a = parser({"image": image, "label": mask}, tf.constant([1, 2], tf.int64))
    b = parser({"image": image, "label": mask}, tf.constant([1, 2], tf.int64))
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])


def test_eval_resize_never_interpolates_labels():
    image, mask = block_pair(24, 40)
    mask = np.where(mask > 1, 7, 0).astype(np.uint8)
    parser = si.SegmentationParser((17, 29), is_training=False)
    x, y = parser({"image": image, "label": mask})
    assert x.shape == (17, 29, 3)
    assert set(np.unique(y)) <= {0, 7}


def test_full_resolution_eval_pads_and_checks_the_size():
    image, mask = block_pair(20, 30)
    parser = si.SegmentationParser(
        (16, 16),
        is_training=False,
        resize_eval_groundtruth=False,
        groundtruth_padded_size=(24, 32),
    )
    x, y = parser({"image": image, "label": mask})
    y = np.asarray(y)
    assert x.shape == (24, 32, 3)
    np.testing.assert_array_equal(y[:20, :30], mask[..., 0])
    assert np.all(y[20:] == 255) and np.all(y[:, 30:] == 255)
    small = si.SegmentationParser(
        (16, 16),
        is_training=False,
        resize_eval_groundtruth=False,
        groundtruth_padded_size=(16, 16),
    )
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="larger than groundtruth_padded_size"
    ):
        small({"image": image, "label": mask})


def test_dataset_from_shapes_tfrecords(tmp_path):
    summary = shapes.write_shapes_tfrecords(
        str(tmp_path), num_train=6, num_validation=5, image_size=32
    )
    model = SemanticSegmentationModelConfig(num_classes=4, input_size=[24, 24, 3])
    data = SegmentationDataConfig(
        input_path=summary["validation"]["pattern"],
        global_batch_size=4,
        is_training=False,
        drop_remainder=False,
    )
    batches = list(si.build_segmentation_dataset(data, model, 255))
    assert [b[0].shape[0] for b in batches] == [4, 1]
    assert batches[0][0].shape == (4, 24, 24, 3) and batches[0][1].shape == (4, 24, 24)
    images, masks = shapes.generate(1, 32, seed=0)
    decoded = si.decode_example(
        shapes.segmentation_example(images[0], masks[0]).SerializeToString()
    )
    np.testing.assert_array_equal(decoded["label"][..., 0], masks[0])
    np.testing.assert_array_equal(decoded["image"], images[0])


def test_tfds_source_is_refused():
    model = SemanticSegmentationModelConfig(num_classes=4, input_size=[24, 24, 3])
    data = DataConfig(tfds_name="voc", tfds_split="train")
    with pytest.raises(ValueError, match="reads TFRecords"):
        si.build_segmentation_dataset(data, model, 255)
