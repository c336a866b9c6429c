"""serving.http_server: HTTP/1.1 framing, limits, auth and concurrent clients.

The hostile inputs of issue 16 (smuggling, duplicate framing headers, slow
and greedy clients) are in test_http_hardening.py.
"""

import concurrent.futures
import http.client
import json
import socket
import threading
import time

import pytest

from serving import model_config
from serving.server import ModelServer
from tests.serving.tiny_model import (
    IMAGE,
    assert_serving,
    call,
    make_images,
    predict,
    raw_exchange,
)


def test_oversize_and_unsized_bodies(server, expected):
    # The server answers before reading the body; the client, still sending,
    # must get the reply rather than a broken pipe (several tries: a race).
    for _ in range(5):
        status, out = predict(
            server.rest_port, json.dumps({"instances": [[0] * 200_000]})
        )
        assert status == 413 and "limit is 300000 bytes" in out["error"]
    # Without Content-Length or Transfer-Encoding a request has no body.
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=10) as raw:
        raw.sendall(b"POST /v1/models/tiny:predict HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = raw.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 400") and "Malformed JSON" in reply
    assert_serving(server.rest_port, expected)


def test_header_forms_and_malformed_requests(server, expected):
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
        post(b"HOST: a\r\ncontent-length:  " + length + b" \r\n"),
        post(b"Expect: 100-continue\r\nContent-Length: " + length + b"\r\n"),
    ]
    assert replies[1].startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    for reply in replies:
        head, _, answer = reply.rpartition(b"\r\n\r\n")
        assert b"HTTP/1.1 200 OK" in head and b"Connection: close" in head
        assert json.loads(answer)["predictions"][0]["classes"] == labels[0]
    # Obsolete line folding is refused (RFC 9112 5.2 allows 400).
    folded = post(b"X-Note: one\r\n  two\r\nContent-Length: " + length + b"\r\n")
    assert folded.startswith(b"HTTP/1.1 400") and b'{"error": "Bad request' in folded
    bad = raw_exchange(server.rest_port, b"GET /v1/models/tiny x HTTP/1.1\r\n\r\n")
    assert bad.startswith(b"HTTP/1.1 400") and b'{"error": "Bad request' in bad
    many = (
        b"GET /v1/models/tiny HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 101 + b"\r\n"
    )
    assert raw_exchange(server.rest_port, many).startswith(b"HTTP/1.1 431")
    long_line = (
        b"GET /v1/models/tiny HTTP/1.1\r\nHost: x\r\nX-A: " + b"b" * 70000 + b"\r\n\r\n"
    )
    assert raw_exchange(server.rest_port, long_line).startswith(b"HTTP/1.1 431")
    assert_serving(server.rest_port, expected)


# ---- load and stats -------------------------------------------------------


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


# ---- auth ----------------------------------------------------------------------------


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
