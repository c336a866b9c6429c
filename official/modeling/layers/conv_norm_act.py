"""Conv2D (no bias) followed by batch normalization and an optional activation."""

from __future__ import annotations

import keras

from official.modeling.layers.activations import serialize_activation
from official.modeling.layers.conv2d import Conv2D
from official.modeling.layers.fused_batch_normalization import FusedBatchNormalization

PADDINGS = ("same", "symmetric")


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


@keras.saving.register_keras_serializable(package="official")
class ConvNormAct(keras.layers.Layer):
    """A bias-free 2D convolution, batch normalization, then an activation.

    The convolution uses "same" padding, so the spatial size is divided by
    `strides` (rounded up). With `padding="symmetric"` a strided convolution
    instead zero-pads `dilation_rate * (kernel_size - 1) // 2` pixels on every
    side and then runs "valid", as PyTorch models (and keras-hub's ports of
    them) do; for even input sizes "same" puts the odd pixel after the image,
    so the two place every strided window one pixel apart. Unstrided
    convolutions pad the same way under both. The convolution has no bias because the batch
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
        padding: "same" or "symmetric" (see above). Defaults to "same".
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
        padding="same",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if padding not in PADDINGS:
            raise ValueError(
                f"`padding` must be one of {', '.join(PADDINGS)}. Received: "
                f"padding={padding!r}."
            )
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
        self.padding = padding
        self.pad = None
        if padding == "symmetric" and _pair(strides) != (1, 1):
            self.pad = keras.layers.ZeroPadding2D(
                tuple(
                    d * (k - 1) // 2
                    for d, k in zip(_pair(dilation_rate), _pair(kernel_size))
                ),
                dtype=self.dtype_policy,
                name="pad",
            )

        self.conv = Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding="same" if self.pad is None else "valid",
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
        if self.pad is not None:
            input_shape = self.pad.compute_output_shape(input_shape)
        self.conv.build(input_shape)
        self.norm.build(self.conv.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        if self.pad is not None:
            inputs = self.pad(inputs)
        x = self.norm(self.conv(inputs, training=training), training=training)
        return x if self.act is None else self.act(x)

    def compute_output_shape(self, input_shape):
        if self.pad is not None:
            input_shape = self.pad.compute_output_shape(input_shape)
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
            "padding": self.padding,
        }
