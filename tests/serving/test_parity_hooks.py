"""Task-driven parity: the task's measures and tolerances decide parity.json.

Uses the tiny fake classifier of test_export.py (8x8 images, 3 classes).
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from official.core.base_task import Task
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


class NoParityTask(FakeTask):
    """Exports like FakeTask but declares no parity hooks."""

    parity_measures = Task.parity_measures
    parity_reference_measures = Task.parity_reference_measures
    parity_tolerance = Task.parity_tolerance


def test_a_task_without_parity_hooks_is_told_which_to_define():
    task = NoParityTask()
    with pytest.raises(
        NotImplementedError, match="NoParityTask does not define parity_tolerance"
    ):
        task.parity_tolerance("none")
    with pytest.raises(NotImplementedError, match="parity_measures, parity_reference"):
        task.parity_measures({}, {}, np.zeros(1))


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
