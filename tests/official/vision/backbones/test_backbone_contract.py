"""The contract of every registered backbone, at a tiny size (R16).

For each name in BACKBONES: forward shapes per level at 64 px, `get_config` ->
`from_config` JSON equality, `.keras` save/load, SavedModel export with
`keras.export.ExportArchive` and reload, and TFLite float32 conversion (builtin
ops only) run with the LiteRT interpreter, all with equal outputs. A new
backbone must add its tiny arguments to TINY_PARAMS.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import official.registry_imports  # noqa: F401

# Until official/registry_imports.py lists them:
import official.vision.backbones.efficientnet  # noqa: F401
import official.vision.backbones.mobilenet  # noqa: F401
from official.base.registries import BACKBONES
from official.testing.test_case import run_saving_test, run_serialization_test

SIZE = 64
BATCH = 2
TINY_PARAMS = {
    "resnet": {"model_id": 10, "width_multiplier": 0.25},
    "mobilenet": {"model_id": "MobileNetV3Small", "width_multiplier": 0.25},
    "efficientnet": {
        "model_id": "b0",
        "width_coefficient": 0.25,
        "depth_coefficient": 0.25,
        "stochastic_depth_rate": 0.2,
    },
    "vit": {
        "model_id": "ti16",
        "hidden_size": 16,
        "num_layers": 1,
        "num_heads": 2,
        "mlp_dim": 32,
    },
}
NAMES = sorted(BACKBONES.names())
# The SavedModel runs as a graph, where oneDNN fuses ops differently from eager
# execution: float32 rounding differs by ~1e-5 of the outputs' scale.
SAVED_MODEL_ATOL = 5e-5
TFLITE_ATOL = 1e-4


def test_every_registered_backbone_has_tiny_params():
    missing = [name for name in NAMES if name not in TINY_PARAMS]
    assert not missing, f"Add tiny constructor arguments to TINY_PARAMS for {missing}."


def _images(batch=BATCH):
    rng = np.random.default_rng(0)
    return rng.normal(size=(batch, SIZE, SIZE, 3)).astype("float32")


def _numpy(structure):
    return {k: keras.ops.convert_to_numpy(v) for k, v in structure.items()}


def _assert_close(expected, actual, atol, what):
    assert sorted(expected) == sorted(actual), what
    for key in expected:
        np.testing.assert_allclose(
            actual[key], expected[key], atol=atol, rtol=atol, err_msg=f"{what}: {key}"
        )


@pytest.fixture(scope="module", params=NAMES)
def built(request, tmp_path_factory):
    """(name, backbone, inference outputs, SavedModel dir): built once per name."""
    name = request.param
    if name not in TINY_PARAMS:
        pytest.fail(f"No TINY_PARAMS entry for backbone {name!r}.")
    keras.utils.set_random_seed(0)
    backbone = BACKBONES.get(name)(input_shape=(SIZE, SIZE, 3), **TINY_PARAMS[name])
    expected = _numpy(backbone(_images(), training=False))
    path = str(tmp_path_factory.mktemp(f"{name}_saved_model"))
    archive = keras.export.ExportArchive()
    archive.track(backbone)
    archive.add_endpoint(
        "serving_default",
        lambda images: backbone(images, training=False),
        input_signature=[
            tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32, name="images")
        ],
    )
    archive.write_out(path, verbose=False)
    return name, backbone, expected, path


def test_forward_shapes_per_level(built):
    name, backbone, outputs, _ = built
    levels = [key for key in outputs if key.isdigit()]
    assert levels, f"{name}: no level keys in {sorted(outputs)}"
    for key, value in outputs.items():
        if key.isdigit():
            side = SIZE // 2 ** int(key)
            assert value.shape[:3] == (BATCH, side, side), f"{name} level {key}"
        else:  # a pooled representation, e.g. ViT's "pooled"
            assert value.ndim == 2 and value.shape[0] == BATCH, f"{name} {key}"
        assert backbone.output_specs[key] == (None, *value.shape[1:])


def test_get_config_round_trip(built):
    run_serialization_test(built[1])


def test_keras_file_save_load(built):
    run_saving_test(built[1], _images())


def test_saved_model_reload(built):
    name, _, expected, path = built
    reloaded = tf.saved_model.load(path)
    serve = reloaded.signatures["serving_default"]
    actual = _numpy(serve(images=tf.constant(_images())))
    _assert_close(expected, actual, SAVED_MODEL_ATOL, f"{name} SavedModel")


def test_tflite_float_conversion(built, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    name, _, expected, path = built
    converter = tf.lite.TFLiteConverter.from_saved_model(
        path, signature_keys=["serving_default"]
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    content = converter.convert()
    (tmp_path / "model.tflite").write_bytes(content)
    assert os.path.getsize(tmp_path / "model.tflite") > 0
    interpreter = Interpreter(model_content=content, num_threads=2)
    runner = interpreter.get_signature_runner("serving_default")
    images = _images()
    actual = {}
    for i in range(BATCH):  # the converted signature has batch size 1
        for key, value in runner(images=images[i : i + 1]).items():
            actual.setdefault(key, []).append(value)
    actual = {key: np.concatenate(values) for key, values in actual.items()}
    _assert_close(expected, actual, TFLITE_ATOL, f"{name} TFLite")
