"""serving.rest_api: TF Serving's REST API (status, metadata, predict, classify).

Requests go to the session's `server` (conftest.py) over HTTP; the answers
are checked against the tiny SavedModel called directly (`expected`).
"""

import base64
import json
import re

import numpy as np
import pytest

from serving import numeric_json
from tests.serving.tiny_model import (
    CLASSES,
    IMAGE,
    OUTPUTS,
    assert_serving,
    call,
    make_images,
    png,
    predict,
)

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
    ("GET", "/v1/models/tiny/versions/x", None, 400, "Version must be an integer"),
    (
        "GET",
        "/v1/models/tiny/labels/canary",
        None,
        404,
        "Unknown version label 'canary'.* Valid: stable",
    ),
    (
        "POST",
        "/v1/models/tiny:explain",
        {"examples": []},
        501,
        "Unsupported method :explain",
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
    assert re.search(message, out["error"]), out["error"]
    assert_serving(server.rest_port, expected)
