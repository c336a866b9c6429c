"""The transformer encoder block of ViT (pre-norm) and BERT (post-norm)."""

from __future__ import annotations

import keras

from official.modeling.layers.masked_attention import masked_self_attention

# The Keras versions `_attention_weights_dropout`'s private attribute was
# checked with (setup.py pins them).
_CHECKED_WITH = "keras>=3.15,<3.16"


def _attention_weights_dropout(attention):
    """`attention`'s own dropout on its attention weights (a Keras internal).

    The masked path applies it where `MultiHeadAttention` does, so training
    draws the same dropout masks, and no new seed generator (which would
    shift the seeds of the layers built after it) is made.
    """
    dropout = getattr(attention, "_dropout_layer", None)
    if not isinstance(dropout, keras.layers.Dropout):
        raise RuntimeError(
            f"keras.layers.MultiHeadAttention has no `_dropout_layer` Dropout, the "
            f"Keras internal TransformerEncoderBlock applies to the attention "
            f"weights when given a mask (checked with {_CHECKED_WITH}; installed: "
            f"keras {keras.__version__})."
        )
    return dropout


@keras.saving.register_keras_serializable(package="official")
class TransformerEncoderBlock(keras.layers.Layer):
    """Pre-norm transformer encoder block (ViT's `Encoder1DBlock`).

    ```
    x = x + drop_path(dropout(attention(layer_norm(x))))
    x = x + drop_path(dropout(dense(dropout(gelu(dense(layer_norm(x)))))))
    ```
    Multi-head self-attention has `num_heads` heads of `channels / num_heads`
    dimensions each and dropout `attention_dropout_rate` on the attention
    weights. `drop_path` is stochastic depth: in training, each example's
    residual branch is dropped with probability `stochastic_depth_rate` and
    kept ones are scaled by `1 / (1 - stochastic_depth_rate)`.

    With `norm_first=False` the block is post-norm (BERT's layer; the two
    layer normalizations follow the residual additions and the MLP has no
    dropout after GELU):
    ```
    x = layer_norm(x + dropout(attention(x)))
    x = layer_norm(x + drop_path(dropout(dense(gelu(dense(x))))))
    ```

    GELU: `approximate_gelu=False` (exact, erf-based) is the published ViT's
    choice and the default. Exact GELU breaks tf2onnx (it writes an invalid
    file; see DESIGN.md), so models meant for ONNX export set
    `approximate_gelu=True` (the tanh approximation); the two differ by less
    than 1e-3 at every input, and the weights are interchangeable.

    Args:
        num_heads: int, attention heads; must divide the input's channels.
        mlp_dim: int, hidden units of the MLP.
        dropout_rate: float in [0, 1), dropout after the attention output, in
            the MLP after GELU, and after the MLP output. Defaults to 0.0.
        attention_dropout_rate: float in [0, 1), dropout on the attention
            weights. Defaults to 0.0.
        stochastic_depth_rate: float in [0, 1), probability of dropping each
            residual branch per example in training. Defaults to 0.0.
        approximate_gelu: bool, tanh approximation of GELU instead of the
            exact erf form. Defaults to False.
        layer_norm_epsilon: float, epsilon of both layer normalizations.
            Defaults to 1e-6.
        kernel_initializer: str or `keras.initializers.Initializer`, for the
            attention and MLP kernels. Defaults to "glorot_uniform".
        norm_first: bool, pre-norm (ViT) when True, post-norm (BERT) when
            False. Defaults to True.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: float tensor of shape `(batch, sequence_length, channels)`.
        attention_mask: optional tensor of shape `(batch, sequence_length)`
            (1 for the positions attended to, 0 for padding) or `(batch,
            sequence_length, sequence_length)`; None attends everywhere.
            With a mask the block runs `masked_self_attention`
            (`official/modeling/layers/masked_attention.py`) on the
            attention layer's weights: Keras' result to rounding, without
            the -1e9 fill that ruins full-integer int8 TFLite files; without
            one, `keras.layers.MultiHeadAttention` runs as is (ViT).
        training: bool, whether dropout and stochastic depth are active.

    Returns:
        Tensor of the input's shape.

    Example:
    ```python
    import numpy as np
    from official.modeling.layers.transformer_encoder_block import (
        TransformerEncoderBlock)

    block = TransformerEncoderBlock(num_heads=2, mlp_dim=16)
    y = block(np.ones((2, 5, 8), "float32"))
    assert tuple(y.shape) == (2, 5, 8)
    ```
    """

    def __init__(
        self,
        num_heads,
        mlp_dim,
        dropout_rate=0.0,
        attention_dropout_rate=0.0,
        stochastic_depth_rate=0.0,
        approximate_gelu=False,
        layer_norm_epsilon=1e-6,
        kernel_initializer="glorot_uniform",
        norm_first=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, rate in (
            ("dropout_rate", dropout_rate),
            ("attention_dropout_rate", attention_dropout_rate),
            ("stochastic_depth_rate", stochastic_depth_rate),
        ):
            if not 0.0 <= rate < 1.0:
                raise ValueError(
                    f"`{name}` must be in [0, 1). Received: {name}={rate!r}."
                )
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.dropout_rate = dropout_rate
        self.attention_dropout_rate = attention_dropout_rate
        self.stochastic_depth_rate = stochastic_depth_rate
        self.approximate_gelu = approximate_gelu
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.norm_first = norm_first

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels % self.num_heads:
            raise ValueError(
                f"TransformerEncoderBlock: num_heads ({self.num_heads}) must divide "
                f"the input channels ({channels}). Received: input_shape="
                f"{tuple(input_shape)}, num_heads={self.num_heads}."
            )
        common = dict(dtype=self.dtype_policy)
        init = self.kernel_initializer
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="attention_norm", **common
        )
        self.attention_norm.build(input_shape)
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads,
            key_dim=channels // self.num_heads,
            dropout=self.attention_dropout_rate,
            kernel_initializer=init,
            name="attention",
            **common,
        )
        self.attention.build(input_shape, input_shape)
        _attention_weights_dropout(self.attention)  # Fails here if Keras lacks it.
        self.mlp_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="mlp_norm", **common
        )
        self.mlp_norm.build(input_shape)
        self.mlp_dense1 = keras.layers.Dense(
            self.mlp_dim, kernel_initializer=init, name="mlp_dense1", **common
        )
        self.mlp_dense1.build(input_shape)
        self.mlp_dense2 = keras.layers.Dense(
            channels, kernel_initializer=init, name="mlp_dense2", **common
        )
        self.mlp_dense2.build(tuple(input_shape[:-1]) + (self.mlp_dim,))
        self.dropout = keras.layers.Dropout(self.dropout_rate, **common)
        # Stochastic depth: one keep/drop decision per example, i.e. dropout
        # broadcast over the sequence and channel axes (Dropout fills the
        # None with the batch size and rescales the kept examples).
        self.drop_path = keras.layers.Dropout(
            self.stochastic_depth_rate, noise_shape=(None, 1, 1), **common
        )

    def call(self, inputs, attention_mask=None, training=None):
        mask = None
        if attention_mask is not None:
            mask = keras.ops.cast(attention_mask, "bool")
            if len(mask.shape) == 2:  # Keys only: broadcast over the queries.
                mask = keras.ops.expand_dims(mask, axis=1)
        if not self.norm_first:
            return self._call_post_norm(inputs, mask, training)
        x = self.attention_norm(inputs)
        x = self._attend(x, mask, training)
        x = self.dropout(x, training=training)
        x = inputs + self.drop_path(x, training=training)

        y = self.mlp_norm(x)
        y = self.mlp_dense1(y)
        y = keras.activations.gelu(y, approximate=self.approximate_gelu)
        y = self.dropout(y, training=training)
        y = self.mlp_dense2(y)
        y = self.dropout(y, training=training)
        return x + self.drop_path(y, training=training)

    def _attend(self, x, mask, training):
        if mask is None:
            return self.attention(x, x, training=training)
        return masked_self_attention(
            self.attention,
            x,
            mask,
            _attention_weights_dropout(self.attention)
            if self.attention_dropout_rate
            else None,
            training,
        )

    def _call_post_norm(self, inputs, mask, training):
        x = self._attend(inputs, mask, training)
        x = self.dropout(x, training=training)
        x = self.attention_norm(inputs + self.drop_path(x, training=training))

        y = self.mlp_dense1(x)
        y = keras.activations.gelu(y, approximate=self.approximate_gelu)
        y = self.mlp_dense2(y)
        y = self.dropout(y, training=training)
        return self.mlp_norm(x + self.drop_path(y, training=training))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "dropout_rate": self.dropout_rate,
            "attention_dropout_rate": self.attention_dropout_rate,
            "stochastic_depth_rate": self.stochastic_depth_rate,
            "approximate_gelu": self.approximate_gelu,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "norm_first": self.norm_first,
        }
