"""Global average pooling, dropout and a dense layer producing class logits."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="official")
class ClassificationHead(keras.layers.Layer):
    """Turns a feature map into class logits.

    Global average pooling over height and width, dropout, then a dense layer
    with `num_classes` units and no activation. The logits are always
    float32, so that a loss under mixed precision sees full-precision values.

    Args:
        num_classes: int, number of classes (logits per example).
        dropout_rate: float in [0, 1), dropout before the dense layer during
            training. Defaults to 0.0.
        kernel_initializer: str or `keras.initializers.Initializer`, for the
            dense kernel. Defaults to "glorot_uniform".
        kernel_regularizer: str, `keras.regularizers.Regularizer` or None, for
            the dense kernel. Defaults to None.
        pre_logits_units: int, units of a dense layer between pooling and
            the logits (MobileNetV3's head); 0 for none. Defaults to 0.
        pre_logits_activation: str, that layer's activation. Defaults to
            "hard_swish".
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: float tensor of shape `(batch, height, width, channels)`
            (averaged over space) or `(batch, channels)` (used as is).
        training: bool, whether dropout is applied.

    Returns:
        float32 tensor of shape `(batch, num_classes)`, the logits.

    Example:
    ```python
    import numpy as np
    from official.vision.heads.classification_head import ClassificationHead

    head = ClassificationHead(num_classes=10, dropout_rate=0.2)
    logits = head(np.ones((2, 4, 4, 16), "float32"))
    assert tuple(logits.shape) == (2, 10)
    ```
    """

    def __init__(
        self,
        num_classes,
        dropout_rate=0.0,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        pre_logits_units=0,
        pre_logits_activation="hard_swish",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.dropout_rate = dropout_rate
        self.pre_logits_units = pre_logits_units
        self.pre_logits_activation = pre_logits_activation
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

        self.pool = keras.layers.GlobalAveragePooling2D(
            dtype=self.dtype_policy, name="pool"
        )
        self.pre_logits = (
            keras.layers.Dense(
                pre_logits_units,
                activation=pre_logits_activation,
                kernel_initializer=self.kernel_initializer,
                kernel_regularizer=self.kernel_regularizer,
                dtype=self.dtype_policy,
                name="pre_logits",
            )
            if pre_logits_units
            else None
        )
        self.dropout = keras.layers.Dropout(
            dropout_rate, dtype=self.dtype_policy, name="dropout"
        )
        self.dense = keras.layers.Dense(
            num_classes,
            kernel_initializer=self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
            name="logits",
        )

    def build(self, input_shape):
        channels = input_shape[-1]
        if self.pre_logits is not None:
            self.pre_logits.build((input_shape[0], channels))
            channels = self.pre_logits_units
        self.dense.build((input_shape[0], channels))

    def call(self, inputs, training=None):
        # Feature maps [B, H, W, C] are averaged; pooled features [B, C] pass.
        x = self.pool(inputs) if len(inputs.shape) == 4 else inputs
        if self.pre_logits is not None:
            x = self.pre_logits(x)
        x = self.dropout(x, training=training)
        return keras.ops.cast(self.dense(x), "float32")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def compute_output_spec(self, inputs, training=None):
        return keras.KerasTensor((inputs.shape[0], self.num_classes), dtype="float32")

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "dropout_rate": self.dropout_rate,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "pre_logits_units": self.pre_logits_units,
            "pre_logits_activation": self.pre_logits_activation,
        }
