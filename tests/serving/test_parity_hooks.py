"""Task-driven parity: the task's measures and tolerances decide parity.json.

Uses the tiny fake classifier of test_export.py (8x8 images, 3 classes).
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf


from official.core import parity_measures
from official.core.parity_measures import Bounds
from serving import export, parity
from serving.parity import ParityError
from tests.serving.test_export import FakeTask, assert_nothing_left, set_trained_weights


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    model = FakeTask().build_model()
    set_trained_weights(model)
    path = str(tmp_path_factory.mktemp("model_dir"))
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), path, 1).save()
    return path


class ClassMapTask(FakeTask):
    """Reports only its own measures: class agreement and a label-based one."""

    def __init__(self, tolerance):
        super().__init__()
        self.tolerance = tolerance
        self.kinds = []

    def parity_measures(self, reference, candidate, labels):
        ref = np.asarray(reference["classes"])
        got = np.asarray(candidate["classes"])
        return {
            "class_agreement": float(np.mean(ref == got)),
            "label_hits": float(np.mean(got == labels)),
        }

    def parity_reference_measures(self, reference, labels):
        return {"label_hits": float(np.mean(reference["classes"] == labels))}

    def parity_tolerance(self, kind):
        self.kinds.append(kind)
        return self.tolerance


def test_the_task_chooses_measures_and_tolerances(tmp_path, checkpoint_dir):
    task = ClassMapTask(Bounds(minimum={"class_agreement": 0.99}))
    report = export.export_task(
        task,
        checkpoint_dir,
        str(tmp_path / "out"),
        input_types=["image_tensor"],
        quantizations=["none", "float16"],
        num_parity_examples=6,
    )
    assert sorted(set(task.kinds)) == ["float16", "none", "saved_model"]
    with open(tmp_path / "out" / "parity.json") as f:
        written = json.load(f)
    assert written["reference"] == {"name": "keras", "label_hits": 1.0}
    assert set(written["artifacts"]) == {
        "saved_model:image_tensor",
        "saved_model:serving_default",
        "model_float32.tflite",
        "model_float16.tflite",
    }
    for result in written["artifacts"].values():
        assert set(result) == {
            "kind",
            "class_agreement",
            "label_hits",
            "tolerance",
            "failures",
            "passed",
        }
        assert result["tolerance"] == {
            "maximum": {},
            "minimum": {"class_agreement": 0.99},
        }
        assert result["class_agreement"] == 1.0 and result["passed"]
    table = parity.format_table(report["parity"])
    assert "class_agreement 1" in table and "probabilities" not in table


def test_a_task_bound_fails_the_export_and_names_the_measure(tmp_path, checkpoint_dir):
    task = ClassMapTask(Bounds(minimum={"label_hits": 1.5}))
    with pytest.raises(ParityError, match=r"model_float32.tflite: label_hits 1 < 1.5"):
        export.export_task(
            task,
            checkpoint_dir,
            str(tmp_path / "out"),
            formats=["tflite"],
            quantizations=["none"],
            num_parity_examples=3,
        )
    assert_nothing_left(tmp_path)


def test_classification_defaults_are_the_base_task_hooks():
    task = FakeTask()
    assert task.parity_tolerance("int8") is parity.TOLERANCES["int8"]
    assert set(parity_measures.ARTIFACT_KINDS) == set(parity.TOLERANCES)
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


def test_segmentation_measures_pixel_agreement_and_miou():
    labels = np.array([[[0, 0, 1, 1], [0, 0, 1, 2]]])
    reference = labels.copy()
    candidate = labels.copy()
    candidate[0, 1, 3] = 1  # One of 8 pixels differs; class 2 is lost.
    m = parity_measures.segmentation_measures(reference, candidate, labels, 3)
    assert m["pixel_agreement"] == 7 / 8
    assert m["reference_miou"] == 1.0
    # IoU: class 0 = 4/4, class 1 = 3/4 (one extra pixel), class 2 = 0/1.
    assert m["miou"] == pytest.approx((1 + 0.75 + 0) / 3)
    assert m["miou_drop"] == pytest.approx(1 - 1.75 / 3)
    ignored = parity_measures.segmentation_measures(
        reference, candidate, labels, 2, ignore_label=2
    )
    assert ignored["miou"] == 1.0 and ignored["pixel_agreement"] == 7 / 8
    with pytest.raises(ValueError, match=r"outside 0..1"):
        parity_measures.mean_iou(candidate, labels, 2)
    with pytest.raises(ValueError, match="differ in shape"):
        parity_measures.segmentation_measures(reference, candidate[:, :1], labels, 3)


def test_bounds_report_missing_and_violated_measures():
    bounds = Bounds(maximum={"miou_drop": 0.02}, minimum={"pixel_agreement": 0.99})
    assert bounds.check({"miou_drop": 0.01, "pixel_agreement": 0.995}) == []
    assert bounds.check({"miou_drop": float("nan")}) == [
        "miou_drop nan > 0.02",
        "no measure 'pixel_agreement' to compare",
    ]


def test_official_never_imports_serving():
    root = os.path.join(os.path.dirname(__file__), "..", "..", "official")
    offenders = []
    for directory, _, names in os.walk(root):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                with open(path, encoding="utf-8") as f:
                    for line in f:
                        stripped = line.strip()
                        if stripped.startswith(("from serving", "import serving")):
                            offenders.append(os.path.relpath(path, root))
    assert not offenders, offenders
