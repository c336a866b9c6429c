"""serving.server: TF Serving's REST and gRPC APIs over a tiny SavedModel.

The SavedModel mimics the real export (signatures image_tensor = serving_default,
image_bytes, tf_example; outputs logits, probabilities, classes) without
training: hand-set weights make the class the brightest channel. One server
(two models, REST and gRPC on free 127.0.0.1 ports) serves most tests.
"""

import base64
import concurrent.futures
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from serving import model_config, numeric_json
from serving.batching import BatchScheduler
from serving.model_manager import LoadedVersion
from serving.server import ModelServer, grpc_available

CLASSES = ("red", "green", "blue")
OUTPUTS = ("classes", "logits", "probabilities")


# ---- the model -----------------------------------------------------------------------


def make_images(n, size=8, seed=0):
    """uint8 noise with channel `i % 3` brightened: the label."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = rng.integers(0, 100, (n, size, size, 3))
    images[np.arange(n), :, :, labels] += 120
    return images.astype(np.uint8), labels


def png(image):
    return tf.io.encode_png(image).numpy()


def write_tiny_saved_model(path):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(x))
    model.get_layer("head").set_weights([10 * np.eye(3, dtype=np.float32), np.zeros(3)])

    def outputs(images):
        logits = model(tf.image.resize(tf.cast(images, tf.float32), (8, 8)) / 255.0)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits),
            "classes": tf.argmax(logits, axis=-1, output_type=tf.int32),
        }

    def image_bytes(image_bytes):
        decode = lambda data: tf.cast(tf.io.decode_png(data, channels=3), tf.float32)  # noqa: E731
        return outputs(tf.map_fn(decode, image_bytes, fn_output_signature=tf.float32))

    def tf_example(examples):
        spec = {"image/encoded": tf.io.FixedLenFeature([], tf.string)}
        return image_bytes(tf.io.parse_example(examples, spec)["image/encoded"])

    archive = keras.export.ExportArchive()
    archive.track(model)
    image_spec = [tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")]
    for name, fn, spec in [
        ("serving_default", outputs, image_spec),
        ("image_tensor", outputs, image_spec),
        (
            "image_bytes",
            image_bytes,
            [tf.TensorSpec([None], tf.string, name="image_bytes")],
        ),
        ("tf_example", tf_example, [tf.TensorSpec([None], tf.string, name="examples")]),
    ]:
        archive.add_endpoint(name, fn, input_signature=spec)
    archive.write_out(path, verbose=False)
    with open(os.path.join(path, "labels.txt"), "w") as f:
        f.write("\n".join(CLASSES) + "\n")


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tiny") / "saved_model")
    write_tiny_saved_model(path)
    return path


@pytest.fixture(scope="module")
def model_root(tmp_path_factory, saved_model):
    root = tmp_path_factory.mktemp("models")
    for name in ("tiny", "hot"):
        shutil.copytree(saved_model, root / name / "1")
    return root


@pytest.fixture(scope="module")
def server(model_root):
    models = [
        model_config.ModelConfig(
            "tiny", str(model_root / "tiny"), version_labels=(("stable", 1),)
        ),
        model_config.ModelConfig("hot", str(model_root / "hot")),
    ]
    grpc_port = 0 if grpc_available() else None
    with ModelServer(
        models,
        rest_api_port=0,
        grpc_port=grpc_port,
        max_body_bytes=300_000,
        file_system_poll_wait_seconds=0.2,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def expected(saved_model):
    """Outputs of the SavedModel called directly."""
    images, labels = make_images(4)
    out = tf.saved_model.load(saved_model).signatures["image_tensor"](
        images=tf.constant(images)
    )
    return images, labels, {key: value.numpy() for key, value in out.items()}


# ---- HTTP helpers --------------------------------------------------------------------


def call(port, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    try:
        connection.request(method, path, body, headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def predict(port, body, model="tiny", headers=None):
    return call(port, "POST", f"/v1/models/{model}:predict", body, headers)


def assert_serving(port, expected):
    images, labels, _ = expected
    status, out = predict(port, {"instances": images[:2].tolist()})
    assert status == 200, out
    assert [row["classes"] for row in out["predictions"]] == labels[:2].tolist()


# ---- status and metadata -------------------------------------------------------------


def test_model_status(server):
    available = {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    assert call(server.rest_port, "GET", "/v1/models/tiny") == (200, available)
    assert call(server.rest_port, "GET", "/v1/models/tiny/versions/1") == (
        200,
        available,
    )


def test_metadata_has_tf_servings_shape(server):
    status, out = call(server.rest_port, "GET", "/v1/models/tiny/metadata")
    assert status == 200, out
    assert out["model_spec"] == {"name": "tiny", "signature_name": "", "version": "1"}
    signatures = out["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "image_tensor", "image_bytes", "tf_example"} <= set(
        signatures
    )
    images = signatures["image_tensor"]["inputs"]["images"]
    assert images["dtype"] == "DT_UINT8"
    assert [d["size"] for d in images["tensor_shape"]["dim"]] == ["-1", "-1", "-1", "3"]
    assert set(signatures["image_tensor"]["outputs"]) == set(OUTPUTS)
    assert signatures["image_tensor"]["method_name"] == "tensorflow/serving/predict"


# ---- predict -------------------------------------------------------------------------


def test_version_labels(server, expected):
    status, out = call(server.rest_port, "GET", "/v1/models/tiny/labels/stable")
    assert status == 200 and out["model_version_status"][0]["version"] == "1"
    images, labels, _ = expected
    body = {"instances": images.tolist()}
    status, out = call(
        server.rest_port, "POST", "/v1/models/tiny/labels/stable:predict", body
    )
    assert (
        status == 200 and [r["classes"] for r in out["predictions"]] == labels.tolist()
    )


def test_predict_row_format(server, expected):
    images, labels, want = expected
    status, out = predict(server.rest_port, {"instances": images.tolist()})
    assert status == 200, out
    rows = out["predictions"]
    assert [row["classes"] for row in rows] == labels.tolist()
    np.testing.assert_allclose(
        [r["probabilities"] for r in rows], want["probabilities"], atol=1e-6
    )
    named = {
        "signature_name": "image_tensor",
        "instances": [{"images": i} for i in images.tolist()],
    }
    status, out = predict(server.rest_port, named)
    assert (
        status == 200 and [r["classes"] for r in out["predictions"]] == labels.tolist()
    )


def test_predict_columnar_format(server, expected):
    images, labels, want = expected
    for inputs in (images.tolist(), {"images": images.tolist()}):
        status, out = predict(server.rest_port, {"inputs": inputs})
        assert status == 200, out
        assert out["outputs"]["classes"] == labels.tolist()
        np.testing.assert_allclose(out["outputs"]["logits"], want["logits"], atol=1e-5)


def test_large_numeric_bodies_take_the_fast_path_with_the_same_answer(server):
    images, labels = make_images(3, size=32, seed=4)
    body = {"instances": images.tolist()}
    assert isinstance(
        numeric_json.loads(json.dumps(body))["instances"], numeric_json.NumericText
    )
    compact = json.dumps(body, separators=(",", ":"))
    pretty = json.dumps(body, indent=1)  # newlines: the plain json path
    answers = [
        predict(server.rest_port, text) for text in (json.dumps(body), compact, pretty)
    ]
    assert all(status == 200 for status, _ in answers), answers
    assert answers[0] == answers[1] == answers[2]
    assert [r["classes"] for r in answers[0][1]["predictions"]] == labels.tolist()


def test_predict_b64_images(server, expected):
    images, labels, want = expected
    encoded = [{"b64": base64.b64encode(png(image)).decode()} for image in images]
    body = {"signature_name": "image_bytes", "instances": encoded}
    status, out = predict(server.rest_port, body)
    assert status == 200, out
    assert [row["classes"] for row in out["predictions"]] == labels.tolist()
    body = {"signature_name": "image_bytes", "inputs": {"image_bytes": encoded}}
    status, out = predict(server.rest_port, body)
    assert status == 200 and out["outputs"]["classes"] == labels.tolist()


def test_classify_maps_examples_to_the_tf_example_signature(server, expected):
    images, labels, want = expected
    examples = [
        {"image/encoded": {"b64": base64.b64encode(png(image)).decode()}}
        for image in images
    ]
    status, out = call(
        server.rest_port, "POST", "/v1/models/tiny:classify", {"examples": examples}
    )
    assert status == 200, out
    rows = zip(out["result"], labels, want["probabilities"], strict=True)
    for row, label, probabilities in rows:
        assert [name for name, _ in row] == list(CLASSES)  # labels.txt
        np.testing.assert_allclose(
            [score for _, score in row], probabilities, atol=1e-5
        )
        assert max(row, key=lambda pair: pair[1])[0] == CLASSES[label]


# ---- refused requests ----------------------------------------------------------------

IMAGE = np.zeros((1, 8, 8, 3), np.uint8).tolist()
BAD_REQUESTS = [
    (
        "POST",
        "/v1/models/tiny:predict",
        '{"instances": ' + "[" * 5000 + "]" * 5000 + "}",
        400,
        "nested too deeply",
    ),
    ("POST", "/v1/models/tiny:predict", '{"instances": [1, 2', 400, "Malformed JSON"),
    ("POST", "/v1/models/tiny:predict", "[1]", 400, "must be a JSON object"),
    (
        "POST",
        "/v1/models/tiny:predict",
        {"instances": IMAGE, "extra": 1},
        400,
        "Unknown field 'extra'",
    ),
    (
        "POST",
        "/v1/models/tiny:predict",
        {"instances": IMAGE, "inputs": IMAGE},
        400,
        "exactly one",
    ),
    (
        "POST",
        "/v1/models/tiny:predict",
        {"signature_name": "image_tensr", "instances": IMAGE},
        400,
        "Unknown signature_name 'image_tensr'. Did you mean 'image_tensor'",
    ),
    (
        "POST",
        "/v1/models/tiny:predict",
        {"instances": [{"imgs": IMAGE[0]}]},
        400,
        "Unknown input 'imgs'.*Expected inputs: images",
    ),
    ("POST", "/v1/models/tiny:predict", {"inputs": {}}, 400, "Missing input 'images'"),
    (
        "POST",
        "/v1/models/tiny:predict",
        {"instances": [[[[0.5, 1, 2]]]]},
        400,
        "expected integers",
    ),
    (
        "POST",
        "/v1/models/tiny:predict",
        {"instances": [[[[300, 1, 2]]]]},
        400,
        r"\[0, 255\]",
    ),
    (
        "POST",
        "/v1/models/tiny:predict",
        {"instances": [["a"]]},
        400,
        "expected numbers",
    ),
    (
        "POST",
        "/v1/models/tiny:predict",
        {"instances": [[1, 2]]},
        400,
        r"'images'.*must have shape \[-1, -1, -1, 3\]; received shape \[1, 2\]",
    ),
    (
        "POST",
        "/v1/models/tiny:predict",
        {"instances": [[[[1, 2, 3]]], [[[1, 2]]]]},
        400,
        "cannot read",
    ),
    (
        "POST",
        "/v1/models/tiny:predict",
        {"signature_name": "image_bytes", "instances": [{"b64": "!!"}]},
        400,
        "not valid base64",
    ),
    (
        "POST",
        "/v1/models/tiny:predict",
        {"signature_name": "image_bytes", "instances": [{"b64": "aGVsbG8="}]},
        400,
        "failed on this input",
    ),
    (
        "POST",
        "/v1/models/tiny:predict",
        {"signature_name": "image_bytes", "instances": [3]},
        400,
        "expected a string",
    ),
    (
        "POST",
        "/v1/models/nope:predict",
        {"instances": IMAGE},
        404,
        "Unknown model 'nope'",
    ),
    (
        "POST",
        "/v1/models/tiny/versions/9:predict",
        {"instances": IMAGE},
        404,
        "Version 9 of model 'tiny' is not loaded. Loaded versions: 1",
    ),
    (
        "GET",
        "/v1/models/tiny/versions/9",
        None,
        404,
        "Version 9 of model 'tiny' is unknown",
    ),
    ("GET", "/v1/models/tiny/versions/x", None, 400, "non-negative integer"),
    (
        "GET",
        "/v1/models/tiny/labels/canary",
        None,
        404,
        "Unknown version label 'canary'.* Valid: stable",
    ),
    (
        "POST",
        "/v1/models/tiny:regress",
        {"examples": []},
        501,
        "Unsupported method :regress",
    ),
    ("GET", "/v1/models/tiny:predict", None, 405, "Use POST"),
    ("GET", "/v2/models", None, 404, "Malformed request"),
    ("POST", "/v1/models/tiny:classify", {"examples": [{"x": []}]}, 400, "empty list"),
    (
        "POST",
        "/v1/models/tiny:classify",
        {"signature_name": "image_tensor", "examples": [{"x": 1}]},
        400,
        "cannot classify",
    ),
]


@pytest.mark.parametrize(
    "method,path,body,status,message",
    BAD_REQUESTS,
    ids=[r[-1][:30] for r in BAD_REQUESTS],
)
def test_bad_requests_get_a_4xx_with_a_message(
    server, expected, method, path, body, status, message
):
    got_status, out = call(server.rest_port, method, path, body)
    assert got_status == status, out
    assert set(out) == {"error"}
    assert __import__("re").search(message, out["error"]), out["error"]
    assert_serving(server.rest_port, expected)


def test_oversize_and_unsized_bodies(server, expected):
    # The server answers before reading the body; the client, still sending,
    # must get the reply rather than a broken pipe (several tries: a race).
    for _ in range(5):
        status, out = predict(server.rest_port, json.dumps({"instances": [[0] * 200_000]}))
        assert status == 413 and "limit is 300000 bytes" in out["error"]
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=10) as raw:
        raw.sendall(b"POST /v1/models/tiny:predict HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = raw.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 411") and "Content-Length" in reply
    assert_serving(server.rest_port, expected)


def raw_exchange(port, request: bytes) -> bytes:
    """Sends raw bytes; returns all the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        raw.sendall(request)
        chunks = []
        while chunk := raw.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_header_forms_are_read_as_the_stdlib_reads_them(server, expected):
    images, labels, _ = expected
    body = json.dumps({"instances": images[:1].tolist()}).encode()
    length = str(len(body)).encode()

    def post(headers: bytes) -> bytes:
        return raw_exchange(
            server.rest_port,
            b"POST /v1/models/tiny:predict HTTP/1.1\r\n"
            + headers
            + b"Connection: close\r\n\r\n"
            + body,
        )

    replies = [
        post(b"host: a\r\nHOST: b\r\ncontent-length:  " + length + b" \r\n"),
        post(b"X-Note: one\r\n  two\r\nContent-Length: " + length + b"\r\n"),  # folded
        post(b"Expect: 100-continue\r\nContent-Length: " + length + b"\r\n"),
    ]
    assert replies[2].startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    for reply in replies:
        head, _, answer = reply.rpartition(b"\r\n\r\n")
        assert b"HTTP/1.1 200 OK" in head and b"Connection: close" in head
        assert json.loads(answer)["predictions"][0]["classes"] == labels[0]
    bad = raw_exchange(server.rest_port, b"GET /v1/models/tiny x HTTP/1.1\r\n\r\n")
    assert bad.startswith(b"HTTP/1.1 400") and b"Bad request syntax" in bad
    many = b"GET /v1/models/tiny HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n"
    assert raw_exchange(server.rest_port, many).startswith(b"HTTP/1.1 431")
    long_line = b"GET /v1/models/tiny HTTP/1.1\r\nX-A: " + b"b" * 70000 + b"\r\n\r\n"
    assert raw_exchange(server.rest_port, long_line).startswith(b"HTTP/1.1 431")
    assert_serving(server.rest_port, expected)


