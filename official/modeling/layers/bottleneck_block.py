"""The bottleneck ResNet block (v1.5): 1x1, strided 3x3, 1x1 and a shortcut."""

from __future__ import annotations

import keras

from official.modeling.layers.resnet_block_base import ResNetBlockBase


@keras.saving.register_keras_serializable(package="official")
class BottleneckBlock(ResNetBlockBase):
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

    def __init__(self, filters, strides=1, expansion=4, **kwargs):
        super().__init__(filters, strides=strides, **kwargs)
        self.expansion = expansion

    def build(self, input_shape):
        self.conv1 = self._conv(self.filters, 1, 1, "relu", "conv1")
        self.conv1.build(input_shape)
        shape = self.conv1.compute_output_shape(input_shape)
        self.conv2 = self._conv(
            self.filters, 3, self.strides, "relu", "conv2", self.dilation_rate
        )
        self.conv2.build(shape)
        shape = self.conv2.compute_output_shape(shape)
        self.conv3 = self._conv(self.out_filters, 1, 1, None, "conv3")
        self.conv3.build(shape)
        self._build_shortcut_and_extras(
            input_shape, self.conv3.compute_output_shape(shape)
        )

    def call(self, inputs, training=None):
        x = self.conv1(inputs, training=training)
        x = self.conv2(x, training=training)
        x = self.conv3(x, training=training)
        return self._merge(inputs, x, training)

    def get_config(self):
        return {**super().get_config(), "expansion": self.expansion}
