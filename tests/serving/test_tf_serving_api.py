"""TF Serving's Classify, Regress, MultiInference and metadata, with its own stubs.

Model `tfs` is built as TF Serving's examples build one (TF1 classify and
regress SignatureDefs on tf.Examples, `tiny_model.write_tf_serving_style_model`);
`tiny` is Garden's export-like model (predict signatures only).
"""

import base64
import shutil

import numpy as np
import pytest
import tensorflow as tf

from serving import model_config
from serving.server import ModelServer, grpc_available
from tests.serving.tiny_model import (
    CLASSES,
    TFS_CLASSES,
    call,
    make_images,
    png,
    write_tf_serving_style_model,
)

pytestmark = pytest.mark.skipif(
    not grpc_available(), reason="tensorflow-serving-api not installed"
)
POINTS = np.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]], np.float32)
WANT_VALUES = 2 * POINTS[:, 0] + 3 * POINTS[:, 1] + 1
WANT_SCORES = tf.nn.softmax(POINTS).numpy()


@pytest.fixture(scope="module")
def tfs_server(tmp_path_factory, saved_model):

    root = tmp_path_factory.mktemp("tfs_models")
    write_tf_serving_style_model(str(root / "tfs" / "1"))
    shutil.copytree(saved_model, root / "tiny" / "1")
    models = [
        model_config.ModelConfig(name, str(root / name)) for name in ("tfs", "tiny")
    ]
    with ModelServer(
        models, rest_api_port=0, grpc_port=0, file_system_poll_wait_seconds=0
    ) as running:
        yield running


@pytest.fixture(scope="module")
def stub(tfs_server):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{tfs_server.grpc_port}") as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def point_examples(input_proto):
    for point in POINTS:
        example = input_proto.example_list.examples.add()
        example.features.feature["x"].float_list.value.extend(point.tolist())


def test_regress_with_the_stock_stub(stub):
    from tensorflow_serving.apis import regression_pb2

    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "tfs"
    point_examples(request.input)
    response = stub.Regress(request, timeout=30)
    assert response.model_spec.signature_name == "serving_default"
    assert response.model_spec.version.value == 1
    values = [r.value for r in response.result.regressions]
    np.testing.assert_allclose(values, WANT_VALUES, rtol=1e-6)

    request.model_spec.signature_name = "regress"
    assert stub.Regress(request, timeout=30).model_spec.signature_name == "regress"


def test_classify_a_classification_signature_def(stub):
    from tensorflow_serving.apis import classification_pb2

    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "tfs"
    request.model_spec.signature_name = "classify"
    point_examples(request.input)
    response = stub.Classify(request, timeout=30)
    rows = response.result.classifications
    assert len(rows) == len(POINTS)
    for row, want in zip(rows, WANT_SCORES, strict=True):
        assert [c.label for c in row.classes] == [c.decode() for c in TFS_CLASSES]
        np.testing.assert_allclose([c.score for c in row.classes], want, rtol=1e-5)


def test_multi_inference_runs_each_task_on_the_same_examples(stub):
    from tensorflow_serving.apis import inference_pb2

    request = inference_pb2.MultiInferenceRequest()
    for signature, method in [
        ("classify", "tensorflow/serving/classify"),
        ("regress", "tensorflow/serving/regress"),
    ]:
        task = request.tasks.add(method_name=method)
        task.model_spec.name = "tfs"
        task.model_spec.signature_name = signature
    point_examples(request.input)
    response = stub.MultiInference(request, timeout=30)
    classified, regressed = response.results
    assert classified.model_spec.signature_name == "classify"
    assert classified.WhichOneof("result") == "classification_result"
    scores = [
        [c.score for c in row.classes]
        for row in classified.classification_result.classifications
    ]
    np.testing.assert_allclose(scores, WANT_SCORES, rtol=1e-5)
    assert regressed.model_spec.signature_name == "regress"
    values = [r.value for r in regressed.regression_result.regressions]
    np.testing.assert_allclose(values, WANT_VALUES, rtol=1e-6)


@pytest.mark.parametrize(
    "tasks, words",
    [
        ([("tfs", "classify", "tensorflow/serving/predict")], "method_name"),
        (
            [
                ("tfs", "classify", "tensorflow/serving/classify"),
                ("tiny", "tf_example", "tensorflow/serving/classify"),
            ],
            "same model",
        ),
        (
            [
                ("tfs", "regress", "tensorflow/serving/regress"),
                ("tfs", "regress", "tensorflow/serving/regress"),
            ],
            "twice",
        ),
        ([("tfs", "classify", "tensorflow/serving/regress")], "cannot regress"),
        ([], "empty"),
    ],
)
def test_multi_inference_refuses_bad_tasks(stub, tasks, words):
    import grpc
    from tensorflow_serving.apis import inference_pb2

    request = inference_pb2.MultiInferenceRequest()
    for model, signature, method in tasks:
        task = request.tasks.add(method_name=method)
        task.model_spec.name = model
        task.model_spec.signature_name = signature
    point_examples(request.input)
    with pytest.raises(grpc.RpcError) as raised:
        stub.MultiInference(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in raised.value.details()


def test_regress_refuses_a_signature_without_outputs(stub):
    import grpc
    from tensorflow_serving.apis import regression_pb2

    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "tiny"
    example = request.input.example_list.examples.add()
    example.features.feature["image/encoded"].bytes_list.value.append(
        png(make_images(1)[0][0])
    )
    with pytest.raises(grpc.RpcError) as raised:
        stub.Regress(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'outputs'" in raised.value.details()


def test_metadata_is_a_signature_def_map_with_method_names(stub):
    from tensorflow_serving.apis import get_model_metadata_pb2

    response = stub.GetModelMetadata(
        get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec={"name": "tfs"}, metadata_field=["signature_def"]
        ),
        timeout=30,
    )
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_map)
    defs = signature_map.signature_def
    assert set(defs) == {"serving_default", "regress", "classify"}
    assert defs["regress"].method_name == "tensorflow/serving/regress"
    assert set(defs["regress"].outputs) == {"outputs"}
    assert set(defs["classify"].outputs) == {"classes", "scores"}


def test_rest_regress_and_classify(tfs_server):
    port = tfs_server.rest_port
    body = {"examples": [{"x": point.tolist()} for point in POINTS]}
    status, out = call(port, "POST", "/v1/models/tfs:regress", body)
    assert status == 200, out
    np.testing.assert_allclose(out["result"], WANT_VALUES, rtol=1e-6)

    status, out = call(
        port, "POST", "/v1/models/tfs:classify", {**body, "signature_name": "classify"}
    )
    assert status == 200, out
    assert [label for label, _ in out["result"][0]] == ["low", "high"]
    np.testing.assert_allclose(
        [[score for _, score in row] for row in out["result"]], WANT_SCORES, rtol=1e-5
    )


def test_rest_regress_on_a_model_that_cannot_regress(tfs_server):
    image = {"b64": base64.b64encode(png(make_images(1)[0][0])).decode()}
    status, out = call(
        tfs_server.rest_port,
        "POST",
        "/v1/models/tiny:regress",
        {"examples": [{"image/encoded": image}]},
    )
    assert status == 400
    assert "signature_name" in out["error"]
    status, out = call(
        tfs_server.rest_port,
        "POST",
        "/v1/models/tiny:classify",
        {"examples": [{"image/encoded": image}]},
    )
    assert status == 200, out
    assert [label for label, _ in out["result"][0]] == list(CLASSES)
