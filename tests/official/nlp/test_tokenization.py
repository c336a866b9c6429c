"""In-graph WordPiece: hand-checked splits, packing, masks, tf.data, .keras."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from official.nlp.tokenization.bert_packer import BertPacker, pack_segments
from official.nlp.tokenization.bert_preprocessor import BertPreprocessor
from official.nlp.tokenization.bert_tokenizer import BertTokenizer
from official.nlp.tokenization.vocabulary import (
    SPECIAL_TOKENS,
    check_vocabulary,
    load_vocabulary,
    write_vocabulary,
)

VOCAB = [
    *SPECIAL_TOKENS,  # 0-4
    "the", "un", "##want", "##ed", "runn", "##ing", ",", "!", "cafe",  # 5-13
    "café", "你", "好", "hello", "world", "a", "b", "c", "d", "e",  # 14-23
]  # fmt: skip


def _tokens(tokenizer, text):
    return tokenizer.id_to_token(tokenizer(tf.constant([text]))[0].numpy())


def test_wordpiece_splits_by_hand():
    tokenizer = BertTokenizer(VOCAB)
    assert _tokens(tokenizer, "UNwanted running") == [
        "un",
        "##want",
        "##ed",
        "runn",
        "##ing",
    ]
    # A word with no split into known pieces is one [UNK], punctuation splits.
    assert _tokens(tokenizer, "the xyzzy, the!") == ["the", "[UNK]", ",", "the", "!"]
    # Lower-casing strips accents: Café -> cafe.
    assert _tokens(tokenizer, "Café") == ["cafe"]
    # Every CJK character is a word of its own, even without spaces.
    assert _tokens(tokenizer, "hello你好world") == ["hello", "你", "好", "world"]


def test_cased_tokenizer_keeps_accents_and_case():
    tokenizer = BertTokenizer(VOCAB, lower_case=False)
    assert _tokens(tokenizer, "café") == ["café"]
    assert _tokens(tokenizer, "Café The") == ["[UNK]", "[UNK]"]


def test_pair_is_truncated_round_robin():
    preprocessor = BertPreprocessor(VOCAB, seq_length=10)
    packed = preprocessor([tf.constant(["a b c d e a b c"]), tf.constant(["e d"])])
    words = preprocessor.tokenizer.id_to_token(packed["input_word_ids"][0].numpy())
    # 7 slots for the pair: the short second segment keeps both tokens.
    assert words == ["[CLS]", "a", "b", "c", "d", "e", "[SEP]", "e", "d", "[SEP]"]
    assert packed["input_type_ids"][0].numpy().tolist() == [0] * 7 + [1] * 3
    long_pair = preprocessor([tf.constant(["a b c d e"]), tf.constant(["a b c d e"])])
    words = preprocessor.tokenizer.id_to_token(long_pair["input_word_ids"][0].numpy())
    assert words == ["[CLS]", "a", "b", "c", "d", "[SEP]", "a", "b", "c", "[SEP]"]


def test_packing_pads_and_masks():
    packed = pack_segments([tf.ragged.constant([[7, 8], [9]])], 6, cls_id=2, sep_id=3)
    assert packed["input_word_ids"].numpy().tolist() == [
        [2, 7, 8, 3, 0, 0],
        [2, 9, 3, 0, 0, 0],
    ]
    assert packed["input_mask"].numpy().tolist() == [
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 0, 0, 0],
    ]
    assert packed["input_type_ids"].numpy().sum() == 0
    with pytest.raises(ValueError, match="seq_length >= 5"):
        pack_segments([tf.ragged.constant([[1]])] * 2, 4, cls_id=2, sep_id=3)


def test_preprocessor_runs_in_tf_data_and_tf_function():
    preprocessor = BertPreprocessor(VOCAB, seq_length=8)
    dataset = tf.data.Dataset.from_tensor_slices(["the cafe", "hello world !"]).batch(2)
    batch = next(iter(dataset.map(preprocessor)))
    eager = preprocessor(tf.constant(["the cafe", "hello world !"]))
    traced = tf.function(
        preprocessor, input_signature=[tf.TensorSpec([None], tf.string)]
    )
    for out in (batch, traced(tf.constant(["the cafe", "hello world !"]))):
        for key in eager:
            np.testing.assert_array_equal(out[key].numpy(), eager[key].numpy())


def test_layers_serialize_and_reload(tmp_path):
    for layer in (
        BertTokenizer(VOCAB, lower_case=False),
        BertPacker(seq_length=8, cls_id=2, sep_id=3),
        BertPreprocessor(VOCAB, seq_length=8),
    ):
        config = layer.get_config()
        revived = type(layer).from_config(config)
        assert revived.get_config() == config
    inputs = keras.Input(shape=(), dtype="string")
    model = keras.Model(inputs, BertPreprocessor(VOCAB, seq_length=8)(inputs))
    path = str(tmp_path / "preprocessor.keras")
    model.save(path)
    revived = keras.models.load_model(path)
    out = revived(tf.constant(["the cafe"]))
    assert out["input_word_ids"].numpy().tolist() == [[2, 5, 13, 3, 0, 0, 0, 0]]


def test_vocabulary_files_and_errors(tmp_path):
    path = str(tmp_path / "vocab.txt")
    write_vocabulary(VOCAB, path)
    assert load_vocabulary(path) == VOCAB
    assert BertTokenizer(path).vocab_size == len(VOCAB)
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        check_vocabulary(["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
    with pytest.raises(ValueError, match="appears twice"):
        check_vocabulary([*SPECIAL_TOKENS, "a", "a"])
    with pytest.raises(FileNotFoundError, match="build_wordpiece_vocab"):
        load_vocabulary(str(tmp_path / "missing.txt"))
    with pytest.raises(ValueError, match=r"shape \(batch,\)"):
        BertTokenizer(VOCAB)(tf.constant([["a"]]))
