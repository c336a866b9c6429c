"""BERT's masked-LM head: predicts the WordPieces at masked positions."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="official")
class MaskedLMHead(keras.layers.Layer):
    """Transform, layer norm and vocabulary logits at the masked positions.

    Gathers the encoder's outputs at `masked_positions`, applies a dense
    layer of the hidden width with GELU and a layer normalization, then
    multiplies by the transposed word-embedding table (tied weights, as in
    BERT) and adds a per-token bias.

    Args:
        vocab_size: int, number of WordPieces.
        approximate_gelu: bool, tanh GELU (BERT's). Defaults to True.
        layer_norm_epsilon: float. Defaults to 1e-12.
        **kwargs: base layer arguments (`name`, `dtype`).

    Call arguments:
        sequence_output: float `(batch, length, hidden)`.
        masked_positions: int `(batch, num_predictions)`.
        embedding_table: float `(vocab_size, hidden)`, the encoder's word
            embeddings.

    Returns:
        float `(batch, num_predictions, vocab_size)` logits.

    Example:
    ```python
    import numpy as np
    from official.nlp.heads import MaskedLMHead

    head = MaskedLMHead(vocab_size=10)
    logits = head(np.ones((2, 6, 4), "float32"), np.array([[1, 2], [0, 5]]),
                  np.ones((10, 4), "float32"))
    assert tuple(logits.shape) == (2, 2, 10)
    ```
    """

    def __init__(
        self, vocab_size, approximate_gelu=True, layer_norm_epsilon=1e-12, **kwargs
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.approximate_gelu = approximate_gelu
        self.layer_norm_epsilon = layer_norm_epsilon

    def build(
        self,
        sequence_output_shape,
        masked_positions_shape=None,
        embedding_table_shape=None,
    ):
        hidden = sequence_output_shape[-1]
        self.transform = keras.layers.Dense(
            hidden,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="transform",
            dtype=self.dtype_policy,
        )
        self.transform.build((None, None, hidden))
        self.norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="norm", dtype=self.dtype_policy
        )
        self.norm.build((None, None, hidden))
        self.output_bias = self.add_weight(
            name="output_bias", shape=(self.vocab_size,), initializer="zeros"
        )

    def call(self, sequence_output, masked_positions, embedding_table):
        positions = keras.ops.cast(masked_positions, "int32")
        x = keras.ops.take_along_axis(
            sequence_output, keras.ops.expand_dims(positions, -1), axis=1
        )
        x = keras.activations.gelu(self.transform(x), approximate=self.approximate_gelu)
        x = self.norm(x)
        table = keras.ops.cast(embedding_table, x.dtype)
        logits = keras.ops.matmul(x, keras.ops.transpose(table))
        return logits + keras.ops.cast(self.output_bias, x.dtype)

    def compute_output_shape(
        self, sequence_output_shape, masked_positions_shape, embedding_table_shape
    ):
        return (sequence_output_shape[0], masked_positions_shape[1], self.vocab_size)

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "approximate_gelu": self.approximate_gelu,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }
