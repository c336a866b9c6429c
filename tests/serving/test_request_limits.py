"""Per-request limits (serving/request_limits.py), checked before allocating.

Over-limit requests are tiny: a TensorProto declaring a huge shape with no
values, a PNG / JPEG whose header is forged to declare 20000x20000 pixels.
Each is refused with INVALID_ARGUMENT / 400 naming the flag; none may make
the server allocate the tensor or the image.
"""

import base64
import io
import json
import struct

import numpy as np
import pytest
import tensorflow as tf
from absl import app, flags

from serving import image_header, json_codec, model_config, numeric_json
from serving import server as server_module
from serving.request_limits import (
    DEFAULT_MAX_IMAGE_PIXELS,
    ElementBudget,
    RequestLimits,
    declared_elements,
)
from serving.server import ModelServer, grpc_available
from serving.serving_error import ServingError
from tests.serving.tiny_model import call, make_images, png, predict

HUGE = 20000  # 20000 x 20000 = 400 MP, 1.2 GB as uint8 RGB


def forged_png(width=HUGE, height=HUGE):
    """A valid 8x8 PNG whose IHDR declares `width` x `height`."""
    data = png(make_images(1)[0][0])
    return data[:16] + struct.pack(">II", width, height) + data[24:]


def forged_jpeg(width=HUGE, height=HUGE):
    """A valid 8x8 JPEG whose SOF0 declares `width` x `height`."""
    data = tf.io.encode_jpeg(make_images(1)[0][0]).numpy()
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]


def gif(width, height):
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00" * 8


def bmp(width, height, header_size=40):
    return b"BM" + b"\x00" * 12 + struct.pack("<Iii", header_size, width, height)


def webp(chunk, payload):
    return b"RIFF\x00\x00\x00\x00WEBP" + chunk + b"\x00" * 4 + payload


# ---- header parsing ------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, want",
    [
        (forged_png(), ("PNG", HUGE, HUGE)),
        (forged_jpeg(300, 200), ("JPEG", 300, 200)),
        (png(make_images(1)[0][0]), ("PNG", 8, 8)),
        (gif(640, 480), ("GIF", 640, 480)),
        (bmp(640, -480), ("BMP", 640, 480)),
        (
            webp(b"VP8X", b"\x00" * 4 + (639).to_bytes(3, "little") * 2),
            ("WebP", 640, 640),
        ),
        (b"BMW makes cars in Germany and elsewhere too", None),
        (b"plain text", None),
        (b"\x89PNG\r\n\x1a\n", None),  # truncated
    ],
)
def test_image_size_reads_headers(data, want):
    assert image_header.image_size(data) == want


def test_image_size_agrees_with_real_encoders():
    pil = pytest.importorskip("PIL.Image")
    image = pil.fromarray(make_images(1, size=9)[0][0][:, :7])
    for kind, options in [
        ("PNG", {}),
        ("JPEG", {"progressive": True}),
        ("GIF", {}),
        ("BMP", {}),
        ("WEBP", {}),
        ("WEBP", {"lossless": True}),
    ]:
        buffer = io.BytesIO()
        image.save(buffer, kind, **options)
        assert image_header.image_size(buffer.getvalue())[1:] == (7, 9), kind


# ---- element counting -------------------------------------------------------------


def test_declared_elements_stops_early_and_handles_zero():
    assert declared_elements([2, 3, 4], 100) == 24
    assert declared_elements([2**40, 32, 32, 3], 100) == 101
    assert declared_elements([2**62] * 1000, 10) == 11
    assert declared_elements([2**40, 0], 10) == 0


def test_budget_counts_all_inputs_of_a_request():
    budget = ElementBudget(100)
    budget.take([5, 10], "a")
    with pytest.raises(ServingError, match="--max_tensor_elements") as raised:
        budget.take([51], "b")
    assert raised.value.code == "INVALID_ARGUMENT"
    with pytest.raises(ServingError, match="negative"):
        ElementBudget(100).take([-1, 3], "c")
    ElementBudget(0).take([2**40, 2**40], "off")  # 0: no limit


def test_limits_refuse_negative_values():
    with pytest.raises(ValueError, match="max_image_pixels"):
        RequestLimits(max_image_pixels=-1)


def test_server_flags():
    fv = flags.FlagValues()
    server_module.define_flags(fv)
    fv(["serve", "--max_tensor_elements=1000", "--max_image_pixels=0"])
    assert server_module.request_limits_from_flags(fv) == RequestLimits(1000, 0)
    fv(["serve", "--max_tensor_elements=-5"])
    with pytest.raises(app.UsageError, match="max_tensor_elements"):
        server_module.request_limits_from_flags(fv)


def test_json_decoding_checks_the_declared_shape_first():
    signature = _one_input_signature(tf.uint8, [None, 8, 8, 3])
    limits = RequestLimits(max_tensor_elements=400)
    two = make_images(2)[0].tolist()  # 384 elements
    json_codec.decode_request({"instances": two}, lambda name: signature, limits)
    three = json.dumps({"instances": make_images(3)[0].tolist()})
    fast = numeric_json.loads(three)  # long arrays stay text until the shape is read
    assert isinstance(fast["instances"], numeric_json.NumericText)
    for body in (json.loads(three), fast, {"inputs": [[[[1] * 500]]]}):
        with pytest.raises(ServingError, match="--max_tensor_elements"):
            json_codec.decode_request(body, lambda name: signature, limits)


def _one_input_signature(dtype, shape):
    from serving.signature import Signature

    spec = tf.TensorSpec(shape, dtype, "images")
    return Signature("s", {"images": spec}, {}, call=None)


# ---- REST --------------------------------------------------------------------------


def b64(data):
    return {"b64": base64.b64encode(data).decode()}


