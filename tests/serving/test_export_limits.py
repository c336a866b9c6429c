"""The exported image_bytes / tf_example signatures bound decoded pixels in-graph.

`serving.export --max_image_pixels` (default 40 MP) goes to the image tasks'
`serving_signatures`, whose graph reads each image's size from its header
and fails with InvalidArgument before `decode_image`, so the SavedModel is
safe behind any server. The over-limit images are forged headers (a valid
8x8 PNG / JPEG declaring 20000x20000 pixels): if the graph decoded them
first, the error would be a decoder's, not one naming the limit.
"""

import base64
import os

import numpy as np
import pytest
import tensorflow as tf

from official.vision.tasks.image_signatures import (
    DEFAULT_MAX_IMAGE_PIXELS,
    image_pixels,
    image_signatures,
)
from serving import export, model_config
from serving.request_limits import RequestLimits
from serving.server import ModelServer
from tests.serving.test_export import SIZE, FakeTask, make_examples, set_trained_weights
from tests.serving.test_request_limits import HUGE, forged_jpeg, forged_png
from tests.serving.tiny_model import png, predict

LIMIT = 1000  # pixels: 8x8 passes, 40x40 does not


class LimitedTask(FakeTask):
    """FakeTask whose serving signatures take the export's max_image_pixels."""

    def serving_signatures(self, model, max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS):
        def image_tensor(images):
            return self._outputs(
                model, tf.image.resize(tf.cast(images, tf.float32), (SIZE, SIZE))
            )

        def image_bytes(image_bytes):
            def decode(data):
                image = tf.io.decode_image(data, 3, expand_animations=False)
                return tf.image.resize(tf.cast(image, tf.float32), (SIZE, SIZE))

            images = tf.map_fn(decode, image_bytes, fn_output_signature=tf.float32)
            return self._outputs(model, images)

        return image_signatures(
            image_tensor, image_bytes, max_image_pixels=max_image_pixels
        )


@pytest.fixture(scope="module")
def limited_export(tmp_path_factory):
    model = LimitedTask().build_model()
    set_trained_weights(model)
    model_dir = str(tmp_path_factory.mktemp("limited_model_dir"))
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), model_dir, 1).save()
    export_dir = str(tmp_path_factory.mktemp("limited") / "export")
    export.export_task(
        LimitedTask(),
        model_dir,
        export_dir,
        formats=["saved_model"],
        num_parity_examples=6,
        max_image_pixels=LIMIT,
    )
    return os.path.join(export_dir, export.SAVED_MODEL_DIR)


def example(data):
    feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))
    features = tf.train.Features(feature={"image/encoded": feature})
    return tf.train.Example(features=features).SerializeToString()


@pytest.mark.parametrize("forge", [forged_png, forged_jpeg])
def test_exported_signatures_refuse_forged_headers(limited_export, forge):
    signatures = tf.saved_model.load(limited_export).signatures
    image = make_examples(1)[0][0]
    good = signatures["image_bytes"](image_bytes=tf.constant([png(image)]))
    assert good["classes"].shape == (1,)
    for name, key, batch in [
        ("image_bytes", "image_bytes", [png(image), forge()]),
        ("tf_example", "examples", [example(png(image)), example(forge())]),
    ]:
        with pytest.raises(tf.errors.InvalidArgumentError) as raised:
            signatures[name](**{key: tf.constant(batch)})
        assert "--max_image_pixels" in raised.value.message
        assert f"limit of {LIMIT}" in raised.value.message


def test_exported_signature_refuses_a_real_image_over_the_limit(limited_export):
    signatures = tf.saved_model.load(limited_export).signatures
    big = np.zeros((40, 40, 3), np.uint8)  # 1600 pixels
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_image_pixels"):
        signatures["image_bytes"](image_bytes=tf.constant([png(big)]))


def test_the_graph_check_holds_behind_a_server_that_does_not_check(
    tmp_path, limited_export
):
    import shutil

    shutil.copytree(limited_export, tmp_path / "limited" / "1")
    with ModelServer(
        [model_config.ModelConfig("limited", str(tmp_path / "limited"))],
        rest_api_port=0,
        grpc_port=None,
        file_system_poll_wait_seconds=0,
        request_limits=RequestLimits(max_image_pixels=0),  # server check off
    ) as server:
        body = {
            "signature_name": "image_bytes",
            "instances": [{"b64": base64.b64encode(forged_png()).decode()}],
        }
        status, out = predict(server.rest_port, body, model="limited")
    assert status == 400
    assert "--max_image_pixels" in out["error"]


def test_default_limit_and_header_reading_in_graph():
    signatures = image_signatures(lambda images: {}, lambda data: {"n": tf.size(data)})
    image_bytes = signatures["image_bytes"][0]
    assert int(image_bytes(tf.constant([png(make_examples(1)[0][0])]))["n"]) == 1
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_image_pixels"):
        image_bytes(tf.constant([forged_png()]))
    assert int(image_pixels(tf.constant(forged_jpeg(300, 200)))) == 60000
    assert int(image_pixels(tf.constant(forged_png()))) == HUGE * HUGE
    assert int(image_pixels(tf.constant(b"not an image"))) == 0
    assert DEFAULT_MAX_IMAGE_PIXELS == 40_000_000


def test_a_task_without_image_inputs_refuses_the_option(tmp_path):
    model = FakeTask().build_model()
    with pytest.raises(ValueError, match="--max_image_pixels"):
        export._serving_signatures(FakeTask(), model, 5)
