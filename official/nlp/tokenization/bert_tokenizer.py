"""`BertTokenizer`: strings to WordPiece ids inside the TensorFlow graph."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from official.nlp.tokenization.vocabulary import (
    UNK,
    check_vocabulary,
    load_vocabulary,
    special_ids,
)


def _text_module():
    try:
        import tensorflow_text
    except ImportError as e:  # pragma: no cover - the nlp extra installs it.
        raise ImportError(
            "Garden's text tokenization needs tensorflow-text at the TensorFlow "
            "minor version in use: pip install 'garden[nlp]'."
        ) from e
    return tensorflow_text


@keras.saving.register_keras_serializable(package="official")
class BertTokenizer(keras.layers.Layer):
    """WordPiece tokenization of BERT, as TensorFlow ops (tensorflow-text).

    Runs tensorflow-text's `FastBertTokenizer`: optional lower-casing with
    NFD accent stripping, splitting on whitespace and punctuation, every CJK
    character a word of its own, then greedy longest-match-first WordPiece
    (`##` continuation pieces); a word with no split is `[UNK]`. It runs
    wherever TensorFlow does: eagerly, in `tf.data`, inside `tf.function`
    and in an exported SavedModel (not under the JAX backend's `call`).

    Args:
        vocabulary: list of str (index = id) or the path of a vocab.txt. It
            must hold `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]` and `[MASK]`.
        lower_case: bool, lower-case and strip accents (uncased models).
            Defaults to True.
        max_bytes_per_word: int, longer words become `[UNK]`. Defaults to 100.
        **kwargs: base layer arguments (`name`).

    Call arguments:
        inputs: string tensor of shape `(batch,)` or a scalar.

    Returns:
        int32 `tf.RaggedTensor` `(batch, None)` of WordPiece ids (a 1-D
        tensor for a scalar input).

    Example:
    ```python
    import tensorflow as tf
    from official.nlp.tokenization.bert_tokenizer import BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able",
             "cafe", "!"]
    tokenizer = BertTokenizer(vocab)
    ids = tokenizer(tf.constant(["Unaffable café!", "xyz"]))
    assert ids.to_list() == [[5, 6, 7, 8, 9], [1]]
    ```
    """

    def __init__(self, vocabulary, lower_case=True, max_bytes_per_word=100, **kwargs):
        kwargs.pop("dtype", None)
        super().__init__(dtype="int32", **kwargs)
        if isinstance(vocabulary, str):
            vocabulary = load_vocabulary(vocabulary)
        else:
            vocabulary = [str(token) for token in vocabulary]
            check_vocabulary(vocabulary)
        self.vocabulary = vocabulary
        self.lower_case = bool(lower_case)
        self.max_bytes_per_word = max_bytes_per_word
        self.special_ids = special_ids(vocabulary)
        # Built eagerly even when first made inside a tf.function or a
        # dataset's map: its model buffer must not belong to that graph.
        with tf.init_scope():
            self._tokenizer = self._make_tokenizer()
        # Strings in, ragged ids out: Keras must not convert the arguments.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    def _make_tokenizer(self):
        return _text_module().FastBertTokenizer(
            vocab=self.vocabulary,
            suffix_indicator="##",
            max_bytes_per_word=self.max_bytes_per_word,
            token_out_type=tf.int64,
            unknown_token=UNK,
            lower_case_nfd_strip_accents=self.lower_case,
        )

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def call(self, inputs):
        texts = tf.convert_to_tensor(inputs, dtype=tf.string)
        scalar = texts.shape.rank == 0
        if scalar:
            texts = texts[tf.newaxis]
        elif texts.shape.rank != 1:
            raise ValueError(
                "BertTokenizer takes a string tensor of shape (batch,) or a scalar. "
                f"Received: shape={texts.shape}."
            )
        ids = self._tokenizer.tokenize(texts)
        if ids.ragged_rank > 1:
            ids = ids.merge_dims(-2, -1)
        ids = tf.cast(ids, tf.int32)
        return ids[0] if scalar else ids

    def id_to_token(self, ids: Sequence[int]) -> list[str]:
        """The tokens of `ids` (Python, for inspection and tests)."""
        return [self.vocabulary[int(i)] for i in ids]

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((None, None), dtype="int32", ragged=True)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": list(self.vocabulary),
            "lower_case": self.lower_case,
            "max_bytes_per_word": self.max_bytes_per_word,
        }
