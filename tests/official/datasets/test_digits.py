"""Tests of `official.datasets.digits` and `official.datasets.synthetic`."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from official.datasets import digits
from official.datasets.synthetic import write_synthetic_classification_tfrecords
from official.vision.dataloaders.classification_input import decode_example


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    output_dir = str(tmp_path_factory.mktemp("digits"))
    return digits.write_digits_tfrecords(output_dir, image_size=16)


def _decoded(files):
    dataset = tf.data.TFRecordDataset(files).map(decode_example)
    return [(d["image"].numpy(), int(d["label"])) for d in dataset]


def test_files_counts_and_split(written):
    names = sorted(os.listdir(written["output_dir"]))
    assert names == [
        "labels.txt",
        "manifest.json",
        "train-00000-of-00002.tfrecord",
        "train-00001-of-00002.tfrecord",
        "validation-00000-of-00001.tfrecord",
    ]
    assert written["train"]["num_examples"] == 1437
    assert written["validation"]["num_examples"] == 360
    assert (
        written["train"]["num_examples"] + written["validation"]["num_examples"] == 1797
    )
    assert tf.io.gfile.glob(written["train"]["pattern"]) == written["train"]["files"]
    with open(written["labels_path"]) as f:
        assert f.read().split() == [str(i) for i in range(10)]


def test_images_and_labels(written):
    validation = _decoded(written["validation"]["files"])
    train = _decoded(written["train"]["files"])
    assert len(validation) == 360 and len(train) == 1437
    image, _ = validation[0]
    assert image.shape == (16, 16, 3) and image.dtype == np.uint8
    assert (image[..., 0] == image[..., 1]).all() and (
        image[..., 0] == image[..., 2]
    ).all()
    assert image.max() > 200  # Scaled from 0..16 to 0..255.
    labels = np.array([label for _, label in validation])
    # Stratified: every class in validation, 35 or 36 of each.
    assert sorted(set(labels.tolist())) == list(range(10))
    assert np.bincount(labels).min() >= 35
    # The split is fixed: same examples as a fresh split.
    expected = digits.load_split()["validation"][1]
    np.testing.assert_array_equal(labels, expected)


def test_idempotent(written):
    output_dir = written["output_dir"]
    mtimes = {
        n: os.path.getmtime(os.path.join(output_dir, n)) for n in os.listdir(output_dir)
    }
    again = digits.write_digits_tfrecords(output_dir, image_size=16)
    assert again["skipped"] and not written["skipped"]
    assert {k: v for k, v in again.items() if k != "skipped"} == {
        k: v for k, v in written.items() if k != "skipped"
    }
    for name, mtime in mtimes.items():
        assert os.path.getmtime(os.path.join(output_dir, name)) == mtime


def test_rewrites_when_incomplete_or_different(tmp_path):
    output_dir = str(tmp_path)
    first = digits.write_digits_tfrecords(output_dir, image_size=8, num_shards=(1, 1))
    # A truncated file is rewritten.
    with open(first["validation"]["files"][0], "wb") as f:
        f.write(b"")
    second = digits.write_digits_tfrecords(output_dir, image_size=8, num_shards=(1, 1))
    assert not second["skipped"]
    assert len(_decoded(second["validation"]["files"])) == 360
    # A different request is rewritten too.
    third = digits.write_digits_tfrecords(output_dir, image_size=12, num_shards=(1, 1))
    assert not third["skipped"] and third["image_size"] == 12
    with open(os.path.join(output_dir, "manifest.json")) as f:
        assert json.load(f)["image_size"] == 12


@pytest.mark.parametrize("image_format", ["jpeg", "png"])
def test_synthetic_tfrecords(tmp_path, image_format):
    path = str(tmp_path / "synthetic.tfrecord")
    labels = write_synthetic_classification_tfrecords(
        path,
        num_examples=6,
        image_size=10,
        num_classes=3,
        seed=0,
        image_format=image_format,
    )
    decoded = _decoded([path])
    assert [label for _, label in decoded] == labels
    assert all(0 <= label < 3 for label in labels)
    assert decoded[0][0].shape == (10, 10, 3)
    again = write_synthetic_classification_tfrecords(
        str(tmp_path / "again.tfrecord"), 6, 10, 3, seed=0, image_format=image_format
    )
    assert again == labels
    with pytest.raises(ValueError, match="image_format"):
        write_synthetic_classification_tfrecords(path, 1, 4, 2, 0, image_format="gif")
