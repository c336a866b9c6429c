"""PatchEmbedding, PositionEmbedding and TransformerEncoderBlock."""

import keras
import numpy as np
import pytest

from official.modeling.layers.patch_embedding import PatchEmbedding
from official.modeling.layers.position_embedding import PositionEmbedding
from official.modeling.layers.transformer_encoder_block import TransformerEncoderBlock
from official.testing.test_case import run_layer_test


def _normal(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


# ---- PatchEmbedding ---------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, image_shape, expected",
    [
        ({"hidden_size": 8, "patch_size": 4}, (2, 16, 16, 3), (2, 16, 8)),
        ({"hidden_size": 6, "patch_size": 2}, (2, 8, 4, 1), (2, 8, 6)),
        (
            {
                "hidden_size": 4,
                "patch_size": 8,
                "kernel_initializer": keras.initializers.HeUniform(seed=1),
                "use_bias": False,
            },
            (2, 16, 8, 3),
            (2, 2, 4),
        ),
    ],
)
def test_patch_embedding(kwargs, image_shape, expected):
    run_layer_test(PatchEmbedding, kwargs, _normal(*image_shape), expected)


def test_patch_embedding_is_a_linear_map_of_each_flattened_patch():
    images = _normal(1, 4, 6, 2)
    layer = PatchEmbedding(hidden_size=3, patch_size=2)
    tokens = keras.ops.convert_to_numpy(layer(images))
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in layer.projection.weights)
    # Token 4 is row 1, column 1 of the 2 x 3 patch grid (row-major order).
    patch = images[0, 2:4, 2:4, :]
    expected = np.einsum("hwc,hwcd->d", patch, kernel) + bias
    np.testing.assert_allclose(tokens[0, 4], expected, rtol=1e-5, atol=1e-5)
    assert layer.count_params() == 2 * 2 * 2 * 3 + 3


def test_patch_embedding_dynamic_spatial_size():
    inputs = keras.Input(shape=(None, None, 3))
    model = keras.Model(inputs, PatchEmbedding(hidden_size=4, patch_size=4)(inputs))
    assert model.output_shape == (None, None, 4)
    assert tuple(model(_normal(1, 8, 12, 3)).shape) == (1, 6, 4)


def test_patch_embedding_rejects_a_size_the_patch_does_not_divide():
    with pytest.raises(
        ValueError, match=r"width \(10\) is not a multiple of patch_size \(4\)"
    ):
        PatchEmbedding(hidden_size=4, patch_size=4)(_normal(1, 8, 10, 3))


@pytest.mark.parametrize("patch_size", [0, 2.0, None])
def test_patch_embedding_rejects_a_bad_patch_size(patch_size):
    with pytest.raises(ValueError, match=f"Received: patch_size={patch_size!r}"):
        PatchEmbedding(hidden_size=4, patch_size=patch_size)


# ---- PositionEmbedding ------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"sequence_length": 5},
        {"sequence_length": 5, "initializer": keras.initializers.RandomNormal(seed=2)},
    ],
)
def test_position_embedding(kwargs):
    layer = run_layer_test(PositionEmbedding, kwargs, _normal(2, 5, 4), (2, 5, 4))
    assert tuple(layer.embedding.shape) == (5, 4)


def test_position_embedding_adds_one_vector_per_position():
    tokens = _normal(3, 5, 4)
    layer = PositionEmbedding(initializer="random_normal")
    out = keras.ops.convert_to_numpy(layer(tokens))
    embedding = keras.ops.convert_to_numpy(layer.embedding)
    np.testing.assert_allclose(
        out - tokens, np.broadcast_to(embedding, (3, 5, 4)), atol=1e-6
    )
    assert np.abs(embedding).max() > 0
    assert layer.count_params() == 5 * 4


def test_position_embedding_default_initializer_is_truncated_normal_002():
    layer = PositionEmbedding()
    assert isinstance(layer.initializer, keras.initializers.TruncatedNormal)
    assert layer.initializer.stddev == 0.02


def test_position_embedding_length_mismatch():
    with pytest.raises(
        ValueError, match=r"sequence length \(6\) differs from sequence_length \(5\)"
    ):
        PositionEmbedding(sequence_length=5)(_normal(1, 6, 4))


def test_position_embedding_needs_a_static_length():
    inputs = keras.Input(shape=(None, 4))
    with pytest.raises(ValueError, match="needs a static sequence length"):
        PositionEmbedding()(inputs)
    # With an explicit length, a dynamic input builds.
    out = PositionEmbedding(sequence_length=3)(inputs)
    assert out.shape[-1] == 4


