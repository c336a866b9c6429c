"""The model server loads a SavedModel that tokenizes text and answers raw text.

The server registers tensorflow-text's ops before loading
(`model_manager.register_text_ops`); the model is a tiny Garden text
classifier exported with its string signature.
"""

import numpy as np
import pytest
import tensorflow as tf

pytest.importorskip("tensorflow_text", reason="the nlp extra: pip install -e .[nlp]")

from serving import model_config  # noqa: E402
from serving.model_manager import register_text_ops  # noqa: E402
from serving.server import ModelServer, grpc_available  # noqa: E402
from tests.official.nlp.text_export_fixtures import (  # noqa: E402
    tiny_text_task,
    write_text_saved_model,
)
from tests.serving.tiny_model import call, predict  # noqa: E402

SENTENCES = ["the film was vivid .", "this book is dull and bland ."]


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    """`(base_path, probabilities)`: the exported model and Keras' answers."""
    root = tmp_path_factory.mktemp("text_model")
    _, task = tiny_text_task(str(root / "data"))
    model = task.build_model()
    write_text_saved_model(task, model, str(root / "models" / "sentiment" / "1"))
    packed = task.preprocessor(tf.constant(SENTENCES))
    probabilities = tf.nn.softmax(model(packed, training=False)).numpy()
    return root / "models" / "sentiment", probabilities


@pytest.fixture(scope="module")
def text_server(expected):
    assert register_text_ops()
    grpc_port = 0 if grpc_available() else None
    config = model_config.ModelConfig("sentiment", str(expected[0]))
    with ModelServer([config], rest_api_port=0, grpc_port=grpc_port) as server:
        yield server


def _names(probabilities):
    return [["negative", "positive"][int(np.argmax(p))] for p in probabilities]


def test_rest_predict_on_raw_text(expected, text_server):
    probabilities = expected[1]
    port = text_server.rest_port
    body = {"signature_name": "text", "instances": SENTENCES}
    status, answer = predict(port, body, model="sentiment")
    assert status == 200, answer
    rows = answer["predictions"]
    np.testing.assert_allclose(
        [row["probabilities"] for row in rows], probabilities, atol=1e-5
    )
    assert [row["class_names"] for row in rows] == _names(probabilities)
    # serving_default is the string signature too.
    status, answer = predict(port, {"instances": SENTENCES[:1]}, model="sentiment")
    assert status == 200 and len(answer["predictions"]) == 1
    status, metadata = call(port, "GET", "/v1/models/sentiment/metadata")
    assert status == 200
    signature = metadata["metadata"]["signature_def"]["signature_def"]["text"]
    assert signature["inputs"]["text"]["dtype"] == "DT_STRING"


def test_grpc_predict_on_raw_text(expected, text_server):
    if not grpc_available():
        pytest.skip("gRPC needs the serving extra (grpcio, tensorflow-serving-api)")
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "sentiment"
    request.model_spec.signature_name = "text"
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(SENTENCES))
    with grpc.insecure_channel(f"127.0.0.1:{text_server.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=30)
    np.testing.assert_allclose(
        tf.make_ndarray(response.outputs["probabilities"]), expected[1], atol=1e-5
    )
    names = [n.decode() for n in tf.make_ndarray(response.outputs["class_names"])]
    assert names == _names(expected[1])
