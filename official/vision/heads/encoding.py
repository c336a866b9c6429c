"""The Encoding layer of EncNet: soft-assigned residuals to learned codewords."""

from __future__ import annotations

import math

import keras


@keras.saving.register_keras_serializable(package="official")
class Encoding(keras.layers.Layer):
    """Context encoding (Zhang et al. 2018, EncNet; Zhang et al. 2017, Deep TEN).

    With `K` codewords `c_k` and smoothing factors `s_k`, every feature
    vector `x_i` of the map is softly assigned to the codewords,
    `a_ik = softmax_k(-s_k * ||x_i - c_k||^2)`, and each codeword aggregates
    the residuals assigned to it: `e_k = sum_i a_ik (x_i - c_k)`. The sums are
    computed as `A^T X - (sum_i a_ik) c_k`, so no `(pixels, K, channels)`
    tensor is formed. Give it `dtype="float32"` under mixed precision:
    squared distances overflow float16.

    Args:
        num_codewords: int, `K`. Defaults to 32.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: float tensor `(batch, height, width, channels)`.

    Returns:
        float32 tensor `(batch, num_codewords, channels)`.

    Example:
    ```python
    import numpy as np
    from official.vision.heads.encoding import Encoding

    encoded = Encoding(num_codewords=4)(np.ones((2, 3, 3, 8), "float32"))
    assert tuple(encoded.shape) == (2, 4, 8)
    ```
    """

    def __init__(self, num_codewords=32, **kwargs):
        super().__init__(**kwargs)
        self.num_codewords = num_codewords

    def build(self, input_shape):
        channels = input_shape[-1]
        bound = 1.0 / math.sqrt(self.num_codewords * channels)
        self.codewords = self.add_weight(
            shape=(self.num_codewords, channels),
            initializer=keras.initializers.RandomUniform(-bound, bound),
            dtype="float32",
            name="codewords",
        )
        # Negative smoothing factors: the assignment is softmax(scale * d^2).
        self.scale = self.add_weight(
            shape=(self.num_codewords,),
            initializer=keras.initializers.RandomUniform(-1.0, 0.0),
            dtype="float32",
            name="scale",
        )

    def call(self, inputs):
        x = keras.ops.cast(inputs, "float32")
        batch_shape = keras.ops.shape(x)
        x = keras.ops.reshape(x, (batch_shape[0], -1, x.shape[-1]))  # [B, N, D]
        c = self.codewords
        distances = (
            keras.ops.sum(x * x, axis=-1, keepdims=True)
            - 2.0 * keras.ops.einsum("bnd,kd->bnk", x, c)
            + keras.ops.sum(c * c, axis=-1)[None, None, :]
        )
        assign = keras.ops.softmax(distances * self.scale, axis=-1)  # [B, N, K]
        weighted = keras.ops.einsum("bnk,bnd->bkd", assign, x)
        mass = keras.ops.sum(assign, axis=1)[:, :, None]  # [B, K, 1]
        return weighted - mass * c[None, :, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_codewords, input_shape[-1])

    def compute_output_spec(self, inputs):
        shape = (inputs.shape[0], self.num_codewords, inputs.shape[-1])
        return keras.KerasTensor(shape, dtype="float32")

    def get_config(self):
        return {**super().get_config(), "num_codewords": self.num_codewords}