# ---- load, new versions, stats -------------------------------------------------------


def test_50_concurrent_clients(server, expected):
    images, labels, _ = expected
    sizes = [8, 8, 16]  # different shapes never share a batch

    def client(index):
        connection = http.client.HTTPConnection(
            "127.0.0.1", server.rest_port, timeout=30
        )
        results = []
        for step in range(4):
            size = sizes[(index + step) % 3]
            batch, batch_labels = make_images(1 + index % 2, size=size, seed=index)
            body = json.dumps({"instances": batch.tolist()})
            connection.request("POST", "/v1/models/tiny:predict", body)
            response = connection.getresponse()
            out = json.loads(response.read())
            ok = (
                response.status == 200
                and [row["classes"] for row in out["predictions"]]
                == batch_labels.tolist()
            )
            results.append(ok or out)
        connection.close()
        return results

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        results = [r for rs in pool.map(client, range(50)) for r in rs]
    assert time.monotonic() - started < 60
    assert results == [True] * 200, [r for r in results if r is not True][:3]
    status, stats = call(server.rest_port, "GET", "/monitoring/stats")
    assert status == 200
    assert stats["endpoints"]["rest:predict"]["status"]["200"] >= 200
    assert stats["batching"]["rows"] >= 300
    assert set(stats["endpoints"]["rest:predict"]["latency_ms"]) == {
        "p50",
        "p90",
        "p99",
        "max",
        "mean",
    }


