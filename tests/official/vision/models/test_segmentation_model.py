"""SegmentationModel: every head type builds, checkpoints and reloads."""

import numpy as np
import pytest
import tensorflow as tf

import official.registry_imports  # noqa: F401
from official.testing.test_case import run_model_serialization_test
from official.vision.configs.image_classification import BackboneConfig
from official.vision.configs.semantic_segmentation import (
    HEAD_TYPES,
    SegmentationHeadConfig,
    SemanticSegmentationModelConfig,
)
from official.vision.models.segmentation_factory import build_segmentation_model


def tiny(head_type, aux_head=True, output_stride=8):
    config = SemanticSegmentationModelConfig(
        num_classes=3,
        input_size=[32, 32, 3],
        output_stride=output_stride,
        backbone=BackboneConfig("resnet", {"model_id": 10, "width_multiplier": 0.25}),
        head=SegmentationHeadConfig(
            head_type,
            num_filters=8,
            aspp_dilation_rates=[2, 4],
            num_convs=2,
            num_codewords=4,
        ),
        aux_head=aux_head,
    )
    config.validate("model")
    return build_segmentation_model(config)


IMAGES = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")


@pytest.mark.parametrize("head_type", HEAD_TYPES)
def test_checkpoint_restores_every_variable(tmp_path, head_type):
    model = tiny(head_type)
    expected = model(IMAGES, training=False)
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    fresh = tiny(head_type)
    fresh(IMAGES)
    tf.train.Checkpoint(model=fresh).restore(path).assert_consumed()
    for key, value in fresh(IMAGES, training=False).items():
        np.testing.assert_allclose(value, expected[key], atol=1e-5, err_msg=key)


@pytest.mark.parametrize("head_type", HEAD_TYPES)
def test_outputs_and_keras_round_trip(head_type):
    model = tiny(head_type)
    outputs = model(IMAGES)
    assert outputs["logits"].shape == (2, 32, 32, 3)
    assert outputs["aux_logits"].shape == (2, 32, 32, 3)
    assert ("se_logits" in outputs) == (head_type == "encnet")
    run_model_serialization_test(model, IMAGES)


def test_any_input_size_at_output_stride_16():
    model = tiny("deeplabv3plus", aux_head=False, output_stride=16)
    out = model(np.zeros((1, 48, 80, 3), "float32"))
    assert set(out) == {"logits"} and out["logits"].shape == (1, 48, 80, 3)


def test_mobilenet_backbone_at_output_stride_32():
    config = SemanticSegmentationModelConfig(
        num_classes=3,
        input_size=[64, 64, 3],
        output_stride=32,
        backbone=BackboneConfig(
            "mobilenet", {"model_id": "MobileNetV3Small", "width_multiplier": 0.25}
        ),
        head=SegmentationHeadConfig(
            "deeplabv3plus", num_filters=8, aspp_dilation_rates=[1]
        ),
    )
    config.validate("model")
    out = build_segmentation_model(config)(np.zeros((1, 64, 64, 3), "float32"))
    assert out["logits"].shape == (1, 64, 64, 3)


@pytest.mark.parametrize("head_type", ["encnet", "deeplabv3plus"])
def test_mixed_float16_outputs_are_float32(head_type):
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        outputs = tiny(head_type)(IMAGES * 100.0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    for key, value in outputs.items():
        assert value.dtype == "float32", key
        assert np.all(np.isfinite(np.asarray(value))), key
