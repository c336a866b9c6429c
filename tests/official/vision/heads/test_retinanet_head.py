"""RetinaNet head: output layout, prior-probability init, shared convolutions."""

import numpy as np
import pytest

from official.testing.test_case import run_layer_test
from official.vision.heads.retinanet_head import RetinaNetHead


def features():
    rng = np.random.default_rng(0)
    return {
        "3": rng.normal(size=(2, 4, 4, 8)).astype("float32"),
        "4": rng.normal(size=(2, 2, 2, 8)).astype("float32"),
    }


def test_layer_contract():
    run_layer_test(
        RetinaNetHead,
        {
            "min_level": 3,
            "max_level": 4,
            "num_classes": 3,
            "num_anchors_per_location": 2,
            "num_convs": 2,
            "num_filters": 8,
        },
        features(),
        {"cls_outputs": (2, 40, 3), "box_outputs": (2, 40, 4)},
    )


def test_prior_probability_and_shared_weights():
    head = RetinaNetHead(3, 4, num_classes=3, num_anchors_per_location=2, num_convs=2,
                         num_filters=8, prior_prob=0.01)  # fmt: skip
    cls_outputs = head(features())["cls_outputs"]
    probs = 1 / (1 + np.exp(-np.asarray(cls_outputs)))
    assert np.allclose(probs, 0.01, atol=2e-3)
    names = [w.path for w in head.trainable_weights]
    # Convolutions shared by both levels, normalizations per level.
    assert sum("classnet_conv_0" in n for n in names) == 2  # kernel and bias
    assert sum("classnet_norm_3_0" in n for n in names) == 2
    assert sum("classnet_norm_4_0" in n for n in names) == 2
    # 4 x 4 x 2 anchors on level 3 come first: row-major, anchor innermost.
    assert cls_outputs.shape[1] == 4 * 4 * 2 + 2 * 2 * 2


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="prior_prob"):
        RetinaNetHead(prior_prob=1.0)
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        RetinaNetHead(num_classes=0)
