"""Rows of fixed length from examples of any length: packing or padding.

An example is `(ids, weights)` of the whole sequence. It becomes inputs
`ids[:-1]`, targets `ids[1:]` and weights `weights[1:]` (the weight of
predicting each target), cut to `length` tokens.

- `pack`: examples are placed one after another in a row while they fit
  (greedy, in order); an example that does not fit starts the next row and
  is never split. Each row carries `segment_ids` (1, 2, ... per example, 0
  for padding) and `positions` (restarting at 0 in each example); the model
  masks attention to the same segment.
- `pad`: one example per row, padded, with `padding_mask`.

Example:
```python
import tensorflow as tf
from official.llm.data import packing

examples = tf.data.Dataset.from_generator(
    lambda: iter([([1, 2, 3], [0., 1., 1.]), ([4, 5], [0., 1.])]),
    output_signature=(tf.TensorSpec([None], tf.int32),
                      tf.TensorSpec([None], tf.float32)))
row, labels = next(iter(packing.pack(examples, length=4)))
row["segment_ids"].numpy()  # -> [1, 1, 2, 0]
```
"""

from __future__ import annotations

import tensorflow as tf


def shift(ids: tf.Tensor, weights: tf.Tensor, length: int):
    """(inputs, targets, weights) of one example, at most `length` long."""
    ids = ids[: length + 1]
    weights = weights[: length + 1]
    return ids[:-1], ids[1:], tf.cast(weights[1:], tf.float32)


def trains_something(ids: tf.Tensor, weights: tf.Tensor, length: int) -> tf.Tensor:
    """Whether an example cut to `length` inputs keeps a weighted target
    (others are dropped: an answer cut off entirely teaches nothing)."""
    _, _, kept = shift(ids, weights, length)
    return tf.reduce_sum(kept) > 0


def _place(values, offset, length):
    """`values` at `[offset, offset + len)` of a zero row of `length`."""
    size = tf.size(values)
    return tf.pad(values, [[offset, length - offset - size]])


def pack(examples: tf.data.Dataset, length: int, pad_id: int = 0) -> tf.data.Dataset:
    """Packs `(ids, weights)` examples into rows of `length` tokens.

    Yields `({"token_ids", "segment_ids", "positions"}, {"targets",
    "weights"})`, each `[length]`; the last partial row is flushed at the end
    of the input.
    """
    flush = tf.data.Dataset.from_tensors(
        (
            tf.zeros([0], tf.int32),
            tf.zeros([0], tf.int32),
            tf.zeros([0], tf.float32),
            True,
        )
    )
    items = examples.map(lambda i, w: (*shift(i, w, length), False)).concatenate(
        flush
    )
    empty = (
        tf.zeros([length], tf.int32),
        tf.zeros([length], tf.int32),
        tf.zeros([length], tf.float32),
        tf.zeros([length], tf.int32),
        tf.zeros([length], tf.int32),
        tf.constant(0, tf.int32),
        tf.constant(0, tf.int32),
    )

    def add(state, item):
        x, y, w, is_flush = item
        size = tf.size(x)
        used, segments = state[5], state[6]
        fits = tf.logical_and(tf.logical_not(is_flush), used + size <= length)

        def append(offset, count, base):
            return (
                base[0] + _place(x, offset, length),
                base[1] + _place(y, offset, length),
                base[2] + _place(w, offset, length),
                base[3] + _place(tf.fill([size], count + 1), offset, length),
                base[4] + _place(tf.range(size), offset, length),
                offset + size,
                count + 1,
            )

        new_state = tf.cond(
            fits,
            lambda: append(used, segments, state),
            lambda: tf.cond(
                is_flush, lambda: empty, lambda: append(0, 0, empty)
            ),
        )
        emit = tf.logical_and(tf.logical_not(fits), used > 0)
        return new_state, (emit, state[:5])

    rows = items.scan(empty, add).filter(lambda emit, row: emit)

    def to_features(emit, row):
        x, y, w, segment_ids, positions = row
        x = tf.where(segment_ids > 0, x, pad_id)
        features = {"token_ids": x, "segment_ids": segment_ids, "positions": positions}
        return features, {"targets": y, "weights": w}

    return rows.map(to_features)


def pad(examples: tf.data.Dataset, length: int, pad_id: int = 0) -> tf.data.Dataset:
    """One example per row of `length`: `({"token_ids", "padding_mask"},
    {"targets", "weights"})`."""

    def to_row(ids, weights):
        x, y, w = shift(ids, weights, length)
        extra = [[0, length - tf.size(x)]]
        features = {
            "token_ids": tf.pad(x, extra, constant_values=pad_id),
            "padding_mask": tf.pad(tf.ones_like(x), extra),
        }
        labels = {
            "targets": tf.pad(y, extra, constant_values=pad_id),
            "weights": tf.pad(w, extra),
        }
        return features, labels

    return examples.map(to_row)
