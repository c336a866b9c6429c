"""COCO instance segmentations (polygons, RLE) to binary masks.

A COCO `segmentation` is a list of polygons (`[[x1, y1, x2, y2, ...], ...]`
in pixels), an uncompressed RLE (`{"size": [h, w], "counts": [int, ...]}`,
used for crowds) or a compressed RLE (`counts` a string). RLE runs alternate
zeros and ones, start with zeros, and walk the mask in column-major order.

`pycocotools` (the `coco` extra) does the work when it is installed; without
it, RLE is decoded here with NumPy (bit-exact) and polygons are rasterized
with Pillow (pixel centers inside the polygon or on its outline; pycocotools'
rasterizer can differ by one pixel along the outline).

Example:
```python
import numpy as np
from official.datasets import coco_masks

square = [[1.0, 1.0, 5.0, 1.0, 5.0, 5.0, 1.0, 5.0]]
mask = coco_masks.segmentation_to_mask(square, height=8, width=8)
assert mask.dtype == np.uint8 and mask[3, 3] == 1 and mask[7, 7] == 0
rle = {"size": [2, 3], "counts": [1, 2, 3]}  # column-major: 0, 1, 1, 0, 0, 0
expected = np.array([[0, 1, 0], [1, 0, 0]], np.uint8)
np.testing.assert_array_equal(coco_masks.segmentation_to_mask(rle, 2, 3), expected)
```
"""

from __future__ import annotations

from typing import Any

import numpy as np


def have_pycocotools() -> bool:
    """Whether `pycocotools` can be imported."""
    try:
        import pycocotools.mask  # noqa: F401
    except ImportError:
        return False
    return True


def decode_rle_string(counts: str | bytes) -> list[int]:
    """The run lengths of a compressed COCO RLE string (pycocotools' format)."""
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    runs: list[int] = []
    position = 0
    while position < len(counts):
        value, shift, more = 0, 0, True
        while more:
            char = ord(counts[position]) - 48
            value |= (char & 0x1F) << (5 * shift)
            more = bool(char & 0x20)
            position += 1
            shift += 1
            if not more and char & 0x10:
                value |= -1 << (5 * shift)
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def rle_to_mask(rle: dict[str, Any], height: int, width: int) -> np.ndarray:
    """A COCO RLE (compressed or not) -> uint8 `[height, width]` of 0/1."""
    size = list(rle["size"])
    if size != [height, width]:
        raise ValueError(
            f"RLE size {size} does not match the image size {[height, width]}."
        )
    counts = rle["counts"]
    runs = (
        decode_rle_string(counts) if isinstance(counts, (str, bytes)) else list(counts)
    )
    if sum(runs) != height * width:
        raise ValueError(
            f"RLE runs cover {sum(runs)} pixels; the image has {height * width}."
        )
    values = np.zeros(len(runs), np.uint8)
    values[1::2] = 1
    flat = np.repeat(values, runs)
    return flat.reshape(width, height).T.copy()


def polygons_to_mask(
    polygons: list[list[float]], height: int, width: int
) -> np.ndarray:
    """COCO polygons (pixel coordinates) -> uint8 `[height, width]` of 0/1."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for polygon in polygons:
        if len(polygon) < 6 or len(polygon) % 2:
            raise ValueError(
                "A COCO polygon needs at least 3 (x, y) points. Received "
                f"{len(polygon)} coordinates."
            )
        points = [(float(x), float(y)) for x, y in zip(polygon[0::2], polygon[1::2])]
        draw.polygon(points, fill=1, outline=1)
    return np.asarray(canvas, np.uint8).copy()


def segmentation_to_mask(
    segmentation: Any, height: int, width: int, use_pycocotools: bool | None = None
) -> np.ndarray:
    """Any COCO segmentation -> uint8 `[height, width]` binary mask.

    Args:
        segmentation: polygons (list) or RLE (dict).
        height: image height.
        width: image width.
        use_pycocotools: True/False to force a backend; None uses
            pycocotools when it is installed.

    Returns:
        uint8 `[height, width]` with 1 inside the object.
    """
    if use_pycocotools is None:
        use_pycocotools = have_pycocotools()
    if not isinstance(segmentation, (list, dict)):
        raise TypeError(
            "A COCO segmentation is a list of polygons or an RLE dict. Received "
            f"{type(segmentation).__name__}."
        )
    if use_pycocotools:
        from pycocotools import mask as mask_api

        if isinstance(segmentation, list):
            rles = mask_api.frPyObjects(segmentation, height, width)
            rle = mask_api.merge(rles)
        elif isinstance(segmentation["counts"], list):
            rle = mask_api.frPyObjects(segmentation, height, width)
        else:
            rle = dict(segmentation)
            if isinstance(rle["counts"], str):
                rle["counts"] = rle["counts"].encode("ascii")
        return np.asarray(mask_api.decode(rle), np.uint8)
    if isinstance(segmentation, list):
        return polygons_to_mask(segmentation, height, width)
    return rle_to_mask(segmentation, height, width)
