"""Serving signatures of text models: raw strings, tf.Examples, packed ids.

Every signature ends in the same `outputs_fn(features)` on packed inputs:

- `text` (`[None]` strings) or `text_pair` (`text_a`, `text_b`): WordPiece
  tokenization and packing inside the graph (`BertPreprocessor`), so a
  client sends raw sentences;
- `tf_example`: serialized `tf.Example`s whose string features are named as
  the task's data columns (`text_a_key`, `text_b_key`);
- `encoder_inputs`: int32 `input_word_ids`, `input_mask`, `input_type_ids`
  (`[None, None]`), as TF Model Garden's BERT exports;
- `input_word_ids`: the packed ids alone (`[None, seq_length]`); the mask and
  segment ids are derived from `[PAD]` and `[SEP]` inside
  (`segment_ids_from_words`), as in the TFLite file.

The string signatures need tensorflow-text's ops when the SavedModel is
loaded (`import tensorflow_text` first): Garden's model server does this;
the stock TF Serving binary has no such ops and cannot load them.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from official.nlp.encoders.bert_encoder import INPUT_NAMES
from official.nlp.tasks.text_preprocessing import segment_ids_from_words
from official.nlp.tokenization.bert_preprocessor import BertPreprocessor


def text_signatures(
    outputs_fn: Callable[[dict], dict],
    preprocessor: BertPreprocessor,
    text_a_key: str,
    text_b_key: str = "",
) -> dict[str, tuple]:
    """`{name: (fn, input_signature)}` for `Task.serving_signatures`.

    Args:
        outputs_fn: packed inputs dict -> dict of named output tensors.
        preprocessor: tokenizes and packs; its `seq_length` is the tensor
            signatures' length.
        text_a_key: tf.Example feature of the first sentence.
        text_b_key: tf.Example feature of the second sentence; empty for
            single sentences (then the string signature is `text`, else
            `text_pair`).
    """
    seq_length = preprocessor.seq_length
    pair = bool(text_b_key)

    def text(texts):
        return outputs_fn(preprocessor(texts))

    def text_pair(text_a, text_b):
        return outputs_fn(preprocessor([text_a, text_b]))

    def tf_example(examples):
        keys = [text_a_key, text_b_key] if pair else [text_a_key]
        parsed = tf.io.parse_example(
            examples, {key: tf.io.FixedLenFeature([], tf.string) for key in keys}
        )
        return outputs_fn(preprocessor([parsed[key] for key in keys]))

    def encoder_inputs(input_word_ids, input_mask, input_type_ids):
        return outputs_fn(
            {
                "input_word_ids": input_word_ids,
                "input_mask": input_mask,
                "input_type_ids": input_type_ids,
            }
        )

    def input_word_ids(word_ids):
        return outputs_fn(
            segment_ids_from_words(word_ids, preprocessor.sep_id, preprocessor.pad_id)
        )

    strings = tf.TensorSpec([None], tf.string, name="text")
    signatures = {}
    if pair:
        signatures["text_pair"] = (
            text_pair,
            [
                tf.TensorSpec([None], tf.string, name="text_a"),
                tf.TensorSpec([None], tf.string, name="text_b"),
            ],
        )
    else:
        signatures["text"] = (text, [strings])
    signatures["tf_example"] = (
        tf_example,
        [tf.TensorSpec([None], tf.string, name="examples")],
    )
    signatures["encoder_inputs"] = (
        encoder_inputs,
        [tf.TensorSpec([None, None], tf.int32, name=name) for name in INPUT_NAMES],
    )
    signatures["input_word_ids"] = (
        input_word_ids,
        [tf.TensorSpec([None, seq_length], tf.int32, name="input_word_ids")],
    )
    return signatures


def word_ids_signature(
    outputs_fn: Callable[[dict], dict], preprocessor: BertPreprocessor
) -> tuple:
    """`(fn, [spec])` of `Task.tflite_signature`: int32 `[1, seq_length]`
    packed ids, mask and segments derived inside (TFLite builtin ops)."""

    def input_word_ids(word_ids):
        return outputs_fn(
            segment_ids_from_words(word_ids, preprocessor.sep_id, preprocessor.pad_id)
        )

    spec = tf.TensorSpec([1, preprocessor.seq_length], tf.int32, name="input_word_ids")
    return input_word_ids, [spec]


def string_path_custom_ops(signature_fn: Callable, input_signature: list) -> list[str]:
    """The ops of a string signature that are tensorflow-text kernels.

    TFLite has no builtin for them (nor a Flex kernel: they live outside
    TensorFlow), so a string-in TFLite file is refused, naming these.

    Example:
    ```python
    import tensorflow as tf
    from official.nlp.tasks.text_signatures import string_path_custom_ops
    from official.nlp.tokenization.bert_tokenizer import BertTokenizer

    tokenizer = BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"])
    ops = string_path_custom_ops(
        lambda t: {"ids": tokenizer(t).flat_values}, [tf.TensorSpec([None], tf.string)]
    )
    assert ops and all(op.startswith("Fast") for op in ops)
    ```
    """
    concrete = tf.function(signature_fn).get_concrete_function(*input_signature)
    graph_ops = {op.type for op in concrete.graph.get_operations()}
    for function in concrete.graph._functions.values():  # noqa: SLF001
        graph_ops.update(node.op for node in function.definition.node_def)
    registered = set(tf.raw_ops.__dict__)
    return sorted(op for op in graph_ops if op not in registered)