def wait_for(condition, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_new_version_is_served_without_restart(server, model_root, expected):
    staging = model_root / "staging"
    shutil.copytree(model_root / "hot" / "1", staging)
    os.rename(staging, model_root / "hot" / "2")  # appears whole
    port = server.rest_port

    def version_2_only():
        status, out = call(port, "GET", "/v1/models/hot")
        states = {s["version"]: s["state"] for s in out.get("model_version_status", [])}
        return states == {"2": "AVAILABLE", "1": "END"}

    assert wait_for(version_2_only), call(port, "GET", "/v1/models/hot")
    status, out = call(port, "GET", "/v1/models/hot/metadata")
    assert out["model_spec"]["version"] == "2"
    images, labels, _ = expected
    status, out = call(
        port,
        "POST",
        "/v1/models/hot/versions/2:predict",
        {"instances": images.tolist()},
    )
    assert (
        status == 200 and [r["classes"] for r in out["predictions"]] == labels.tolist()
    )
    status, out = call(
        port, "POST", "/v1/models/hot/versions/1:predict", {"instances": IMAGE}
    )
    assert status == 404 and "Loaded versions: 2" in out["error"]


def test_a_broken_version_is_reported_and_the_old_one_keeps_serving(
    tmp_path, saved_model, expected
):
    shutil.copytree(saved_model, tmp_path / "1")
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "saved_model.pb").write_bytes(b"not a SavedModel")
    with ModelServer(
        [model_config.ModelConfig("m", str(tmp_path))],
        rest_api_port=0,
        file_system_poll_wait_seconds=0,
    ) as running:
        status, out = call(running.rest_port, "GET", "/v1/models/m")
        states = {
            s["version"]: (s["state"], s["status"]["error_code"])
            for s in out["model_version_status"]
        }
        assert states == {"2": ("END", "UNKNOWN"), "1": ("AVAILABLE", "OK")}
        status, out = call(
            running.rest_port, "POST", "/v1/models/m:predict", {"instances": IMAGE}
        )
        assert status == 200, out


