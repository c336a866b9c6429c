"""A keras-hub BERT preset built and saved here imports with equal outputs."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

keras_hub = pytest.importorskip(
    "keras_hub", reason="the hub extra: pip install -e .[hub]"
)

from official.core.checkpoints import initialize_from_checkpoint  # noqa: E402
from official.nlp.encoders import BertEncoder  # noqa: E402
from official.nlp.importers.keras_hub_bert import (  # noqa: E402
    import_bert_preset,
    max_output_difference,
)
from official.nlp.models import BertClassifier  # noqa: E402
from official.nlp.tokenization.bert_tokenizer import BertTokenizer  # noqa: E402
from tools import import_bert_preset as tool  # noqa: E402

WORDS = ["the", "film", "was", "good", "bad", "un", "##like", "##ly", ",", "!", "cafe"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]


@pytest.fixture(scope="module")
def preset_dir(tmp_path_factory):
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(VOCAB),
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=24,
    )
    rng = np.random.default_rng(0)
    for weight in backbone.weights:  # Away from the initializers' values.
        weight.assign(rng.normal(0.0, 0.3, weight.shape).astype("float32"))
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=VOCAB, lowercase=True)
    path = str(tmp_path_factory.mktemp("preset"))
    backbone.save_to_preset(path)
    tokenizer.save_to_preset(path)
    return path


def test_import_gives_keras_hub_outputs(preset_dir):
    imported = import_bert_preset(preset_dir)
    assert imported.vocabulary == VOCAB and imported.lower_case
    assert imported.encoder_params["hidden_size"] == 16
    rng = np.random.default_rng(1)
    ids = rng.integers(5, len(VOCAB), size=(3, 20))
    ids[:, 0] = 2
    ids[1, 9:] = 0
    assert max_output_difference(imported, ids) <= 1e-5
    rebuilt = BertEncoder(vocab_size=len(VOCAB), **imported.encoder_params)
    assert rebuilt.count_params() == imported.source.count_params()


def test_tokenizer_agrees_with_keras_hub(preset_dir):
    theirs = keras_hub.models.BertTokenizer.from_preset(preset_dir)
    ours = BertTokenizer(import_bert_preset(preset_dir).vocabulary, lower_case=True)
    texts = ["The film was UNLIKELY good, cafe!", "bad bad xyz"]
    for text in texts:
        expected = np.asarray(theirs(text)).tolist()
        assert ours(tf.constant([text]))[0].numpy().tolist() == expected


def test_tool_writes_a_checkpoint_for_init_checkpoint(preset_dir, tmp_path):
    out = str(tmp_path / "imported")
    assert (
        tool.main(
            ["import_bert_preset", f"--preset_dir={preset_dir}", f"--output_dir={out}"]
        )
        == 0
    )
    summary = json.loads(open(os.path.join(out, "encoder.json")).read())
    assert summary["max_abs_difference"] <= 1e-5
    # Fine-tuning restores the encoder into a classifier's backbone.
    encoder = BertEncoder(vocab_size=summary["vocab_size"], **summary["encoder_params"])
    classifier = BertClassifier(encoder, num_classes=2)
    report = initialize_from_checkpoint(
        classifier.backbone, summary["checkpoint"], "backbone"
    )
    assert not report.missing and len(report.matched) == len(encoder.weights)
    reference = import_bert_preset(preset_dir).encoder
    np.testing.assert_array_equal(
        encoder.word_embeddings.embeddings.numpy(),
        reference.word_embeddings.embeddings.numpy(),
    )
    assert (
        tool.main(
            ["import_bert_preset", f"--preset_dir={tmp_path}", f"--output_dir={out}"]
        )
        == 1
    )
