"""LoadedVersion runs SavedModels through a TF1 Session, tables and strings included."""

import numpy as np
import pytest
import tensorflow as tf

from serving.model_manager import LoadedVersion
from serving.serving_error import ServingError


class _Vocabulary(tf.Module):
    """A lookup table initialized from an asset file, plus a variable."""

    def __init__(self, vocab_path):
        super().__init__()
        initializer = tf.lookup.TextFileInitializer(
            vocab_path,
            tf.string,
            tf.lookup.TextFileIndex.WHOLE_LINE,
            tf.int64,
            tf.lookup.TextFileIndex.LINE_NUMBER,
        )
        self.table = tf.lookup.StaticHashTable(initializer, default_value=-1)
        self.scale = tf.Variable(10, dtype=tf.int64)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="words")])
    def serve(self, words):
        ids = self.table.lookup(words)
        return {
            "ids": ids,
            "scaled": ids * self.scale,
            "upper": tf.strings.upper(words),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def parse(self, text):
        return {"number": tf.strings.to_number(text)}


@pytest.fixture(scope="module")
def vocabulary_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("vocab")
    vocab = root / "vocab.txt"
    vocab.write_text("cat\ndog\nbird\n")
    module = _Vocabulary(str(vocab))
    path = root / "1"
    tf.saved_model.save(
        module,
        str(path),
        signatures={"serving_default": module.serve, "parse": module.parse},
    )
    vocab.unlink()  # the SavedModel must use its own copy of the asset
    return str(path)


def test_tables_assets_variables_and_strings_work_through_the_session(vocabulary_model):
    loaded = LoadedVersion("vocab", 1, vocabulary_model)
    assert sorted(loaded.signatures) == ["parse", "serving_default"]
    assert "__saved_model_init_op" in loaded.signature_defs  # kept for metadata
    signature = loaded.signatures["serving_default"]
    assert signature.function is None
    assert {k: s.dtype for k, s in signature.inputs.items()} == {"words": tf.string}
    assert signature.inputs["words"].shape.as_list() == [None]
    assert signature.batchable
    out = signature.run({"words": np.array([b"dog", b"fish", b"cat"], object)})
    assert out["ids"].tolist() == [1, -1, 0]
    assert out["scaled"].tolist() == [10, -10, 0]
    assert out["upper"].tolist() == [b"DOG", b"FISH", b"CAT"]


def test_a_failing_run_is_invalid_argument_and_the_session_keeps_serving(
    vocabulary_model,
):
    signature = LoadedVersion("vocab", 1, vocabulary_model).signatures["parse"]
    with pytest.raises(ServingError) as excinfo:
        signature.run({"text": np.array([b"1.5", b"abc"], object)})
    assert excinfo.value.code == "INVALID_ARGUMENT"
    assert "Signature 'parse' failed on this input" in excinfo.value.message
    assert signature.run({"text": np.array([b"2.5"], object)})["number"].tolist() == [
        2.5
    ]
