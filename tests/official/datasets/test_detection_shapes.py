"""Synthetic detection shapes: exact boxes, determinism, idempotent writing."""

import numpy as np
import pytest

from official.datasets import detection_shapes


def test_boxes_are_the_exact_extent_of_each_object():
    rng = np.random.default_rng(3)
    for _ in range(10):
        image, boxes, classes = detection_shapes.generate_one(48, rng)
        assert 1 <= len(classes) <= detection_shapes.MAX_OBJECTS
        assert set(classes.tolist()) <= {1, 2, 3}
        assert (boxes >= 0).all() and (boxes <= 48).all()
        assert (boxes[:, 2:] - boxes[:, :2] >= 4).all()
    # The painted mask of a shape and its box agree pixel for pixel.
    mask = detection_shapes._shape_mask(2, 40, np.random.default_rng(0))
    y0, x0, y1, x1 = detection_shapes._box(mask).astype(int)
    assert mask[y0:y1, x0:x1].all() and mask.sum() == (y1 - y0) * (x1 - x0)


def test_writing_is_deterministic_and_idempotent(tmp_path):
    first = detection_shapes.write_detection_shapes(
        str(tmp_path), num_train=6, num_validation=3, image_size=32
    )
    again = detection_shapes.write_detection_shapes(
        str(tmp_path), num_train=6, num_validation=3, image_size=32
    )
    assert not first["skipped"] and again["skipped"]
    assert first["train"]["num_examples"] == 6
    with pytest.raises(ValueError, match="image_size must be >= 32"):
        detection_shapes.write_detection_shapes(str(tmp_path), image_size=16)
