"""Box geometry and the box coder, on `[..., 4]` `[ymin, xmin, ymax, xmax]` boxes.

The coder encodes a box against its anchor as Faster R-CNN does:
`ty = (yc - yc_a) / h_a * wy`, `tx = (xc - xc_a) / w_a * wx`,
`th = log(h / h_a) * wh`, `tw = log(w / w_a) * ww`, with `weights =
(wy, wx, wh, ww)`. RetinaNet in the TF Model Garden uses no weights
(`(1, 1, 1, 1)`, the default here, which its Huber delta of 0.1 is tuned
for); Faster R-CNN's `(10, 10, 5, 5)` may be given. Decoding clips `th` and
`tw` at `log(1000 / 16)` so that `exp` cannot overflow.

Example:
```python
import numpy as np
from official.vision.ops import box_ops

anchors = np.array([[0.0, 0.0, 10.0, 10.0]], np.float32)
boxes = np.array([[1.0, 2.0, 9.0, 12.0]], np.float32)
deltas = box_ops.encode_boxes(boxes, anchors)
assert np.allclose(box_ops.decode_boxes(deltas, anchors), boxes, atol=1e-5)
assert np.allclose(box_ops.iou(boxes, boxes), [[1.0]])
```
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import tensorflow as tf

# The largest log-scale change decoding accepts (Detectron's BBOX_XFORM_CLIP).
DECODE_CLIP = math.log(1000.0 / 16.0)


def check_weights(weights: Sequence[float] | None) -> tuple[float, ...]:
    """`weights` as 4 positive floats; `(1, 1, 1, 1)` for None or empty."""
    if not weights:
        return (1.0, 1.0, 1.0, 1.0)
    if len(weights) != 4 or min(weights) <= 0:
        raise ValueError(
            "box_coder_weights must be 4 positive numbers (wy, wx, wh, ww), e.g. "
            f"[10, 10, 5, 5], or empty for none. Received: {list(weights)}."
        )
    return tuple(float(w) for w in weights)


def _centers(boxes):
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    height, width = ymax - ymin, xmax - xmin
    return ymin + 0.5 * height, xmin + 0.5 * width, height, width


def encode_boxes(boxes, anchors, weights: Sequence[float] | None = None) -> tf.Tensor:
    """Regression targets `[..., 4]` (ty, tx, th, tw) of `boxes` against `anchors`."""
    wy, wx, wh, ww = check_weights(weights)
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    yc, xc, h, w = _centers(boxes)
    yca, xca, ha, wa = _centers(anchors)
    h, w = tf.maximum(h, 1e-8), tf.maximum(w, 1e-8)
    return tf.stack(
        [
            (yc - yca) / ha * wy,
            (xc - xca) / wa * wx,
            tf.math.log(h / ha) * wh,
            tf.math.log(w / wa) * ww,
        ],
        axis=-1,
    )


def decode_boxes(deltas, anchors, weights: Sequence[float] | None = None) -> tf.Tensor:
    """Boxes `[..., 4]` from regression outputs `deltas` and their `anchors`."""
    wy, wx, wh, ww = check_weights(weights)
    deltas = tf.convert_to_tensor(deltas, tf.float32)
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    yca, xca, ha, wa = _centers(anchors)
    ty, tx, th, tw = tf.unstack(deltas, axis=-1)
    th = tf.minimum(th / wh, DECODE_CLIP)
    tw = tf.minimum(tw / ww, DECODE_CLIP)
    yc = ty / wy * ha + yca
    xc = tx / wx * wa + xca
    h = tf.exp(th) * ha
    w = tf.exp(tw) * wa
    return tf.stack([yc - 0.5 * h, xc - 0.5 * w, yc + 0.5 * h, xc + 0.5 * w], axis=-1)


def area(boxes) -> tf.Tensor:
    """`[...]` areas (0 for degenerate boxes)."""
    ymin, xmin, ymax, xmax = tf.unstack(
        tf.convert_to_tensor(boxes, tf.float32), axis=-1
    )
    return tf.maximum(ymax - ymin, 0.0) * tf.maximum(xmax - xmin, 0.0)


def intersection(boxes_a, boxes_b) -> tf.Tensor:
    """`[N, M]` intersection areas of `[N, 4]` and `[M, 4]` boxes."""
    a = tf.convert_to_tensor(boxes_a, tf.float32)[:, None, :]
    b = tf.convert_to_tensor(boxes_b, tf.float32)[None, :, :]
    height = tf.minimum(a[..., 2], b[..., 2]) - tf.maximum(a[..., 0], b[..., 0])
    width = tf.minimum(a[..., 3], b[..., 3]) - tf.maximum(a[..., 1], b[..., 1])
    return tf.maximum(height, 0.0) * tf.maximum(width, 0.0)


def iou(boxes_a, boxes_b) -> tf.Tensor:
    """`[N, M]` intersection over union (0 where the union is empty)."""
    inter = intersection(boxes_a, boxes_b)
    union = area(boxes_a)[:, None] + area(boxes_b)[None, :] - inter
    return tf.math.divide_no_nan(inter, union)


def ioa(boxes_a, boxes_b) -> tf.Tensor:
    """`[N, M]` intersection over the area of each box of `boxes_a`."""
    return tf.math.divide_no_nan(intersection(boxes_a, boxes_b), area(boxes_a)[:, None])


def clip_boxes(boxes, height, width) -> tf.Tensor:
    """Boxes clipped to `[0, height] x [0, width]`."""
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    height = tf.cast(height, tf.float32)
    width = tf.cast(width, tf.float32)
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return tf.stack(
        [
            tf.clip_by_value(ymin, 0.0, height),
            tf.clip_by_value(xmin, 0.0, width),
            tf.clip_by_value(ymax, 0.0, height),
            tf.clip_by_value(xmax, 0.0, width),
        ],
        axis=-1,
    )
