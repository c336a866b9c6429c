"""BertEncoder: parameter counts equal keras-hub's, masking, serialization."""

import keras
import numpy as np
import pytest

from official.modeling.layers.transformer_encoder_block import TransformerEncoderBlock
from official.nlp.encoders import BERT_SIZES, BertEncoder
from official.nlp.heads import MaskedLMHead, SentencePredictionHead
from official.nlp.layers import LearnedPositionEmbedding
from official.nlp.models import BertClassifier, BertPretrainer
from official.testing.test_case import run_layer_test, run_model_serialization_test

# keras-hub's BERT presets (bert_*_en_uncased): trainable parameters.
KERAS_HUB_COUNTS = {"tiny": 4_385_920, "small": 28_763_648, "base": 109_482_240}


def _inputs(ids):
    ids = np.asarray(ids, "int32")
    return {
        "input_word_ids": ids,
        "input_mask": (ids > 0).astype("int32"),
        "input_type_ids": np.zeros_like(ids),
    }


def _tiny(**kwargs):
    params = dict(size="tiny", vocab_size=40, max_sequence_length=16, num_layers=1)
    params.update(kwargs)
    return BertEncoder(**params)


@pytest.mark.parametrize("size", sorted(KERAS_HUB_COUNTS))
def test_parameter_counts_equal_keras_hub_presets(size):
    encoder = BertEncoder(size=size)
    trainable = sum(int(np.prod(w.shape)) for w in encoder.trainable_weights)
    assert trainable == KERAS_HUB_COUNTS[size]


def test_parameter_counts_equal_keras_hub_backbone_built_locally():
    keras_hub = pytest.importorskip("keras_hub")
    for size in ("tiny", "mini"):
        hidden, layers, heads, mlp = BERT_SIZES[size]
        reference = keras_hub.models.BertBackbone(
            vocabulary_size=30522,
            num_layers=layers,
            num_heads=heads,
            hidden_dim=hidden,
            intermediate_dim=mlp,
        )
        assert BertEncoder(size=size).count_params() == reference.count_params()


def test_outputs_and_padding_is_ignored():
    encoder = _tiny(dropout_rate=0.0, attention_dropout_rate=0.0)
    short = encoder(_inputs([[2, 7, 9, 3]]))
    padded = encoder(_inputs([[2, 7, 9, 3, 0, 0]]))
    assert tuple(padded["sequence_output"].shape) == (1, 6, 128)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(short["pooled_output"]),
        keras.ops.convert_to_numpy(padded["pooled_output"]),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(short["sequence_output"]),
        keras.ops.convert_to_numpy(padded["sequence_output"])[:, :4],
        atol=1e-5,
    )


def test_bad_params_are_refused_with_the_valid_values():
    with pytest.raises(ValueError, match="tiny, mini, small, medium, base, large"):
        BertEncoder(size="huge")
    with pytest.raises(ValueError, match="must divide hidden_size"):
        _tiny(num_heads=3)
    with pytest.raises(ValueError, match="dropout_rate"):
        _tiny(dropout_rate=1.5)
    with pytest.raises(ValueError, match="longer than max_length=16"):
        _tiny()(_inputs(np.ones((1, 20))))


def test_post_norm_block_matches_a_hand_computation():
    block = TransformerEncoderBlock(
        num_heads=1, mlp_dim=8, norm_first=False, approximate_gelu=True
    )
    x = np.random.default_rng(0).normal(size=(1, 3, 4)).astype("float32")
    y = keras.ops.convert_to_numpy(block(x, attention_mask=np.array([[1, 1, 0]])))
    attention = keras.ops.convert_to_numpy(
        block.attention(x, x, attention_mask=np.array([[[True, True, False]]]))
    )
    h = keras.ops.convert_to_numpy(block.attention_norm(x + attention))
    mlp = block.mlp_dense2(
        keras.activations.gelu(block.mlp_dense1(h), approximate=True)
    )
    expected = keras.ops.convert_to_numpy(block.mlp_norm(h + mlp))
    np.testing.assert_allclose(y, expected, atol=1e-5)


def test_layers_round_trip():
    run_layer_test(
        LearnedPositionEmbedding,
        {"max_length": 8},
        np.zeros((2, 5, 4), "float32"),
        expected_output_shape=(2, 5, 4),
    )
    run_layer_test(
        SentencePredictionHead,
        {"num_classes": 3},
        np.ones((2, 8), "float32"),
        expected_output_shape=(2, 3),
    )
    run_layer_test(
        TransformerEncoderBlock,
        {"num_heads": 2, "mlp_dim": 8, "norm_first": False},
        np.ones((2, 5, 4), "float32"),
        expected_output_shape=(2, 5, 4),
    )


def test_models_save_and_reload_as_keras(tmp_path):
    encoder = _tiny()
    run_model_serialization_test(encoder, _inputs([[2, 5, 6, 3, 0]]))
    classifier = BertClassifier(encoder, num_classes=3)
    run_model_serialization_test(classifier, _inputs([[2, 5, 6, 3, 0]]))
    pretrainer = BertPretrainer(encoder)
    inputs = {
        **_inputs([[2, 5, 4, 3]]),
        "masked_lm_positions": np.array([[2]], "int32"),
    }
    path = str(tmp_path / "pretrainer.keras")
    pretrainer.save(path)
    revived = keras.models.load_model(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(revived(inputs)),
        keras.ops.convert_to_numpy(pretrainer(inputs)),
        atol=1e-5,
    )


def test_masked_lm_head_is_tied_to_the_word_embeddings():
    encoder = _tiny()
    model = BertPretrainer(encoder)
    inputs = {
        **_inputs([[2, 5, 4, 3]]),
        "masked_lm_positions": np.array([[2]], "int32"),
    }
    before = keras.ops.convert_to_numpy(model(inputs))
    table = encoder.word_embeddings.embeddings
    table.assign(table * 2.0)
    after = keras.ops.convert_to_numpy(model(inputs))
    assert not np.allclose(before, after)
    assert isinstance(model.head, MaskedLMHead)
    ids = {w.path for w in model.trainable_weights}
    assert "word_embeddings/embeddings" in ids
    assert len(model.trainable_weights) == len(encoder.trainable_weights) + 5
