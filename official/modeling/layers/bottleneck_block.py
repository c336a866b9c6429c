"""The bottleneck ResNet block (v1.5): 1x1, strided 3x3, 1x1 and a shortcut."""

from __future__ import annotations

import keras

from official.modeling.layers.conv_norm_act import ConvNormAct


@keras.saving.register_keras_serializable(package="official")
class BottleneckBlock(keras.layers.Layer):
    """Bottleneck block of ResNet-50 and deeper, in the v1.5 variant.

    1x1 conv to `filters` channels, 3x3 conv with the stride (v1.5: the
    stride is on the 3x3, not on the first 1x1), 1x1 conv to
    `filters * expansion` channels, add the shortcut, relu. When the stride
    is not 1 or the input does not have `filters * expansion` channels, the
    shortcut is a bias-free strided 1x1 convolution with batch normalization;
    otherwise it is the identity.

    Args:
        filters: int, channels of the inner (bottleneck) convolutions.
        strides: int, stride of the 3x3 convolution and of the shortcut.
            Defaults to 1.
        expansion: int, output channels are `filters * expansion`. Defaults
            to 4.
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
        filters * expansion)`.

    Example:
    ```python
    import numpy as np
    from official.modeling.layers import BottleneckBlock

    block = BottleneckBlock(filters=4, strides=2)
    y = block(np.ones((2, 8, 8, 8), "float32"))
    assert tuple(y.shape) == (2, 4, 4, 16)
    ```
    """

    def __init__(
        self,
        filters,
        strides=1,
        expansion=4,
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
        self.expansion = expansion
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
        out_filters = self.filters * self.expansion
        self.conv1 = self._conv(self.filters, 1, 1, "relu", "conv1")
        self.conv1.build(input_shape)
        shape = self.conv1.compute_output_shape(input_shape)
        self.conv2 = self._conv(self.filters, 3, self.strides, "relu", "conv2")
        self.conv2.build(shape)
        shape = self.conv2.compute_output_shape(shape)
        self.conv3 = self._conv(out_filters, 1, 1, None, "conv3")
        self.conv3.build(shape)
        if self.strides != 1 or input_shape[-1] != out_filters:
            self.shortcut = self._conv(out_filters, 1, self.strides, None, "shortcut")
            self.shortcut.build(input_shape)

    def call(self, inputs, training=None):
        x = self.conv1(inputs, training=training)
        x = self.conv2(x, training=training)
        x = self.conv3(x, training=training)
        shortcut = inputs
        if self.shortcut is not None:
            shortcut = self.shortcut(inputs, training=training)
        return keras.ops.relu(x + shortcut)

    def compute_output_shape(self, input_shape):
        def down(size):
            return None if size is None else -(-size // self.strides)

        batch, height, width = input_shape[:3]
        return (batch, down(height), down(width), self.filters * self.expansion)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "strides": self.strides,
            "expansion": self.expansion,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
            "use_sync_bn": self.use_sync_bn,
        }
