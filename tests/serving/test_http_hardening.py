"""Issue 16's HTTP probes replayed against running servers, with the new answers.

Request smuggling after a refused POST, duplicate framing headers, oversize
and greedy bodies, too many connections or requests, slow clients, auth
before routing, odd inputs that used to be 500s, chunked bodies; and a slow
soak of 200 clients mixing good and bad requests.
"""

import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest
from absl import app, flags

from serving import model_config
from serving import server as server_lib
from serving.admission import Limits
from serving.server import ModelServer
from tests.serving.tiny_model import IMAGE, assert_serving, call, raw_exchange

PREDICT = "/v1/models/tiny:predict"
GOOD_BODY = json.dumps({"instances": IMAGE}).encode()
LIMITED = Limits(
    max_connections=3,
    max_requests_in_flight=1,
    max_body_bytes=150_000,
    max_body_bytes_in_flight=200_000,
    header_timeout_s=0.5,
    body_timeout_s=0.5,
)


@pytest.fixture
def limited(model_root):
    """A server with small limits and deadlines (a fresh one per test)."""
    with ModelServer(
        [model_config.ModelConfig("tiny", str(model_root / "tiny"))],
        rest_api_port=0,
        file_system_poll_wait_seconds=0,
        limits=LIMITED,
    ) as running:
        yield running


@pytest.fixture
def no_errors_logged(caplog):
    """Fails the test when the server logs an error (e.g. an unhandled 500)."""
    caplog.set_level(logging.ERROR)
    yield
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors


def request(method, path, body=b"", headers=b"", close=False) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: t\r\n".encode() + headers
    if body or method == "POST":
        head += b"Content-Length: %d\r\n" % len(body)
    if close:
        head += b"Connection: close\r\n"
    return head + b"\r\n" + body


