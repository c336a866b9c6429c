"""serving.grpc_api: TF Serving's gRPC API with TF Serving's own client stubs."""

import numpy as np
import pytest
import tensorflow as tf

from serving.server import grpc_available
from tests.serving.tiny_model import CLASSES, png

pytestmark = pytest.mark.skipif(
    not grpc_available(), reason="tensorflow-serving-api not installed"
)


def test_grpc_predict_metadata_and_status(server, expected):
    import grpc
    from tensorflow_serving.apis import (
        classification_pb2,
        get_model_metadata_pb2,
        get_model_status_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
    )

    images, labels, want = expected
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "tiny"
        request.model_spec.signature_name = "image_tensor"
        request.inputs["images"].CopyFrom(tf.make_tensor_proto(images))
        response = stub.Predict(request, timeout=30)
        assert response.model_spec.version.value == 1
        np.testing.assert_array_equal(
            tf.make_ndarray(response.outputs["classes"]), labels
        )
        np.testing.assert_allclose(
            tf.make_ndarray(response.outputs["probabilities"]),
            want["probabilities"],
            atol=1e-6,
        )
        request.output_filter.append("classes")
        assert list(stub.Predict(request, timeout=30).outputs) == ["classes"]

        metadata = stub.GetModelMetadata(
            get_model_metadata_pb2.GetModelMetadataRequest(
                model_spec={"name": "tiny"}, metadata_field=["signature_def"]
            ),
            timeout=30,
        )
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        metadata.metadata["signature_def"].Unpack(signature_map)
        assert (
            signature_map.signature_def["image_bytes"].inputs["image_bytes"].dtype
            == tf.string.as_datatype_enum
        )

        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "tiny"}),
            timeout=30,
        )
        assert [(s.version, s.state) for s in status.model_version_status] == [
            (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
        ]

        classify_request = classification_pb2.ClassificationRequest()
        classify_request.model_spec.name = "tiny"
        classify_request.model_spec.version_label = "stable"
        for image in images:
            example = classify_request.input.example_list.examples.add()
            example.features.feature["image/encoded"].bytes_list.value.append(
                png(image)
            )
        result = stub.Classify(classify_request, timeout=30).result
        for classification, label in zip(result.classifications, labels, strict=True):
            assert [c.label for c in classification.classes] == list(CLASSES)
            best = max(classification.classes, key=lambda c: c.score)
            assert best.label == CLASSES[label]

        request.inputs["images"].CopyFrom(
            tf.make_tensor_proto(images.astype(np.float32))
        )
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(request, timeout=30)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "must be DT_UINT8; received DT_FLOAT" in error.value.details()
        request.model_spec.name = "nope"
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(request, timeout=30)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_grpc_bearer_token(token_server, expected):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest(model_spec={"name": "tiny"})
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(expected[0]))
    with grpc.insecure_channel(f"127.0.0.1:{token_server.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(request, timeout=30)
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        response = stub.Predict(
            request, timeout=30, metadata=[("authorization", "Bearer s3cret")]
        )
        np.testing.assert_array_equal(
            tf.make_ndarray(response.outputs["classes"]), expected[1]
        )


def test_grpc_calls_beyond_the_in_flight_limit_are_refused_at_once(model_root):
    import threading

    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from serving import model_config
    from serving.admission import Limits
    from serving.server import ModelServer
    from tests.serving.tiny_model import make_images

    entered, release = threading.Event(), threading.Event()
    with ModelServer(
        [model_config.ModelConfig("tiny", str(model_root / "tiny"))],
        rest_api_port=None,
        grpc_port=0,
        limits=Limits(max_requests_in_flight=1),
        file_system_poll_wait_seconds=0,
    ) as running:
        run = running.scheduler.run

        def held_run(*args, **kwargs):
            entered.set()
            release.wait(30)
            return run(*args, **kwargs)

        running.scheduler.run = held_run
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "tiny"
        request.model_spec.signature_name = "image_tensor"
        request.inputs["images"].CopyFrom(tf.make_tensor_proto(make_images(1)[0]))
        with grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            first = stub.Predict.future(request, timeout=60)
            assert entered.wait(30)
            with pytest.raises(grpc.RpcError) as refused:
                stub.Predict(request, timeout=30)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            release.set()
            assert "classes" in first.result().outputs
