"""Metric values on hand-made predictions."""

import numpy as np
import pytest

from official.nlp.evaluation.text_metrics import (
    F1Score,
    MaskedLMAccuracy,
    MatthewsCorrelation,
    PearsonCorrelation,
    SpearmanCorrelation,
    average_ranks,
)


def _value(metric, *batches):
    for labels, predictions in batches:
        metric.update_state(np.asarray(labels), np.asarray(predictions, "float32"))
    return float(metric.result())


def _logits(classes, num_classes):
    return np.eye(num_classes)[classes]


def test_binary_f1_and_matthews_by_hand():
    labels = [1, 1, 1, 0, 0, 0]
    preds = _logits([1, 1, 0, 1, 0, 0], 2)  # tp 2, fn 1, fp 1, tn 2
    assert _value(F1Score(2), (labels, preds)) == pytest.approx(2 / 3)
    # (tp tn - fp fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = 3 / 9
    assert _value(MatthewsCorrelation(2), (labels, preds)) == pytest.approx(1 / 3)
    # Two batches sum into one confusion matrix.
    assert _value(
        MatthewsCorrelation(2), (labels[:3], preds[:3]), (labels[3:], preds[3:])
    ) == pytest.approx(1 / 3)


def test_macro_f1_and_multiclass_matthews_by_hand():
    labels = [0, 1, 2, 2]
    preds = _logits([0, 2, 2, 2], 3)
    # F1 per class: 1, 0, 0.8 -> macro 0.6.
    assert _value(F1Score(3, average="macro"), (labels, preds)) == pytest.approx(0.6)
    # Gorodkin: (c s - sum p_k t_k) / sqrt((s^2 - sum p^2)(s^2 - sum t^2)):
    # c=3, s=4, p=(1,0,3), t=(1,1,2): (12 - 7) / sqrt(6 * 10).
    assert _value(MatthewsCorrelation(3), (labels, preds)) == pytest.approx(
        5 / np.sqrt(60)
    )
    assert _value(MatthewsCorrelation(2), ([0, 0], _logits([0, 0], 2))) == 0.0
    with pytest.raises(ValueError, match="num_classes=2"):
        F1Score(3)


def test_correlations_by_hand():
    labels = [1.0, 2.0, 3.0, 4.0]
    assert _value(
        PearsonCorrelation(), (labels, [2.0, 4.0, 6.0, 8.0])
    ) == pytest.approx(1.0)
    assert _value(
        PearsonCorrelation(), (labels, [4.0, 3.0, 2.0, 1.0])
    ) == pytest.approx(-1.0)
    # Monotone but not linear: Spearman 1, Pearson below.
    cubes = [1.0, 8.0, 27.0, 64.0]
    assert _value(SpearmanCorrelation(capacity=8), (labels, cubes)) == pytest.approx(
        1.0
    )
    assert _value(PearsonCorrelation(), (labels, cubes)) < 0.99
    # Ties take their average rank (as scipy.stats.rankdata).
    assert average_ranks(np.array([10.0, 20.0, 20.0, 30.0])).numpy().tolist() == [
        1.0, 2.5, 2.5, 4.0,
    ]  # fmt: skip
    # x = (1, 2, 2, 3) ranks (1, 2.5, 2.5, 4) vs (1, 2, 3, 4): r = 4.5 / sqrt(4.5 * 5).
    assert _value(
        SpearmanCorrelation(capacity=8), ([1.0, 2.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0])
    ) == pytest.approx(4.5 / np.sqrt(22.5))


def test_spearman_refuses_more_than_its_capacity():
    metric = SpearmanCorrelation(capacity=3)
    with pytest.raises(Exception, match="capacity=3"):
        metric.update_state(np.ones(4), np.ones(4))


def test_masked_lm_accuracy_counts_weighted_slots():
    metric = MaskedLMAccuracy()
    labels = {
        "masked_lm_ids": np.array([[5, 6, 0]]),
        "masked_lm_weights": np.array([[1.0, 1.0, 0.0]]),
    }
    logits = np.zeros((1, 3, 8), "float32")
    logits[0, 0, 5] = logits[0, 1, 7] = logits[0, 2, 0] = 1.0
    metric.update_state(labels, logits)
    assert float(metric.result()) == pytest.approx(0.5)
