"""SqueezeExcite, StochasticDepth, InvertedBottleneck, FusedInvertedBottleneck."""

import keras
import numpy as np
import pytest

from official.modeling.layers import (
    FusedInvertedBottleneck,
    InvertedBottleneck,
    SqueezeExcite,
    StochasticDepth,
    make_divisible,
)
from official.testing.test_case import run_layer_test


def _images(size=8, channels=8, batch=2):
    return (
        np.random.default_rng(0)
        .normal(size=(batch, size, size, channels))
        .astype("float32")
    )


def _trainable(layer):
    return sum(int(np.prod(w.shape)) for w in layer.trainable_weights)


@pytest.mark.parametrize(
    "value, divisor, expected",
    [
        (18.0, 8, 24),
        (72.0, 8, 72),
        (35.2, 8, 32),
        (12.0, 8, 16),
        (3.0, 8, 8),
        (0.2, 1, 1),
        (4.4, 1, 4),
    ],
)
def test_make_divisible(value, divisor, expected):
    assert make_divisible(value, divisor) == expected


def test_make_divisible_rejects_a_zero_divisor():
    with pytest.raises(ValueError, match="Received: divisor=0"):
        make_divisible(8, 0)


# --- SqueezeExcite ---------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"ratio": 0.5, "activation": "swish"},
        {
            "ratio": 0.25,
            "divisible_by": 8,
            "gate_activation": "hard_sigmoid",
            "kernel_initializer": keras.initializers.HeUniform(seed=1),
            "kernel_regularizer": keras.regularizers.L2(1e-4),
        },
    ],
)
def test_squeeze_excite(kwargs):
    run_layer_test(SqueezeExcite, kwargs, _images(), (2, 8, 8, 8))


def test_squeeze_excite_computes_channel_gates():
    x = _images(channels=16)
    layer = SqueezeExcite(ratio=0.25)
    y = keras.ops.convert_to_numpy(layer(x))
    w1, b1 = (keras.ops.convert_to_numpy(v) for v in layer.squeeze.weights)
    w2, b2 = (keras.ops.convert_to_numpy(v) for v in layer.excite.weights)
    pooled = x.mean(axis=(1, 2))
    gates = 1 / (1 + np.exp(-(np.maximum(pooled @ w1 + b1, 0) @ w2 + b2)))
    np.testing.assert_allclose(y, x * gates[:, None, None, :], rtol=1e-5, atol=1e-6)
    assert layer.squeeze.units == 4
    assert _trainable(layer) == 16 * 4 + 4 + 4 * 16 + 16


def test_squeeze_excite_width_is_rounded_to_the_divisor():
    layer = SqueezeExcite(ratio=0.25, divisible_by=8)
    layer(_images(channels=72))
    assert layer.squeeze.units == 24  # 18 -> 16 would lose more than 10 %


@pytest.mark.parametrize("ratio", [0.0, 1.5, -0.25])
def test_squeeze_excite_rejects_a_bad_ratio(ratio):
    with pytest.raises(ValueError, match=f"Received: ratio={ratio!r}"):
        SqueezeExcite(ratio=ratio)


# --- StochasticDepth -------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{}, {"rate": 0.2, "seed": 3}])
def test_stochastic_depth(kwargs):
    run_layer_test(StochasticDepth, kwargs, _images(), (2, 8, 8, 8))


def test_stochastic_depth_drops_whole_examples_and_rescales():
    x = np.ones((64, 4, 4, 3), "float32")
    layer = StochasticDepth(rate=0.25, seed=0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    per_example = y.reshape(64, -1)
    # Each example is dropped (all 0) or kept and scaled by 1 / 0.75.
    assert np.all(per_example.min(axis=1) == per_example.max(axis=1))
    np.testing.assert_allclose(np.unique(per_example), [0.0, 1 / 0.75], rtol=1e-6)
    assert 4 <= np.sum(per_example[:, 0] == 0) <= 32


def test_stochastic_depth_rate_zero_is_identity_in_training():
    x = _images()
    y = StochasticDepth(rate=0.0)(x, training=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(y), x)


@pytest.mark.parametrize("rate", [1.0, -0.1])
def test_stochastic_depth_rejects_a_bad_rate(rate):
    with pytest.raises(ValueError, match=f"Received: rate={rate!r}"):
        StochasticDepth(rate=rate)


# --- InvertedBottleneck ----------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, channels, expected",
    [
        ({"filters": 8}, 8, (2, 8, 8, 8)),
        ({"filters": 8, "expand_ratio": 1, "strides": 2}, 8, (2, 4, 4, 8)),
        (
            {"filters": 16, "kernel_size": 5, "se_ratio": 0.25, "activation": "swish"},
            8,
            (2, 8, 8, 16),
        ),
        (
            {
                "filters": 8,
                "expand_ratio": 4.5,
                "strides": 1,
                "se_ratio": 0.25,
                "se_ratio_of_expanded": True,
                "divisible_by": 8,
                "activation": "hard_swish",
                "se_gate_activation": "hard_sigmoid",
                "stochastic_depth_rate": 0.2,
                "kernel_initializer": keras.initializers.HeUniform(seed=1),
                "kernel_regularizer": keras.regularizers.L2(1e-4),
                "norm_momentum": 0.9,
                "norm_epsilon": 1e-5,
                "use_sync_bn": True,
            },
            8,
            (2, 8, 8, 8),
        ),
    ],
)
def test_inverted_bottleneck(kwargs, channels, expected):
    run_layer_test(InvertedBottleneck, kwargs, _images(channels=channels), expected)


