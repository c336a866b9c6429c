"""TFLite export options: --allow_flex_ops, --int8_io, and the labels files.

Uses the tiny fake classifier of test_export.py (8x8 images, 3 classes) and,
for the converter itself, a 4-input Dense model.
"""

import json
import os
import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from official.vision.tasks.classification_parity import CLASSIFICATION_TOLERANCES
from serving import export, saved_model_export, tflite_export
from serving.tflite_export import TFLiteExportError
from tests.serving.test_export import (
    CLASSES,
    FakeTask,
    FlexTask,
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


def _dense_source(tmp_path, with_cumprod):
    """A float-input Dense model as the scratch SavedModel the converter reads."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])

    def predict(features):
        logits = model(features)
        if with_cumprod:
            logits = tf.math.cumprod(logits, axis=-1)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

    spec = [tf.TensorSpec([1, 4], tf.float32, name="features")]
    path = str(tmp_path / "source")
    tflite_export.write_source_saved_model(model, predict, spec, path)
    return model, path


# ---- Flex ops -------------------------------------------------------------------------


def test_flex_ops_are_refused_with_their_names(tmp_path):
    _, source = _dense_source(tmp_path, with_cumprod=True)
    with pytest.raises(
        TFLiteExportError,
        match=r"needs Select TF \(Flex\) ops: Cumprod\. Only TFLite builtin ops "
        r"are allowed unless --allow_flex_ops",
    ):
        tflite_export.convert(source, "none")


def test_allow_flex_ops_converts_and_lists_them(tmp_path):
    _, source = _dense_source(tmp_path, with_cumprod=True)
    content = tflite_export.convert(source, "none", allow_flex_ops=True)
    assert tflite_export.flex_ops(content) == ["FlexCumprod"]
    _, plain = _dense_source(tmp_path / "plain", with_cumprod=False)
    assert tflite_export.flex_ops(tflite_export.convert(plain, "none")) == []


def _run_main(monkeypatch, task, argv):
    config = types.SimpleNamespace(task=None, to_yaml=lambda: "fake: true\n")
    monkeypatch.setattr(export, "load_experiment_config", lambda *args: config)
    monkeypatch.setattr(export.task_factory, "get_task", lambda task_config: task)
    flag_values = flags.FlagValues()
    export.define_flags(flag_values)
    flag_values(["export", "--experiment=fake", *argv])
    return export.main([], flag_values)


def test_cli_refuses_flex_ops_unless_allowed(
    tmp_path, checkpoint_dir, monkeypatch, capsys
):
    argv = [
        f"--checkpoint_path={checkpoint_dir}",
        f"--export_dir={tmp_path / 'flex'}",
        "--formats=saved_model,tflite",
        "--input_type=image_tensor",
        "--quantization=none,float16",
        "--num_parity_examples=3",
    ]
    assert _run_main(monkeypatch, FlexTask(), argv) == 1
    err = capsys.readouterr().err
    assert "TFLiteExportError" in err and "Flex) ops: Cumprod" in err
    assert_nothing_left(tmp_path)

    assert _run_main(monkeypatch, FlexTask(), [*argv, "--allow_flex_ops"]) == 0
    out = capsys.readouterr().out
    assert "model_float32.tflite" in out and "NOT CHECKED" in out
    with open(tmp_path / "flex" / "export_report.json") as f:
        report = json.load(f)
    assert report["tflite"] == {
        "allow_flex_ops": True,
        "flex_ops": {
            "model_float32.tflite": ["FlexCumprod"],
            "model_float16.tflite": ["FlexCumprod"],
        },
        "int8_io": None,
    }
    # The SavedModel is still compared; the Flex files are listed as unchecked.
    assert set(report["parity"]["artifacts"]) == {
        "saved_model:image_tensor",
        "saved_model:serving_default",
    }
    assert set(report["parity"]["unchecked"]) == {
        "model_float32.tflite",
        "model_float16.tflite",
    }
    assert "FlexCumprod" in report["parity"]["unchecked"]["model_float32.tflite"]


# ---- int8 input/output types ----------------------------------------------------------


@pytest.mark.parametrize("int8_io", ["int8", "uint8"])
def test_int8_io_file_has_quantized_outputs_and_passes_parity(
    tmp_path, checkpoint_dir, int8_io
):
    from ai_edge_litert.interpreter import Interpreter

    export_dir = tmp_path / "out"
    report = export.export_task(
        FakeTask(),
        checkpoint_dir,
        str(export_dir),
        formats=["tflite"],
        quantizations=["int8"],
        num_parity_examples=12,
        num_calibration_examples=12,
        int8_io=int8_io,
    )
    assert report["tflite"]["int8_io"] == int8_io
    result = report["parity"]["artifacts"]["model_int8.tflite"]
    assert result["passed"] and result["top1_agreement"] == 1.0
    assert result["tolerance"] == vars(CLASSIFICATION_TOLERANCES["int8"])
    # Dequantized probabilities are probabilities again (a raw int8 read is not).
    assert result["max_abs_diff_probabilities"] < 0.1

    path = str(export_dir / "model_int8.tflite")
    runner = Interpreter(model_path=path).get_signature_runner("serving_default")
    inputs = runner.get_input_details()
    assert inputs["images"]["dtype"] == np.uint8  # uint8 images stay uint8.
    outputs = runner.get_output_details()
    assert outputs["probabilities"]["dtype"] == np.dtype(int8_io)
    assert outputs["logits"]["dtype"] == np.dtype(int8_io)
    assert outputs["classes"]["dtype"] == np.int32
    scale, zero_point = outputs["probabilities"]["quantization"]
    assert scale > 0

    images, labels = make_examples(4, seed=9)
    raw = tflite_export.run(path, {"images": images}, dequantize=False)
    assert raw["probabilities"].dtype == np.dtype(int8_io)
    dequantized = tflite_export.run(path, {"images": images})
    np.testing.assert_allclose(
        dequantized["probabilities"],
        (raw["probabilities"].astype(np.float32) - zero_point) * scale,
    )
    np.testing.assert_array_equal(dequantized["classes"], labels)
    np.testing.assert_allclose(dequantized["probabilities"].sum(-1), 1.0, atol=0.05)


def test_int8_io_quantizes_float_inputs(tmp_path):
    model, source = _dense_source(tmp_path, with_cumprod=False)
    rng = np.random.default_rng(0)
    calibration = rng.uniform(-1, 1, (32, 4)).astype(np.float32)
    content = tflite_export.convert(
        source, "int8", {"features": calibration}, int8_io="int8"
    )
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=content).get_signature_runner()
    detail = runner.get_input_details()["features"]
    assert detail["dtype"] == np.int8 and detail["quantization"][0] > 0
    features = rng.uniform(-1, 1, (6, 4)).astype(np.float32)
    got = tflite_export.run(content, {"features": features})
    want = model(features).numpy()
    assert got["logits"].dtype == np.float32
    # int8 steps of ~1/128 of the range on input, weights and outputs.
    np.testing.assert_allclose(got["logits"], want, atol=0.05 * np.abs(want).max())


def test_quantize_and_dequantize_use_scale_and_zero_point():
    int8 = {"dtype": np.int8, "quantization": (0.5, -10)}
    np.testing.assert_array_equal(
        tflite_export.to_input(np.array([0.0, 1.0, 100.0, -100.0]), int8),
        np.array([-10, -8, 127, -128], np.int8),
    )
    values = np.array([-10, 0, 127], np.int8)
    np.testing.assert_allclose(
        tflite_export.dequantize_output(values, int8), [0.0, 5.0, 68.5]
    )
    plain = {"dtype": np.uint8, "quantization": (0.0, 0)}
    images = np.array([0, 255], np.uint8)
    assert tflite_export.to_input(images, plain).dtype == np.uint8
    classes = np.array([2, 1], np.int32)
    assert tflite_export.dequantize_output(classes, plain) is classes


def test_int8_io_needs_the_int8_quantization(tmp_path, checkpoint_dir):
    with pytest.raises(
        ValueError, match=r"int8_io='uint8'.*Add int8 to --quantization"
    ):
        export.export_task(
            FakeTask(),
            checkpoint_dir,
            str(tmp_path / "x"),
            quantizations=["none"],
            int8_io="uint8",
        )
    with pytest.raises(ValueError, match=r"Unknown int8_io 'int16'. Valid: float32"):
        export.export_task(
            FakeTask(), checkpoint_dir, str(tmp_path / "x"), int8_io="int16"
        )
    assert_nothing_left(tmp_path)


# ---- labels ----------------------------------------------------------------------------


def test_labels_beside_the_tflite_files_and_in_the_saved_model(
    tmp_path, checkpoint_dir
):
    export_dir = tmp_path / "out"
    report = export.export_task(
        FakeTask(),
        checkpoint_dir,
        str(export_dir),
        input_types=["image_tensor"],
        quantizations=["none"],
        num_parity_examples=3,
    )
    assert report["labels"] == ["saved_model/assets.extra/labels.txt", "labels.txt"]
    for path in report["labels"]:
        assert (export_dir / path).read_text() == "".join(f"{c}\n" for c in CLASSES)
    assert os.path.dirname(str(export_dir / "labels.txt")) == os.path.dirname(
        str(export_dir / "model_float32.tflite")
    )
    assert saved_model_export.LABELS_PATH == os.path.join("assets.extra", "labels.txt")
    assert "Labels: saved_model/assets.extra/labels.txt, labels.txt" in (
        export.format_summary(report)
    )


class BadNamesTask(FakeTask):
    def class_names(self):
        return ["red", "two\nlines", "blue"]


def test_class_names_with_newlines_are_refused(tmp_path, checkpoint_dir):
    with pytest.raises(ValueError, match=r"one-line names.*two\\nlines"):
        export.export_task(
            BadNamesTask(),
            checkpoint_dir,
            str(tmp_path / "x"),
            formats=["saved_model"],
            num_parity_examples=2,
        )
    assert_nothing_left(tmp_path)


def _digits_task(train, validation):
    from official.core import config_loader, task_factory

    config = config_loader.load_experiment_config(
        "resnet_digits",
        params_override={
            "task.train_data.input_path": train,
            "task.validation_data.input_path": validation,
        },
    )
    return task_factory.get_task(config.task)


def test_image_classification_reads_labels_beside_the_tfrecords(digits_dir, tmp_path):
    task = _digits_task(f"{digits_dir}/train-*", f"{digits_dir}/validation-*")
    assert task.class_names() == [str(digit) for digit in range(10)]

    (tmp_path / "validation-0.tfrecord").write_bytes(b"")
    (tmp_path / "labels.txt").write_text("cat\ndog\nbird\n")
    task = _digits_task(f"{digits_dir}/train-*", f"{tmp_path}/validation-*")
    with pytest.raises(
        ValueError, match=r"names 3 classes, but task.model.num_classes"
    ):
        task.class_names()
    (tmp_path / "labels.txt").unlink()
    assert task.class_names() == []