# ---- auth ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_server(model_root):
    grpc_port = 0 if grpc_available() else None
    with ModelServer(
        [model_config.ModelConfig("tiny", str(model_root / "tiny"))],
        rest_api_port=0,
        grpc_port=grpc_port,
        auth_token="s3cret",
        file_system_poll_wait_seconds=0,
    ) as running:
        yield running


def test_bearer_token(token_server, expected):
    port = token_server.rest_port
    status, out = predict(port, {"instances": IMAGE})
    assert status == 401 and "Missing bearer token" in out["error"]
    status, out = predict(
        port, {"instances": IMAGE}, headers={"Authorization": "Bearer nope"}
    )
    assert status == 401 and out["error"] == "Invalid bearer token."
    assert call(port, "GET", "/monitoring/stats")[0] == 401
    good = {"Authorization": "Bearer s3cret"}
    status, out = predict(port, {"instances": expected[0].tolist()}, headers=good)
    assert status == 200 and len(out["predictions"]) == 4


# ---- gRPC ----------------------------------------------------------------------------

needs_grpc = pytest.mark.skipif(
    not grpc_available(), reason="tensorflow-serving-api not installed"
)


@needs_grpc
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


@needs_grpc
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


# ---- dynamic batching ----------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded(saved_model):
    return LoadedVersion("tiny", 1, saved_model)


