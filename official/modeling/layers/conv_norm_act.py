"""Conv2D (no bias) followed by batch normalization and an optional activation."""

from __future__ import annotations

import keras

from official.modeling.layers.activations import serialize_activation
from official.modeling.layers.conv2d import Conv2D
from official.modeling.layers.fused_batch_normalization import FusedBatchNormalization


@keras.saving.register_keras_serializable(package="official")
class ConvNormAct(keras.layers.Layer):
    """A bias-free 2D convolution, batch normalization, then an activation.

    The convolution uses "same" padding, so the spatial size is divided by
    `strides` (rounded up). The convolution has no bias because the batch
    normalization that follows has its own offset (`beta`).

    Args:
        filters: int, number of output channels.
        kernel_size: int or tuple of 2 ints, convolution window. Defaults to 3.
        strides: int or tuple of 2 ints, convolution stride. Defaults to 1.
        activation: str or None, activation applied after normalization
            (`None` for none). Defaults to "relu".
        dilation_rate: int or tuple of 2 ints, dilation of the convolution.
            Defaults to 1.
        kernel_initializer: str or `keras.initializers.Initializer`, for the
            convolution kernel. Defaults to "he_normal".
        kernel_regularizer: str, `keras.regularizers.Regularizer` or None, for
            the convolution kernel. Defaults to None.
        norm_momentum: float, momentum of the moving statistics. Defaults to
            0.99.
        norm_epsilon: float, added to the variance. Defaults to 1e-3.
        use_sync_bn: bool, synchronize batch statistics across replicas
            (`BatchNormalization(synchronized=True)`). Defaults to False.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: float tensor of shape `(batch, height, width, channels)`.
        training: bool, whether batch normalization uses batch statistics.

    Returns:
        Tensor of shape `(batch, ceil(height / s), ceil(width / s), filters)`.

    Example:
    ```python
    import numpy as np
    from official.modeling.layers import ConvNormAct

    layer = ConvNormAct(filters=8, kernel_size=3, strides=2)
    y = layer(np.ones((2, 8, 8, 3), "float32"))
    assert tuple(y.shape) == (2, 4, 4, 8)
    ```
    """

    def __init__(
        self,
        filters,
        kernel_size=3,
        strides=1,
        activation="relu",
        dilation_rate=1,
        kernel_initializer="he_normal",
        kernel_regularizer=None,
        norm_momentum=0.99,
        norm_epsilon=1e-3,
        use_sync_bn=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.activation = activation
        self.dilation_rate = dilation_rate
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.use_sync_bn = use_sync_bn

        self.conv = Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding="same",
            dilation_rate=dilation_rate,
            use_bias=False,
            kernel_initializer=self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
            name="conv",
        )
        self.norm = FusedBatchNormalization(
            momentum=norm_momentum,
            epsilon=norm_epsilon,
            synchronized=use_sync_bn,
            dtype=self.dtype_policy,
            name="norm",
        )
        self.act = (
            None
            if activation is None
            else keras.layers.Activation(
                activation, dtype=self.dtype_policy, name="act"
            )
        )

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.norm.build(self.conv.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        x = self.norm(self.conv(inputs, training=training), training=training)
        return x if self.act is None else self.act(x)

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "activation": serialize_activation(self.activation),
            "dilation_rate": self.dilation_rate,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
            "use_sync_bn": self.use_sync_bn,
        }
