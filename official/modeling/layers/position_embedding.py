"""A learned position embedding added to a sequence of tokens."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="official")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned embedding of shape `(sequence_length, channels)` to tokens.

    The embedding's length is fixed when the layer is built: it is
    `sequence_length` when given, else the input's sequence length. Inputs
    called later must have that same length (no interpolation or slicing).

    Args:
        sequence_length: int or None, number of positions. None takes it from
            the input shape at build time, which must then be static.
            Defaults to None.
        initializer: str or `keras.initializers.Initializer`, for the
            embedding. Defaults to `TruncatedNormal(stddev=0.02)` (as in timm
            and DeiT).
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: float tensor of shape `(batch, sequence_length, channels)`.

    Returns:
        Tensor of the input's shape: `inputs + embedding`.

    Example:
    ```python
    import numpy as np
    from official.modeling.layers.position_embedding import PositionEmbedding

    layer = PositionEmbedding()
    y = layer(np.zeros((2, 5, 8), "float32"))
    assert tuple(y.shape) == (2, 5, 8)
    assert tuple(layer.embedding.shape) == (5, 8)
    ```
    """

    def __init__(self, sequence_length=None, initializer=None, **kwargs):
        super().__init__(**kwargs)
        if sequence_length is not None and (
            not isinstance(sequence_length, int)
            or isinstance(sequence_length, bool)
            or sequence_length < 1
        ):
            raise ValueError(
                "`sequence_length` must be a positive int or None. Received: "
                f"sequence_length={sequence_length!r}."
            )
        self.sequence_length = sequence_length
        self.initializer = keras.initializers.get(
            initializer
            if initializer is not None
            else keras.initializers.TruncatedNormal(stddev=0.02)
        )

    def build(self, input_shape):
        length, channels = input_shape[-2], input_shape[-1]
        if self.sequence_length is None and length is None:
            raise ValueError(
                "PositionEmbedding needs a static sequence length: set "
                "`sequence_length` or build it on an input of known length. "
                f"Received: input_shape={tuple(input_shape)}."
            )
        if self.sequence_length is not None and length not in (
            None,
            self.sequence_length,
        ):
            raise ValueError(
                f"PositionEmbedding: the input's sequence length ({length}) differs "
                f"from sequence_length ({self.sequence_length}). Received: "
                f"input_shape={tuple(input_shape)}."
            )
        self.embedding = self.add_weight(
            name="embedding",
            shape=(self.sequence_length or length, channels),
            initializer=self.initializer,
        )

    def call(self, inputs):
        return inputs + keras.ops.cast(self.embedding, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "sequence_length": self.sequence_length,
            "initializer": keras.initializers.serialize(self.initializer),
        }