def test_batching_joins_compatible_requests_and_splits_the_results(loaded):
    calls = []
    scheduler = BatchScheduler(
        max_batch_size=8,
        batch_timeout_micros=300_000,
        num_batch_threads=1,
        on_batch=lambda requests, rows: calls.append((requests, rows)),
    )
    signature = loaded.signatures["image_tensor"]
    try:
        requests = [make_images(1 + i % 2, size=8, seed=i) for i in range(5)]
        requests.append(make_images(2, size=16, seed=9))  # another shape: its own call
        futures = [
            scheduler.submit(signature, {"images": images}) for images, _ in requests
        ]
        results = [future.result(timeout=30) for future in futures]
    finally:
        scheduler.stop()
    for (images, labels), result in zip(requests, results, strict=True):
        assert result["classes"].tolist() == labels.tolist()
        alone = signature.run({"images": images})
        np.testing.assert_allclose(result["logits"], alone["logits"], atol=1e-5)
    assert sorted(calls) == [(1, 2), (5, 7)]


def test_a_bad_row_fails_only_its_own_request(loaded):
    scheduler = BatchScheduler(
        max_batch_size=8, batch_timeout_micros=300_000, num_batch_threads=1
    )
    signature = loaded.signatures["image_bytes"]
    images, labels = make_images(3)
    inputs = [
        np.array([png(images[0])], object),
        np.array([b"junk"], object),
        np.array([png(images[2])], object),
    ]
    try:
        futures = [scheduler.submit(signature, {"image_bytes": x}) for x in inputs]
        assert futures[0].result(timeout=30)["classes"].tolist() == [labels[0]]
        with pytest.raises(Exception, match="failed on this input"):
            futures[1].result(timeout=30)
        assert futures[2].result(timeout=30)["classes"].tolist() == [labels[2]]
    finally:
        scheduler.stop()


