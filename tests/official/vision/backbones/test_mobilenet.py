"""MobileNet backbone: levels, widths, parameter counts against keras.applications."""

import functools

import keras
import numpy as np
import pytest

from official.base.registries import BACKBONES
from official.testing.test_case import run_model_serialization_test
from official.vision.backbones.mobilenet import MOBILENET_SPECS, MobileNet
from official.vision.configs.image_classification import BackboneConfig
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
def _tiny(model_id):
    """A width-0.25 backbone at 64 px, built once per test module."""
    return MobileNet(model_id, width_multiplier=0.25, input_shape=(64, 64, 3))


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


# Trainable parameters at width 1.0, measured against keras.applications (weights=None;
# the slow tests below repeat that): the backbone alone (equal to keras.applications'
# include_top=False model) and ImageClassifier(backbone, 1000), equal to
# keras.applications' classifiers (V3 with its pooled 1280 / 1024 hidden layer).
PARAMETER_COUNTS = {
    "MobileNetV2": (2_223_872, 3_504_872),
    "MobileNetV3Large": (2_971_952, 5_483_032),
    "MobileNetV3Small": (927_008, 2_542_856),
}


@pytest.mark.parametrize("model_id", sorted(MOBILENET_SPECS))
def test_parameter_counts_at_224(model_id):
    backbone = MobileNet(model_id, input_shape=(224, 224, 3))
    model = ImageClassifier(backbone, num_classes=1000)
    assert (_trainable(backbone), _trainable(model)) == PARAMETER_COUNTS[model_id]
    assert backbone.output_specs["5"][1:3] == (7, 7)


def test_v3_head_is_the_published_one():
    backbone, classifier = PARAMETER_COUNTS["MobileNetV3Large"]
    assert classifier == backbone + (960 * 1280 + 1280) + (1280 * 1000 + 1000)


def _keras_application(model_id, alpha, include_top):
    kwargs = dict(input_shape=(224, 224, 3), alpha=alpha, weights=None)
    if model_id != "MobileNetV2":
        kwargs["include_preprocessing"] = False
    fn = getattr(keras.applications, model_id)  # same names as our model_ids
    return fn(include_top=include_top, **kwargs)


@pytest.mark.slow
def test_v2_classifier_matches_keras_applications():
    ours = ImageClassifier(MobileNet("MobileNetV2", input_shape=(224, 224, 3)), 1000)
    reference = _keras_application("MobileNetV2", 1.0, include_top=True)
    assert _trainable(ours) == _trainable(reference) == 3_504_872


@pytest.mark.slow
@pytest.mark.parametrize(
    "model_id, alpha",
    [
        ("MobileNetV2", 0.35),
        ("MobileNetV2", 1.0),
        ("MobileNetV2", 1.4),
        ("MobileNetV3Large", 0.75),
        ("MobileNetV3Large", 1.0),
        ("MobileNetV3Small", 0.75),
        ("MobileNetV3Small", 1.0),
    ],
)
def test_backbone_matches_keras_applications_without_top(model_id, alpha):
    ours = MobileNet(model_id, width_multiplier=alpha, input_shape=(224, 224, 3))
    reference = _keras_application(model_id, alpha, include_top=False)
    assert _trainable(ours) == _trainable(reference)
    assert ours.output_specs["5"][-1] == reference.output_shape[-1]


@pytest.mark.parametrize(
    "model_id, widths",
    [
        ("MobileNetV2", (8, 8, 24, 1280)),
        ("MobileNetV3Small", (8, 8, 16, 144)),
        ("MobileNetV3Large", (8, 16, 32, 240)),
    ],
)
def test_levels_and_shapes(model_id, widths):
    backbone = _tiny(model_id)
    features = backbone(_images(64), training=False)
    assert sorted(features) == ["2", "3", "4", "5"]
    for level, width in zip(("2", "3", "4", "5"), widths):
        side = 64 // 2 ** int(level)
        assert tuple(features[level].shape) == (2, side, side, width)
        assert backbone.output_specs[level] == (None, side, side, width)


def test_stem_and_top_conv_widths():
    v2 = _tiny("MobileNetV2")
    assert v2.get_layer("stem_conv").filters == 8  # 32 x 0.25
    # Unscaled below 1 (1280 x 1.4 above 1: the slow keras.applications check).
    assert v2.get_layer("top_conv").filters == 1280
    v3 = _tiny("MobileNetV3Small")
    assert v3.get_layer("stem_conv").filters == 16  # not scaled in V3
    assert v3.get_layer("top_conv").filters == 24 * 6  # 6x the last block


def test_v3_blocks_use_squeeze_excite_and_hard_swish():
    backbone = _tiny("MobileNetV3Large")
    block = backbone.get_layer("block3")  # 5x5, SE, ReLU
    assert block.kernel_size == 5 and block.squeeze_excite is not None
    assert block.se_gate_activation == "hard_sigmoid" and block.activation == "relu"
    assert backbone.get_layer("block6").activation == "hard_swish"
    assert backbone.get_layer("block6").squeeze_excite is None


def test_dynamic_input_size_by_default():
    backbone = MobileNet("MobileNetV3Small", width_multiplier=0.25)
    assert backbone.input_shape == (None, None, None, 3)
    for size in (32, 48):
        features = backbone(_images(size, batch=1))
        side = -(-size // 32)
        assert tuple(features["5"].shape) == (1, side, side, 144)


@pytest.mark.parametrize(
    "model_id", ["MobileNetV1", "mobilenet_v2", None, ["MobileNetV2"]]
)
def test_invalid_model_id(model_id):
    with pytest.raises(ValueError) as e:
        MobileNet(model_id=model_id)
    message = str(e.value)
    assert "MobileNetV2, MobileNetV3Small, MobileNetV3Large" in message
    assert f"Received: model_id={model_id!r}" in message


@pytest.mark.parametrize("width", [0, -0.5, "1.0", True, None])
def test_invalid_width_multiplier(width):
    with pytest.raises(ValueError, match=f"Received: width_multiplier={width!r}"):
        MobileNet(width_multiplier=width)


def test_validate_params_names_the_config_path():
    where = "task.model.backbone.params"
    MobileNet.validate_params({"width_multiplier": 0.75}, (224, 224, 3), where)
    MobileNet.validate_params({}, (None, None, 3), where)
    with pytest.raises(ValueError, match=rf"^{where}: `model_id` must be one of"):
        MobileNet.validate_params({"model_id": "MobileNetV4"}, (224, 224, 3), where)


def test_unknown_param_fails_config_validation():
    config = BackboneConfig("mobilenet", {"model_id": "MobileNetV2", "alpha": 0.5})
    with pytest.raises(KeyError, match="Valid keys under"):
        config.validate("task.model.backbone")


def test_registered_as_backbone():
    assert BACKBONES.get("mobilenet") is MobileNet


def test_serialization_round_trip():
    backbone = MobileNet(
        model_id="MobileNetV3Small",
        width_multiplier=0.25,
        input_shape=(32, 32, 3),
        use_sync_bn=True,
        norm_momentum=0.9,
        norm_epsilon=1e-5,
        kernel_initializer=keras.initializers.HeUniform(seed=3),
        name="my_mobilenet",
    )
    loaded = run_model_serialization_test(backbone, _images(32))
    assert loaded.name == "my_mobilenet"
    assert loaded.model_id == "MobileNetV3Small" and loaded.width_multiplier == 0.25