@pytest.mark.parametrize("length", [0, -1, 2.5, True])
def test_position_embedding_rejects_a_bad_length(length):
    with pytest.raises(ValueError, match="Received: sequence_length="):
        PositionEmbedding(sequence_length=length)


# ---- TransformerEncoderBlock ------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_heads": 2, "mlp_dim": 16},
        {
            "num_heads": 4,
            "mlp_dim": 8,
            "dropout_rate": 0.1,
            "attention_dropout_rate": 0.2,
            "stochastic_depth_rate": 0.3,
            "approximate_gelu": True,
            "layer_norm_epsilon": 1e-5,
            "kernel_initializer": keras.initializers.GlorotNormal(seed=4),
        },
    ],
)
def test_transformer_encoder_block(kwargs):
    layer = run_layer_test(TransformerEncoderBlock, kwargs, _normal(2, 5, 8), (2, 5, 8))
    assert layer.attention.num_heads == kwargs["num_heads"]
    assert layer.attention.key_dim == 8 // kwargs["num_heads"]
    assert layer.mlp_dense1.units == kwargs["mlp_dim"]
    assert layer.attention_norm.epsilon == kwargs.get("layer_norm_epsilon", 1e-6)


def test_transformer_encoder_block_parameter_count():
    """LN 2*2D, attention 4(D*D + D), MLP D*M + M + M*D + D (as timm's Block)."""
    d, m = 8, 12
    layer = TransformerEncoderBlock(num_heads=2, mlp_dim=m)
    layer(_normal(1, 3, d))
    assert layer.count_params() == 4 * d + 4 * (d * d + d) + 2 * d * m + m + d


def test_transformer_encoder_block_is_pre_norm_with_residuals():
    """Zero output projections make both branches vanish: output == input."""
    x = _normal(2, 5, 8)
    layer = TransformerEncoderBlock(num_heads=2, mlp_dim=16)
    layer(x)
    attention_out = layer.attention._output_dense
    for weight in [*attention_out.weights, *layer.mlp_dense2.weights]:
        weight.assign(np.zeros(weight.shape, "float32"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), x, atol=1e-6)


def test_transformer_encoder_block_inference_is_deterministic():
    x = _normal(4, 5, 8)
    layer = TransformerEncoderBlock(
        num_heads=2,
        mlp_dim=16,
        dropout_rate=0.5,
        attention_dropout_rate=0.5,
        stochastic_depth_rate=0.5,
    )
    a = keras.ops.convert_to_numpy(layer(x, training=False))
    b = keras.ops.convert_to_numpy(layer(x, training=False))
    np.testing.assert_array_equal(a, b)
    c = keras.ops.convert_to_numpy(layer(x, training=True))
    assert not np.allclose(a, c)


def test_stochastic_depth_drops_whole_examples():
    """With rate 0.5 each example keeps or drops each branch as a whole."""
    x = _normal(64, 5, 8)
    layer = TransformerEncoderBlock(num_heads=2, mlp_dim=16, stochastic_depth_rate=0.5)
    keras.utils.set_random_seed(0)
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    unchanged = [np.allclose(y[i], x[i]) for i in range(len(x))]
    # Both branches dropped: probability 1/4 per example.
    assert 4 <= sum(unchanged) <= 32
    assert not all(unchanged)


def test_approximate_gelu_is_close_but_not_equal():
    x = _normal(2, 5, 8)
    exact = TransformerEncoderBlock(num_heads=2, mlp_dim=16)
    approx = TransformerEncoderBlock(num_heads=2, mlp_dim=16, approximate_gelu=True)
    exact(x)
    approx(x)
    approx.set_weights(exact.get_weights())
    a = keras.ops.convert_to_numpy(exact(x))
    b = keras.ops.convert_to_numpy(approx(x))
    assert not np.array_equal(a, b)
    np.testing.assert_allclose(a, b, atol=1e-2)


def test_transformer_encoder_block_heads_must_divide_channels():
    with pytest.raises(
        ValueError, match=r"num_heads \(3\) must divide the input channels \(8\)"
    ):
        TransformerEncoderBlock(num_heads=3, mlp_dim=16)(_normal(1, 5, 8))


@pytest.mark.parametrize(
    "name", ["dropout_rate", "attention_dropout_rate", "stochastic_depth_rate"]
)
@pytest.mark.parametrize("rate", [-0.1, 1.0])
def test_transformer_encoder_block_rejects_bad_rates(name, rate):
    with pytest.raises(ValueError, match=f"Received: {name}={rate!r}"):
        TransformerEncoderBlock(num_heads=2, mlp_dim=16, **{name: rate})