# ---- the config file -----------------------------------------------------------------

CONFIG = """
# two models
model_config_list {
  config {
    name: "a"
    base_path: "/models/a"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 3 } }
    version_labels { key: "stable" value: 1 }
  }
  config: { name: 'b' base_path: "/models/b"
            model_version_policy { latest { num_versions: 2 } } }
}
"""


def test_config_file_with_both_parsers(tmp_path):
    path = tmp_path / "models.config"
    path.write_text(CONFIG)
    from_file = model_config.load_config_file(str(path))
    from_fallback = model_config.configs_from_tree(
        model_config.parse_text_proto(CONFIG)
    )
    assert from_file == from_fallback
    a, b = from_file
    assert (a.name, a.base_path, a.version_policy, a.versions) == (
        "a",
        "/models/a",
        "specific",
        (1, 3),
    )
    assert a.version_labels == (("stable", 1),)
    assert (b.name, b.num_versions) == ("b", 2)
    assert a.wanted([1, 2, 3, 4]) == [1, 3] and b.wanted([1, 2, 3, 4]) == [3, 4]


@pytest.mark.parametrize(
    "text,message",
    [
        (
            'model_config_list { config { name: "a" base_path: "/p" '
            "logging_config {} } }",
            "unsupported field 'logging_config'",
        ),
        (
            'model_config_list { config { name: "a" base_path: "/p" '
            'model_platform: "onnx" } }',
            "model_platform 'onnx' is not supported",
        ),
        (
            'model_config_list { config { name: "a" base_path: "/p" }',
            "(?i)unbalanced|text proto",
        ),
        ("model_config_list { }", "no `config` entries"),
    ],
)
def test_config_errors_name_the_field(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        model_config.configs_from_tree(model_config.parse_text_proto(text))
    path = tmp_path / "bad.config"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        model_config.load_config_file(str(path))


# ---- shutdown ------------------------------------------------------------------------


def test_stop_finishes_in_flight_requests(model_root, expected):
    running = ModelServer(
        [model_config.ModelConfig("tiny", str(model_root / "tiny"))],
        rest_api_port=0,
        file_system_poll_wait_seconds=0,
    )
    running.start()
    signature = running.manager.get("tiny").signatures["serving_default"]
    original = signature.run
    signature.run = lambda arrays: (time.sleep(0.5), original(arrays))[1]
    port = running.rest_port
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    idle.request("GET", "/v1/models/tiny")
    idle.getresponse().read()  # an idle keep-alive connection stays open
    result = {}
    worker = threading.Thread(
        target=lambda: result.update(answer=assert_serving(port, expected) or "ok")
    )
    worker.start()
    time.sleep(0.2)
    started = time.monotonic()
    running.stop()
    worker.join()
    assert result == {"answer": "ok"}
    assert time.monotonic() - started < 10
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Runs the binary; at exit it prints the `official` modules it imported (none).
_RUN_BINARY = """
import atexit, runpy, sys
atexit.register(lambda: print("official modules:", sorted(
    m for m in sys.modules if m.split(".")[0] == "official"), flush=True))
sys.argv = ["serving.server", *sys.argv[1:]]
runpy.run_module("serving.server", run_name="__main__", alter_sys=True)
"""


def test_binary_serves_and_exits_0_on_sigterm(model_root, expected):
    port = free_port()
    grpc_port = free_port() if grpc_available() else 0
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _RUN_BINARY,
            "--model_name=tiny",
            f"--model_base_path={model_root / 'tiny'}",
            f"--rest_api_port={port}",
            f"--port={grpc_port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    try:

        def up():
            try:
                return call(port, "GET", "/v1/models/tiny")[0] == 200
            except OSError:
                return False

        assert wait_for(lambda: process.poll() is not None or up(), timeout_s=90)
        assert process.poll() is None, process.communicate()[0]
        assert_serving(port, expected)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "Serving tiny on REST" in output and "Stopped." in output, output
    if grpc_port:
        assert f"gRPC 127.0.0.1:{grpc_port}" in output
    assert "official modules: []" in output, output
