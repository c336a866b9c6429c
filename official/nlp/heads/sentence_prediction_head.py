"""Dropout and a dense layer on the pooled sentence representation."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="official")
class SentencePredictionHead(keras.layers.Layer):
    """Logits of a sentence (or pair) from the encoder's pooled output.

    Args:
        num_classes: int, number of outputs (1 for regression).
        dropout_rate: float in [0, 1), dropout before the dense layer.
            Defaults to 0.1.
        **kwargs: base layer arguments (`name`, `dtype`).

    Call arguments:
        inputs: float tensor `(batch, hidden_size)`.
        training: bool, whether dropout is active.

    Returns:
        float tensor `(batch, num_classes)`.

    Example:
    ```python
    import numpy as np
    from official.nlp.heads import SentencePredictionHead

    head = SentencePredictionHead(num_classes=3)
    assert tuple(head(np.ones((2, 8), "float32")).shape) == (2, 3)
    ```
    """

    def __init__(self, num_classes, dropout_rate=0.1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int):
            raise ValueError(
                f"`num_classes` must be a positive int. Received: {num_classes!r}."
            )
        if num_classes < 1:
            raise ValueError(
                f"`num_classes` must be a positive int. Received: {num_classes!r}."
            )
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(
                f"`dropout_rate` must be in [0, 1). Received: {dropout_rate!r}."
            )
        self.num_classes = num_classes
        self.dropout_rate = dropout_rate

    def build(self, input_shape):
        self.dropout = keras.layers.Dropout(self.dropout_rate, dtype=self.dtype_policy)
        self.dense = keras.layers.Dense(
            self.num_classes,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="dense",
            dtype=self.dtype_policy,
        )
        self.dense.build(input_shape)

    def call(self, inputs, training=None):
        return self.dense(self.dropout(inputs, training=training))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "dropout_rate": self.dropout_rate,
        }
