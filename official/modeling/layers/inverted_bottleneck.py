"""The inverted bottleneck (MBConv) block of MobileNetV2/V3 and EfficientNet."""

from __future__ import annotations

import keras

from official.modeling.layers.activations import serialize_activation
from official.modeling.layers.channel_rounding import make_divisible
from official.modeling.layers.conv_norm_act import ConvNormAct
from official.modeling.layers.fused_batch_normalization import FusedBatchNormalization
from official.modeling.layers.squeeze_excite import SqueezeExcite
from official.modeling.layers.stochastic_depth import StochasticDepth


@keras.saving.register_keras_serializable(package="official")
class InvertedBottleneck(keras.layers.Layer):
    """Inverted residual block (MBConv; Sandler et al. 2018, Tan & Le 2019).

    1x1 convolution expanding the input's channels by `expand_ratio` (left
    out when `expand_ratio` is 1), `kernel_size` depthwise convolution with
    the stride, optional `SqueezeExcite`, 1x1 projection to `filters`
    channels without activation. Every convolution is bias-free and followed
    by batch normalization. When the stride is 1 and the input has `filters`
    channels, the input is added back (the residual), after
    `StochasticDepth(stochastic_depth_rate)` on the block's branch.

    Channel counts: expanded = `make_divisible(in_channels * expand_ratio,
    divisible_by)`; the squeeze width is `se_ratio` times the block's input
    channels (EfficientNet) or, with `se_ratio_of_expanded`, times the
    expanded channels rounded to `divisible_by` (MobileNetV3).

    Args:
        filters: int, output channels.
        expand_ratio: float >= 1, expansion of the input channels. Defaults
            to 6.
        kernel_size: int, depthwise kernel size. Defaults to 3.
        strides: int, depthwise stride. Defaults to 1.
        se_ratio: float in [0, 1], squeeze-and-excitation width ratio; 0
            leaves it out. Defaults to 0.0.
        se_ratio_of_expanded: bool, whether `se_ratio` is relative to the
            expanded channels instead of the input channels. Defaults to
            False.
        divisible_by: int, expanded (and, with `se_ratio_of_expanded`,
            squeeze) channels are rounded to a multiple of it. Defaults to 1.
        activation: str, activation after the expansion and the depthwise
            convolution ("relu6", "hard_swish", "swish", ...). Defaults to
            "relu6".
        se_activation: str, activation of the squeeze layer. Defaults to
            "relu".
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
    from official.modeling.layers import InvertedBottleneck

    block = InvertedBottleneck(filters=8, expand_ratio=4, se_ratio=0.25)
    y = block(np.ones((2, 8, 8, 8), "float32"))
    assert tuple(y.shape) == (2, 8, 8, 8) and block.use_residual
    ```
    """

    def __init__(
        self,
        filters,
        expand_ratio=6,
        kernel_size=3,
        strides=1,
        se_ratio=0.0,
        se_ratio_of_expanded=False,
        divisible_by=1,
        activation="relu6",
        se_activation="relu",
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
        self.se_ratio_of_expanded = se_ratio_of_expanded
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

    def _conv(self, filters, activation, name):
        return ConvNormAct(
            filters,
            1,
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
        shape = tuple(input_shape)
        self.expand = None
        expanded = in_channels
        if self.expand_ratio != 1:
            expanded = make_divisible(
                in_channels * self.expand_ratio, self.divisible_by
            )
            self.expand = self._conv(expanded, self.activation, "expand")
            self.expand.build(shape)
            shape = shape[:-1] + (expanded,)
        kernel_args = self._kernel_args()
        self.depthwise = keras.layers.DepthwiseConv2D(
            self.kernel_size,
            strides=self.strides,
            padding="same",
            use_bias=False,
            depthwise_initializer=kernel_args["kernel_initializer"],
            depthwise_regularizer=kernel_args["kernel_regularizer"],
            dtype=self.dtype_policy,
            name="depthwise",
        )
        self.depthwise.build(shape)
        shape = self.depthwise.compute_output_shape(shape)
        self.depthwise_norm = FusedBatchNormalization(
            momentum=self.norm_momentum,
            epsilon=self.norm_epsilon,
            synchronized=self.use_sync_bn,
            dtype=self.dtype_policy,
            name="depthwise_norm",
        )
        self.depthwise_norm.build(shape)
        self.depthwise_act = keras.layers.Activation(
            self.activation, dtype=self.dtype_policy, name="depthwise_act"
        )
        self.squeeze_excite = None
        if self.se_ratio > 0:
            if self.se_ratio_of_expanded:
                ratio, divisor = self.se_ratio, self.divisible_by
            else:
                # Relative to the input channels; rounding absorbs the float error.
                ratio, divisor = self.se_ratio * in_channels / expanded, 1
            self.squeeze_excite = SqueezeExcite(
                ratio=ratio,
                divisible_by=divisor,
                activation=self.se_activation,
                gate_activation=self.se_gate_activation,
                dtype=self.dtype_policy,
                name="squeeze_excite",
                **self._kernel_args(),
            )
            self.squeeze_excite.build(shape)
        self.project = self._conv(self.filters, None, "project")
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
        x = inputs
        if self.expand is not None:
            x = self.expand(x, training=training)
        x = self.depthwise(x)
        x = self.depthwise_norm(x, training=training)
        x = self.depthwise_act(x)
        if self.squeeze_excite is not None:
            x = self.squeeze_excite(x)
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
            "se_ratio_of_expanded": self.se_ratio_of_expanded,
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
