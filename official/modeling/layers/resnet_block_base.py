"""What the basic and bottleneck ResNet blocks share: options, shortcut, merge."""

from __future__ import annotations

import keras

from official.modeling.layers.conv_norm_act import ConvNormAct
from official.modeling.layers.squeeze_excite import SqueezeExcite
from official.modeling.layers.stochastic_depth import StochasticDepth


class ResNetBlockBase(keras.layers.Layer):
    """Base of `ResidualBlock` and `BottleneckBlock`.

    Subclasses build and run their branch; this class holds the shared
    arguments, builds the shortcut (a strided 1x1 conv + BN, or with
    `resnetd_shortcut` a 2x2 average pool then a 1x1 conv + BN, as in
    ResNet-D), the optional squeeze-excitation on the branch output and the
    optional stochastic depth, and merges `relu(shortcut + branch)`.

    Args:
        filters: int, channels of the branch's convolutions.
        strides: int, stride of the block.
        dilation_rate: int, dilation of the 3x3 convolutions (1 = none).
        se_ratio: float in [0, 1], squeeze-excitation on the branch output
            with `ratio` of its channels; 0 = none.
        stochastic_depth_rate: float in [0, 1), probability of dropping the
            branch per example in training.
        resnetd_shortcut: bool, average-pool before the projection shortcut.
        kernel_initializer, kernel_regularizer, norm_momentum, norm_epsilon,
        use_sync_bn, padding: as in `ConvNormAct` ("symmetric" pads the
            strided 3x3 convolution on every side, PyTorch style).
    """

    expansion = 1

    def __init__(
        self,
        filters,
        strides=1,
        dilation_rate=1,
        se_ratio=0.0,
        stochastic_depth_rate=0.0,
        resnetd_shortcut=False,
        kernel_initializer="he_normal",
        kernel_regularizer=None,
        norm_momentum=0.99,
        norm_epsilon=1e-3,
        use_sync_bn=False,
        padding="same",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 <= se_ratio <= 1.0:
            raise ValueError(
                f"`se_ratio` must be in [0, 1]. Received: se_ratio={se_ratio!r}."
            )
        self.filters = filters
        self.strides = strides
        self.dilation_rate = dilation_rate
        self.se_ratio = se_ratio
        self.stochastic_depth_rate = stochastic_depth_rate
        self.resnetd_shortcut = resnetd_shortcut
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.use_sync_bn = use_sync_bn
        self.padding = padding
        self.shortcut = None
        self.shortcut_pool = None
        self.se = None
        self.stochastic_depth = None

    @property
    def out_filters(self) -> int:
        return self.filters * self.expansion

    def _conv(self, filters, kernel_size, strides, activation, name, dilation_rate=1):
        return ConvNormAct(
            filters,
            kernel_size,
            strides=strides,
            activation=activation,
            dilation_rate=dilation_rate,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
            norm_momentum=self.norm_momentum,
            norm_epsilon=self.norm_epsilon,
            use_sync_bn=self.use_sync_bn,
            padding=self.padding,
            dtype=self.dtype_policy,
            name=name,
        )

    def _build_shortcut_and_extras(self, input_shape, branch_shape) -> None:
        if self.strides != 1 or input_shape[-1] != self.out_filters:
            if self.resnetd_shortcut and self.strides != 1:
                self.shortcut_pool = keras.layers.AveragePooling2D(
                    self.strides,
                    self.strides,
                    padding="same",
                    dtype=self.dtype_policy,
                    name="shortcut_pool",
                )
                self.shortcut = self._conv(self.out_filters, 1, 1, None, "shortcut")
                self.shortcut.build(
                    self.shortcut_pool.compute_output_shape(input_shape)
                )
            else:
                self.shortcut = self._conv(
                    self.out_filters, 1, self.strides, None, "shortcut"
                )
                self.shortcut.build(input_shape)
        if self.se_ratio > 0:
            # Squeeze to a ratio of the block's input channels, as ResNet-RS does.
            ratio = self.se_ratio * input_shape[-1] / self.out_filters
            self.se = SqueezeExcite(
                ratio=min(1.0, max(ratio, 1.0 / self.out_filters)),
                kernel_initializer=keras.initializers.serialize(
                    self.kernel_initializer
                ),
                dtype=self.dtype_policy,
                name="se",
            )
            self.se.build(branch_shape)
        if self.stochastic_depth_rate > 0:
            self.stochastic_depth = StochasticDepth(
                self.stochastic_depth_rate,
                dtype=self.dtype_policy,
                name="stochastic_depth",
            )

    def _merge(self, inputs, branch, training):
        if self.se is not None:
            branch = self.se(branch)
        if self.stochastic_depth is not None:
            branch = self.stochastic_depth(branch, training=training)
        shortcut = inputs
        if self.shortcut_pool is not None:
            shortcut = self.shortcut_pool(shortcut)
        if self.shortcut is not None:
            shortcut = self.shortcut(shortcut, training=training)
        return keras.ops.relu(branch + shortcut)

    def compute_output_shape(self, input_shape):
        def down(size):
            return None if size is None else -(-size // self.strides)

        batch, height, width = input_shape[:3]
        return (batch, down(height), down(width), self.out_filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "strides": self.strides,
            "dilation_rate": self.dilation_rate,
            "se_ratio": self.se_ratio,
            "stochastic_depth_rate": self.stochastic_depth_rate,
            "resnetd_shortcut": self.resnetd_shortcut,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
            "use_sync_bn": self.use_sync_bn,
            "padding": self.padding,
        }
