"""The fused inverted bottleneck (Fused-MBConv) block of EfficientNetV2."""

from __future__ import annotations

import keras

from official.modeling.layers.activations import serialize_activation
from official.modeling.layers.channel_rounding import make_divisible
from official.modeling.layers.conv_norm_act import ConvNormAct
from official.modeling.layers.squeeze_excite import SqueezeExcite
from official.modeling.layers.stochastic_depth import StochasticDepth


@keras.saving.register_keras_serializable(package="official")
class FusedInvertedBottleneck(keras.layers.Layer):
    """Fused-MBConv (Tan & Le 2021): the expansion and depthwise convs fused.

    With `expand_ratio` > 1: a full `kernel_size` convolution with the stride
    expanding the channels, optional `SqueezeExcite`, and a 1x1 projection to
    `filters` channels without activation. With `expand_ratio` 1: a single
    `kernel_size` convolution with the stride to `filters` channels, with
    activation, then the optional `SqueezeExcite`. Every
    convolution is bias-free and followed by batch normalization. When the
    stride is 1 and the input has `filters` channels, the input is added back
    after `StochasticDepth(stochastic_depth_rate)` on the branch.

    The expanded channels are `make_divisible(in_channels * expand_ratio,
    divisible_by)`; the squeeze width is `se_ratio` times the block's input
    channels, as in EfficientNetV2.

    Args:
        filters: int, output channels.
        expand_ratio: float >= 1, expansion of the input channels. Defaults
            to 4.
        kernel_size: int, kernel size of the fused convolution. Defaults to 3.
        strides: int, stride of the fused convolution. Defaults to 1.
        se_ratio: float in [0, 1], squeeze-and-excitation width relative to
            the input channels; 0 leaves it out. Defaults to 0.0.
        divisible_by: int, expanded channels are rounded to a multiple of it.
            Defaults to 1.
        activation: str, activation after the fused convolution. Defaults to
            "swish".
        se_activation: str, activation of the squeeze layer. Defaults to
            "swish".
        se_gate_activation: str, activation of the excitation gates. Defaults
            to "sigmoid".
        stochastic_depth_rate: float in [0, 1), probability of dropping the
            branch of a residual block in training. Defaults to 0.0.
        kernel_initializer: str or `keras.initializers.Initializer`, for all
            kernels. Defaults to "he_normal".
        kernel_regularizer: str, `keras.regularizers.Regularizer` or None, for
            all kernels. Defaults to None.
        norm_momentum: float, batch normalization momentum. Defaults to 0.99.
        norm_epsilon: float, batch normalization epsilon. Defaults to 1e-3.
        use_sync_bn: bool, synchronized batch normalization across replicas.
            Defaults to False.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: float tensor of shape `(batch, height, width, channels)`.
        training: bool, whether batch normalization uses batch statistics and
            stochastic depth is active.

    Returns:
        Tensor of shape `(batch, ceil(height / strides), ceil(width /
        strides), filters)`.

    Example:
    ```python
    import numpy as np
    from official.modeling.layers import FusedInvertedBottleneck

    block = FusedInvertedBottleneck(filters=16, expand_ratio=4, strides=2)
    y = block(np.ones((2, 8, 8, 8), "float32"))
    assert tuple(y.shape) == (2, 4, 4, 16) and not block.use_residual
    ```
    """

    def __init__(
        self,
        filters,
        expand_ratio=4,
        kernel_size=3,
        strides=1,
        se_ratio=0.0,
        divisible_by=1,
        activation="swish",
        se_activation="swish",
        se_gate_activation="sigmoid",
        stochastic_depth_rate=0.0,
        kernel_initializer="he_normal",
        kernel_regularizer=None,
        norm_momentum=0.99,
        norm_epsilon=1e-3,
        use_sync_bn=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if expand_ratio < 1:
            raise ValueError(
                f"`expand_ratio` must be >= 1. Received: expand_ratio={expand_ratio!r}."
            )
        if not 0.0 <= se_ratio <= 1.0:
            raise ValueError(
                f"`se_ratio` must be in [0, 1]. Received: se_ratio={se_ratio!r}."
            )
        if not 0.0 <= stochastic_depth_rate < 1.0:
            raise ValueError(
                "`stochastic_depth_rate` must be in [0, 1). Received: "
                f"stochastic_depth_rate={stochastic_depth_rate!r}."
            )
        self.filters = filters
        self.expand_ratio = expand_ratio
        self.kernel_size = kernel_size
        self.strides = strides
        self.se_ratio = se_ratio
        self.divisible_by = divisible_by
        self.activation = activation
        self.se_activation = se_activation
        self.se_gate_activation = se_gate_activation
        self.stochastic_depth_rate = stochastic_depth_rate
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.use_sync_bn = use_sync_bn
        self.use_residual = False

    def _kernel_args(self):
        # Serialized, so that every sublayer gets its own initializer object.
        return dict(
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
        )

    def _conv(self, filters, kernel_size, strides, activation, name):
        return ConvNormAct(
            filters,
            kernel_size,
            strides=strides,
            activation=activation,
            norm_momentum=self.norm_momentum,
            norm_epsilon=self.norm_epsilon,
            use_sync_bn=self.use_sync_bn,
            dtype=self.dtype_policy,
            name=name,
            **self._kernel_args(),
        )

    def build(self, input_shape):
        in_channels = input_shape[-1]
        expanded = self.filters
        if self.expand_ratio != 1:
            expanded = make_divisible(
                in_channels * self.expand_ratio, self.divisible_by
            )
        self.fused = self._conv(
            expanded, self.kernel_size, self.strides, self.activation, "fused"
        )
        self.fused.build(tuple(input_shape))
        shape = self.fused.compute_output_shape(tuple(input_shape))
        self.squeeze_excite = None
        if self.se_ratio > 0:
            self.squeeze_excite = SqueezeExcite(
                # Relative to the input channels; rounding absorbs the float error.
                ratio=min(1.0, self.se_ratio * in_channels / expanded),
                activation=self.se_activation,
                gate_activation=self.se_gate_activation,
                dtype=self.dtype_policy,
                name="squeeze_excite",
                **self._kernel_args(),
            )
            self.squeeze_excite.build(shape)
        self.project = None
        if self.expand_ratio != 1:
            self.project = self._conv(self.filters, 1, 1, None, "project")
            self.project.build(shape)
        self.use_residual = self.strides == 1 and in_channels == self.filters
        self.stochastic_depth = None
        if self.use_residual and self.stochastic_depth_rate > 0:
            self.stochastic_depth = StochasticDepth(
                self.stochastic_depth_rate,
                dtype=self.dtype_policy,
                name="stochastic_depth",
            )

    def call(self, inputs, training=None):
        x = self.fused(inputs, training=training)
        if self.squeeze_excite is not None:
            x = self.squeeze_excite(x)
        if self.project is not None:
            x = self.project(x, training=training)
        if not self.use_residual:
            return x
        if self.stochastic_depth is not None:
            x = self.stochastic_depth(x, training=training)
        return inputs + x

    def compute_output_shape(self, input_shape):
        def down(size):
            return None if size is None else -(-size // self.strides)

        batch, height, width = input_shape[:3]
        return (batch, down(height), down(width), self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "expand_ratio": self.expand_ratio,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "se_ratio": self.se_ratio,
            "divisible_by": self.divisible_by,
            "activation": serialize_activation(self.activation),
            "se_activation": serialize_activation(self.se_activation),
            "se_gate_activation": serialize_activation(self.se_gate_activation),
            "stochastic_depth_rate": self.stochastic_depth_rate,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
            "use_sync_bn": self.use_sync_bn,
        }
