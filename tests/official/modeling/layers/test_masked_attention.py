"""masked_softmax and masked_self_attention against Keras' masked softmax."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from official.modeling.layers.masked_attention import (
    masked_self_attention,
    masked_softmax,
)
from official.modeling.layers.transformer_encoder_block import (
    TransformerEncoderBlock,
    _attention_weights_dropout,
)


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _reference_softmax(scores, mask):
    return _numpy(keras.layers.Softmax()(scores, mask=mask))


def _padding_masks(rng, batch, length):
    """Random padding masks (a prefix of each row kept); row 0 keeps one key."""
    lengths = rng.integers(1, length + 1, size=batch)
    lengths[0] = 1
    return np.arange(length)[None, :] < lengths[:, None]


def test_masked_softmax_equals_keras_masked_softmax():
    rng = np.random.default_rng(0)
    scores = rng.normal(0.0, 4.0, size=(6, 2, 7, 7)).astype("float32")
    mask = _padding_masks(rng, 6, 7)[:, None, None, :]
    ours = _numpy(masked_softmax(scores, mask))
    np.testing.assert_allclose(ours, _reference_softmax(scores, mask), atol=1e-6)
    assert np.all(ours[~np.broadcast_to(mask, ours.shape)] == 0.0)
    # All masked but one key: that key takes all the weight.
    np.testing.assert_allclose(ours[0, :, :, 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(ours.sum(-1), 1.0, atol=1e-6)


def test_masked_softmax_with_a_full_query_key_mask_and_a_row_with_nothing_kept():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(2, 5, 6)).astype("float32")
    mask = rng.random((2, 5, 6)) < 0.5
    mask[0, 1] = False  # Nothing kept: zeros, as Keras' Softmax gives.
    mask[1, 2] = [False] * 5 + [True]
    ours = _numpy(masked_softmax(scores, mask))
    np.testing.assert_allclose(ours, _reference_softmax(scores, mask), atol=1e-6)
    assert np.all(ours[0, 1] == 0.0)
    assert ours[1, 2, 5] == pytest.approx(1.0)


def test_masked_softmax_keeps_its_values_finite_far_from_the_kept_scores():
    # Masked scores 200 above the kept ones: exp of the shifted kept scores
    # would underflow if the maximum were taken over masked positions too.
    scores = np.array([[1.0, -2.0, 200.0, 300.0]], "float32")
    mask = np.array([[True, True, False, False]])
    ours = _numpy(masked_softmax(scores, mask))
    expected = np.exp([3.0, 0.0]) / np.exp([3.0, 0.0]).sum()
    np.testing.assert_allclose(ours[0, :2], expected, rtol=1e-6)
    assert np.all(ours[0, 2:] == 0.0)


def test_masked_softmax_gradients_are_finite_with_a_row_with_nothing_kept():
    scores = tf.Variable(np.random.default_rng(2).normal(size=(3, 4)), dtype=tf.float32)
    mask = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]], bool)
    with tf.GradientTape() as tape:
        out = masked_softmax(scores, mask)
        loss = tf.reduce_sum(out * tf.range(4, dtype=tf.float32))
    grad = tape.gradient(loss, scores).numpy()
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad[~mask], 0.0, atol=1e-7)
    np.testing.assert_allclose(grad[1:], 0.0, atol=1e-7)  # rows 1, 2: constant


def _attention(num_heads=2, channels=8, seed=3):
    layer = keras.layers.MultiHeadAttention(num_heads, key_dim=channels // num_heads)
    layer.build((None, None, channels), (None, None, channels))
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(rng.normal(0.0, 0.5, weight.shape).astype("float32"))
    return layer


@pytest.mark.parametrize("full_mask", [False, True], ids=["keys", "query_key"])
def test_masked_self_attention_equals_multi_head_attention(full_mask):
    rng = np.random.default_rng(4)
    layer = _attention()
    x = rng.normal(size=(5, 6, 8)).astype("float32")
    mask = _padding_masks(rng, 5, 6)[:, None, :]
    if full_mask:
        mask = np.broadcast_to(mask, (5, 6, 6)) & (rng.random((5, 6, 6)) < 0.7)
        mask[:, :, 0] = True
    expected = _numpy(layer(x, x, attention_mask=mask))
    ours = _numpy(masked_self_attention(layer, x, mask))
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_masked_self_attention_rejects_other_inputs_and_axes():
    layer = _attention()
    with pytest.raises(ValueError, match=r"rank-3 inputs.*\(1, 2, 3, 8\)"):
        masked_self_attention(layer, np.zeros((1, 2, 3, 8), "float32"), None)
    other = keras.layers.MultiHeadAttention(2, key_dim=4, attention_axes=(1, 2))
    other.build((None, 3, 3, 8), (None, 3, 3, 8))
    with pytest.raises(ValueError, match=r"attention_axes=\(1, 2\)"):
        masked_self_attention(other, np.zeros((1, 3, 8), "float32"), None)


@pytest.mark.parametrize("norm_first", [True, False], ids=["pre_norm", "post_norm"])
def test_block_with_a_mask_matches_keras_attention_and_without_one_runs_it(
    norm_first,
):
    rng = np.random.default_rng(5)
    block = TransformerEncoderBlock(num_heads=2, mlp_dim=16, norm_first=norm_first)
    x = rng.normal(size=(4, 6, 8)).astype("float32")
    mask = _padding_masks(rng, 4, 6).astype("int32")
    ours = _numpy(block(x, attention_mask=mask))

    def keras_attention(self, inputs, attention_mask, training):
        return self.attention(
            inputs, inputs, attention_mask=attention_mask, training=training
        )

    original = TransformerEncoderBlock._attend
    TransformerEncoderBlock._attend = keras_attention
    try:
        expected = _numpy(block(x, attention_mask=mask))
        unmasked_keras = _numpy(block(x))
    finally:
        TransformerEncoderBlock._attend = original
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    # No mask: Keras' MultiHeadAttention itself (the ViT path), unchanged.
    np.testing.assert_array_equal(_numpy(block(x)), unmasked_keras)


def _int8_error(softmax_fn, scores, mask) -> float:
    """Max |int8 TFLite - float| of `softmax_fn(scores, mask)` per example."""

    @tf.function(
        input_signature=[
            tf.TensorSpec((1,) + scores.shape[1:], tf.float32),
            tf.TensorSpec((1,) + mask.shape[1:], tf.float32),
        ]
    )
    def fn(s, m):
        return softmax_fn(s, m > 0.5)

    def representative():
        for i in range(len(scores)):
            yield [scores[i : i + 1], mask[i : i + 1]]

    module = tf.Module()
    module.fn = fn
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [fn.get_concrete_function()], module
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.representative_dataset = representative
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=converter.convert())
    runner = interpreter.get_signature_runner()
    error = 0.0
    for i in range(len(scores)):
        (out,) = runner(s=scores[i : i + 1], m=mask[i : i + 1]).values()
        expected = _reference_softmax(scores[i : i + 1], mask[i : i + 1] > 0.5)
        error = max(error, float(np.max(np.abs(out - expected))))
    return error


def test_int8_tflite_masked_softmax_keeps_the_resolution_of_the_scores():
    rng = np.random.default_rng(6)
    scores = rng.normal(0.0, 2.0, size=(16, 2, 8, 8)).astype("float32")
    mask = _padding_masks(rng, 16, 8)[:, None, None, :].astype("float32")
    ours = _int8_error(masked_softmax, scores, mask)
    keras_softmax = _int8_error(
        lambda s, m: keras.layers.Softmax()(s, mask=m), scores, mask
    )
    assert ours < 0.05, ours
    assert keras_softmax > 0.3, keras_softmax  # The -1e9 fill: uniform weights.


def test_masked_self_attention_draws_the_dropout_masks_of_multi_head_attention():
    rng = np.random.default_rng(7)
    layer = keras.layers.MultiHeadAttention(2, key_dim=4, dropout=0.5, seed=3)
    layer.build((None, None, 8), (None, None, 8))
    x = rng.normal(size=(3, 6, 8)).astype("float32")
    mask = _padding_masks(rng, 3, 6)[:, None, :]
    dropout = _attention_weights_dropout(layer)
    state = _numpy(dropout.seed_generator.state)
    expected = _numpy(layer(x, x, attention_mask=mask, training=True))
    dropout.seed_generator.state.assign(state)
    ours = _numpy(masked_self_attention(layer, x, mask, dropout, training=True))
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    assert not np.allclose(ours, _numpy(masked_self_attention(layer, x, mask)))


def test_block_names_the_missing_keras_internal():
    layer = keras.layers.MultiHeadAttention(2, key_dim=4)
    layer.build((None, None, 8), (None, None, 8))
    del layer._dropout_layer
    with pytest.raises(RuntimeError, match=r"`_dropout_layer`.*keras>=3\.15,<3\.16"):
        _attention_weights_dropout(layer)
