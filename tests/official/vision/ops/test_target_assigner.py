"""Anchor matching on hand-made boxes: positives, negatives, ignore, crowd, padding."""

import numpy as np
import pytest

from official.vision.ops import box_ops
from official.vision.ops.target_assigner import AnchorLabeler

ANCHORS = np.array(
    [
        [0, 0, 10, 10],  # IoU 1.0 with box A
        [0, 2, 10, 12],  # IoU 8/12 = 0.667 with A: positive
        [0, 5, 10, 15],  # IoU 5/15 = 0.333 with A
        [0, 4, 10, 14],  # IoU 6/14 = 0.43 with A: ignored (0.4..0.5)
        [40, 40, 50, 50],  # inside the crowd box
        [80, 80, 90, 90],  # nothing near: negative
        [60, 0, 80, 20],  # best anchor of small box B (IoU 0.25)
    ],
    np.float32,
)
BOX_A = [0, 0, 10, 10]
BOX_B = [65, 5, 75, 15]
CROWD = [30, 30, 60, 60]


def label(boxes, classes, crowd, **kwargs):
    labeler = AnchorLabeler(
        ANCHORS, match_threshold=0.5, unmatched_threshold=0.4, **kwargs
    )
    out = labeler(np.array(boxes, np.float32), np.array(classes), np.array(crowd))
    return {k: v.numpy() for k, v in out.items()}


def test_positive_negative_ignored_and_crowd():
    out = label([BOX_A, BOX_B, CROWD, [0, 0, 0, 0]], [5, 7, 1, -1], [0, 0, 1, 0])
    assert out["cls_targets"].tolist() == [5, 5, -1, -1, -1, -1, 7]
    assert out["box_weights"].tolist() == [1, 1, 0, 0, 0, 0, 1]
    # Anchor 3 is in the ignore band, anchor 4 lies in the crowd box.
    assert out["cls_weights"].tolist() == [1, 1, 1, 0, 0, 1, 1]
    expected = box_ops.encode_boxes(np.array([BOX_A, BOX_A, BOX_B]), ANCHORS[[0, 1, 6]])
    assert np.allclose(out["box_targets"][[0, 1, 6]], expected)
    assert not out["box_targets"][[2, 3, 4, 5]].any()


def test_without_low_quality_matches_small_box_gets_no_anchor():
    out = label([BOX_B], [7], [0], allow_low_quality_matches=False)
    assert out["cls_targets"].tolist() == [-1] * 7
    assert out["cls_weights"][6] == 1.0  # IoU 0.25 < 0.4: a negative


def test_crowd_box_is_never_a_positive_and_padding_is_ignored():
    out = label([CROWD, [40, 40, 50, 50]], [1, -1], [1, 0])
    assert (out["cls_targets"] == -1).all()
    assert out["cls_weights"].tolist() == [1, 1, 1, 1, 0, 1, 1]
    # A lower crowd threshold: anchor 4 is inside, others are not.
    loose = label([CROWD], [1], [1], crowd_ioa_threshold=1.0)
    assert loose["cls_weights"][4] == 0.0


def test_bad_thresholds_are_named():
    with pytest.raises(ValueError, match="unmatched_threshold <= match_threshold"):
        AnchorLabeler(ANCHORS, match_threshold=0.3, unmatched_threshold=0.5)
