"""The synthetic shapes dataset: exact masks, determinism, idempotent writing."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from official.datasets import shapes
from official.vision.dataloaders.segmentation_input import decode_example


def test_masks_are_exact_and_cover_every_class():
    images, masks = shapes.generate(64, image_size=32, seed=3)
    assert images.dtype == np.uint8 and masks.dtype == np.uint8
    assert set(np.unique(masks)) == {0, 1, 2, 3}
    # Inside one shape the image has one color (plus noise): a shape's pixels
    # differ from their mean far less than shapes differ from the background.
    image, mask = images[0].astype(np.float32), masks[0]
    for kind in set(np.unique(mask)) - {0}:
        assert np.std(image[mask == kind], axis=0).max() < 40


def test_generation_is_deterministic():
    a = shapes.generate(4, image_size=24, seed=1)
    b = shapes.generate(4, image_size=24, seed=1)
    c = shapes.generate(4, image_size=24, seed=2)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_write_is_idempotent_and_readable(tmp_path):
    out = str(tmp_path)
    first = shapes.write_shapes_tfrecords(
        out, num_train=5, num_validation=3, image_size=16
    )
    assert not first["skipped"] and first["train"]["num_examples"] == 5
    again = shapes.write_shapes_tfrecords(
        out, num_train=5, num_validation=3, image_size=16
    )
    assert again["skipped"]
    with open(os.path.join(out, "labels.txt")) as f:
        assert f.read().split() == list(shapes.CLASS_NAMES)
    with open(os.path.join(out, "manifest.json")) as f:
        assert json.load(f)["image_size"] == 16
    records = list(tf.data.TFRecordDataset(first["validation"]["files"]))
    decoded = decode_example(records[0])
    assert decoded["image"].shape == (16, 16, 3) and decoded["label"].shape == (
        16,
        16,
        1,
    )


@pytest.mark.parametrize(
    "kwargs,message",
    [({"image_size": 8}, "image_size must be >= 16"), ({"num_train": 0}, "num_train")],
)
def test_bad_arguments_are_named(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        shapes.write_shapes_tfrecords(str(tmp_path), **kwargs)
