"""Detection parity: matched fraction, mAP difference, tolerances by kind."""

import numpy as np
import pytest

from official.core.parity_measures import ARTIFACT_KINDS
from official.vision.tasks import detection_parity


def outputs(boxes, scores, classes, k=4):
    n = len(scores)
    out = {
        "detection_boxes": np.zeros((1, k, 4), np.float32),
        "detection_scores": np.zeros((1, k), np.float32),
        "detection_classes": -np.ones((1, k), np.int32),
        "num_detections": np.array([n], np.int32),
    }
    out["detection_boxes"][0, :n] = np.reshape(boxes, (n, 4))
    out["detection_scores"][0, :n] = scores
    out["detection_classes"][0, :n] = classes
    return out


BOXES = [[0.1, 0.1, 0.5, 0.5], [0.5, 0.5, 0.9, 0.9], [0.0, 0.0, 0.2, 0.2]]
LABELS = np.array(
    [[[6.4, 6.4, 32, 32, 1, 0], [32, 32, 57.6, 57.6, 2, 0], [0, 0, 0, 0, -1, 0]]],
    np.float32,
)


def test_matched_fraction_counts_class_iou_and_threshold():
    reference = outputs(BOXES, [0.9, 0.8, 0.1], [1, 2, 1])  # the third is below 0.3
    same = detection_parity.matched_fraction(reference, reference)
    assert same == 1.0
    moved = outputs([[0.1, 0.1, 0.5, 0.52], BOXES[1]], [0.7, 0.2], [1, 1])
    # Box 1 moved by IoU 0.95 (matched); box 2 has another class (not).
    assert detection_parity.matched_fraction(reference, moved) == 0.5
    assert (
        detection_parity.matched_fraction(reference, moved, iou_threshold=0.99) == 0.0
    )
    empty = outputs([], [], [])
    assert detection_parity.matched_fraction(empty, reference) == 1.0


def test_measures_report_map_drop_against_the_labels():
    reference = outputs(BOXES[:2], [0.9, 0.8], [1, 2])
    worse = outputs(BOXES[:1], [0.9], [1])
    m = detection_parity.detection_measures(reference, worse, LABELS, (64, 64), 3)
    assert m["reference_map"] == pytest.approx(1.0)
    assert m["map"] == pytest.approx(0.5)
    assert m["map_drop"] == pytest.approx(0.5)
    assert m["matched_fraction"] == 0.5 and m["matched_fraction_iou50"] == 0.5
    assert detection_parity.detection_tolerance("saved_model").check(m)


def test_every_artifact_kind_has_a_tolerance():
    assert set(detection_parity.DETECTION_TOLERANCES) == set(ARTIFACT_KINDS)
    with pytest.raises(KeyError, match=r"detection .* 'int9'. Did you mean 'int8'"):
        detection_parity.detection_tolerance("int9")