@pytest.mark.parametrize("forge", [forged_png, forged_jpeg])
def test_rest_refuses_a_forged_image_header(server, forge):
    body = {"signature_name": "image_bytes", "instances": [b64(forge())]}
    status, out = predict(server.rest_port, body)
    assert status == 400
    assert "--max_image_pixels" in out["error"]
    assert f"{HUGE}x{HUGE}" in out["error"]
    assert str(DEFAULT_MAX_IMAGE_PIXELS) in out["error"]


def test_rest_classify_refuses_a_forged_image_feature(server):
    body = {"examples": [{"image/encoded": b64(forged_png())}]}
    status, out = call(server.rest_port, "POST", "/v1/models/tiny:classify", body)
    assert status == 400
    assert "--max_image_pixels" in out["error"]


@pytest.fixture(scope="module")
def small_limits_server(model_root):
    with ModelServer(
        [model_config.ModelConfig("tiny", str(model_root / "tiny"))],
        rest_api_port=0,
        grpc_port=0 if grpc_available() else None,
        file_system_poll_wait_seconds=0,
        request_limits=RequestLimits(max_tensor_elements=400, max_image_pixels=100),
    ) as running:
        yield running


def test_rest_small_limits(small_limits_server):
    port = small_limits_server.rest_port
    images = make_images(3)[0]
    assert predict(port, {"instances": images[:2].tolist()})[0] == 200
    status, out = predict(port, {"instances": images.tolist()})  # 576 elements
    assert status == 400
    assert "400 tensor elements" in out["error"]
    assert "--max_tensor_elements" in out["error"]
    body = {"signature_name": "image_bytes", "instances": [b64(png(images[0]))]}
    assert predict(port, body)[0] == 200  # 64 pixels
    big = png(make_images(1, size=11)[0][0])  # 121 pixels
    body = {"signature_name": "image_bytes", "instances": [b64(big)]}
    status, out = predict(port, body)
    assert status == 400
    assert "11x11 = 121 pixels" in out["error"]


# ---- gRPC -------------------------------------------------------------------------

needs_grpc = pytest.mark.skipif(
    not grpc_available(), reason="tensorflow-serving-api not installed"
)


def _grpc_predict(port, signature_name, key, proto):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tiny"
    request.model_spec.signature_name = signature_name
    request.inputs[key].CopyFrom(proto)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Predict(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return raised.value.details()


@needs_grpc
@pytest.mark.parametrize(
    "shape", [[1, HUGE, HUGE, 3], [2**40, 32, 32, 3], [2**62, 2**62, 2**62, 3]]
)
def test_grpc_refuses_a_declared_shape_before_allocating(server, shape):
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

    proto = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_UINT8,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape]
        ),
    )
    assert proto.ByteSize() < 100
    details = _grpc_predict(server.grpc_port, "image_tensor", "images", proto)
    assert "--max_tensor_elements" in details
    assert "inputs['images']" in details


@needs_grpc
@pytest.mark.parametrize("forge", [forged_png, forged_jpeg])
def test_grpc_refuses_a_forged_image_in_a_string_tensor(server, forge):
    proto = tf.make_tensor_proto([forge()], dtype=tf.string)
    details = _grpc_predict(server.grpc_port, "image_bytes", "image_bytes", proto)
    assert "--max_image_pixels" in details


@needs_grpc
def test_grpc_classify_refuses_a_forged_image_feature(server):
    import grpc
    from tensorflow_serving.apis import classification_pb2, prediction_service_pb2_grpc

    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "tiny"
    example = request.input.example_list.examples.add()
    example.features.feature["image/encoded"].bytes_list.value.append(forged_png())
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Classify(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "--max_image_pixels" in raised.value.details()


@needs_grpc
def test_grpc_small_element_limit(small_limits_server):
    proto = tf.make_tensor_proto(np.zeros((3, 8, 8, 3), np.uint8))
    details = _grpc_predict(
        small_limits_server.grpc_port, "image_tensor", "images", proto
    )
    assert "400 tensor elements" in details


class _OneFloatInput:
    name = "s"
    inputs = {"x": tf.TensorSpec([None, None], tf.float32)}

    def check_inputs(self, arrays):
        pass


def test_a_body_of_empty_lists_is_refused_before_json_reads_it(monkeypatch):
    # 60 MB of "[]," once cost 44 s of CPU in json.loads; the count of lists
    # that would go the slow way is checked first.
    monkeypatch.setattr(json_codec, "MAX_SLOW_ARRAYS", 1000)
    body = numeric_json.loads('{"instances": [' + "[]," * 2000 + "[]]}")
    calls = []
    monkeypatch.setattr(json, "loads", lambda *a, **k: calls.append(a))
    with pytest.raises(ServingError) as e:
        json_codec.decode_request(body, lambda name: _OneFloatInput())
    assert e.value.code == "INVALID_ARGUMENT"
    assert "2002 nested lists" in str(e.value) and "at most 1000" in str(e.value)
    assert not calls  # json.loads never saw the lists


def test_float_lists_under_the_bound_still_decode(monkeypatch):
    monkeypatch.setattr(json_codec, "MAX_SLOW_ARRAYS", 1000)
    rows = [[0.5, 1.5]] * 300
    body = numeric_json.loads(json.dumps({"instances": rows}))
    _, arrays, _ = json_codec.decode_request(body, lambda name: _OneFloatInput())
    np.testing.assert_array_equal(arrays["x"], np.asarray(rows, np.float32))


def test_a_long_name_is_quoted_back_clipped():
    from serving.serving_error import choices

    message = choices("signature_name", "s" * 5000, ["image_bytes", "image_tensor"])
    assert "(5000 characters)" in message and len(message) < 400
    assert "Valid: image_bytes, image_tensor." in message
