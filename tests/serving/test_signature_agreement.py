"""The same image through every signature gives the same answer.

`parity.json`'s `signature_agreement` compares each SavedModel signature, and
the TFLite function, with the first signature on the same images. Issue 17: `image_tensor` skipped the
centre crop that `image_bytes` applied, and the same PNG got P(squares) 0.56
through one and 0.39 through the other.
"""

import json
import os

import pytest
import tensorflow as tf

from serving import export
from serving.parity import ParityError
from tests.serving.test_export import (  # noqa: F401  (fixtures)
    FakeTask,
    assert_nothing_left,
    checkpoint_dir,
    trained_model,
)


class CroppingBytesTask(FakeTask):
    """Its `image_bytes` crops the centre; `image_tensor` and TFLite do not."""

    def serving_signatures(self, model):
        signatures = super().serving_signatures(model)

        def image_bytes(image_bytes):
            def decode(data):
                image = tf.io.decode_png(data, channels=3)[2:6, 2:6]
                return tf.image.resize(tf.cast(image, tf.float32), (8, 8))

            images = tf.map_fn(decode, image_bytes, fn_output_signature=tf.float32)
            return self._outputs(model, images)

        signatures["image_bytes"] = (image_bytes, signatures["image_bytes"][1])
        return signatures


@pytest.fixture(scope="module")
def full_export_dir(tmp_path_factory, checkpoint_dir):  # noqa: F811
    export_dir = str(tmp_path_factory.mktemp("agreement") / "fake")
    export.export_task(
        FakeTask(),
        checkpoint_dir,
        export_dir,
        quantizations=["none"],
        num_parity_examples=9,
    )
    return export_dir


def test_every_signature_agrees_with_tflite(full_export_dir):
    parity = json.loads(
        open(os.path.join(full_export_dir, "parity.json"), encoding="utf-8").read()
    )
    assert parity["signature_agreement"]["reference"] == "image_tensor"
    agreement = parity["signature_agreement"]["results"]
    assert set(agreement) == {
        "image_tensor",
        "image_bytes",
        "tf_example",
        "serving_default",
        "tflite_signature",
    }
    for name, result in agreement.items():
        assert result["compared"] and result["passed"], (name, result)
        assert result["max_abs_diff_probabilities"] < 1e-5, (name, result)


def test_a_signature_that_preprocesses_differently_fails_parity(
    tmp_path,
    checkpoint_dir,  # noqa: F811
):
    try:
        export.export_task(
            CroppingBytesTask(),
            checkpoint_dir,
            str(tmp_path / "out"),
            formats=["saved_model"],
            num_parity_examples=9,
        )
    except ParityError as e:
        message = str(e)
    else:
        raise AssertionError("parity passed although image_bytes crops")
    assert "signature image_bytes vs image_tensor" in message
    assert "signature image_tensor vs" not in message
    assert_nothing_left(tmp_path)
