"""Conv2D's 1x1 matrix-product form computes what the convolution does."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from official.modeling.layers import ConvNormAct, conv2d
from official.modeling.layers.conv2d import Conv2D


@pytest.fixture(autouse=True)
def _on_cpu(monkeypatch):
    """Placement as on a CPU-only host, with the switch restored afterwards."""
    monkeypatch.setattr(conv2d, "_accelerator_visible", lambda: False)
    yield
    conv2d.set_conv1x1_as_matmul(True)


def _op_types(layer, x, training):
    fn = tf.function(lambda t: layer(t, training=training))
    return {op.type for op in fn.get_concrete_function(x).graph.get_operations()}


def _pair(x, **kwargs):
    """Garden's layer and a Keras Conv2D sharing the same kernel and bias."""
    ours, plain = Conv2D(**kwargs), keras.layers.Conv2D(**kwargs)
    ours.build(x.shape)
    plain.build(x.shape)
    for mine, theirs in zip(ours.weights, plain.weights):
        mine.assign(theirs.numpy())
    return ours, plain


def _assert_close_in_bfloat16(got, want):
    """Equal up to bfloat16 rounding of sums as large as the largest value.

    A bfloat16 sum rounds to 2^-8 of its magnitude, and the two paths add in
    different orders (and, on CPUs without bfloat16 instructions, round at
    different points), so a small output of large terms may differ by a few
    of those steps: the tolerance scales with the tensor's largest value.
    """
    got = np.asarray(tf.cast(got, tf.float32))
    want = np.asarray(tf.cast(want, tf.float32))
    scale = max(1.0, float(np.max(np.abs(want))))
    np.testing.assert_allclose(got, want, rtol=2e-2, atol=2**-5 * scale)


@pytest.mark.parametrize(
    "size,strides,padding",
    [(6, 1, "same"), (7, 2, "same"), (7, 2, "valid"), (6, 2, "same")],
)
def test_bfloat16_training_matches_the_convolution_forward_and_backward(
    size, strides, padding
):
    rng = np.random.default_rng(0)
    x = tf.cast(rng.normal(size=(2, size, size, 8)).astype("float32"), tf.bfloat16)
    ours, plain = _pair(
        x,
        filters=4,
        kernel_size=1,
        strides=strides,
        padding=padding,
        activation="relu",
        dtype="mixed_bfloat16",
    )
    assert "MatMul" in _op_types(ours, x, True) and "Conv2D" not in _op_types(
        ours, x, True
    )
    results = []
    for layer in (ours, plain):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * tf.range(4.0))
        grads = tape.gradient(loss, [x, layer.kernel.value, layer.bias.value])
        results.append([y] + grads)
    assert results[0][0].shape == results[1][0].shape
    assert results[0][0].dtype == tf.bfloat16
    for got, want in zip(*results):
        _assert_close_in_bfloat16(got, want)


def test_inference_float32_and_wider_kernels_keep_the_convolution_op():
    x = tf.cast(tf.ones((1, 4, 4, 3)), tf.bfloat16)
    pointwise = Conv2D(2, 1, dtype="mixed_bfloat16")
    assert "Conv2D" in _op_types(pointwise, x, False)
    assert "Conv2D" in _op_types(Conv2D(2, 3, dtype="mixed_bfloat16"), x, True)
    x32 = tf.ones((1, 4, 4, 3))
    assert "Conv2D" in _op_types(Conv2D(2, 1), x32, True)


def test_conv_norm_act_passes_training_to_its_convolution():
    x = tf.cast(tf.ones((2, 4, 4, 3)), tf.bfloat16)
    layer = ConvNormAct(4, kernel_size=1, dtype="mixed_bfloat16")
    assert isinstance(layer.conv, Conv2D)
    assert "MatMul" in _op_types(layer, x, True)
    assert "MatMul" not in _op_types(layer, x, False)


def test_serialization_round_trips():
    layer = Conv2D(3, 1, strides=2, use_bias=False, name="c")
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(restored) is Conv2D
    assert restored.get_config() == layer.get_config()


def test_dynamic_height_and_width_train_like_the_convolution():
    # Segmentation builds its backbones on (None, None, C) inputs.
    inputs = keras.Input((None, None, 8))
    models = []
    for cls in (Conv2D, keras.layers.Conv2D):
        layer = cls(4, 1, strides=2, padding="same", dtype="mixed_bfloat16")
        models.append(keras.Model(inputs, layer(inputs)))
    models[0].set_weights(models[1].get_weights())

    def train_step(model):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 8], tf.float32)])
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = model(x, training=True)
                loss = tf.reduce_sum(tf.cast(y, tf.float32) * tf.range(4.0))
            weights = [v.value for v in model.trainable_variables]
            return [y] + tape.gradient(loss, [x] + weights)

        return step

    ours, plain = train_step(models[0]), train_step(models[1])
    graph = ours.get_concrete_function().graph
    assert "MatMul" in {op.type for op in graph.get_operations()}
    rng = np.random.default_rng(0)
    for height, width in [(5, 7), (8, 6)]:
        x = tf.constant(rng.normal(size=(2, height, width, 8)).astype("float32"))
        got, want = ours(x), plain(x)
        assert got[0].shape == (2, (height + 1) // 2, (width + 1) // 2, 4)
        for a, b in zip(got, want):
            _assert_close_in_bfloat16(a, b)


def test_the_switch_turns_the_matmul_path_off_and_on():
    x = tf.cast(tf.ones((1, 4, 4, 3)), tf.bfloat16)
    layer = Conv2D(2, 1, strides=2, dtype="mixed_bfloat16")
    conv2d.set_conv1x1_as_matmul(False)
    assert not conv2d.conv1x1_as_matmul()
    ops = _op_types(layer, x, True)
    assert "MatMul" not in ops and "Conv2D" in ops
    conv2d.set_conv1x1_as_matmul(True)
    ops = _op_types(layer, x, True)
    assert "MatMul" in ops and "Conv2D" not in ops


def test_a_visible_accelerator_keeps_the_convolution_op(monkeypatch):
    monkeypatch.setattr(conv2d, "_accelerator_visible", lambda: True)
    x = tf.cast(tf.ones((1, 4, 4, 3)), tf.bfloat16)
    ops = _op_types(Conv2D(2, 1, dtype="mixed_bfloat16"), x, True)
    assert "MatMul" not in ops and "Conv2D" in ops
