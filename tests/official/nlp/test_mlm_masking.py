"""MLM masking statistics with a fixed seed, and its edge cases."""

import numpy as np
import tensorflow as tf

from official.nlp.dataloaders.mlm_masking import mask_batch

SPECIAL = [0, 1, 2, 3, 4]


def _batch(rows=512, length=128, vocab=1000, seed=0):
    ids = (
        np.random.default_rng(seed)
        .integers(5, vocab, size=(rows, length))
        .astype("int32")
    )
    ids[:, 0], ids[:, -1] = 2, 3
    return ids


def test_masking_statistics_with_a_fixed_seed():
    ids = _batch()
    out = mask_batch(
        ids, np.ones_like(ids), tf.constant([3, 4], tf.int64), 1000, SPECIAL, 4, 20
    )
    weights = out["masked_lm_weights"].numpy()
    # round(0.15 * 126) = 19 predictions per sequence.
    assert (weights.sum(1) == 19).all()
    positions = out["masked_lm_positions"].numpy()
    used = weights > 0
    assert positions[used].min() >= 1 and positions[used].max() <= 126  # never CLS/SEP
    original = out["masked_lm_ids"].numpy()
    np.testing.assert_array_equal(
        np.take_along_axis(ids, positions, 1)[used], original[used]
    )
    corrupted = np.take_along_axis(out["input_word_ids"].numpy(), positions, 1)[used]
    n = used.sum()
    masked = (corrupted == 4).mean()
    kept = (corrupted == original[used]).mean()
    random = 1 - masked - kept
    # 9728 predictions: 80/10/10 within 3 standard deviations.
    assert abs(masked - 0.8) < 3 * np.sqrt(0.16 / n)
    assert abs(kept - 0.1) < 3 * np.sqrt(0.09 / n) + 0.001  # random may hit itself
    assert abs(random - 0.1) < 3 * np.sqrt(0.09 / n)
    # Unchosen positions are untouched.
    changed = out["input_word_ids"].numpy() != ids
    assert changed.sum() <= n
    # The same seed gives the same masking; another seed another one.
    again = mask_batch(
        ids, np.ones_like(ids), tf.constant([3, 4], tf.int64), 1000, SPECIAL, 4, 20
    )
    other = mask_batch(
        ids, np.ones_like(ids), tf.constant([5, 6], tf.int64), 1000, SPECIAL, 4, 20
    )
    np.testing.assert_array_equal(again["input_word_ids"], out["input_word_ids"])
    assert not np.array_equal(other["masked_lm_positions"], out["masked_lm_positions"])


def test_short_and_padded_sequences():
    ids = np.array([[2, 9, 3, 0, 0, 0], [2, 3, 0, 0, 0, 0]], "int32")
    mask = (ids > 0).astype("int32")
    out = mask_batch(ids, mask, tf.constant([1, 1], tf.int64), 20, SPECIAL, 4, 3)
    # One maskable token: at least one prediction; none in an empty sequence.
    assert out["masked_lm_weights"].numpy().tolist() == [[1, 0, 0], [0, 0, 0]]
    assert out["masked_lm_positions"].numpy()[0, 0] == 1
    assert out["masked_lm_ids"].numpy().tolist() == [[9, 0, 0], [0, 0, 0]]
    # Wider than the sequence: positions padded with unused slots.
    out = mask_batch(ids, mask, tf.constant([1, 1], tf.int64), 20, SPECIAL, 4, 10)
    assert out["masked_lm_positions"].shape == (2, 10)
