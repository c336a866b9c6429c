"""Masked softmax and masked multi-head self-attention without a large constant.

Keras' `Softmax(mask=...)` (and so `MultiHeadAttention` given an
`attention_mask`) replaces masked scores by -1e9 before the softmax. In a
float model that is exact enough, but a full-integer (int8) TFLite file
quantizes each tensor with one scale calibrated on its range: the score
tensor's range then reaches -1e9 and the real scores all fall into one
int8 step, so the attention weights no longer follow the scores (small BERT
classifiers' int8 files agreed with Keras on 43 % to 85 % of the examples).

`masked_softmax` computes the same probabilities from values that all stay
in the range of the real scores:

```
low     = min(scores)                       # over the key axis
kept    = where(mask, scores, low)          # masked -> the row's minimum
shifted = kept - max(kept)                  # <= 0; 0 at the largest kept score
weights = where(mask, exp(shifted), 0)
softmax = weights / sum(weights)            # sum >= 1 when a key is kept
```

The largest kept score contributes exp(0) = 1, so the sum never underflows;
a row with no key kept gets all-zero weights (as Keras' `Softmax` gives).
In float the result equals Keras' masked softmax to rounding (about 1e-7);
the full-integer TFLite converter maps it to builtin int8 REDUCE_MIN,
SELECT_V2, REDUCE_MAX, SUB, EXP, SUM and DIV kernels.

`masked_self_attention` runs a built `keras.layers.MultiHeadAttention`'s
projections (its public `query_dense`, `key_dense`, `value_dense`,
`output_dense`) around `masked_softmax`, so it uses the layer's weights and
matches its `call(x, x, attention_mask=mask)`.

Example:
```python
import numpy as np
import keras
from official.modeling.layers.masked_attention import masked_softmax

scores = np.random.default_rng(0).normal(size=(2, 3, 5)).astype("float32")
mask = np.array([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], bool)[:, None, :]
ours = keras.ops.convert_to_numpy(masked_softmax(scores, mask))
theirs = keras.ops.convert_to_numpy(keras.layers.Softmax()(scores, mask=mask))
np.testing.assert_allclose(ours, theirs, atol=1e-6)
assert np.all(ours[0, :, 3:] == 0) and np.allclose(ours[1, :, 0], 1.0)
```
"""

from __future__ import annotations

import math

import keras

# Projected query/key/value are (batch, length, heads, head_size); the scores
# are (batch, heads, query, key). The equations of Keras' MultiHeadAttention
# for rank-3 inputs, with the operands in its order.
_SCORES_EQUATION = "aecd,abcd->acbe"  # (key, query) -> scores
_COMBINE_EQUATION = "acbe,aecd->abcd"  # (weights, value) -> per-head outputs


def masked_softmax(scores, mask, axis=-1):
    """Softmax of `scores` over `axis`, restricted to where `mask` is true.

    Args:
        scores: float tensor.
        mask: bool (or 0/1) tensor broadcastable to `scores`; true (1) for
            the positions that take part.
        axis: int, the axis normalized over. Defaults to -1.

    Returns:
        Tensor of `scores`' shape and dtype: the softmax of the kept scores,
        0 at masked positions; all zeros along a slice with nothing kept.
    """
    scores = keras.ops.convert_to_tensor(scores)
    mask = keras.ops.cast(mask, "bool")
    low = keras.ops.min(scores, axis=axis, keepdims=True)
    kept = keras.ops.where(mask, scores, low)
    shifted = kept - keras.ops.max(kept, axis=axis, keepdims=True)
    zero = keras.ops.zeros((), dtype=scores.dtype)
    weights = keras.ops.where(mask, keras.ops.exp(shifted), zero)
    total = keras.ops.sum(weights, axis=axis, keepdims=True)
    one = keras.ops.ones((), dtype=scores.dtype)
    return weights / keras.ops.where(total > zero, total, one)


def masked_self_attention(attention, inputs, mask, dropout=None, training=None):
    """`attention(inputs, inputs, attention_mask=mask)` with `masked_softmax`.

    Args:
        attention: a built `keras.layers.MultiHeadAttention` over the
            sequence axis (default `attention_axes`) of rank-3 inputs.
        inputs: float tensor `(batch, length, channels)`; query, key and
            value.
        mask: bool tensor `(batch, 1, length)` (keys only) or `(batch,
            length, length)`; true where a query may attend to a key.
        dropout: a `keras.layers.Dropout` applied to the attention weights,
            or None for none.
        training: bool, whether `dropout` is active.

    Returns:
        Tensor `(batch, length, channels)`: the layer's output.

    Raises:
        ValueError: the inputs are not rank 3, or the layer attends over
            other axes.
    """
    if len(inputs.shape) != 3:
        raise ValueError(
            f"masked_self_attention needs rank-3 inputs (batch, length, channels). "
            f"Received: inputs.shape={tuple(inputs.shape)}."
        )
    axes = attention.attention_axes
    if axes is not None and tuple(axes) != (1,):
        raise ValueError(
            f"masked_self_attention attends over the sequence axis only; the "
            f"layer {attention.name!r} has attention_axes={axes!r}."
        )
    query = attention.query_dense(inputs)
    key = attention.key_dense(inputs)
    value = attention.value_dense(inputs)
    scale = keras.ops.cast(1.0 / math.sqrt(float(attention.key_dim)), query.dtype)
    scores = keras.ops.einsum(_SCORES_EQUATION, key, query * scale)
    mask = keras.ops.expand_dims(keras.ops.cast(mask, "bool"), axis=1)  # heads
    weights = masked_softmax(scores, mask)
    if dropout is not None:
        weights = dropout(weights, training=training)
    outputs = keras.ops.einsum(_COMBINE_EQUATION, weights, value)
    return attention.output_dense(outputs)
