"""Atrous spatial pyramid pooling (DeepLabV3)."""

from __future__ import annotations

import keras

from official.modeling.layers import ConvNormAct


@keras.saving.register_keras_serializable(package="official")
class ASPP(keras.layers.Layer):
    """Atrous spatial pyramid pooling (Chen et al. 2017, DeepLabV3).

    Parallel branches on one feature map: a 1x1 convolution, one 3x3
    convolution per dilation rate and (with `image_pooling`) global average
    pooling followed by a 1x1 convolution, broadcast back over the map. Each
    branch has `num_filters` channels, batch normalization and relu; they are
    concatenated, projected by a 1x1 convolution (normalized, relu) and
    dropped out. The spatial size is kept.

    Args:
        num_filters: int, channels of every branch and of the output.
            Defaults to 256.
        dilation_rates: list of ints, one 3x3 branch per rate; [6, 12, 18]
            suit output stride 16, [12, 24, 36] output stride 8. Defaults to
            (6, 12, 18).
        image_pooling: bool, add the global pooling branch. Defaults to True.
        dropout_rate: float in [0, 1), after the projection. Defaults to 0.1.
        kernel_initializer: str or initializer, for every kernel. Defaults to
            "he_normal".
        norm_momentum: float, batch normalization momentum. Defaults to 0.99.
        norm_epsilon: float, batch normalization epsilon. Defaults to 1e-3.
        use_sync_bn: bool, synchronized batch normalization. Defaults to False.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: float tensor `(batch, height, width, channels)`.
        training: bool, batch normalization and dropout mode.

    Returns:
        Tensor `(batch, height, width, num_filters)`.

    Example:
    ```python
    import numpy as np
    from official.vision.heads.aspp import ASPP

    aspp = ASPP(num_filters=8, dilation_rates=[2, 4])
    assert tuple(aspp(np.ones((2, 6, 6, 16), "float32")).shape) == (2, 6, 6, 8)
    ```
    """

    def __init__(
        self,
        num_filters=256,
        dilation_rates=(6, 12, 18),
        image_pooling=True,
        dropout_rate=0.1,
        kernel_initializer="he_normal",
        norm_momentum=0.99,
        norm_epsilon=1e-3,
        use_sync_bn=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_filters = num_filters
        self.dilation_rates = list(dilation_rates)
        self.image_pooling = image_pooling
        self.dropout_rate = dropout_rate
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.use_sync_bn = use_sync_bn
        conv_args = dict(
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            norm_momentum=norm_momentum,
            norm_epsilon=norm_epsilon,
            use_sync_bn=use_sync_bn,
            dtype=self.dtype_policy,
        )
        # One attribute per branch, not a list: TensorFlow checkpoints do not
        # see layers inside a Keras-tracked list.
        self.conv1x1 = ConvNormAct(num_filters, 1, name="conv1x1", **conv_args)
        for i, rate in enumerate(self.dilation_rates):
            setattr(
                self,
                f"conv3x3_{i}",
                ConvNormAct(
                    num_filters,
                    3,
                    dilation_rate=rate,
                    name=f"conv3x3_rate{rate}",
                    **conv_args,
                ),
            )
        self.pool_conv = (
            ConvNormAct(num_filters, 1, name="pool_conv", **conv_args)
            if image_pooling
            else None
        )
        self.project = ConvNormAct(num_filters, 1, name="project", **conv_args)
        self.dropout = keras.layers.Dropout(dropout_rate, dtype=self.dtype_policy)

    @property
    def branches(self) -> list:
        """The 1x1 branch and one 3x3 branch per dilation rate."""
        dilated = [
            getattr(self, f"conv3x3_{i}") for i in range(len(self.dilation_rates))
        ]
        return [self.conv1x1, *dilated]

    def build(self, input_shape):
        for branch in self.branches:
            branch.build(input_shape)
        if self.pool_conv is not None:
            self.pool_conv.build((input_shape[0], 1, 1, input_shape[-1]))
        count = len(self.branches) + (1 if self.pool_conv is not None else 0)
        self.project.build((*input_shape[:3], self.num_filters * count))

    def call(self, inputs, training=None):
        outputs = [branch(inputs, training=training) for branch in self.branches]
        if self.pool_conv is not None:
            pooled = keras.ops.mean(inputs, axis=(1, 2), keepdims=True)
            pooled = self.pool_conv(pooled, training=training)
            # Bilinear upsampling of a 1x1 map is a broadcast.
            outputs.append(pooled + keras.ops.zeros_like(outputs[0]))
        x = self.project(keras.ops.concatenate(outputs, axis=-1), training=training)
        return self.dropout(x, training=training)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:3], self.num_filters)

    def get_config(self):
        return {
            **super().get_config(),
            "num_filters": self.num_filters,
            "dilation_rates": self.dilation_rates,
            "image_pooling": self.image_pooling,
            "dropout_rate": self.dropout_rate,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
            "use_sync_bn": self.use_sync_bn,
        }
