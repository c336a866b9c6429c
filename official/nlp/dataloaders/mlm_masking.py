"""BERT's masked-LM masking of packed batches, with stateless random ops.

Example:
```python
import tensorflow as tf
from official.nlp.dataloaders.mlm_masking import mask_batch

ids = tf.constant([[2, 10, 11, 12, 13, 3, 0, 0]])
out = mask_batch(ids, tf.constant([[1, 1, 1, 1, 1, 1, 0, 0]]), seed=tf.constant([1, 2], tf.int64),
                 vocab_size=20, special_ids=[0, 1, 2, 3, 4], mask_id=4,
                 max_predictions=3)
assert out["masked_lm_positions"].shape == (1, 3)
assert float(tf.reduce_sum(out["masked_lm_weights"])) == 1.0  # 15 % of 4, at least 1
```
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf


def mask_batch(
    word_ids: tf.Tensor,
    input_mask: tf.Tensor,
    seed: tf.Tensor,
    vocab_size: int,
    special_ids: Sequence[int],
    mask_id: int,
    max_predictions: int,
    mask_rate: float = 0.15,
    mask_token_rate: float = 0.8,
    random_token_rate: float = 0.1,
) -> dict[str, tf.Tensor]:
    """Chooses the WordPieces to predict and corrupts them (80/10/10).

    In each sequence, `round(mask_rate x n)` (at least 1, at most
    `max_predictions`) of its `n` maskable tokens (inside `input_mask`, not a
    special id) are chosen uniformly; each chosen token becomes `mask_id`
    with probability `mask_token_rate`, a uniformly random id of the
    vocabulary with `random_token_rate`, and stays itself otherwise.

    Args:
        word_ids: int `(batch, length)` packed ids.
        input_mask: int `(batch, length)`, 1 for tokens.
        seed: int64 `[2]` stateless seed.
        vocab_size: int, for the random replacements.
        special_ids: ids never chosen ([CLS], [SEP], [PAD], ...).
        mask_id: id of `[MASK]`.
        max_predictions: int, predictions per sequence (output width).
        mask_rate, mask_token_rate, random_token_rate: floats (BERT: 0.15,
            0.8, 0.1).

    Returns:
        dict: `input_word_ids` (corrupted, int32 `(batch, length)`),
        `masked_lm_positions` and `masked_lm_ids` (int32 `(batch,
        max_predictions)`, the chosen positions in increasing order and their
        original ids; 0 where unused) and `masked_lm_weights` (float32, 1 for
        the used slots).
    """
    word_ids = tf.cast(word_ids, tf.int32)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    shape = tf.shape(word_ids)
    maskable = tf.cast(input_mask, tf.bool)
    for special in special_ids:
        maskable &= tf.not_equal(word_ids, special)
    count = tf.reduce_sum(tf.cast(maskable, tf.float32), axis=1)
    num = tf.cast(tf.round(count * mask_rate), tf.int32)
    num = tf.minimum(tf.maximum(num, 1), max_predictions)
    num = tf.where(count > 0, num, 0)
    # Uniform choice: the `num` maskable positions with the smallest noise.
    noise = tf.random.stateless_uniform(shape, seeds[0])
    noise = tf.where(maskable, noise, 2.0)
    width = tf.minimum(max_predictions, shape[1])
    _, order = tf.math.top_k(-noise, k=width)
    slots = tf.range(width)[tf.newaxis, :] < num[:, tf.newaxis]
    # Chosen positions in increasing order, unused slots last (as 0).
    big = shape[1] + 1
    positions = tf.sort(tf.where(slots, order, big), axis=1)
    used = positions < big
    positions = tf.where(used, positions, 0)
    pad = max_predictions - width
    positions = tf.pad(positions, [[0, 0], [0, pad]])
    used = tf.pad(used, [[0, 0], [0, pad]])
    original = tf.gather(word_ids, positions, batch_dims=1)
    original = tf.where(used, original, 0)

    roll = tf.random.stateless_uniform(tf.shape(positions), seeds[1])
    random_ids = tf.random.stateless_uniform(
        tf.shape(positions), seeds[2], minval=0, maxval=vocab_size, dtype=tf.int32
    )
    replacement = tf.where(
        roll < mask_token_rate,
        tf.fill(tf.shape(positions), tf.constant(mask_id, tf.int32)),
        tf.where(roll < mask_token_rate + random_token_rate, random_ids, original),
    )
    batch_index = tf.broadcast_to(
        tf.range(shape[0])[:, tf.newaxis], tf.shape(positions)
    )
    indices = tf.stack([batch_index, positions], axis=-1)
    corrupted = tf.tensor_scatter_nd_update(
        word_ids, tf.boolean_mask(indices, used), tf.boolean_mask(replacement, used)
    )
    return {
        "input_word_ids": corrupted,
        "masked_lm_positions": positions,
        "masked_lm_ids": original,
        "masked_lm_weights": tf.cast(used, tf.float32),
    }
