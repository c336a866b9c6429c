"""`BertPacker`: WordPiece ids of one or two segments to BERT's model inputs."""

from __future__ import annotations

import keras
import tensorflow as tf

from official.nlp.tokenization.bert_tokenizer import _text_module


def pack_segments(
    segments: list[tf.RaggedTensor],
    seq_length: int,
    cls_id: int,
    sep_id: int,
    pad_id: int = 0,
) -> dict[str, tf.Tensor]:
    """`[CLS] a [SEP] (b [SEP])`, trimmed round-robin and padded to `seq_length`.

    Trimming takes one token at a time from each segment in turn (segments
    shorter than their share keep all their tokens), so that the special
    tokens and the segments fit in `seq_length`; tensorflow-text's
    `RoundRobinTrimmer`.

    Args:
        segments: 1 or 2 int `tf.RaggedTensor`s `(batch, None)` of ids.
        seq_length: int, the packed length.
        cls_id, sep_id, pad_id: ids of `[CLS]`, `[SEP]` and `[PAD]`.

    Returns:
        dict of int32 `(batch, seq_length)` tensors: `input_word_ids`,
        `input_mask` (1 for real tokens) and `input_type_ids` (0 for `[CLS]`,
        the first segment and its `[SEP]`, 1 for the second).
    """
    text = _text_module()
    if not 1 <= len(segments) <= 2:
        raise ValueError(
            f"BERT packs one or two segments. Received: {len(segments)} segments."
        )
    budget = seq_length - len(segments) - 1
    if budget < len(segments):
        raise ValueError(
            f"seq_length={seq_length} leaves no room for {len(segments)} segment(s) "
            f"beside [CLS] and {len(segments)} [SEP]; use seq_length >= "
            f"{2 * len(segments) + 1}."
        )
    segments = [tf.cast(s, tf.int64) for s in segments]
    trimmed = text.RoundRobinTrimmer(max_seq_length=budget).trim(segments)
    ids, type_ids = text.combine_segments(
        trimmed, start_of_sequence_id=cls_id, end_of_segment_id=sep_id
    )
    word_ids, mask = text.pad_model_inputs(ids, seq_length, pad_value=pad_id)
    type_ids, _ = text.pad_model_inputs(type_ids, seq_length, pad_value=0)
    return {
        "input_word_ids": tf.cast(word_ids, tf.int32),
        "input_mask": tf.cast(mask, tf.int32),
        "input_type_ids": tf.cast(type_ids, tf.int32),
    }


@keras.saving.register_keras_serializable(package="official")
class BertPacker(keras.layers.Layer):
    """Packs one or two segments of ids into BERT's inputs (`pack_segments`).

    Args:
        seq_length: int, the packed length (>= 3 for one segment, >= 5 for
            two).
        cls_id: int, id of `[CLS]`.
        sep_id: int, id of `[SEP]`.
        pad_id: int, id of `[PAD]`. Defaults to 0.
        **kwargs: base layer arguments (`name`).

    Call arguments:
        inputs: an int `tf.RaggedTensor` `(batch, None)` or a list/tuple of
            one or two of them.

    Returns:
        dict of int32 `(batch, seq_length)` tensors `input_word_ids`,
        `input_mask`, `input_type_ids`.

    Example:
    ```python
    import tensorflow as tf
    from official.nlp.tokenization.bert_packer import BertPacker

    packer = BertPacker(seq_length=8, cls_id=2, sep_id=3)
    a = tf.ragged.constant([[10, 11, 12, 13, 14]])
    b = tf.ragged.constant([[20, 21, 22]])
    packed = packer([a, b])
    assert packed["input_word_ids"].numpy().tolist() == [[2, 10, 11, 12, 3, 20, 21, 3]]
    assert packed["input_type_ids"].numpy().tolist() == [[0, 0, 0, 0, 0, 1, 1, 1]]
    ```
    """

    def __init__(self, seq_length, cls_id, sep_id, pad_id=0, **kwargs):
        kwargs.pop("dtype", None)
        super().__init__(dtype="int32", **kwargs)
        if isinstance(seq_length, bool) or not isinstance(seq_length, int):
            raise ValueError(
                f"`seq_length` must be an int >= 3. Received: seq_length={seq_length!r}."
            )
        if seq_length < 3:
            raise ValueError(
                f"`seq_length` must be an int >= 3. Received: seq_length={seq_length!r}."
            )
        self.seq_length = seq_length
        self.cls_id = cls_id
        self.sep_id = sep_id
        self.pad_id = pad_id
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    def call(self, inputs):
        segments = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        return pack_segments(
            segments, self.seq_length, self.cls_id, self.sep_id, self.pad_id
        )

    def get_config(self):
        return {
            **super().get_config(),
            "seq_length": self.seq_length,
            "cls_id": self.cls_id,
            "sep_id": self.sep_id,
            "pad_id": self.pad_id,
        }
