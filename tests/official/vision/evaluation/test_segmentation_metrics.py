"""Confusion-matrix mIoU, pixel accuracy and per-class IoU, with an ignore label."""

import numpy as np
import pytest

from official.vision.evaluation.segmentation_metrics import (
    ClassIoU,
    ConfusionMatrixMeanIoU,
    PixelAccuracy,
)

LABELS = np.array([[[0, 0, 1], [1, 2, 255]]])
CLASSES = np.array([[[0, 1, 1], [2, 2, 0]]])
# Rows = true class, columns = predicted; the pixel labelled 255 is left out.
EXPECTED = np.array([[1, 1, 0], [0, 1, 1], [0, 0, 1]])


def test_confusion_matrix_by_hand():
    metric = ConfusionMatrixMeanIoU(num_classes=3, ignore_label=255)
    metric.update_state(LABELS, CLASSES)
    np.testing.assert_array_equal(np.asarray(metric.confusion), EXPECTED)
    # IoU = TP / (row + column - TP): 1/2, 1/3, 1/2.
    np.testing.assert_allclose(np.asarray(metric.class_iou()), [1 / 2, 1 / 3, 1 / 2])
    assert float(metric.result()) == pytest.approx((1 / 2 + 1 / 3 + 1 / 2) / 3)
    assert float(PixelAccuracy(metric).result()) == pytest.approx(3 / 5)
    assert float(ClassIoU(metric, 1).result()) == pytest.approx(1 / 3)


def test_logits_are_reduced_by_argmax():
    logits = np.eye(3, dtype="float32")[CLASSES] * 5.0
    metric = ConfusionMatrixMeanIoU(num_classes=3)
    metric.update_state(LABELS, logits)
    np.testing.assert_array_equal(np.asarray(metric.confusion), EXPECTED)


def test_absent_class_is_nan_and_left_out_of_the_mean():
    metric = ConfusionMatrixMeanIoU(num_classes=4)
    metric.update_state(LABELS, CLASSES)
    iou = np.asarray(metric.class_iou())
    assert np.isnan(iou[3])
    assert float(metric.result()) == pytest.approx((1 / 2 + 1 / 3 + 1 / 2) / 3)
    assert np.isnan(float(ClassIoU(metric, 3, name="iou/x").result()))


def test_states_of_replicas_add_up_to_the_whole_set():
    # Two replicas each see one half; summing their states (what the
    # trainer does across replicas and workers) equals one pass over all.
    whole = ConfusionMatrixMeanIoU(num_classes=3)
    whole.update_state(LABELS, CLASSES)
    halves = [ConfusionMatrixMeanIoU(num_classes=3) for _ in range(2)]
    halves[0].update_state(LABELS[:, :1], CLASSES[:, :1])
    halves[1].update_state(LABELS[:, 1:], CLASSES[:, 1:])
    total = ConfusionMatrixMeanIoU(num_classes=3)
    total.confusion.assign(
        np.asarray(halves[0].confusion) + np.asarray(halves[1].confusion)
    )
    assert float(total.result()) == pytest.approx(float(whole.result()))
    # mIoU is not the mean of the replicas' mIoUs.
    assert float(total.result()) != pytest.approx(
        np.mean([float(h.result()) for h in halves])
    )


def test_views_have_no_state_and_reset_with_the_source():
    metric = ConfusionMatrixMeanIoU(num_classes=3)
    view = PixelAccuracy(metric)
    assert view.variables == []
    metric.update_state(LABELS, CLASSES)
    metric.reset_state()
    assert float(view.result()) == 0.0
    assert float(metric.result()) == 0.0


def test_counts_are_exact_beyond_float32():
    metric = ConfusionMatrixMeanIoU(num_classes=2)
    metric.confusion.assign([[2.0**25, 0.0], [0.0, 1.0]])
    metric.update_state(np.zeros((1, 1, 1)), np.zeros((1, 1, 1)))
    assert float(np.asarray(metric.confusion)[0, 0]) == 2.0**25 + 1
