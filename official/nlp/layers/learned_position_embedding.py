"""Learned position embeddings for sequences up to a maximum length."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="official")
class LearnedPositionEmbedding(keras.layers.Layer):
    """The embeddings of positions `0 .. length - 1` of a token sequence.

    Holds a `(max_length, channels)` table and returns its first rows, as
    many as the input has positions, broadcast over the batch. Unlike
    `official.modeling.layers.PositionEmbedding` (ViT's, one entry per patch
    of a fixed grid) it accepts any sequence length up to `max_length`, as
    BERT's position embeddings do.

    Args:
        max_length: int, number of positions in the table.
        initializer: str or `keras.initializers.Initializer`. Defaults to
            `TruncatedNormal(stddev=0.02)` (BERT's).
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: float tensor `(batch, length, channels)` with `length <=
            max_length` (only its shape is read).

    Returns:
        Tensor `(batch, length, channels)` of position embeddings.

    Example:
    ```python
    import numpy as np
    from official.nlp.layers import LearnedPositionEmbedding

    layer = LearnedPositionEmbedding(max_length=16)
    y = layer(np.zeros((2, 5, 8), "float32"))
    assert tuple(y.shape) == (2, 5, 8)
    assert tuple(layer.embeddings.shape) == (16, 8)
    ```
    """

    def __init__(self, max_length, initializer=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(max_length, bool) or not isinstance(max_length, int):
            raise ValueError(
                f"`max_length` must be a positive int. Received: max_length={max_length!r}."
            )
        if max_length < 1:
            raise ValueError(
                f"`max_length` must be a positive int. Received: max_length={max_length!r}."
            )
        self.max_length = max_length
        self.initializer = keras.initializers.get(
            initializer
            if initializer is not None
            else keras.initializers.TruncatedNormal(stddev=0.02)
        )

    def build(self, input_shape):
        length = input_shape[-2]
        if length is not None and length > self.max_length:
            raise ValueError(
                f"LearnedPositionEmbedding: the sequence length {length} is longer "
                f"than max_length={self.max_length}. Received: "
                f"input_shape={tuple(input_shape)}."
            )
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.max_length, input_shape[-1]),
            initializer=self.initializer,
        )

    def call(self, inputs):
        length = inputs.shape[-2]
        if length is not None and length > self.max_length:
            raise ValueError(
                f"LearnedPositionEmbedding: the sequence length {length} is longer "
                f"than max_length={self.max_length} (the encoder's "
                f"max_sequence_length)."
            )
        shape = keras.ops.shape(inputs)
        table = keras.ops.cast(self.embeddings, inputs.dtype)
        positions = keras.ops.slice(table, (0, 0), (shape[-2], shape[-1]))
        return keras.ops.broadcast_to(positions, shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "max_length": self.max_length,
            "initializer": keras.initializers.serialize(self.initializer),
        }
