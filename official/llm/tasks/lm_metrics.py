"""Token-weighted language-model metrics and answer scores.

`Perplexity` and `TokenAccuracy` sum over the weighted target tokens of
every batch (the trainer sums metric variables over replicas and workers),
so the number is exact for the whole split, not a mean of batch means.
`exact_match` and `token_f1` score generated answers against references
(SQuAD-style: lower case, punctuation and extra spaces removed).

Example:
```python
from official.llm.tasks import lm_metrics

lm_metrics.exact_match("The answer: 42.", "the answer 42")  # -> 1.0
lm_metrics.token_f1("42 apples", "42")  # -> 0.666...
```
"""

from __future__ import annotations

import collections
import re
import string

import keras
import tensorflow as tf


def token_losses(labels: dict, logits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(cross-entropy per target token, its weight), both float32 `[batch, len]`."""
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels["targets"], tf.int32), logits=tf.cast(logits, tf.float32)
    )
    return losses, tf.cast(labels["weights"], tf.float32)


class _WeightedTokenMetric(keras.metrics.Metric):
    """Sums `values_fn(labels, logits)` -> (values, weights) over batches."""

    def __init__(self, name: str, values_fn, **kwargs):
        super().__init__(name=name, **kwargs)
        self._values_fn = values_fn
        self.total = self.add_variable((), "zeros", name="total", dtype="float32")
        self.count = self.add_variable((), "zeros", name="count", dtype="float32")

    def update_state(self, labels, logits, sample_weight=None):
        del sample_weight
        values, weights = self._values_fn(labels, logits)
        self.total.assign_add(tf.reduce_sum(values * weights))
        self.count.assign_add(tf.reduce_sum(weights))

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


def _token_hits(labels, logits):
    """(1.0 where the top-ranked token is the target, the target weights)."""
    predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
    correct = tf.cast(
        tf.equal(predicted, tf.cast(labels["targets"], tf.int32)), tf.float32
    )
    return correct, tf.cast(labels["weights"], tf.float32)


class Perplexity(_WeightedTokenMetric):
    """exp(mean cross-entropy per weighted target token)."""

    def __init__(self, name: str = "perplexity", **kwargs):
        super().__init__(name, token_losses, **kwargs)

    def result(self):
        return tf.exp(self.total / tf.maximum(self.count, 1.0))


class TokenAccuracy(_WeightedTokenMetric):
    """Share of weighted target tokens the model ranks first."""

    def __init__(self, name: str = "token_accuracy", **kwargs):
        super().__init__(name, _token_hits, **kwargs)

    def result(self):
        return self.total / tf.maximum(self.count, 1.0)


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalized texts are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    """F1 of the normalized word multisets (1.0 when both are empty)."""
    predicted = normalize_answer(prediction).split()
    expected = normalize_answer(reference).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = collections.Counter(predicted) & collections.Counter(expected)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(predicted)
    recall = same / len(expected)
    return 2 * precision * recall / (precision + recall)
