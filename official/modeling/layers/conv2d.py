"""A 2D convolution that trains its 1x1 case as a matrix product.

A 1x1 convolution is a matrix product over the channels of every pixel:
`(batch * height * width, in) @ (in, out)`. On CPU, TensorFlow's convolution
kernels (oneDNN) compute its filter gradient far below the rate of a plain
matrix product of the same shapes; in a ResNet-50 train step the 1x1 filter
gradients took more time than all forward convolutions together. Written as
`MatMul`, forward and both gradients run on the matrix-product kernel.

The layer is a drop-in subclass of `keras.layers.Conv2D`: same arguments, the
same `kernel` variable of shape `(1, 1, in, out)`, same checkpoints and
results (up to float rounding). The matrix-product form is used on
TensorFlow, channels-last, 1x1 kernels without dilation or groups, bfloat16
inputs, and only while training; inference and export keep the `Conv2D` op,
which converters (TFLite, ONNX) map to their own convolution. A stride `s`
subsamples the input first (`x[:, ::s, ::s]`, as a 1x1 max-pool), which for a
1x1 window is exactly the strided convolution under either padding.

It was measured on CPU only, so it runs only while TensorFlow sees no GPU or
TPU; where an accelerator is visible the layer runs the `Conv2D` op.
`set_conv1x1_as_matmul(False)` turns it off for the process; the trainer
calls it with `runtime.conv1x1_as_matmul`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

_conv1x1_as_matmul = True


def set_conv1x1_as_matmul(enabled: bool) -> None:
    """Turns the 1x1 matrix-product training form on or off for the process.

    Takes effect for calls traced afterwards; a `tf.function` traced before
    keeps the form it was traced with.
    """
    global _conv1x1_as_matmul
    _conv1x1_as_matmul = bool(enabled)


def conv1x1_as_matmul() -> bool:
    """Whether `set_conv1x1_as_matmul` allows the matrix-product form."""
    return _conv1x1_as_matmul


def _accelerator_visible() -> bool:
    """True when TensorFlow places ops on a GPU or TPU by default."""
    return bool(
        tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU")
    )


@keras.saving.register_keras_serializable(package="official")
class Conv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` whose 1x1 case trains as a matrix product.

    Args:
        Those of `keras.layers.Conv2D`.

    Call arguments:
        inputs: a 4-D feature map.
        training: bool; the matrix-product form runs only when True.

    Example:
    ```python
    import numpy as np
    import tensorflow as tf
    from official.modeling.layers.conv2d import Conv2D

    layer = Conv2D(8, 1, strides=2, use_bias=False, dtype="mixed_bfloat16")
    x = tf.cast(np.random.default_rng(0).normal(size=(2, 5, 5, 4)), tf.bfloat16)
    train_step = tf.function(lambda t: layer(t, training=True))
    graph = train_step.get_concrete_function(x).graph
    ops = {op.type for op in graph.get_operations()}
    on_cpu = not tf.config.list_logical_devices("GPU")
    assert ("MatMul" in ops) == on_cpu  # a Conv2D op where a GPU is visible
    np.testing.assert_allclose(
        tf.cast(train_step(x), "float32"),
        tf.cast(layer(x, training=False), "float32"),  # the Conv2D op
        atol=2e-2)
    ```
    """

    def _as_matmul(self, inputs, training) -> bool:
        return (
            training is True
            and keras.backend.backend() == "tensorflow"
            and self.data_format == "channels_last"
            and tuple(self.kernel_size) == (1, 1)
            and tuple(self.dilation_rate) == (1, 1)
            and self.groups == 1
            and len(inputs.shape) == 4
            and inputs.dtype == tf.bfloat16
            and _conv1x1_as_matmul
            and not _accelerator_visible()
        )

    def call(self, inputs, training=None):
        if not self._as_matmul(inputs, training):
            return super().call(inputs)
        x = tf.convert_to_tensor(inputs)
        if tuple(self.strides) != (1, 1):
            # A 1x1 max-pool window picks one pixel: the subsampling, with a
            # far faster gradient than a strided slice's.
            x = tf.nn.max_pool2d(x, 1, self.strides, "VALID")
        kernel = tf.cast(self.kernel, x.dtype)
        channels_in, filters = kernel.shape[-2], kernel.shape[-1]
        dynamic = tf.shape(x)
        shape = [dynamic[i] if d is None else d for i, d in enumerate(x.shape[:-1])]
        y = tf.matmul(
            tf.reshape(x, [-1, channels_in]), tf.reshape(kernel, [channels_in, filters])
        )
        y = tf.reshape(y, shape + [filters])
        if self.use_bias:
            y = tf.nn.bias_add(y, tf.cast(self.bias, y.dtype))
        if self.activation is not None:
            y = self.activation(y)
        return y
