"""Anchors: counts and centres per level, sizes and aspect ratios, bad arguments."""

import math

import numpy as np
import pytest

from official.vision.ops import anchor_generator as ag


def test_counts_per_level_and_total():
    # 640 px, P3-P7, 3 scales x 3 ratios: (80^2 + 40^2 + 20^2 + 10^2 + 5^2) x 9.
    anchors = ag.generate_anchors((640, 640), 3, 7, 3, [0.5, 1.0, 2.0], 4.0)
    assert anchors.shape == (76725, 4) and anchors.dtype == np.float32
    assert ag.num_anchors((640, 640), 3, 7, 3, [0.5, 1.0, 2.0]) == 76725
    assert ag.grid_size((100, 60), 5) == (4, 2)  # ceil, as "same" convolutions


def test_centres_follow_the_grid_row_major():
    anchors = ag.generate_anchors((64, 32), 3, 4, num_scales=2, aspect_ratios=[1.0])
    level3 = anchors[: 8 * 4 * 2].reshape(8, 4, 2, 4)
    cy = (level3[..., 0] + level3[..., 2]) / 2
    cx = (level3[..., 1] + level3[..., 3]) / 2
    assert np.allclose(cy[:, 0, 0], (np.arange(8) + 0.5) * 8)
    assert np.allclose(cx[0, :, 1], (np.arange(4) + 0.5) * 8)
    level4 = anchors[8 * 4 * 2 :].reshape(4, 2, 2, 4)
    assert np.allclose((level4[1, 1, 0, 0] + level4[1, 1, 0, 2]) / 2, 24.0)


def test_scales_outer_ratios_inner_and_sizes():
    anchors = ag.level_anchors((16, 16), 3, 2, [0.5, 2.0], 4.0)[0, 0]
    heights = anchors[:, 2] - anchors[:, 0]
    widths = anchors[:, 3] - anchors[:, 1]
    base = [32.0, 32.0, 32 * math.sqrt(2), 32 * math.sqrt(2)]
    assert np.allclose(np.sqrt(heights * widths), base)
    assert np.allclose(widths / heights, [0.5, 2.0, 0.5, 2.0])


@pytest.mark.parametrize(
    "args, match",
    [
        ((0, 3, 1, [1.0], 4.0), "min_level"),
        ((3, 2, 1, [1.0], 4.0), "max_level"),
        ((3, 4, 0, [1.0], 4.0), "num_scales"),
        ((3, 4, 1, [], 4.0), "aspect_ratios"),
        ((3, 4, 1, [1.0], 0.0), "anchor_size"),
    ],
)
def test_bad_arguments_are_named(args, match):
    with pytest.raises(ValueError, match=match):
        ag.generate_anchors((64, 64), *args)