def responses(data: bytes) -> list[tuple[int, dict, bytes]]:
    """The (status, JSON body, head) of each response in `data`, in order."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status == 100:
            data = rest
            continue
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        out.append((status, json.loads(rest[:length]), head))
        data = rest[length:]
    return out


def connect(port) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def read_until_closed(sock) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


# ---- framing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path,status",
    [
        ("/nowhere", 404),
        ("/monitoring/stats", 405),
        ("/v1/models/tiny/versions/x:predict", 400),
        ("/v1/models/tiny:explode", 501),
    ],
)
def test_a_refused_post_is_one_response_on_keep_alive(server, path, status):
    smuggled = request("GET", "/v1/models/tiny/metadata")
    data = raw_exchange(
        server.rest_port,
        request("POST", path, body=smuggled)
        + request("GET", "/v1/models/tiny", close=True),
    )
    answers = responses(data)
    assert [a[0] for a in answers] == [status, 200], answers
    assert set(answers[0][1]) == {"error"}
    assert "model_version_status" in answers[1][1]  # not the smuggled metadata


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 4\r\nContent-Length: 100\r\n",
        b"Content-Length: 4\r\nContent-Length: 4\r\n",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
    ],
    ids=["two-lengths", "same-length-twice", "two-encodings", "length-and-encoding"],
)
def test_duplicate_or_conflicting_framing_is_400_and_closes(server, expected, framing):
    follow = request("GET", "/v1/models/tiny")
    data = raw_exchange(
        server.rest_port,
        b"POST "
        + PREDICT.encode()
        + b" HTTP/1.1\r\nHost: t\r\n"
        + framing
        + b"\r\n4\r\n{}{}\r\n0\r\n\r\n"
        + follow,
    )
    answers = responses(data)  # raw_exchange read until the server closed
    assert len(answers) == 1 and answers[0][0] == 400, answers
    assert b"Connection: close" in answers[0][2]
    assert answers[0][1]["error"].startswith("Bad request")
    assert_serving(server.rest_port, expected)


def test_a_chunked_body_is_read(server, expected):
    images, labels, _ = expected
    body = json.dumps({"instances": images[:2].tolist()}).encode()
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 100]), body[i : i + 100])
        for i in range(0, len(body), 100)
    )
    head = b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: t\r\n"
    data = raw_exchange(
        server.rest_port,
        head
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + chunks
        + b"0\r\n\r\n"
        + request("GET", "/v1/models/tiny", close=True),
    )
    (status, out, _), (status2, _, _) = responses(data)
    assert status == 200 and status2 == 200, out
    assert [row["classes"] for row in out["predictions"]] == labels[:2].tolist()
    # Over --max_body_bytes (300000 in this server) while it arrives: 413.
    big = b"%x\r\n%s\r\n" % (200_000, b"1" * 200_000)
    data = raw_exchange(
        server.rest_port,
        head + b"Transfer-Encoding: chunked\r\n\r\n" + big * 2 + b"0\r\n\r\n",
    )
    ((status, out, _),) = responses(data)
    assert status == 413 and "--max_body_bytes" in out["error"]


def test_an_oversize_body_is_413_before_it_is_sent(server):
    with connect(server.rest_port) as sock:
        sock.sendall(
            b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: t\r\n"
            b"Content-Length: 1000000000\r\n\r\n"
        )  # and no body at all
        ((status, out, head),) = responses(read_until_closed(sock))
    assert status == 413 and "limit is 300000 bytes" in out["error"]
    assert b"Connection: close" in head


# ---- admission -------------------------------------------------------------------


def test_connections_over_the_limit_get_503_at_once(limited, expected):
    port = limited.rest_port
    held = [connect(port) for _ in range(LIMITED.max_connections)]
    try:
        for sock in held:  # answered, so accepted and counted; now idle
            sock.sendall(request("GET", "/v1/models/tiny"))
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        with connect(port) as extra:
            ((status, out, _),) = responses(read_until_closed(extra))
        assert status == 503 and "--max_connections" in out["error"]
    finally:
        for sock in held:
            sock.close()
    assert wait_until(lambda: call(port, "GET", "/v1/models/tiny")[0] == 200)


def test_requests_over_the_limit_get_503_at_once(limited):
    port = limited.rest_port
    with connect(port) as first, connect(port) as second:
        first.sendall(
            b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: t\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(GOOD_BODY)
        )
        assert first.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"  # admitted
        second.sendall(request("GET", "/v1/models/tiny", close=True))
        ((status, out, _),) = responses(read_until_closed(second))
        assert status == 503 and "--max_requests_in_flight" in out["error"]
        first.sendall(GOOD_BODY)
        assert first.recv(65536).startswith(b"HTTP/1.1 200")
    stats = call(port, "GET", "/monitoring/stats")[1]
    assert stats["admission"]["requests_in_flight"]["refused"] >= 1


def test_body_bytes_in_flight_are_bounded(model_root):
    limits = Limits(max_body_bytes=150_000, max_body_bytes_in_flight=200_000)
    with ModelServer(
        [model_config.ModelConfig("tiny", str(model_root / "tiny"))],
        rest_api_port=0,
        file_system_poll_wait_seconds=0,
        limits=limits,
    ) as running:
        port = running.rest_port
        with connect(port) as first, connect(port) as second:
            first.sendall(
                b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: t\r\n"
                b"Expect: 100-continue\r\nContent-Length: 150000\r\n\r\n"
            )
            assert first.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"  # held
            second.sendall(
                b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: t\r\n"
                b"Content-Length: 100000\r\n\r\n"
            )
            ((status, out, _),) = responses(read_until_closed(second))
            assert status == 503 and "--max_body_bytes_in_flight" in out["error"]
            first.sendall(b" " * 150_000)  # JSON of only spaces: 400, bytes freed
            assert first.recv(65536).startswith(b"HTTP/1.1 400")
        assert running.rest.admission.body_bytes.value == 0
        assert call(port, "POST", PREDICT, GOOD_BODY)[0] == 200


def test_slow_clients_are_dropped_at_the_deadlines(limited):
    port = limited.rest_port
    with connect(port) as sock:
        sock.sendall(b"GET /v1/models/tiny HTTP/1.1\r\nHost: t\r\n")  # no end
        assert read_until_closed(sock) == b""  # closed by the server
    with connect(port) as sock:
        sock.sendall(
            b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: t\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        ((status, out, _),) = responses(read_until_closed(sock))
        assert status == 408 and "--body_timeout_s" in out["error"]
    assert call(port, "GET", "/v1/models/tiny")[0] == 200


def test_limit_flags_are_checked():
    for flag, message in [
        ("--max_connections=0", "--max_connections must be > 0"),
        ("--header_timeout_s=-1", "--header_timeout_s must be > 0"),
        ("--max_body_bytes_in_flight=10", "--max_body_bytes must be <="),
    ]:
        fv = flags.FlagValues()
        server_lib.define_flags(fv)
        fv(["serving.server", "--model_base_path=/m", flag])
        with pytest.raises(app.UsageError, match=message):
            server_lib.limits_from_flags(fv)


# ---- auth and odd inputs ---------------------------------------------------------


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/nowhere"),
        ("GET", "/v1/models/tiny/versions/x"),
        ("POST", "/v1/models/tiny:explode"),
        ("GET", "/v1/models/tiny:predict"),
    ],
)
def test_the_token_is_checked_before_routing(token_server, method, path):
    status, out = call(
        token_server.rest_port, method, path, b"{}" if method == "POST" else None
    )
    assert status == 401 and "Missing bearer token" in out["error"]


def _nested(leaf, depth):
    for _ in range(depth):
        leaf = [leaf]
    return leaf


@pytest.mark.parametrize(
    "path,body",
    [
        ("/v1/models/tiny/versions/" + "9" * 5000, None),
        ("/v1/models/tiny/versions/" + "9" * 5000 + ":predict", GOOD_BODY),
        (PREDICT, {"signature_name": "s" * 5000, "instances": IMAGE}),
        (PREDICT, {"instances": _nested(0, 65)}),
        (PREDICT, {"signature_name": "image_bytes", "instances": _nested("aGk=", 65)}),
        (
            PREDICT,
            {"signature_name": "image_bytes", "inputs": _nested({"b64": "aGk="}, 65)},
        ),
    ],
    ids=[
        "long-version",
        "long-version-predict",
        "long-signature",
        "nested-65",
        "nested-65-strings",
        "nested-65-b64",
    ],
)
def test_odd_inputs_are_4xx_not_500(server, no_errors_logged, path, body):
    status, out = call(server.rest_port, "POST" if body else "GET", path, body)
    assert 400 <= status < 500, out
    assert set(out) == {"error"}


@pytest.mark.parametrize("value", ["²".encode(), b"\xb2", b"-1", b"1e3", b"9" * 5000])
def test_a_bad_content_length_is_400(server, no_errors_logged, value):
    data = raw_exchange(
        server.rest_port,
        b"POST "
        + PREDICT.encode()
        + b" HTTP/1.1\r\nHost: t\r\nContent-Length: "
        + value
        + b"\r\n\r\n{}",
    )
    ((status, out, _),) = responses(data)
    assert status == 400 and "Content-Length" in out["error"], out


# ---- soak ------------------------------------------------------------------------


def wait_until(condition, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        kilobytes = next(
            int(line.split()[1]) for line in f if line.startswith("VmRSS:")
        )
    return kilobytes * 1024


_MIX = [
    (request("POST", PREDICT, GOOD_BODY), 200),
    (request("POST", PREDICT, b'{"instances": [[[[1, 2'), 400),
    (request("POST", "/nowhere", request("GET", "/v1/models/tiny")), 404),
    (request("GET", "/v1/models/tiny"), 200),
    (request("POST", "/v1/models/tiny:explode", b"{}"), 501),
]


def _soak_client(port, stop_at, index, counts, lock):
    sock = None
    step = index
    while time.monotonic() < stop_at:
        if sock is None:
            sock = connect(port)
            buffer = b""
        data, want = _MIX[step % len(_MIX)]
        step += 1
        sock.sendall(data)
        while b"\r\n\r\n" not in buffer:
            buffer += sock.recv(65536)
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        while len(buffer) < length:
            buffer += sock.recv(65536)
        buffer = buffer[length:]
        status = int(head.split(b" ", 2)[1])
        with lock:
            counts[(want, status)] = counts.get((want, status), 0) + 1
        if b"Connection: close" in head:
            sock.close()
            sock = None
    if sock is not None:
        sock.close()


def _soak(port, clients, seconds):
    counts, lock = {}, threading.Lock()
    stop_at = time.monotonic() + seconds
    threads = [
        threading.Thread(target=_soak_client, args=(port, stop_at, i, counts, lock))
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    assert not any(t.is_alive() for t in threads)
    return counts


@pytest.mark.slow
def test_soak_200_clients_good_and_bad_requests(model_root):
    """200 clients for 30 s: every good request answered 200; RSS after the soak
    within 25% + 64 MiB of RSS after a 5-s warm-up of the same mix."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serving.server",
            "--model_name=tiny",
            f"--model_base_path={model_root / 'tiny'}",
            "--rest_api_port=-1",
            "--port=0",
            "--file_system_poll_wait_seconds=0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=os.path.dirname(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        ),
    )
    try:
        port = None
        for line in process.stdout:
            if match := re.search(r"on REST http://127\.0\.0\.1:(\d+)", line):
                port = int(match.group(1))
                break
        assert port, "the server did not start"
        threading.Thread(
            target=lambda: [None for _ in process.stdout], daemon=True
        ).start()
        warm = _soak(port, 200, 5)
        rss_warm = _rss_bytes(process.pid)
        counts = _soak(port, 200, 30)
        rss_after = _rss_bytes(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)
    for result in (warm, counts):
        wrong = {k: v for k, v in result.items() if k[0] != k[1]}
        assert not wrong, result
    print(f"soak: {counts}; RSS warm {rss_warm >> 20} MiB, after {rss_after >> 20} MiB")
    assert counts[(200, 200)] > 1000, counts
    assert rss_after <= rss_warm * 1.25 + (64 << 20), (rss_warm, rss_after)
