"""Segmentation export: class maps at each image's resolution, logits on request."""

import os

import numpy as np
import pytest
import tensorflow as tf

from official.core import task_factory
from official.core.config_loader import load_experiment_config
from official.datasets import shapes
from serving import export


def shapes_config(data_dir, overrides=""):
    return load_experiment_config(
        "deeplabv3_shapes",
        [],
        ",".join(
            filter(
                None,
                [
                    f"task.train_data.input_path={data_dir}/train-*",
                    f"task.validation_data.input_path={data_dir}/validation-*",
                    "task.model.input_size=[32, 32, 3]",
                    "task.model.head.num_filters=8",
                    overrides,
                ],
            )
        ),
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A SavedModel (with logits) of an untrained model: outputs are checked
    against the task's own functions, so no training is needed."""
    root = tmp_path_factory.mktemp("segmentation_export")
    data = str(root / "shapes")
    shapes.write_shapes_tfrecords(data, num_train=2, num_validation=4, image_size=32)
    config = shapes_config(data, "task.export_logits=true")
    task = task_factory.get_task(config.task)
    model = task.build_model()
    fn, (spec,) = task.tflite_signature(model)
    fn(tf.zeros(spec.shape, spec.dtype))
    model_dir = str(root / "model")
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), model_dir, 1).save()
    export_dir = str(root / "export")
    report = export.export_experiment(
        config, model_dir, export_dir, formats=["saved_model"], num_parity_examples=4
    )
    loaded = tf.saved_model.load(os.path.join(export_dir, "saved_model"))
    return task, model, report, loaded


def test_parity_report_has_segmentation_measures(exported):
    _, _, report, _ = exported
    parity = report["parity"]
    assert parity["passed"], parity
    assert "miou" in parity["reference"]
    result = parity["artifacts"]["saved_model:image_tensor"]
    assert result["pixel_agreement"] == 1.0 and result["miou_drop"] == 0.0
    assert result["tolerance"]["minimum"] == {"pixel_agreement": 0.999}


def test_image_tensor_returns_maps_at_the_input_resolution(exported):
    task, model, _, loaded = exported
    images = np.random.default_rng(0).integers(0, 256, (2, 20, 44, 3), np.uint8)
    out = loaded.signatures["image_tensor"](images=tf.constant(images))
    assert out["classes"].shape == (2, 20, 44) and out["classes"].dtype == tf.int32
    assert out["logits"].shape == (2, 20, 44, 4)
    np.testing.assert_array_equal(out["classes"], np.argmax(out["logits"], -1))
    reference = task.serving_signatures(model)["image_tensor"][0](tf.constant(images))
    np.testing.assert_allclose(out["logits"], reference["logits"], atol=1e-4)


def test_image_bytes_pads_a_mixed_size_batch(exported):
    _, _, _, loaded = exported
    images = np.random.default_rng(1).integers(0, 256, (2, 20, 44, 3), np.uint8)
    encoded = [tf.io.encode_png(images[0]), tf.io.encode_png(images[1, :10, :30])]
    out = loaded.signatures["image_bytes"](image_bytes=tf.stack(encoded))
    classes = out["classes"].numpy()
    assert classes.shape == (2, 20, 44)
    np.testing.assert_array_equal(out["image_sizes"], [[20, 44], [10, 30]])
    assert np.all(classes[1, 10:] == -1) and np.all(classes[1, :, 30:] == -1)
    assert np.all(classes[1, :10, :30] >= 0) and np.all(classes[0] >= 0)
    alone = loaded.signatures["image_bytes"](image_bytes=tf.stack(encoded[1:]))
    np.testing.assert_array_equal(alone["classes"][0], classes[1, :10, :30])


def test_tflite_signature_and_serving_examples(exported):
    task, model, _, _ = exported
    fn, (spec,) = task.tflite_signature(model)
    assert spec.shape == (1, 32, 32, 3) and spec.dtype == tf.uint8
    out = fn(tf.zeros(spec.shape, spec.dtype))
    assert set(out) == {"classes", "logits"} and out["logits"].shape == (1, 32, 32, 4)
    images, labels = task.serving_examples(3)
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    assert labels.shape == (3, 32, 32) and set(np.unique(labels)) <= {0, 1, 2, 3}
