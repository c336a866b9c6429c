"""ConvNormAct, ResidualBlock and BottleneckBlock: shapes, structure, serialization."""

import keras
import numpy as np
import pytest

from official.modeling.layers import BottleneckBlock, ConvNormAct, ResidualBlock
from official.testing.test_case import run_layer_test


def _images(size=8, channels=4):
    return (
        np.random.default_rng(0)
        .normal(size=(2, size, size, channels))
        .astype("float32")
    )


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"filters": 6}, (2, 8, 8, 6)),
        (
            {"filters": 6, "kernel_size": 1, "strides": 2, "activation": None},
            (2, 4, 4, 6),
        ),
        ({"filters": 6, "kernel_size": (3, 3), "dilation_rate": 2}, (2, 8, 8, 6)),
        (
            {
                "filters": 6,
                "kernel_size": 7,
                "strides": 2,
                "activation": "swish",
                "kernel_initializer": keras.initializers.HeUniform(seed=1),
                "kernel_regularizer": keras.regularizers.L2(1e-4),
                "norm_momentum": 0.9,
                "norm_epsilon": 1e-5,
                "use_sync_bn": True,
            },
            (2, 4, 4, 6),
        ),
    ],
)
def test_conv_norm_act(kwargs, expected):
    run_layer_test(ConvNormAct, kwargs, _images(), expected)


def test_conv_norm_act_structure():
    layer = ConvNormAct(filters=6, kernel_size=3, activation=None, use_sync_bn=True)
    layer(_images())
    assert layer.conv.use_bias is False
    assert layer.norm.synchronized is True
    assert layer.act is None
    # 3*3*4*6 kernel + gamma, beta; moving mean/variance are not trainable.
    assert layer.count_params() == 3 * 3 * 4 * 6 + 4 * 6
    assert sum(int(np.prod(w.shape)) for w in layer.trainable_weights) == 216 + 12


def test_conv_norm_act_regularizer_adds_loss():
    layer = ConvNormAct(filters=2, kernel_regularizer="l2")
    layer(_images())
    assert len(layer.losses) == 1


@pytest.mark.parametrize(
    "kwargs, channels, expected, has_shortcut",
    [
        ({"filters": 4}, 4, (2, 8, 8, 4), False),
        ({"filters": 8}, 4, (2, 8, 8, 8), True),
        ({"filters": 8, "strides": 2}, 4, (2, 4, 4, 8), True),
        (
            {"filters": 4, "strides": 2, "norm_epsilon": 1e-5, "use_sync_bn": True},
            4,
            (2, 4, 4, 4),
            True,
        ),
    ],
)
def test_residual_block(kwargs, channels, expected, has_shortcut):
    layer = run_layer_test(ResidualBlock, kwargs, _images(channels=channels), expected)
    assert (layer.shortcut is not None) == has_shortcut
    assert layer.conv1.strides == kwargs.get("strides", 1)
    assert layer.conv2.strides == 1


@pytest.mark.parametrize(
    "kwargs, channels, expected, has_shortcut",
    [
        ({"filters": 2}, 8, (2, 8, 8, 8), False),
        ({"filters": 4}, 8, (2, 8, 8, 16), True),
        ({"filters": 4, "strides": 2}, 16, (2, 4, 4, 16), True),
        (
            {"filters": 4, "expansion": 2, "kernel_regularizer": "l2"},
            8,
            (2, 8, 8, 8),
            False,
        ),
    ],
)
def test_bottleneck_block(kwargs, channels, expected, has_shortcut):
    layer = run_layer_test(
        BottleneckBlock, kwargs, _images(channels=channels), expected
    )
    assert (layer.shortcut is not None) == has_shortcut


def test_bottleneck_block_strides_on_3x3():
    """ResNet v1.5: the 1x1 convolutions keep stride 1; the 3x3 one strides."""
    block = BottleneckBlock(filters=4, strides=2)
    block(_images(channels=8))
    assert (block.conv1.kernel_size, block.conv1.strides) == (1, 1)
    assert (block.conv2.kernel_size, block.conv2.strides) == (3, 2)
    assert (block.conv3.kernel_size, block.conv3.strides) == (1, 1)
    assert (block.shortcut.kernel_size, block.shortcut.strides) == (1, 2)


def test_residual_block_identity_path_is_relu_of_sum():
    """With zero-initialized convolutions the block returns relu(inputs)."""
    block = ResidualBlock(filters=4, kernel_initializer="zeros")
    x = _images()
    y = keras.ops.convert_to_numpy(block(x, training=False))
    np.testing.assert_allclose(y, np.maximum(x, 0.0), atol=1e-6)


def test_blocks_compute_output_shape_before_build():
    assert ResidualBlock(8, strides=2).compute_output_shape((None, 7, 7, 3)) == (
        None,
        4,
        4,
        8,
    )
    assert BottleneckBlock(8, strides=2).compute_output_shape((1, None, 9, 3)) == (
        1,
        None,
        5,
        32,
    )
