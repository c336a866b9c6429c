"""ONNX export (extra `onnx`): conversion, onnx.checker + onnxruntime checks, parity.

Uses the tiny fake classifier of test_export.py (8x8 images, 3 classes).
"""

import json
import sys

import numpy as np
import pytest
import tensorflow as tf

pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from official.vision.tasks.classification_parity import (  # noqa: E402
    CLASSIFICATION_TOLERANCES,
    ClassificationTolerance,
)
from serving import export, onnx_export  # noqa: E402
from serving.onnx_export import ONNXExportError  # noqa: E402
from serving.parity import ParityError  # noqa: E402
from tests.serving.test_export import (  # noqa: E402
    FakeTask,
    assert_nothing_left,
    make_examples,
    set_trained_weights,
)


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    model = FakeTask().build_model()
    set_trained_weights(model)
    path = str(tmp_path_factory.mktemp("model_dir"))
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), path, 1).save()
    return path


def _export(checkpoint_dir, export_dir, **kwargs):
    return export.export_task(
        FakeTask(),
        checkpoint_dir,
        str(export_dir),
        formats=["onnx"],
        num_parity_examples=12,
        **kwargs,
    )


def test_onnx_file_is_valid_runs_any_batch_and_passes_parity(tmp_path, checkpoint_dir):
    export_dir = tmp_path / "out"
    report = _export(checkpoint_dir, export_dir)
    assert {a["path"] for a in report["artifacts"]} == {
        "model.onnx",
        "parity.json",
        "labels.txt",
    }
    path = str(export_dir / "model.onnx")
    onnx.checker.check_model(path, full_check=True)
    with open(export_dir / "parity.json") as f:
        result = json.load(f)["artifacts"]["model.onnx"]
    assert result["kind"] == "onnx" and result["passed"]
    assert result["tolerance"] == vars(CLASSIFICATION_TOLERANCES["onnx"])
    assert result["max_abs_diff_probabilities"] <= 1e-4
    assert result["top1_agreement"] == 1.0

    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (model_input,) = session.get_inputs()
    assert (model_input.name, model_input.type) == ("images", "tensor(uint8)")
    assert model_input.shape[1:] == [8, 8, 3] and not isinstance(
        model_input.shape[0], int
    )
    assert {o.name for o in session.get_outputs()} == {
        "logits",
        "probabilities",
        "classes",
    }
    images, labels = make_examples(5, seed=11)
    outputs = onnx_export.run(path, images)  # One call with a batch of 5.
    np.testing.assert_array_equal(outputs["classes"], labels)


def test_an_invalid_onnx_file_fails_the_export(tmp_path, checkpoint_dir, monkeypatch):
    import tf2onnx

    def writes_an_invalid_model(function, input_signature, opset, output_path):
        node = onnx.helper.make_node("NoSuchOp", ["images"], ["logits"])
        graph = onnx.helper.make_graph(
            [node],
            "broken",
            [
                onnx.helper.make_tensor_value_info(
                    "images", onnx.TensorProto.UINT8, None
                )
            ],
            [
                onnx.helper.make_tensor_value_info(
                    "logits", onnx.TensorProto.FLOAT, None
                )
            ],
        )
        model = onnx.helper.make_model(
            graph, opset_imports=[onnx.helper.make_opsetid("", opset)]
        )
        onnx.save(model, output_path)  # Exits "successfully", as tf2onnx can.
        return model, None

    monkeypatch.setattr(tf2onnx.convert, "from_function", writes_an_invalid_model)
    with pytest.raises(
        ONNXExportError, match=r"model.onnx written by tf2onnx is not a valid ONNX"
    ):
        _export(checkpoint_dir, tmp_path / "out")
    assert_nothing_left(tmp_path)


def test_out_of_tolerance_onnx_fails_and_leaves_nothing(
    tmp_path, checkpoint_dir, monkeypatch
):
    impossible = ClassificationTolerance(
        max_abs_diff_probabilities=0.0, min_top1_agreement=1.01
    )
    monkeypatch.setitem(CLASSIFICATION_TOLERANCES, "onnx", impossible)
    with pytest.raises(ParityError, match=r"model.onnx: .*top-1 agreement"):
        _export(checkpoint_dir, tmp_path / "out")
    assert_nothing_left(tmp_path)


def test_a_missing_extra_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import raises ImportError
    spec = [tf.TensorSpec([1, 2], tf.float32, name="x")]
    with pytest.raises(
        ONNXExportError, match=r'needs .tf2onnx.*pip install -e "\.\[onnx\]"'
    ):
        onnx_export.convert(lambda x: {"y": x}, spec, str(tmp_path / "m.onnx"))
    assert_nothing_left(tmp_path)


def test_formats_flag_offers_onnx(tmp_path, checkpoint_dir):
    with pytest.raises(ValueError, match=r"Unknown format 'onx'. Did you mean 'onnx'"):
        export.export_task(
            FakeTask(), checkpoint_dir, str(tmp_path / "x"), formats=["onx"]
        )
    assert "onnx" in export.FORMATS and "onnx" not in export.DEFAULT_FORMATS
