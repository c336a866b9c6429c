"""Squeeze-and-excitation: channel gates computed from the pooled feature map."""

from __future__ import annotations

import keras

from official.modeling.layers.activations import serialize_activation
from official.modeling.layers.channel_rounding import make_divisible


@keras.saving.register_keras_serializable(package="official")
class SqueezeExcite(keras.layers.Layer):
    """Squeeze-and-excitation (Hu et al. 2018) on a channels-last feature map.

    Global average pooling over height and width, a dense layer to
    `make_divisible(channels * ratio, divisible_by)` units with `activation`,
    a dense layer back to `channels` units with `gate_activation`; the input
    is multiplied by these per-channel gates. Both dense layers have biases.

    Args:
        ratio: float in (0, 1], squeeze width relative to the input channels.
            Defaults to 0.25.
        divisible_by: int, the squeeze width is rounded to a multiple of it
            (MobileNetV3 uses 8). Defaults to 1.
        activation: str, activation of the squeeze layer. Defaults to "relu".
        gate_activation: str, activation of the gates ("sigmoid", or
            "hard_sigmoid" in MobileNetV3). Defaults to "sigmoid".
        kernel_initializer: str or `keras.initializers.Initializer`, for both
            dense kernels. Defaults to "he_normal".
        kernel_regularizer: str, `keras.regularizers.Regularizer` or None, for
            both dense kernels. Defaults to None.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: float tensor of shape `(batch, height, width, channels)`.

    Returns:
        Tensor of the input's shape: the input scaled by the gates.

    Example:
    ```python
    import numpy as np
    from official.modeling.layers import SqueezeExcite

    layer = SqueezeExcite(ratio=0.25)
    y = layer(np.ones((2, 8, 8, 16), "float32"))
    assert tuple(y.shape) == (2, 8, 8, 16)
    assert layer.squeeze.units == 4
    ```
    """

    def __init__(
        self,
        ratio=0.25,
        divisible_by=1,
        activation="relu",
        gate_activation="sigmoid",
        kernel_initializer="he_normal",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"`ratio` must be in (0, 1]. Received: ratio={ratio!r}.")
        self.ratio = ratio
        self.divisible_by = divisible_by
        self.activation = activation
        self.gate_activation = gate_activation
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        channels = input_shape[-1]
        common = dict(
            kernel_initializer=self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
        )
        self.squeeze = keras.layers.Dense(
            make_divisible(channels * self.ratio, self.divisible_by),
            activation=self.activation,
            name="squeeze",
            **common,
        )
        self.squeeze.build((None, 1, 1, channels))
        self.excite = keras.layers.Dense(
            channels, activation=self.gate_activation, name="excite", **common
        )
        self.excite.build((None, 1, 1, self.squeeze.units))

    def call(self, inputs):
        pooled = keras.ops.mean(inputs, axis=(1, 2), keepdims=True)
        return inputs * self.excite(self.squeeze(pooled))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "ratio": self.ratio,
            "divisible_by": self.divisible_by,
            "activation": serialize_activation(self.activation),
            "gate_activation": serialize_activation(self.gate_activation),
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
        }
