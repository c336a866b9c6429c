"""FPN: levels, shapes, parameter layout, serialization, checkpoint tracking."""

import numpy as np
import pytest

from official.testing.test_case import run_layer_test
from official.vision.decoders.fpn import FPN


def features(size=64, channels=(4, 8, 16, 32)):
    return {
        str(level): np.random.default_rng(level)
        .normal(size=(2, size // 2**level, size // 2**level, c))
        .astype("float32")
        for level, c in zip((2, 3, 4, 5), channels)
    }


def test_layer_contract_and_shapes():
    expected = {str(lv): (2, 64 // 2**lv, 64 // 2**lv, 8) for lv in range(3, 8)}
    expected["6"] = (2, 1, 1, 8)
    expected["7"] = (2, 1, 1, 8)
    run_layer_test(
        FPN,
        {"min_level": 3, "max_level": 7, "num_filters": 8},
        features(),
        expected,
    )


def test_parameter_count_matches_the_layout():
    fpn = FPN(3, 7, num_filters=256)
    fpn(features(64, (256, 512, 1024, 2048)))
    trainable = sum(int(np.prod(w.shape)) for w in fpn.trainable_weights)
    laterals = (512 + 1024 + 2048) * 256 + 3 * 256
    three_by_three = 5 * (9 * 256 * 256 + 256)  # 3 post-hoc, P6, P7
    assert trainable == laterals + three_by_three + 5 * 2 * 256


def test_missing_backbone_level_is_named():
    feats = features()
    del feats["3"]
    with pytest.raises(ValueError, match=r"missing \['3'\]"):
        FPN(3, 5, num_filters=8)(feats)
    with pytest.raises(ValueError, match="min_level"):
        FPN(1, 5)
