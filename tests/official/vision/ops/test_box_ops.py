"""Box coder round trip (with and without weights), IoU, IoA, clipping."""

import numpy as np
import pytest

from official.vision.ops import box_ops


@pytest.mark.parametrize("weights", [None, [10.0, 10.0, 5.0, 5.0]])
def test_encode_decode_round_trip(weights):
    rng = np.random.default_rng(0)
    anchors = np.concatenate(
        [rng.uniform(0, 50, (100, 2)), rng.uniform(60, 120, (100, 2))], axis=1
    ).astype(np.float32)
    boxes = anchors + rng.uniform(-10, 10, (100, 4)).astype(np.float32)
    deltas = box_ops.encode_boxes(boxes, anchors, weights)
    decoded = box_ops.decode_boxes(deltas, anchors, weights)
    assert np.allclose(decoded, boxes, atol=1e-3)


def test_encoding_by_hand_and_weights_scale_it():
    anchor = np.array([[0.0, 0.0, 10.0, 20.0]], np.float32)
    box = np.array([[2.0, 4.0, 12.0, 44.0]], np.float32)
    # centres (7, 24) vs (5, 10); sizes (10, 40) vs (10, 20).
    expected = [0.2, 0.7, 0.0, np.log(2.0)]
    assert np.allclose(box_ops.encode_boxes(box, anchor), [expected], atol=1e-6)
    weighted = box_ops.encode_boxes(box, anchor, [10, 10, 5, 5])
    assert np.allclose(weighted, [[2.0, 7.0, 0.0, 5 * np.log(2.0)]], atol=1e-5)


def test_decode_clips_huge_scales():
    anchor = np.array([[0.0, 0.0, 1.0, 1.0]], np.float32)
    decoded = box_ops.decode_boxes(np.array([[0.0, 0.0, 100.0, 100.0]]), anchor)
    assert np.all(np.isfinite(decoded)) and float(decoded[0, 2]) < 40


def test_iou_ioa_by_hand():
    a = np.array([[0.0, 0.0, 10.0, 10.0]], np.float32)
    b = np.array([[0.0, 5.0, 10.0, 15.0], [20.0, 20.0, 30.0, 30.0]], np.float32)
    assert np.allclose(box_ops.iou(a, b), [[50 / 150, 0.0]])
    assert np.allclose(box_ops.ioa(a, b), [[0.5, 0.0]])
    assert np.allclose(
        box_ops.clip_boxes([[-1.0, 2.0, 50.0, 9.0]], 20, 8), [[0, 2, 20, 8]]
    )


def test_bad_weights_are_named():
    with pytest.raises(ValueError, match=r"box_coder_weights .* \[10, 10, 5, 5\]"):
        box_ops.encode_boxes(np.zeros((1, 4)), np.ones((1, 4)), [1.0, 2.0])
