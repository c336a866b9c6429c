"""Run under KERAS_BACKEND=jax: the text encoder, heads and models compute
with JAX, round-trip through get_config and .keras files with equal outputs.

Used by `test_text_jax_backend.py` in a subprocess; prints "JAX TEXT PASSED".
"""

import os
import sys
import tempfile

import keras
import numpy as np

assert keras.backend.backend() == "jax", keras.backend.backend()

from official.nlp.encoders import BertEncoder  # noqa: E402
from official.nlp.heads import MaskedLMHead, SentencePredictionHead  # noqa: E402
from official.nlp.models import BertClassifier, BertPretrainer  # noqa: E402


def close(a, b):
    for x, y in zip(keras.tree.flatten(a), keras.tree.flatten(b)):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(y), atol=1e-5
        )


def main():
    ids = np.array([[2, 7, 9, 3, 0, 0], [2, 5, 3, 6, 3, 0]], "int32")
    inputs = {
        "input_word_ids": ids,
        "input_mask": (ids > 0).astype("int32"),
        "input_type_ids": np.zeros_like(ids),
    }
    encoder = BertEncoder(
        size="tiny", vocab_size=20, max_sequence_length=8, num_layers=1
    )
    models = {
        "BertEncoder": (encoder, inputs),
        "BertClassifier": (BertClassifier(encoder, num_classes=3), inputs),
        "BertPretrainer": (
            BertPretrainer(encoder),
            {**inputs, "masked_lm_positions": np.array([[1, 2], [1, 3]], "int32")},
        ),
    }
    directory = tempfile.mkdtemp()
    for name, (model, data) in models.items():
        out = model(data)
        assert "jax" in type(keras.tree.flatten(out)[0]).__module__, type(out)
        path = os.path.join(directory, f"{name}.keras")
        model.save(path)
        close(out, keras.models.load_model(path)(data))
        print(f"OK {name}", flush=True)
    head = SentencePredictionHead(2)
    close(head(np.ones((2, 4), "float32")), head(np.ones((2, 4), "float32")))
    lm = MaskedLMHead(vocab_size=20)
    logits = lm(
        np.ones((2, 6, 4), "float32"), np.array([[1], [2]]), np.ones((20, 4), "float32")
    )
    assert tuple(logits.shape) == (2, 1, 20)
    assert "tensorflow_text" not in sys.modules
    print("JAX TEXT PASSED", flush=True)


if __name__ == "__main__":
    main()
