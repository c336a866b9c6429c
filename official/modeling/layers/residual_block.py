"""The basic ResNet block: two 3x3 convolutions and a shortcut."""

from __future__ import annotations

import keras

from official.modeling.layers.resnet_block_base import ResNetBlockBase


@keras.saving.register_keras_serializable(package="official")
class ResidualBlock(ResNetBlockBase):
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
        dilation_rate, se_ratio, stochastic_depth_rate, resnetd_shortcut:
            the ResNet-RS / DeepLab options of `ResNetBlockBase` (dilated 3x3
            convolutions, squeeze-excitation, stochastic depth, average-pool
            projection shortcut); all off by default.
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

    def build(self, input_shape):
        self.conv1 = self._conv(
            self.filters, 3, self.strides, "relu", "conv1", self.dilation_rate
        )
        self.conv1.build(input_shape)
        shape = self.conv1.compute_output_shape(input_shape)
        self.conv2 = self._conv(self.filters, 3, 1, None, "conv2", self.dilation_rate)
        self.conv2.build(shape)
        self._build_shortcut_and_extras(
            input_shape, self.conv2.compute_output_shape(shape)
        )

    def call(self, inputs, training=None):
        x = self.conv1(inputs, training=training)
        x = self.conv2(x, training=training)
        return self._merge(inputs, x, training)
