"""A SavedModel stores each variable once.

Keras' `ExportArchive` saved the variables `track(model)` lists and, again,
the `tf.Variable`s the endpoints capture (`_all_variables`): 22.4 MB of
`variables/` for 11.2 MB of weights; the demo's 2.5 MB for 1.25 MB.
"""

import logging
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import logging as absl_logging

from serving import saved_model_export


def _directory_bytes(path):
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )


def _weight_bytes(model):
    return sum(int(np.prod(v.shape)) * tf.as_dtype(v.dtype).size for v in model.weights)


def test_variables_are_stored_once(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(256),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(10),
        ]
    )
    model.layers[0].kernel.assign(np.full((16, 256), 0.5, np.float32))

    def predict(features):
        return {"logits": model(features, training=False)}

    spec = [tf.TensorSpec([None, 16], tf.float32, name="features")]
    path = str(tmp_path / "saved_model")
    saved_model_export.write_saved_model(
        model, {"predict": (predict, spec), "again": (predict, spec)}, path
    )
    weights = _weight_bytes(model)
    stored = _directory_bytes(os.path.join(path, "variables"))
    assert weights <= stored <= weights * 1.05 + 8192, (weights, stored)
    keys = [name for name, _ in tf.train.list_variables(f"{path}/variables/variables")]
    assert not [k for k in keys if k.startswith("_all_variables")], keys

    loaded = tf.saved_model.load(path)
    assert len(loaded.variables) == len(model.variables)
    assert len(loaded.trainable_variables) == len(model.trainable_variables)
    x = np.ones((2, 16), np.float32)
    np.testing.assert_allclose(
        loaded.signatures["predict"](features=tf.constant(x))["logits"],
        model(x, training=False),
        atol=1e-5,
    )


def test_absl_info_logs_still_show_after_an_export(tmp_path, caplog):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    spec = [tf.TensorSpec([None, 3], tf.float32, name="x")]
    logger = logging.getLogger("absl")
    logger.setLevel(logging.NOTSET)  # Inherits the root's, as in a fresh process.
    saved_model_export.write_saved_model(
        model, {"predict": (lambda x: {"y": model(x)}, spec)}, str(tmp_path / "m")
    )
    assert logger.level == logging.NOTSET
    with caplog.at_level(logging.INFO):
        absl_logging.info("after the export")
    assert "after the export" in caplog.text


@pytest.mark.slow
def test_resnet50_saved_model_is_under_110_mb(tmp_path):
    """ResNet-50 (1000 classes, 224 px): ~102 MB of weights, stored once."""
    from official.core import config_loader, task_factory

    config = config_loader.load_experiment_config(
        "resnet_imagenet",
        params_override="task.validation_data.input_path=/nonexistent-*",
    )
    task = task_factory.get_task(config.task)
    model = task.build_model()
    path = str(tmp_path / "saved_model")
    saved_model_export.write_saved_model(model, task.serving_signatures(model), path)
    size = _directory_bytes(path)
    weights = _weight_bytes(model)
    assert size < 110e6, (size, weights)
    assert _directory_bytes(os.path.join(path, "variables")) < weights * 1.01 + 65536
