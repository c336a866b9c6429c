"""Token generation with a keras-hub causal LM's key/value cache, in TensorFlow.

`generate_ids` is one graph (a `tf.while_loop`), so it runs in process and
inside an exported SavedModel alike, with per-prompt settings: maximum new
tokens, temperature (0 = greedy), top-k (0 = whole vocabulary) and seed.
It follows keras-hub's own `generate_step`: the prompts, right-padded into
one buffer, fill the cache (`_build_cache`, keras-hub's cache builder of
every causal LM); then each step feeds one token at `index - 1`
(`call_with_cache`) and writes the next token at `index` for the rows whose
prompt has ended. A row stops at a stop token or after its `max_new_tokens`;
the loop ends when every row has stopped. Greedy decoding therefore gives
keras-hub's `generate` with the `greedy` sampler, token for token.

Sampling draws with the Gumbel-max trick from noise seeded by
`(seed, index)` for each row, so a row's tokens depend on its own seed only,
not on the batch it shares.

Example:
```python
import keras_hub
import tensorflow as tf
from official.llm import generation

backbone = keras_hub.models.GPT2Backbone(
    vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8,
    intermediate_dim=16, max_sequence_length=32)
lm = keras_hub.models.GPT2CausalLM(backbone)
tokens, lengths = generation.generate_ids(
    lm, tf.ragged.constant([[1, 2, 3], [4]]), max_new_tokens=tf.constant([4, 2]),
    temperature=tf.zeros([2]), top_k=tf.zeros([2], tf.int32),
    seed=tf.zeros([2], tf.int32), stop_ids=[0], pad_id=0)
lengths.numpy().tolist()  # at most [4, 2]
```
"""

from __future__ import annotations

import tensorflow as tf


def max_total_length(lm) -> int | None:
    """The longest sequence the backbone can position (None: no limit)."""
    return getattr(lm.backbone, "max_sequence_length", None)


def _sample(logits, temperature, top_k, seed, index):
    """Next tokens `[batch]` from `[batch, vocab]` float32 logits."""
    vocab = tf.shape(logits)[1]
    greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
    k = tf.where(top_k > 0, tf.minimum(top_k, vocab), vocab)
    top_values, _ = tf.math.top_k(logits, k=tf.reduce_max(k))
    threshold = tf.gather(top_values, k - 1, batch_dims=1)
    scaled = logits / tf.maximum(temperature, 1e-6)[:, None]
    scaled = tf.where(logits >= threshold[:, None], scaled, -1e9)

    def row_noise(row_seed):
        seed_pair = tf.stack([tf.cast(row_seed, tf.int64), tf.cast(index, tf.int64)])
        uniform = tf.random.stateless_uniform(
            [vocab], seed=seed_pair, minval=1e-7, maxval=1.0
        )
        return -tf.math.log(-tf.math.log(uniform))

    noise = tf.map_fn(row_noise, seed, fn_output_signature=tf.float32)
    sampled = tf.argmax(scaled + noise, axis=-1, output_type=tf.int32)
    use_greedy = tf.logical_or(temperature <= 0.0, k == 1)
    return tf.where(use_greedy, greedy, sampled)


def generate_ids(
    lm,
    prompt_ids: tf.RaggedTensor,
    max_new_tokens: tf.Tensor,
    temperature: tf.Tensor,
    top_k: tf.Tensor,
    seed: tf.Tensor,
    stop_ids,
    pad_id: int,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Generates after each prompt.

    Args:
        lm: a keras-hub `CausalLM` (with `call_with_cache`, `_build_cache`).
        prompt_ids: int `[batch, None]` ragged prompt tokens (each non-empty).
        max_new_tokens, temperature, top_k, seed: `[batch]` settings.
        stop_ids: ints ending a row's generation (not part of its output).
        pad_id: fills the output after each row's tokens.

    Returns:
        `(tokens [batch, n] int32, lengths [batch] int32)`: the new tokens of
        each row, padded with `pad_id`.
    """
    prompt_ids = tf.cast(prompt_ids, tf.int32)
    prompt_lengths = tf.cast(prompt_ids.row_lengths(), tf.int32)
    max_new_tokens = tf.maximum(tf.cast(max_new_tokens, tf.int32), 0)
    limits = prompt_lengths + max_new_tokens
    total = tf.reduce_max(limits)
    positions_limit = max_total_length(lm)
    if positions_limit is not None:
        limits = tf.minimum(limits, positions_limit)
        total = tf.minimum(total, positions_limit)
    total = tf.maximum(total, tf.reduce_max(prompt_lengths) + 1)
    buffer = prompt_ids.to_tensor(default_value=pad_id, shape=[None, None])
    buffer = tf.pad(
        buffer, [[0, 0], [0, total - tf.shape(buffer)[1]]], constant_values=pad_id
    )
    _, cache = lm._build_cache(buffer)
    stop = tf.constant(list(stop_ids), tf.int32)
    temperature = tf.cast(temperature, tf.float32)
    top_k = tf.cast(top_k, tf.int32)
    done = limits <= prompt_lengths
    index = tf.reduce_min(prompt_lengths)
    columns = tf.range(total)[None, :]

    def condition(index, buffer, cache, done):
        return tf.logical_and(index < total, tf.logical_not(tf.reduce_all(done)))

    def body(index, buffer, cache, done):
        previous = buffer[:, index - 1 : index]
        logits, _, cache = lm.call_with_cache(previous, cache, index - 1)
        logits = tf.cast(logits[:, 0, :], tf.float32)
        sampled = _sample(logits, temperature, top_k, seed, index)
        in_prompt = index < prompt_lengths
        writing = tf.logical_and(tf.logical_not(in_prompt), tf.logical_not(done))
        token = tf.where(
            in_prompt, buffer[:, index], tf.where(writing, sampled, pad_id)
        )
        buffer = tf.where(tf.equal(columns, index), token[:, None], buffer)
        is_stop = tf.reduce_any(tf.equal(sampled[:, None], stop[None, :]), axis=-1)
        done = tf.logical_or(
            done,
            tf.logical_and(writing, tf.logical_or(is_stop, index + 1 >= limits)),
        )
        return index + 1, buffer, cache, done

    index, buffer, cache, done = tf.while_loop(
        condition, body, (index, buffer, cache, done), maximum_iterations=total
    )
    new = tf.logical_and(columns >= prompt_lengths[:, None], columns < index)
    new = tf.logical_and(new, columns < limits[:, None])
    is_stop = tf.reduce_any(tf.equal(buffer[:, :, None], stop[None, None, :]), axis=-1)
    stopped = tf.cumsum(tf.cast(tf.logical_and(new, is_stop), tf.int32), axis=1) > 0
    keep = tf.logical_and(new, tf.logical_not(stopped))
    lengths = tf.reduce_sum(tf.cast(keep, tf.int32), axis=1)
    tokens = tf.ragged.boolean_mask(buffer, keep).to_tensor(default_value=pad_id)
    return tokens, lengths
