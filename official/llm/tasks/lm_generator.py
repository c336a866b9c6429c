"""`LMGenerator`: prompts -> completions with a keras-hub causal LM.

One object for the evaluation's generation report and the export's
`generate` and `generate_chat` signatures, so all tokenize a prompt the same way (the chat
template as in training, then the assistant prefix), decode with the same
graph (`official.llm.generation.generate_ids`) and detokenize the same way.

Example:
```python
import tempfile
import keras_hub
from official.llm.data import byte_tokenizer, chat_template, sft_tokenize
from official.llm.models.causal_lm_builder import read_tokenizer_dir
from official.llm.tasks.lm_generator import LMGenerator

tokenizer = read_tokenizer_dir(byte_tokenizer.write_byte_tokenizer(tempfile.mkdtemp()))
backbone = keras_hub.models.GPT2Backbone(
    vocabulary_size=tokenizer.vocabulary_size(), num_layers=1, num_heads=2,
    hidden_dim=8, intermediate_dim=16, max_sequence_length=64)
lm = keras_hub.models.GPT2CausalLM(backbone)
encoder = sft_tokenize.ConversationEncoder(
    tokenizer, chat_template.get_template("default"), start_id=0, end_id=0)
generator = LMGenerator(lm, encoder, pad_id=0, max_new_tokens_cap=8)
generator.complete([(["user"], ["2+2?"])], max_new_tokens=4)  # -> ['...']
```
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from official.llm import generation
from official.llm.data.sft_tokenize import ConversationEncoder


class LMGenerator:
    """Generates completions of conversations or single user prompts.

    Args:
        lm: a keras-hub `CausalLM`.
        encoder: the `ConversationEncoder` of training (template, tokenizer,
            start and end tokens).
        pad_id: fills token outputs after each completion.
        max_new_tokens_cap: the most new tokens a request may ask for.
    """

    def __init__(
        self, lm, encoder: ConversationEncoder, pad_id: int, max_new_tokens_cap: int
    ):
        self.lm = lm
        self.encoder = encoder
        self.pad_id = pad_id
        self.max_new_tokens_cap = max_new_tokens_cap
        self.stop_ids = stop_token_ids(encoder)
        self._generate_fn = None
        self._detokenize_fn = None

    def prompt_ids(self, conversations) -> tf.RaggedTensor:
        """Token ids of each (roles, contents) prompt, ready to generate after."""
        rows = [
            self.encoder.encode_prompt(tf.constant(roles), tf.constant(contents))
            for roles, contents in conversations
        ]
        return tf.ragged.stack(rows)

    def generate_ids(self, prompt_ids, max_new_tokens, temperature, top_k, seed):
        """`generation.generate_ids` with this model's stop tokens, settings
        `[batch]` each (max_new_tokens clipped to the cap)."""
        max_new_tokens = tf.minimum(
            tf.cast(max_new_tokens, tf.int32), self.max_new_tokens_cap
        )
        return generation.generate_ids(
            self.lm,
            prompt_ids,
            max_new_tokens,
            temperature,
            top_k,
            seed,
            stop_ids=self.stop_ids,
            pad_id=self.pad_id,
        )

    def detokenize(self, tokens: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """Completion strings `[batch]` from padded tokens and lengths."""
        ragged = tf.RaggedTensor.from_tensor(tokens, lengths=lengths)
        text = self.encoder.tokenizer.detokenize(ragged)
        return tf.convert_to_tensor(text, tf.string)

    def complete(
        self,
        conversations,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_k: int = 0,
        seed: int = 0,
    ) -> list[str]:
        """Completions of (roles, contents) prompts, in process."""
        tokens, lengths = self.complete_ids(
            conversations, max_new_tokens, temperature, top_k, seed
        )
        return [
            t.decode("utf-8", errors="replace")
            for t in self.text_bytes(tokens, lengths)
        ]

    def text_bytes(self, tokens, lengths) -> list[bytes]:
        """The completions' bytes, as the exported signature returns them
        (keras-hub's eager detokenize would decode them to `str`)."""
        if self._detokenize_fn is None:
            self._detokenize_fn = tf.function(self.detokenize)
        text = self._detokenize_fn(
            tf.constant(tokens, tf.int32), tf.constant(lengths, tf.int32)
        )
        return list(text.numpy())

    def complete_ids(
        self, conversations, max_new_tokens, temperature=0.0, top_k=0, seed=0
    ):
        """(tokens, lengths) numpy arrays of each prompt's completion."""
        if self._generate_fn is None:
            self._generate_fn = tf.function(self.generate_ids, reduce_retracing=True)
        n = len(conversations)
        tokens, lengths = self._generate_fn(
            self.prompt_ids(conversations),
            tf.fill([n], int(max_new_tokens)),
            tf.fill([n], float(temperature)),
            tf.fill([n], int(top_k)),
            tf.fill([n], int(seed)),
        )
        return np.asarray(tokens), np.asarray(lengths)

    def signature(self) -> tuple:
        """`(fn, input_signature)` of the exported `generate` signature.

        Inputs (one entry per prompt): `prompts` (a user message; the chat
        template and assistant prefix are applied inside), `max_new_tokens`
        (clipped to the cap), `temperature` (0 = greedy), `top_k` (0 = all),
        `seed`. Outputs: `completions` (strings), `token_ids` (int32, padded
        with the pad id) and `num_tokens`.
        """
        specs = [tf.TensorSpec([None], tf.string, name="prompts")]

        def generate(prompts, max_new_tokens, temperature, top_k, seed):
            def one(prompt):
                return self.encoder.encode_prompt(tf.constant(["user"]), prompt[None])

            prompt_ids = tf.map_fn(one, prompts, fn_output_signature=_IDS_SPEC)
            return self._outputs(prompt_ids, max_new_tokens, temperature, top_k, seed)

        return generate, [*specs[:1], *_settings_specs()]

    def chat_signature(self) -> tuple:
        """`(fn, input_signature)` of the exported `generate_chat` signature.

        A whole conversation per prompt: `roles` and `contents`, string
        `[n, turns]` (system, user, assistant; a conversation shorter than
        `turns` is padded with role `""`, whose entries are dropped), then
        the settings of `signature`. The chat template is applied inside
        as in training, then the assistant prefix; outputs as `generate`.
        TensorFlow has no JSON op the model server could run, so a
        conversation travels as these two string lists rather than as one
        JSON string.
        """
        specs = [
            tf.TensorSpec([None, None], tf.string, name="roles"),
            tf.TensorSpec([None, None], tf.string, name="contents"),
            *_settings_specs(),
        ]

        def generate_chat(roles, contents, max_new_tokens, temperature, top_k, seed):
            def one(row):
                row_roles, row_contents = row
                used = tf.not_equal(row_roles, "")
                return self.encoder.encode_prompt(
                    tf.boolean_mask(row_roles, used),
                    tf.boolean_mask(row_contents, used),
                )

            prompt_ids = tf.map_fn(
                one, (roles, contents), fn_output_signature=_IDS_SPEC
            )
            return self._outputs(prompt_ids, max_new_tokens, temperature, top_k, seed)

        return generate_chat, specs

    def _outputs(self, prompt_ids, max_new_tokens, temperature, top_k, seed) -> dict:
        tokens, lengths = self.generate_ids(
            prompt_ids, max_new_tokens, temperature, top_k, seed
        )
        return {
            "completions": self.detokenize(tokens, lengths),
            "token_ids": tokens,
            "num_tokens": lengths,
        }


_IDS_SPEC = tf.RaggedTensorSpec([None], tf.int32, ragged_rank=0)


def _settings_specs() -> list[tf.TensorSpec]:
    return [
        tf.TensorSpec([None], tf.int32, name="max_new_tokens"),
        tf.TensorSpec([None], tf.float32, name="temperature"),
        tf.TensorSpec([None], tf.int32, name="top_k"),
        tf.TensorSpec([None], tf.int32, name="seed"),
    ]


def stop_token_ids(encoder: ConversationEncoder) -> list[int]:
    """The end token, and each template stop string that is one token."""
    ids = [int(encoder.end_id)]
    for text in encoder.template.stop:
        tokens = encoder.tokenizer(tf.constant([text]))
        tokens = tokens.to_list() if isinstance(tokens, tf.RaggedTensor) else tokens
        row = list(np.asarray(tokens[0]).reshape(-1))
        if len(row) == 1 and int(row[0]) not in ids:
            ids.append(int(row[0]))
    return ids
