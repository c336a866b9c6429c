"""FusedBatchNormalization computes what keras.layers.BatchNormalization does."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from official.modeling.layers import ConvNormAct, FusedBatchNormalization


def _pair(**kwargs):
    fused, plain = (
        FusedBatchNormalization(**kwargs),
        keras.layers.BatchNormalization(**kwargs),
    )
    return fused, plain


def _inputs(shape=(2, 2, 2, 3), seed=0):
    return np.random.default_rng(seed).normal(2.0, 3.0, shape).astype("float32")


@pytest.mark.parametrize("scale,center", [(True, True), (False, False)])
def test_training_matches_keras_including_moving_statistics(scale, center):
    # 8 values per channel: the biased and unbiased variances differ by 8/7.
    x = _inputs()
    fused, plain = _pair(momentum=0.5, epsilon=1e-3, scale=scale, center=center)
    for layer in (fused, plain):
        layer.build(x.shape)
        if scale:
            layer.gamma.assign([0.5, 1.5, 2.0])
        if center:
            layer.beta.assign([0.1, -0.2, 0.3])
    for _ in range(2):
        np.testing.assert_allclose(
            fused(x, training=True), plain(x, training=True), rtol=1e-5, atol=1e-5
        )
    np.testing.assert_allclose(fused.moving_mean, plain.moving_mean, rtol=1e-6)
    np.testing.assert_allclose(fused.moving_variance, plain.moving_variance, rtol=1e-6)
    np.testing.assert_allclose(fused(x), plain(x), rtol=1e-5, atol=1e-5)


def test_gradients_match_keras():
    x = tf.constant(_inputs((2, 3, 3, 4), seed=1))
    fused, plain = _pair()
    grads = []
    for layer in (fused, plain):
        layer.build(x.shape)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(layer(x, training=True)) * tf.range(4.0))
        grads.append(tape.gradient(loss, [x, layer.gamma.value, layer.beta.value]))
    for got, want in zip(*grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_frozen_layer_uses_moving_statistics_in_training():
    x = _inputs()
    fused, plain = _pair()
    for layer in (fused, plain):
        layer.build(x.shape)
        layer.moving_mean.assign([1.0, 2.0, 3.0])
        layer.trainable = False
    np.testing.assert_allclose(
        fused(x, training=True), plain(x, training=True), rtol=1e-5
    )
    np.testing.assert_allclose(fused.moving_mean, [1.0, 2.0, 3.0])


@pytest.mark.parametrize("dtype", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_the_compute_dtype(dtype):
    layer = FusedBatchNormalization(dtype=keras.DTypePolicy(dtype))
    x = tf.cast(_inputs((2, 4, 4, 3)), layer.compute_dtype)
    y = layer(x, training=True)
    assert y.dtype == layer.compute_dtype and layer.moving_mean.dtype == "float32"
    np.testing.assert_allclose(
        np.mean(tf.cast(y, tf.float32), axis=(0, 1, 2)), 0.0, atol=0.05
    )


def test_other_inputs_fall_back_to_keras():
    x = _inputs((4, 3))
    fused, plain = _pair(momentum=0.5)
    np.testing.assert_allclose(
        fused(x, training=True), plain(x, training=True), rtol=1e-5
    )
    small_epsilon, reference = _pair(epsilon=1e-6)
    y = _inputs()
    np.testing.assert_allclose(
        small_epsilon(y, training=True), reference(y, training=True), rtol=1e-5
    )


def test_fused_kernel_is_in_the_graph_and_serialization_round_trips():
    layer = ConvNormAct(4)
    graph = (
        tf.function(lambda x: layer(x, training=True))
        .get_concrete_function(tf.TensorSpec([1, 8, 8, 3], tf.float32))
        .graph
    )
    assert any(op.type.startswith("FusedBatchNorm") for op in graph.get_operations())
    restored = keras.layers.deserialize(
        keras.layers.serialize(FusedBatchNormalization(momentum=0.9))
    )
    assert isinstance(restored, FusedBatchNormalization) and restored.momentum == 0.9


def test_each_fallback_reason_is_logged_once_per_process(monkeypatch, caplog):
    from official.modeling.layers import fused_batch_normalization

    monkeypatch.setattr(fused_batch_normalization, "_logged_fallbacks", set())
    x = _inputs()
    with caplog.at_level("INFO", logger="absl"):
        FusedBatchNormalization()(x, training=True)
        for name in ("bn_a", "bn_b"):
            FusedBatchNormalization(synchronized=True, name=name)(x, training=True)
    lines = [r.getMessage() for r in caplog.records]
    lines = [line for line in lines if "FusedBatchNormalization" in line]
    assert len(lines) == 1, lines
    assert "'bn_a'" in lines[0] and "synchronized=True" in lines[0]
