"""Class subsets of the embedded digits: relabelling, few-shot picks, files."""

import numpy as np
import pytest
import tensorflow as tf

from official.datasets import digits
from official.datasets.digits_split import select, write_digits_subset_tfrecords


def _labels(pattern):
    feature = {"image/class/label": tf.io.FixedLenFeature([], tf.int64)}
    records = tf.data.TFRecordDataset(tf.io.gfile.glob(pattern))
    return np.array(
        [
            int(tf.io.parse_single_example(r, feature)["image/class/label"])
            for r in records
        ]
    )


def test_select_relabels_in_the_given_order_and_picks_per_class():
    images = np.arange(12).reshape(12, 1)
    labels = np.array([5, 6, 7, 5, 6, 7, 5, 6, 7, 5, 6, 7])
    picked, relabelled = select(images, labels, [7, 5], per_class=2, seed=3)
    assert sorted(relabelled.tolist()) == [0, 0, 1, 1]
    for image, label in zip(picked[:, 0], relabelled):
        assert labels[image] == (7, 5)[label]
    again, _ = select(images, labels, [7, 5], per_class=2, seed=3)
    np.testing.assert_array_equal(picked, again)
    other, _ = select(images, labels, [7, 5], per_class=2, seed=4)
    assert not np.array_equal(picked, other)
    everything, _ = select(images, labels, [6])
    assert everything[:, 0].tolist() == [1, 4, 7, 10]


@pytest.mark.parametrize("classes", [[], [3, 3], [10], [-1], [1.5], [True]], ids=str)
def test_bad_classes(classes):
    with pytest.raises(ValueError, match="distinct digits in 0..9"):
        select(np.zeros((2, 1)), np.array([1, 2]), classes)


def test_too_many_per_class():
    with pytest.raises(ValueError, match="Digit 1 has 1 examples"):
        select(np.zeros((2, 1)), np.array([1, 2]), [1], per_class=2)


def test_writes_the_subsets_once(tmp_path):
    out = str(tmp_path / "d59")
    summary = write_digits_subset_tfrecords(
        out, [5, 6, 7, 8, 9], train_per_class=4, image_size=8
    )
    assert summary["num_classes"] == 5 and not summary["skipped"]
    assert summary["train"]["num_examples"] == 20
    train = _labels(summary["train"]["pattern"])
    assert np.bincount(train).tolist() == [4] * 5
    validation = _labels(summary["validation"]["pattern"])
    expected = np.isin(digits.load_split()["validation"][1], [5, 6, 7, 8, 9]).sum()
    assert len(validation) == expected == 180
    assert (tmp_path / "d59" / "labels.txt").read_text() == "5\n6\n7\n8\n9\n"
    again = write_digits_subset_tfrecords(
        out, [5, 6, 7, 8, 9], train_per_class=4, image_size=8
    )
    assert again["skipped"]
    with pytest.raises(ValueError, match="train_per_class must be an int >= 0"):
        write_digits_subset_tfrecords(out, [1], train_per_class=-1)
