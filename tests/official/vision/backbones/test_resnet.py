"""ResNet backbone: levels and shapes, depths, errors, serialization."""

import keras
import numpy as np
import pytest

from official.base.registries import BACKBONES
from official.modeling.layers import BottleneckBlock, ResidualBlock
from official.testing.test_case import run_model_serialization_test
from official.vision.backbones.resnet import RESNET_SPECS, ResNet


@pytest.fixture(autouse=True)
def _clear_session():
    yield
    keras.backend.clear_session()


def _images(size, batch=2):
    return (
        np.random.default_rng(0).normal(size=(batch, size, size, 3)).astype("float32")
    )


@pytest.mark.parametrize(
    "model_id, size, widths",
    [
        (10, 32, (16, 32, 64, 128)),
        (18, 64, (16, 32, 64, 128)),
        (50, 64, (64, 128, 256, 512)),
    ],
)
def test_levels_and_shapes(model_id, size, widths):
    backbone = ResNet(
        model_id=model_id, width_multiplier=0.25, input_shape=(size, size, 3)
    )
    features = backbone(_images(size), training=False)
    assert sorted(features) == ["2", "3", "4", "5"]
    for level, width in zip(("2", "3", "4", "5"), widths):
        stride = 2 ** int(level)
        assert tuple(features[level].shape) == (
            2,
            size // stride,
            size // stride,
            width,
        )
        assert backbone.output_specs[level] == (
            None,
            size // stride,
            size // stride,
            width,
        )


def test_dynamic_input_size_by_default():
    backbone = ResNet(model_id=10, width_multiplier=0.125)
    assert backbone.input_shape == (None, None, None, 3)
    for size in (32, 48):
        features = backbone(_images(size, batch=1))
        side = -(-size // 32)  # "same" padding rounds up
        assert tuple(features["5"].shape) == (1, side, side, 64)


def test_width_multiplier_is_rounded_with_a_floor_of_8():
    backbone = ResNet(model_id=10, width_multiplier=0.01, input_shape=(32, 32, 3))
    assert backbone.get_layer("stem_conv").filters == 8
    assert backbone.output_specs["5"][-1] == 8


@pytest.mark.parametrize("model_id", sorted(RESNET_SPECS))
def test_depth_matches_model_id(model_id):
    """Weighted layers: stem + 2 or 3 per block + the classifier = model_id."""
    block_cls, counts = RESNET_SPECS[model_id]
    per_block = 2 if block_cls is ResidualBlock else 3
    assert block_cls in (ResidualBlock, BottleneckBlock)
    assert 1 + per_block * sum(counts) + 1 == model_id
    assert (block_cls is BottleneckBlock) == (model_id >= 50)


@pytest.mark.parametrize("model_id", [0, 20, "50", None, [50]])
def test_invalid_model_id(model_id):
    with pytest.raises(ValueError) as e:
        ResNet(model_id=model_id)
    message = str(e.value)
    assert "10, 18, 34, 50, 101, 152, 200" in message
    assert f"Received: model_id={model_id!r}" in message


def test_invalid_width_multiplier():
    with pytest.raises(ValueError, match="Received: width_multiplier=0"):
        ResNet(model_id=10, width_multiplier=0)


def test_registered_as_backbone():
    assert BACKBONES.get("resnet") is ResNet


def test_serialization_round_trip():
    backbone = ResNet(
        model_id=18,
        width_multiplier=0.125,
        input_shape=(32, 32, 3),
        use_sync_bn=True,
        norm_momentum=0.9,
        norm_epsilon=1e-5,
        kernel_initializer=keras.initializers.HeUniform(seed=3),
        name="my_resnet",
    )
    config = backbone.get_config()
    assert {
        "model_id",
        "width_multiplier",
        "input_shape",
        "use_sync_bn",
        "norm_momentum",
        "norm_epsilon",
        "kernel_initializer",
    } <= set(config)
    loaded = run_model_serialization_test(backbone, _images(32))
    assert loaded.name == "my_resnet"
    assert loaded.model_id == 18 and loaded.use_sync_bn is True


def test_resnet_rs_options_and_output_stride():
    import numpy as np

    backbone = ResNet(
        model_id=50,
        width_multiplier=0.125,
        input_shape=(64, 64, 3),
        stem_type="deep",
        resnetd_shortcut=True,
        se_ratio=0.25,
        stochastic_depth_rate=0.2,
        output_stride=16,
    )
    features = backbone(np.ones((1, 64, 64, 3), "float32"))
    # Output stride 16: levels 4 and 5 share the 1/16 resolution (dilated).
    assert tuple(features["4"].shape)[1:3] == (4, 4)
    assert tuple(features["5"].shape)[1:3] == (4, 4)
    rebuilt = ResNet.from_config(backbone.get_config())
    assert rebuilt.get_config() == backbone.get_config()
    eight = ResNet(
        model_id=18, width_multiplier=0.125, input_shape=(64, 64, 3), output_stride=8
    )
    assert eight.output_specs["5"][1:3] == (8, 8)
    with pytest.raises(ValueError, match="output_stride"):
        ResNet(model_id=18, output_stride=4)
