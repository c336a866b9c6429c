"""The tokenizer of a text task, built once from its preprocessing config."""

from __future__ import annotations

import tensorflow as tf

from official.nlp.configs.text_data import TextPreprocessingConfig
from official.nlp.tokenization.bert_preprocessor import BertPreprocessor
from official.nlp.tokenization.vocabulary import load_vocabulary


def build_preprocessor(
    preprocessing: TextPreprocessingConfig, where: str = "task.preprocessing"
) -> BertPreprocessor:
    """A `BertPreprocessor` for `preprocessing.vocab_file`, `lower_case` and
    `seq_length`; a ConfigError when no vocabulary is set."""
    preprocessing.check_vocab(where)
    return BertPreprocessor(
        load_vocabulary(preprocessing.vocab_file),
        seq_length=preprocessing.seq_length,
        lower_case=preprocessing.lower_case,
        name="preprocessor",
    )


def segment_ids_from_words(word_ids: tf.Tensor, sep_id: int, pad_id: int) -> dict:
    """`input_mask` and `input_type_ids` of packed `[CLS] a [SEP] (b [SEP])` ids.

    The mask is 1 where the id is not `[PAD]`; the type is 1 after the first
    `[SEP]`. Equal to what `pack_segments` returns for ids it packed, and
    made of TFLite builtin ops only, so the TFLite file takes the word ids
    alone.

    Example:
    ```python
    import tensorflow as tf
    from official.nlp.tasks.text_preprocessing import segment_ids_from_words

    out = segment_ids_from_words(tf.constant([[2, 7, 3, 8, 9, 3, 0]]), sep_id=3, pad_id=0)
    assert out["input_mask"].numpy().tolist() == [[1, 1, 1, 1, 1, 1, 0]]
    assert out["input_type_ids"].numpy().tolist() == [[0, 0, 0, 1, 1, 1, 0]]
    ```
    """
    word_ids = tf.cast(word_ids, tf.int32)
    mask = tf.cast(tf.not_equal(word_ids, pad_id), tf.int32)
    seps = tf.cast(tf.equal(word_ids, sep_id), tf.int32)
    before = tf.cumsum(seps, axis=1, exclusive=True)
    return {
        "input_word_ids": word_ids,
        "input_mask": mask,
        "input_type_ids": tf.minimum(before, 1) * mask,
    }
