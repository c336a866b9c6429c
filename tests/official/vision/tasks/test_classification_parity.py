"""Classification parity: the image classification task's measures and tolerances."""

import numpy as np
import pytest

from official.core.parity_measures import ARTIFACT_KINDS
from official.vision.configs.image_classification import ImageClassificationTaskConfig
from official.vision.tasks.classification_parity import CLASSIFICATION_TOLERANCES
from official.vision.tasks.image_classification import ImageClassificationTask


def test_the_task_hooks_are_the_classification_measures_and_tolerances():
    task = ImageClassificationTask(ImageClassificationTaskConfig())
    assert set(CLASSIFICATION_TOLERANCES) == set(ARTIFACT_KINDS)
    assert task.parity_tolerance("int8") is CLASSIFICATION_TOLERANCES["int8"]
    with pytest.raises(KeyError, match=r"kind 'int4'. Did you mean 'int8'"):
        task.parity_tolerance("int4")
    reference = {
        "logits": np.array([[2.0, 0.0], [0.0, 4.0]]),
        "probabilities": np.array([[0.88, 0.12], [0.02, 0.98]]),
    }
    candidate = {
        "logits": np.array([[1.9, 0.0], [0.0, 4.2]]),
        "probabilities": np.array([[0.87, 0.13], [0.6, 0.4]]),
    }
    measures = task.parity_measures(reference, candidate, np.array([0, 1]))
    assert measures["max_abs_diff_probabilities"] == pytest.approx(0.58)
    assert measures["max_rel_diff_logits"] == pytest.approx(0.05)
    assert measures["top1_agreement"] == 0.5 and measures["accuracy_drop"] == 0.5
    assert task.parity_reference_measures(reference, np.array([0, 0])) == {
        "top1_accuracy": 0.5
    }
    with pytest.raises(ValueError, match="no 'probabilities'.*parity_measures"):
        task.parity_measures({"masks": np.zeros(2)}, candidate, np.array([0, 1]))