def test_inverted_bottleneck_structure_and_parameters():
    block = InvertedBottleneck(filters=8, expand_ratio=6, kernel_size=3, se_ratio=0.25)
    block(_images(channels=8))
    assert block.use_residual and block.stochastic_depth is None
    assert block.expand.filters == 48 and block.depthwise.use_bias is False
    assert block.squeeze_excite.squeeze.units == 2  # 0.25 x the 8 input channels
    expected = (
        (8 * 48 + 2 * 48)  # expand 1x1 + BN
        + (9 * 48 + 2 * 48)  # depthwise 3x3 + BN
        + (48 * 2 + 2 + 2 * 48 + 48)  # squeeze-excite
        + (48 * 8 + 2 * 8)  # project 1x1 + BN
    )
    assert _trainable(block) == expected


def test_inverted_bottleneck_without_expansion_or_residual():
    block = InvertedBottleneck(filters=16, expand_ratio=1, stochastic_depth_rate=0.5)
    y = block(_images(channels=8))
    assert block.expand is None and block.squeeze_excite is None
    assert not block.use_residual and block.stochastic_depth is None
    assert tuple(y.shape) == (2, 8, 8, 16)


def test_inverted_bottleneck_se_relative_to_expanded_channels():
    block = InvertedBottleneck(
        filters=24,
        expand_ratio=3,
        se_ratio=0.25,
        se_ratio_of_expanded=True,
        divisible_by=8,
    )
    block(_images(channels=24))
    assert block.expand.filters == 72
    assert block.squeeze_excite.squeeze.units == 24  # MobileNetV3's rounding


def test_inverted_bottleneck_stochastic_depth_keeps_or_drops_the_branch():
    x = _images(batch=32)
    block = InvertedBottleneck(filters=8, stochastic_depth_rate=0.5)
    y = keras.ops.convert_to_numpy(block(x, training=True))
    dropped = [np.array_equal(y[i], x[i]) for i in range(32)]
    assert 0 < sum(dropped) < 32
    inference = keras.ops.convert_to_numpy(block(x, training=False))
    assert not any(np.array_equal(inference[i], x[i]) for i in range(32))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"filters": 8, "expand_ratio": 0.5}, "Received: expand_ratio=0.5"),
        ({"filters": 8, "se_ratio": 2.0}, "Received: se_ratio=2.0"),
        (
            {"filters": 8, "stochastic_depth_rate": 1.0},
            "Received: stochastic_depth_rate=1.0",
        ),
    ],
)
def test_inverted_bottleneck_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InvertedBottleneck(**kwargs)


# --- FusedInvertedBottleneck -----------------------------------------------


@pytest.mark.parametrize(
    "kwargs, channels, expected",
    [
        ({"filters": 8}, 8, (2, 8, 8, 8)),
        ({"filters": 16, "expand_ratio": 1, "strides": 2}, 8, (2, 4, 4, 16)),
        (
            {
                "filters": 8,
                "expand_ratio": 4,
                "kernel_size": 5,
                "se_ratio": 0.25,
                "divisible_by": 8,
                "activation": "relu",
                "se_activation": "relu",
                "se_gate_activation": "hard_sigmoid",
                "stochastic_depth_rate": 0.1,
                "kernel_initializer": keras.initializers.HeUniform(seed=1),
                "kernel_regularizer": keras.regularizers.L2(1e-4),
                "norm_momentum": 0.9,
                "norm_epsilon": 1e-5,
                "use_sync_bn": True,
            },
            8,
            (2, 8, 8, 8),
        ),
    ],
)
def test_fused_inverted_bottleneck(kwargs, channels, expected):
    run_layer_test(
        FusedInvertedBottleneck, kwargs, _images(channels=channels), expected
    )


def test_fused_inverted_bottleneck_structure_and_parameters():
    block = FusedInvertedBottleneck(filters=8, expand_ratio=4, se_ratio=0.25)
    block(_images(channels=8))
    assert block.use_residual
    assert block.fused.filters == 32 and block.fused.kernel_size == 3
    assert block.squeeze_excite.squeeze.units == 2
    expected = (
        (9 * 8 * 32 + 2 * 32)  # fused 3x3 + BN
        + (32 * 2 + 2 + 2 * 32 + 32)  # squeeze-excite
        + (32 * 8 + 2 * 8)  # project 1x1 + BN
    )
    assert _trainable(block) == expected


def test_fused_inverted_bottleneck_without_expansion_is_one_conv():
    block = FusedInvertedBottleneck(filters=16, expand_ratio=1, strides=2)
    block(_images(channels=8))
    assert block.project is None and not block.use_residual
    assert block.fused.filters == 16 and block.fused.activation == "swish"
    assert _trainable(block) == 9 * 8 * 16 + 2 * 16


def test_fused_inverted_bottleneck_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Received: expand_ratio=0"):
        FusedInvertedBottleneck(filters=8, expand_ratio=0)
