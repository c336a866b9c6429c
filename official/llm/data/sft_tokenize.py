"""Conversations -> token ids and loss weights, in TensorFlow (tf.data, export).

A conversation is two 1-D string tensors, `roles` and `contents`. Each
message becomes `prefix + content + suffix` of the chat template (each piece
tokenized on its own), followed by the end token for assistant turns and
plain `text` examples. Loss weights are 1 on the assistant's content, suffix
and end token (and on every token of a `text` example, or everywhere with
`train_on_all`), 0 elsewhere: the prompt carries no loss. A start token
leads when the model's preprocessor adds one.

Example:
```python
import tempfile
import tensorflow as tf
from official.llm.data import byte_tokenizer, chat_template, sft_tokenize
from official.llm.models.causal_lm_builder import read_tokenizer_dir

path = byte_tokenizer.write_byte_tokenizer(tempfile.mkdtemp())
encoder = sft_tokenize.ConversationEncoder(
    read_tokenizer_dir(path),
    chat_template.get_template("default"), start_id=0, end_id=0)
ids, weights = encoder.encode(tf.constant(["user", "assistant"]),
                              tf.constant(["hi", "ok"]))
# ids: <start> "<|user|>\\n" "hi" "\\n" "<|assistant|>\\n" "ok" <end>
# weights are 1 on "ok" and the end token only.
```
"""

from __future__ import annotations

import tensorflow as tf

from official.llm.data.chat_template import ROLES, ChatTemplate


class ConversationEncoder:
    """Tokenizes conversations with a chat template, with loss weights.

    Args:
        tokenizer: a keras-hub tokenizer (string tensor -> ragged int ids).
        template: the `ChatTemplate`.
        start_id: int id put first, or None for no start token.
        end_id: int id after each assistant turn and `text` example.
        train_on_all: weight every token (pretraining-style), not only the
            assistant's.
    """

    def __init__(
        self,
        tokenizer,
        template: ChatTemplate,
        start_id: int | None,
        end_id: int,
        train_on_all: bool = False,
    ):
        self.tokenizer = tokenizer
        self.template = template
        self.start_id = start_id
        self.end_id = end_id
        self.train_on_all = train_on_all

    def _tokenize(self, strings: tf.Tensor) -> tf.RaggedTensor:
        tokens = self.tokenizer(strings)
        if isinstance(tokens, list):  # keras-hub answers eager calls in lists.
            tokens = tf.ragged.constant(tokens, dtype=tf.int32, ragged_rank=1)
        elif not isinstance(tokens, tf.RaggedTensor):
            tokens = tf.RaggedTensor.from_tensor(tokens)
        return tf.cast(tokens, tf.int32).with_row_splits_dtype(tf.int64)

    def _by_role(self, roles: tf.Tensor, text_of) -> tf.Tensor:
        out = tf.fill(tf.shape(roles), "")
        for role in ROLES:
            out = tf.where(tf.equal(roles, role), text_of(role), out)
        return out

    def check_roles(self, roles: tf.Tensor) -> tf.Tensor:
        known = tf.zeros(tf.shape(roles), tf.bool)
        for role in ROLES:
            known = tf.logical_or(known, tf.equal(roles, role))
        return tf.debugging.assert_equal(
            tf.reduce_all(known),
            True,
            message=f"SFT data: a message role is not one of {', '.join(ROLES)}",
        )

    def encode_messages(
        self, roles: tf.Tensor, contents: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Messages -> (ids int32 [n], weights float32 [n]), no start token."""
        with tf.control_dependencies([self.check_roles(roles)]):
            roles = tf.identity(roles)
        prefixes = self._by_role(roles, self.template.prefix_for)
        suffixes = self._by_role(roles, self.template.suffix_for)
        answer = tf.logical_or(tf.equal(roles, "assistant"), tf.equal(roles, "text"))
        trained = tf.cast(answer, tf.float32)
        prefix_weight = tf.ones_like(trained) if self.train_on_all else tf.zeros_like(trained)
        if self.train_on_all:
            trained = tf.ones_like(trained)
        pieces = tf.reshape(tf.stack([prefixes, contents, suffixes], axis=1), [-1])
        tokens = self._tokenize(pieces)
        every_third = tf.range(tf.size(roles)) * 3
        ends = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(tf.cast(answer, tf.int32))], self.end_id),
            tf.cast(answer, tf.int64),
        )
        parts = [tf.gather(tokens, every_third + i) for i in range(3)] + [ends]
        weights = [prefix_weight, trained, trained, trained]
        ids = tf.concat(parts, axis=1)
        part_weights = tf.concat(
            [
                tf.RaggedTensor.from_row_lengths(
                    tf.repeat(w, part.row_lengths()), part.row_lengths()
                )
                for part, w in zip(parts, weights)
            ],
            axis=1,
        )
        return ids.flat_values, part_weights.flat_values

    def encode(self, roles: tf.Tensor, contents: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """A whole training example: start token, then every message."""
        ids, weights = self.encode_messages(roles, contents)
        if self.start_id is not None:
            ids = tf.concat([[self.start_id], ids], axis=0)
            weights = tf.concat([[0.0], weights], axis=0)
        return ids, weights

    def encode_prompt(self, roles: tf.Tensor, contents: tf.Tensor) -> tf.Tensor:
        """A prompt for generation: the messages, then the assistant prefix."""
        ids, _ = self.encode(roles, contents)
        prefix = self._tokenize(tf.constant([self.template.generation_prefix()]))
        return tf.concat([ids, prefix.flat_values], axis=0)
