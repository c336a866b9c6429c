"""`BertPreprocessor`: raw strings to BERT's model inputs, in the graph."""

from __future__ import annotations

import keras
import tensorflow as tf

from official.nlp.tokenization.bert_packer import pack_segments
from official.nlp.tokenization.bert_tokenizer import BertTokenizer


@keras.saving.register_keras_serializable(package="official")
class BertPreprocessor(keras.layers.Layer):
    """WordPiece tokenization and packing of one sentence or a sentence pair.

    The same TensorFlow ops run in the training input (`tf.data`), in
    evaluation and inside the exported SavedModel, so a raw string gets the
    same ids everywhere.

    Args:
        vocabulary: list of str or the path of a vocab.txt (see
            `BertTokenizer`).
        seq_length: int, the packed length. Defaults to 128.
        lower_case: bool, lower-case and strip accents. Defaults to True.
        **kwargs: base layer arguments (`name`).

    Call arguments:
        inputs: string tensor `(batch,)` (one sentence each), or a list/tuple
            of two of them (sentence pairs).

    Returns:
        dict of int32 `(batch, seq_length)` tensors: `input_word_ids`,
        `input_mask`, `input_type_ids`.

    Example:
    ```python
    import tensorflow as tf
    from official.nlp.tokenization.bert_preprocessor import BertPreprocessor

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "movie", "?"]
    preprocessor = BertPreprocessor(vocab, seq_length=8)
    packed = preprocessor([tf.constant(["Good movie"]), tf.constant(["good?"])])
    assert packed["input_word_ids"].numpy().tolist() == [[2, 5, 6, 3, 5, 7, 3, 0]]
    assert packed["input_mask"].numpy().tolist() == [[1, 1, 1, 1, 1, 1, 1, 0]]
    ```
    """

    def __init__(self, vocabulary, seq_length=128, lower_case=True, **kwargs):
        kwargs.pop("dtype", None)
        super().__init__(dtype="int32", **kwargs)
        self.tokenizer = BertTokenizer(vocabulary, lower_case=lower_case)
        self.seq_length = seq_length
        self.lower_case = bool(lower_case)
        ids = self.tokenizer.special_ids
        # Checked here, so that a bad length fails when the layer is made.
        if isinstance(seq_length, bool) or not isinstance(seq_length, int):
            raise ValueError(
                f"`seq_length` must be an int >= 3. Received: seq_length={seq_length!r}."
            )
        if seq_length < 3:
            raise ValueError(
                f"`seq_length` must be an int >= 3. Received: seq_length={seq_length!r}."
            )
        self.cls_id, self.sep_id, self.pad_id = ids["cls"], ids["sep"], ids["pad"]
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    @property
    def vocabulary(self) -> list[str]:
        return self.tokenizer.vocabulary

    def call(self, inputs):
        texts = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        segments = [self.tokenizer(tf.reshape(t, [-1])) for t in texts]
        return pack_segments(
            segments, self.seq_length, self.cls_id, self.sep_id, self.pad_id
        )

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": list(self.vocabulary),
            "seq_length": self.seq_length,
            "lower_case": self.lower_case,
        }
