"""EfficientNet backbone: levels, compound scaling, parameter counts, errors."""

import functools
import math

import keras
import numpy as np
import pytest

from official.base.registries import BACKBONES
from official.modeling.layers import InvertedBottleneck
from official.testing.test_case import run_model_serialization_test
from official.vision.backbones.efficientnet import EFFICIENTNET_SPECS, EfficientNet
from official.vision.models.image_classifier import ImageClassifier


@pytest.fixture(autouse=True)
def _clear_session():
    yield
    keras.backend.clear_session()


def _images(size, batch=2):
    return (
        np.random.default_rng(0).normal(size=(batch, size, size, 3)).astype("float32")
    )


@functools.cache
def _tiny():
    """A quarter-width, quarter-depth B0 at 64 px, built once per test module."""
    return EfficientNet(
        "b0",
        width_coefficient=0.25,
        depth_coefficient=0.25,
        input_shape=(64, 64, 3),
    )


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _blocks(backbone):
    return [layer for layer in backbone.layers if isinstance(layer, InvertedBottleneck)]


def test_b0_parameter_count_blocks_and_stochastic_depth():
    backbone = EfficientNet("b0", stochastic_depth_rate=0.2, input_shape=(224, 224, 3))
    model = ImageClassifier(backbone, num_classes=1000)
    # Measured against keras.applications.EfficientNetB0 (the slow test below).
    assert _trainable(model) == 5_288_548
    assert _trainable(backbone) == 4_007_548
    assert backbone.output_specs["5"] == (None, 7, 7, 1280)
    blocks = _blocks(backbone)
    assert len(blocks) == 16
    for i, block in enumerate(blocks):
        assert block.stochastic_depth_rate == pytest.approx(0.2 * i / 16)
        assert block.se_ratio == 0.25 and block.activation == "swish"
    assert blocks[0].stochastic_depth is None  # rate 0
    assert blocks[2].use_residual and blocks[2].stochastic_depth is not None


@pytest.mark.slow
def test_b0_classifier_matches_keras_applications():
    ours = ImageClassifier(EfficientNet("b0", input_shape=(224, 224, 3)), 1000)
    # keras.applications.EfficientNetB0's Rescaling/Normalization layers hold
    # non-trainable weights only, so trainable counts compare directly.
    reference = keras.applications.EfficientNetB0(
        input_shape=(224, 224, 3), weights=None
    )
    assert _trainable(ours) == _trainable(reference) == 5_288_548


@pytest.mark.slow
@pytest.mark.parametrize("model_id", ["b1", "b2", "b3", "b4", "b5", "b6", "b7"])
def test_scaled_variants_match_keras_applications(model_id):
    ours = EfficientNet(model_id)
    reference = getattr(keras.applications, f"EfficientNet{model_id.upper()}")(
        include_top=False, weights=None
    )
    assert _trainable(ours) == _trainable(reference)
    assert ours.output_specs["5"][-1] == reference.output_shape[-1]


def test_levels_and_shapes():
    backbone = _tiny()
    features = backbone(_images(64), training=False)
    assert sorted(features) == ["2", "3", "4", "5"]
    # 24, 40, 112 and 1280 channels at width 1, times 0.25 rounded to 8s: level
    # "4" is the last stride-16 stage (112), level "5" ends with the top conv.
    for level, width in zip(("2", "3", "4", "5"), (8, 16, 32, 320)):
        side = 64 // 2 ** int(level)
        assert tuple(features[level].shape) == (2, side, side, width)
        assert backbone.output_specs[level] == (None, side, side, width)
    assert len(_blocks(backbone)) == 7  # one block per stage
    assert backbone.get_layer("stage6_block1").strides == 2


@pytest.mark.slow
@pytest.mark.parametrize("model_id", sorted(EFFICIENTNET_SPECS))
def test_depth_scaling_per_variant(model_id):
    """Blocks per stage are ceil(depth * B0's), as in the reference code."""
    _, depth, resolution, dropout = EFFICIENTNET_SPECS[model_id]
    expected = sum(math.ceil(depth * n) for n in (1, 2, 2, 3, 3, 4, 1))
    backbone = EfficientNet(model_id, width_coefficient=0.1, input_shape=(32, 32, 3))
    assert len(_blocks(backbone)) == expected
    assert resolution % 4 == 0 and 0.0 < dropout < 1.0


@pytest.mark.parametrize("model_id", ["b8", "B0", 0, None, ["b0"]])
def test_invalid_model_id(model_id):
    with pytest.raises(ValueError) as e:
        EfficientNet(model_id=model_id)
    message = str(e.value)
    assert "b0, b1, b2, b3, b4, b5, b6, b7" in message
    assert f"Received: model_id={model_id!r}" in message


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"stochastic_depth_rate": 1.0}, "Received: stochastic_depth_rate=1.0"),
        ({"stochastic_depth_rate": "0.2"}, "Received: stochastic_depth_rate='0.2'"),
        ({"width_coefficient": 0}, "Received: width_coefficient=0"),
        ({"depth_coefficient": -1.0}, "Received: depth_coefficient=-1.0"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EfficientNet(**kwargs)


def test_validate_params_names_the_config_path():
    where = "task.model.backbone.params"
    EfficientNet.validate_params(
        {"model_id": "b3", "stochastic_depth_rate": 0.2}, (300, 300, 3), where
    )
    with pytest.raises(ValueError, match=rf"^{where}: `model_id` must be one of"):
        EfficientNet.validate_params({"model_id": "b9"}, (224, 224, 3), where)


def test_registered_as_backbone():
    assert BACKBONES.get("efficientnet") is EfficientNet


def test_serialization_round_trip():
    backbone = EfficientNet(
        model_id="b1",
        width_coefficient=0.25,
        depth_coefficient=0.25,
        stochastic_depth_rate=0.2,
        input_shape=(32, 32, 3),
        use_sync_bn=True,
        norm_momentum=0.9,
        norm_epsilon=1e-5,
        kernel_initializer=keras.initializers.HeUniform(seed=3),
        name="my_efficientnet",
    )
    loaded = run_model_serialization_test(backbone, _images(32))
    assert loaded.name == "my_efficientnet"
    assert loaded.model_id == "b1" and loaded.stochastic_depth_rate == 0.2
