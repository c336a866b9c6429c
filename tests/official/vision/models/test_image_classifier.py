"""ImageClassifier, ClassificationHead and the factory; published parameter counts."""

import keras
import numpy as np
import pytest

import official.vision.backbones.resnet  # noqa: F401  (registers "resnet")
from official.testing.test_case import run_layer_test, run_model_serialization_test
from official.vision.backbones.resnet import ResNet
from official.vision.configs.image_classification import (
    BackboneConfig,
    ImageClassificationModelConfig,
)
from official.vision.heads.classification_head import ClassificationHead
from official.vision.models.factory import build_image_classifier
from official.vision.models.image_classifier import ImageClassifier


def _images(size=32, batch=2):
    return (
        np.random.default_rng(0).normal(size=(batch, size, size, 3)).astype("float32")
    )


def _trainable(layer):
    return sum(int(np.prod(w.shape)) for w in layer.trainable_weights)


@pytest.fixture(autouse=True)
def _clear_session():
    yield
    keras.backend.clear_session()


@pytest.fixture(scope="module")
def imagenet_models():
    """ResNet-18 and ResNet-50 classifiers for 1000 classes at 224 px, built once."""
    models = {
        model_id: ImageClassifier(
            ResNet(model_id=model_id, input_shape=(224, 224, 3)), num_classes=1000
        )
        for model_id in (18, 50)
    }
    yield models
    keras.backend.clear_session()


@pytest.mark.parametrize(
    "model_id, trainable, backbone_trainable",
    [(50, 25_557_032, 23_508_032), (18, 11_689_512, 11_176_512)],
)
def test_parameter_counts_match_torchvision(
    imagenet_models, model_id, trainable, backbone_trainable
):
    """Published ResNet v1.5 counts (torchvision resnet50 / resnet18, 1000 classes)."""
    model = imagenet_models[model_id]
    assert _trainable(model) == trainable
    assert _trainable(model.backbone) == backbone_trainable
    assert model.output_shape == (None, 1000)


def test_classification_head_layer():
    run_layer_test(
        ClassificationHead,
        {"num_classes": 5, "dropout_rate": 0.5, "kernel_regularizer": "l2"},
        np.ones((2, 3, 3, 8), "float32"),
        expected_output_shape=(2, 5),
    )


def test_classification_head_is_float32_under_mixed_precision():
    head = ClassificationHead(num_classes=3, dtype="mixed_float16")
    logits = head(np.ones((2, 2, 2, 4), "float32"))
    assert head.dense.compute_dtype == "float16"
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"


def test_classifier_uses_the_highest_level():
    backbone = ResNet(model_id=10, width_multiplier=0.25, input_shape=(32, 32, 3))
    model = ImageClassifier(backbone, num_classes=7, dropout_rate=0.1)
    logits = model(_images(), training=False)
    assert tuple(logits.shape) == (2, 7)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert model.head.dense.kernel.shape == (backbone.output_specs["5"][-1], 7)
    assert model.head.dropout_rate == 0.1


def test_classifier_rejects_a_backbone_without_levels():
    inputs = keras.Input((8, 8, 3))
    plain = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))
    with pytest.raises(ValueError, match="dict from level to feature map"):
        ImageClassifier(plain, num_classes=3)


def test_classifier_serialization_round_trip():
    backbone = ResNet(model_id=18, width_multiplier=0.125, input_shape=(32, 32, 3))
    model = ImageClassifier(backbone, num_classes=4, dropout_rate=0.2, name="clf")
    loaded = run_model_serialization_test(model, _images())
    assert isinstance(loaded.backbone, ResNet)
    assert loaded.backbone.model_id == 18
    assert (loaded.num_classes, loaded.dropout_rate, loaded.name) == (4, 0.2, "clf")


def test_build_image_classifier_from_config():
    config = ImageClassificationModelConfig(
        num_classes=10,
        input_size=[48, 48, 3],
        backbone=BackboneConfig("resnet", {"model_id": 50, "width_multiplier": 0.125}),
        dropout_rate=0.3,
    )
    config.validate("task.model")
    model = build_image_classifier(config)
    assert isinstance(model, ImageClassifier)
    assert model.input_shape == (None, 48, 48, 3)
    assert model.backbone.model_id == 50 and model.backbone.width_multiplier == 0.125
    assert model.dropout_rate == 0.3
    assert tuple(model(_images(48)).shape) == (2, 10)
