"""IoU target assignment of ground-truth boxes to anchors (RetinaNet).

For every anchor, the ground-truth box of highest IoU is its match when the
IoU is at least `match_threshold` (a positive: the box's class and its
encoded offsets are the anchor's targets). An anchor whose best IoU is
below `unmatched_threshold` is a negative (background: all class targets
0). In between it is ignored (no loss). With `allow_low_quality_matches`,
every box is also matched to its anchor of highest IoU (when above 0),
even below `match_threshold`, so that no box goes without a positive (the
TF Model Garden's `force_match_for_each_col`).

Crowd boxes (`is_crowd`, COCO's `iscrowd`) are never matched. An anchor that
would be a negative is ignored instead when at least `crowd_ioa_threshold`
of its area lies inside a crowd box: a crowd region holds objects the
annotation does not list one by one, so the anchor is neither object nor
background. Padding boxes (class < 0) are left out.

Example:
```python
import numpy as np
from official.vision.ops.target_assigner import AnchorLabeler

anchors = np.array([[0, 0, 10, 10], [0, 10, 10, 20], [20, 20, 30, 30]], np.float32)
labeler = AnchorLabeler(anchors, match_threshold=0.5, unmatched_threshold=0.4)
targets = labeler(np.array([[0, 0, 10, 11]], np.float32), np.array([3]),
                  np.array([0]))
assert targets["cls_targets"].numpy().tolist() == [3, -1, -1]
assert targets["box_weights"].numpy().tolist() == [1.0, 0.0, 0.0]
```
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from official.vision.ops import box_ops


class AnchorLabeler:
    """Ground-truth boxes of one image -> per-anchor targets.

    Args:
        anchors: float32 `[N, 4]` anchors (pixels), from `generate_anchors`.
        match_threshold: IoU at or above which an anchor is a positive.
            Default 0.5.
        unmatched_threshold: IoU below which an anchor is a negative; must be
            <= `match_threshold`. Default 0.4.
        allow_low_quality_matches: match every box to its best anchor.
            Default True.
        crowd_ioa_threshold: fraction of an anchor inside a crowd box that
            makes a negative anchor ignored. Default 0.5.
        box_coder_weights: `(wy, wx, wh, ww)` of `box_ops.encode_boxes`, or
            None for none.

    Call arguments:
        boxes: float `[M, 4]` boxes in the anchors' pixels (padding rows any).
        classes: int `[M]` class ids; < 0 marks padding.
        is_crowd: int or bool `[M]`.

    Returns:
        dict: `cls_targets` int32 `[N]` (class id of positives, -1 else),
        `box_targets` float32 `[N, 4]` (0 for non-positives), `cls_weights`
        float32 `[N]` (1 for positives and negatives, 0 for ignored) and
        `box_weights` float32 `[N]` (1 for positives).
    """

    def __init__(
        self,
        anchors,
        match_threshold: float = 0.5,
        unmatched_threshold: float = 0.4,
        allow_low_quality_matches: bool = True,
        crowd_ioa_threshold: float = 0.5,
        box_coder_weights: Sequence[float] | None = None,
    ):
        if not 0.0 < unmatched_threshold <= match_threshold <= 1.0:
            raise ValueError(
                "Anchor matching needs 0 < unmatched_threshold <= match_threshold "
                f"<= 1. Received: unmatched_threshold={unmatched_threshold}, "
                f"match_threshold={match_threshold}."
            )
        self.anchors = np.asarray(anchors, np.float32)
        self.match_threshold = match_threshold
        self.unmatched_threshold = unmatched_threshold
        self.allow_low_quality_matches = allow_low_quality_matches
        self.crowd_ioa_threshold = crowd_ioa_threshold
        self.box_coder_weights = box_ops.check_weights(box_coder_weights)

    def __call__(self, boxes, classes, is_crowd) -> dict[str, tf.Tensor]:
        anchors = tf.constant(self.anchors)
        boxes = tf.convert_to_tensor(boxes, tf.float32)
        classes = tf.cast(classes, tf.int32)
        crowd = tf.cast(is_crowd, tf.bool)
        valid = classes >= 0
        normal = tf.logical_and(valid, tf.logical_not(crowd))
        crowd = tf.logical_and(valid, crowd)

        overlaps = box_ops.iou(anchors, boxes)  # [N, M]
        overlaps = tf.where(normal[None, :], overlaps, -1.0)
        best_iou = tf.reduce_max(overlaps, axis=1)
        match = tf.argmax(overlaps, axis=1, output_type=tf.int32)
        positive = best_iou >= self.match_threshold
        negative = best_iou < self.unmatched_threshold
        if self.allow_low_quality_matches:
            # Each box's best anchor: [M] anchor indices.
            best_anchor = tf.argmax(overlaps, axis=0, output_type=tf.int32)
            box_best = tf.reduce_max(overlaps, axis=0)
            wanted = tf.logical_and(normal, box_best > 0.0)
            # A box's best anchor takes that box (when two boxes share one
            # anchor, the later box wins).
            forced_box = tf.tensor_scatter_nd_update(
                tf.fill([tf.shape(anchors)[0]], -1),
                tf.boolean_mask(best_anchor, wanted)[:, None],
                tf.boolean_mask(tf.range(tf.shape(boxes)[0]), wanted),
            )
            forced_any = forced_box >= 0
            match = tf.where(forced_any, forced_box, match)
            positive = tf.logical_or(positive, forced_any)
        negative = tf.logical_and(negative, tf.logical_not(positive))
        crowd_overlap = tf.where(crowd[None, :], box_ops.ioa(anchors, boxes), 0.0)
        in_crowd = tf.reduce_max(crowd_overlap, axis=1) >= self.crowd_ioa_threshold
        negative = tf.logical_and(negative, tf.logical_not(in_crowd))

        matched_boxes = tf.gather(boxes, match)
        box_targets = box_ops.encode_boxes(
            matched_boxes, anchors, self.box_coder_weights
        )
        return {
            "cls_targets": tf.where(positive, tf.gather(classes, match), -1),
            "box_targets": tf.where(positive[:, None], box_targets, 0.0),
            "cls_weights": tf.cast(tf.logical_or(positive, negative), tf.float32),
            "box_weights": tf.cast(positive, tf.float32),
        }
