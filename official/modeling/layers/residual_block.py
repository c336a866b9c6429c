"""The basic ResNet block: two 3x3 convolutions and a shortcut."""

from __future__ import annotations

import keras

from official.modeling.layers.conv_norm_act import ConvNormAct


@keras.saving.register_keras_serializable(package="official")
class ResidualBlock(keras.layers.Layer):
    """Basic residual block of ResNet-18/34: 3x3 conv, 3x3 conv, add, relu.

    The first convolution carries the stride. When the stride is not 1 or the
    input does not have `filters` channels, the shortcut is a bias-free 1x1
    convolution with the same stride followed by batch normalization;
    otherwise it is the identity.

    Args:
        filters: int, output channels of both convolutions and of the block.
        strides: int, stride of the first convolution and of the shortcut.
            Defaults to 1.
        kernel_initializer: str or `keras.initializers.Initializer`, for all
            convolution kernels. Defaults to "he_normal".
        kernel_regularizer: str, `keras.regularizers.Regularizer` or None, for
            all convolution kernels. Defaults to None.
        norm_momentum: float, batch normalization momentum. Defaults to 0.99.
        norm_epsilon: float, batch normalization epsilon. Defaults to 1e-3.
        use_sync_bn: bool, synchronized batch normalization across replicas.
            Defaults to False.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: float tensor of shape `(batch, height, width, channels)`.
        training: bool, whether batch normalization uses batch statistics.

    Returns:
        Tensor of shape `(batch, ceil(height / strides), ceil(width / strides),
        filters)`.

    Example:
    ```python
    import numpy as np
    from official.modeling.layers import ResidualBlock

    block = ResidualBlock(filters=8, strides=2)
    y = block(np.ones((2, 8, 8, 4), "float32"))
    assert tuple(y.shape) == (2, 4, 4, 8)
    ```
    """

    def __init__(
        self,
        filters,
        strides=1,
        kernel_initializer="he_normal",
        kernel_regularizer=None,
        norm_momentum=0.99,
        norm_epsilon=1e-3,
        use_sync_bn=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.strides = strides
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.use_sync_bn = use_sync_bn
        self.shortcut = None

    def _conv(self, filters, kernel_size, strides, activation, name):
        return ConvNormAct(
            filters,
            kernel_size,
            strides=strides,
            activation=activation,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
            norm_momentum=self.norm_momentum,
            norm_epsilon=self.norm_epsilon,
            use_sync_bn=self.use_sync_bn,
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, input_shape):
        self.conv1 = self._conv(self.filters, 3, self.strides, "relu", "conv1")
        self.conv1.build(input_shape)
        self.conv2 = self._conv(self.filters, 3, 1, None, "conv2")
        self.conv2.build(self.conv1.compute_output_shape(input_shape))
        if self.strides != 1 or input_shape[-1] != self.filters:
            self.shortcut = self._conv(self.filters, 1, self.strides, None, "shortcut")
            self.shortcut.build(input_shape)

    def call(self, inputs, training=None):
        x = self.conv1(inputs, training=training)
        x = self.conv2(x, training=training)
        shortcut = inputs
        if self.shortcut is not None:
            shortcut = self.shortcut(inputs, training=training)
        return keras.ops.relu(x + shortcut)

    def compute_output_shape(self, input_shape):
        def down(size):
            return None if size is None else -(-size // self.strides)

        batch, height, width = input_shape[:3]
        return (batch, down(height), down(width), self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "strides": self.strides,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
            "use_sync_bn": self.use_sync_bn,
        }
