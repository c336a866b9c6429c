"""Anchor boxes of a feature pyramid, in input-image pixels.

Level `l` has stride `2**l` and a grid of `ceil(height / 2**l)` x
`ceil(width / 2**l)` locations (the size "same"-padded stride-2
convolutions give); the anchor centres sit at `((i + 0.5) * stride,
(j + 0.5) * stride)`. Every location holds `num_scales * len(aspect_ratios)`
anchors, scales outer and aspect ratios inner: scale `k` has base size
`anchor_size * stride * 2**(k / num_scales)` and an aspect ratio `r`
(width / height) makes it `base / sqrt(r)` high and `base * sqrt(r)` wide.
Anchors are flattened level by level (coarser last), then row-major over
the grid, then by anchor: the order of the RetinaNet head's reshaped
outputs.

Boxes are `[ymin, xmin, ymax, xmax]` float32 pixels.

Example:
```python
from official.vision.ops.anchor_generator import generate_anchors, num_anchors

anchors = generate_anchors((64, 64), 3, 4, num_scales=1, aspect_ratios=[1.0],
                           anchor_size=4.0)
# 8 x 8 locations at level 3, 4 x 4 at level 4, one anchor each.
assert anchors.shape == (80, 4) == (num_anchors((64, 64), 3, 4, 1, [1.0]), 4)
assert anchors[0].tolist() == [-12.0, -12.0, 20.0, 20.0]  # 32 px around (4, 4)
```
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def grid_size(image_size: Sequence[int], level: int) -> tuple[int, int]:
    """`(rows, columns)` of level `level` for an image of `image_size` (h, w)."""
    stride = 2**level
    return math.ceil(image_size[0] / stride), math.ceil(image_size[1] / stride)


def anchors_per_location(num_scales: int, aspect_ratios: Sequence[float]) -> int:
    """`num_scales * len(aspect_ratios)`."""
    return num_scales * len(aspect_ratios)


def num_anchors(
    image_size: Sequence[int],
    min_level: int,
    max_level: int,
    num_scales: int,
    aspect_ratios: Sequence[float],
) -> int:
    """The number of anchors over levels `min_level..max_level`."""
    per_location = anchors_per_location(num_scales, aspect_ratios)
    return sum(
        math.prod(grid_size(image_size, level)) * per_location
        for level in range(min_level, max_level + 1)
    )


def check_anchor_args(
    min_level: int,
    max_level: int,
    num_scales: int,
    aspect_ratios: Sequence[float],
    anchor_size: float,
) -> None:
    """Raises ValueError naming the first bad argument."""
    if not 1 <= min_level <= max_level:
        raise ValueError(
            f"Anchor levels need 1 <= min_level <= max_level. Received: "
            f"min_level={min_level}, max_level={max_level}."
        )
    if num_scales < 1:
        raise ValueError(f"num_scales must be >= 1. Received: {num_scales}.")
    if not aspect_ratios or min(aspect_ratios) <= 0:
        raise ValueError(
            f"aspect_ratios must be a non-empty list of positive numbers (width / "
            f"height). Received: {list(aspect_ratios)}."
        )
    if anchor_size <= 0:
        raise ValueError(f"anchor_size must be > 0. Received: {anchor_size}.")


def level_anchors(
    image_size: Sequence[int],
    level: int,
    num_scales: int,
    aspect_ratios: Sequence[float],
    anchor_size: float,
) -> np.ndarray:
    """float32 `[rows, columns, anchors_per_location, 4]` anchors of one level."""
    stride = 2**level
    rows, columns = grid_size(image_size, level)
    shapes = []
    for scale in range(num_scales):
        base = anchor_size * stride * 2.0 ** (scale / num_scales)
        for ratio in aspect_ratios:
            shapes.append((base / math.sqrt(ratio), base * math.sqrt(ratio)))
    heights, widths = np.asarray(shapes, np.float64).T
    cy = (np.arange(rows, dtype=np.float64) + 0.5) * stride
    cx = (np.arange(columns, dtype=np.float64) + 0.5) * stride
    cy = cy[:, None, None]
    cx = cx[None, :, None]
    boxes = np.stack(
        np.broadcast_arrays(
            cy - heights / 2, cx - widths / 2, cy + heights / 2, cx + widths / 2
        ),
        axis=-1,
    )
    return boxes.astype(np.float32)


def generate_anchors(
    image_size: Sequence[int],
    min_level: int,
    max_level: int,
    num_scales: int = 3,
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    anchor_size: float = 4.0,
) -> np.ndarray:
    """float32 `[num_anchors, 4]` anchors (ymin, xmin, ymax, xmax pixels).

    Args:
        image_size: `(height, width)` of the model input.
        min_level: finest pyramid level (stride `2**min_level`).
        max_level: coarsest level.
        num_scales: octave scales per location (`2**(k / num_scales)`).
        aspect_ratios: width / height of the anchors at each scale.
        anchor_size: base anchor side in units of the level's stride.
    """
    check_anchor_args(min_level, max_level, num_scales, aspect_ratios, anchor_size)
    return np.concatenate(
        [
            level_anchors(
                image_size, level, num_scales, aspect_ratios, anchor_size
            ).reshape(-1, 4)
            for level in range(min_level, max_level + 1)
        ]
    )
