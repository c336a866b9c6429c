"""One REST connection: httptools parses, requests are admitted and answered in order.

`Connection.run()` is the thread of one client connection of
`serving/http_server.py`'s `RestServer` (which describes the order of the
checks). httptools (MagicStack's binding of llhttp, Node.js' HTTP parser,
and uvicorn's default) calls back as the bytes are fed; a request is
admitted when its headers are complete and answered once its body is in.

Imports httptools, absl logging and the standard library.
"""

from __future__ import annotations

import collections
import email.utils
import hmac
import http
import json
import socket
import time
from typing import TYPE_CHECKING

from absl import logging

from serving.admission import Limits
from serving.serving_error import ServingError

try:
    import httptools
except ImportError as e:  # pragma: no cover - the extra is part of `make install`
    raise ImportError(
        "The REST server needs httptools, in the extra `serving` "
        "(pip install httptools)."
    ) from e

if TYPE_CHECKING:
    from serving.http_server import RestServer

MAX_HEADER_BYTES = 64 << 10  # request line + headers; more is 431.
MAX_HEADERS = 100
DRAIN_BYTES = 64 << 10  # a refused body up to this size is read to keep the connection
LINGER_S = 2.0  # after refusing an unread body, read and drop it this long.
_RECV_BYTES = 1 << 16
_BODY_RECV_BYTES = 1 << 20


class _Stop(Exception):
    """Raised in a parser callback: stop parsing, answer, close."""


class _Request:
    """One request as the parser delivers it, and what was decided about it."""

    def __init__(self):
        self.started = time.monotonic()
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.fields: dict[bytes, bytes] = {}  # by lower-case name, once complete
        self.length = 0  # Content-Length (0 when absent or chunked)
        self.chunked = False
        self.head_done = 0.0  # when the headers were complete
        self.method = ""
        self.keep_alive = False
        self.chunks: list[bytes] = []
        self.size = 0  # body bytes received (kept or dropped)
        self.keep_body = False
        self.refusal: tuple[int, str] | None = None
        self.close = False
        self.endpoint, self.handler, self.model = "other", None, None
        self.admitted, self.reserved = False, 0  # an in-flight slot, body bytes

    def header(self, name: bytes) -> bytes | None:
        """A header's value by lower-case name (after the headers are complete)."""
        return self.fields.get(name)


class Connection:
    """One client connection: feeds httptools, answers complete requests in order."""

    def __init__(self, server: RestServer, sock: socket.socket):
        self.server = server
        self.sock = sock
        self.parser = httptools.HttpRequestParser(self)
        self.request: _Request | None = None  # being received
        self.ready: collections.deque[_Request] = collections.deque()
        self.fed = 0  # bytes fed since the last request was complete
        self.busy = False  # inside a request (stop() leaves it to finish)

    # ---- parser callbacks (run inside feed_data) ----------------------------------

    def on_message_begin(self) -> None:
        self.request = _Request()

    def on_url(self, url: bytes) -> None:
        self.request.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.request.headers.append((name, value))

    def on_headers_complete(self) -> None:
        request = self.request
        request.head_done = time.monotonic()
        request.fields = {name.lower(): value for name, value in request.headers}
        length = request.header(b"content-length")  # llhttp: digits, no duplicates
        request.length = int(length) if length is not None else 0
        request.chunked = b"transfer-encoding" in request.fields
        try:
            self._admit(request)
        except ServingError as e:
            self._refuse(request, e.http_status, e.message)
            if e.code == "UNAUTHENTICATED":
                request.close = True
        except Exception:  # noqa: BLE001 - a bug must not end the server.
            logging.exception("Unexpected error admitting a REST request.")
            self._refuse(request, 500, "Internal error; see the server log.", True)
        if request.refusal and not request.close:
            length = request.length
            if (
                request.chunked
                or length > DRAIN_BYTES
                or (length and request.header(b"expect"))
            ):
                request.close = True  # the body will not be read
        if request.close:
            self.ready.append(request)
            raise _Stop
        if request.keep_body and not self.ready:
            expect = request.header(b"expect")
            if expect is not None and expect.lower() == b"100-continue":
                self._send(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        request = self.request
        request.size += len(body)
        limits = self.server.limits
        if request.size > limits.max_body_bytes and not request.refusal:
            self._refuse(request, 413, _too_large(request.size, limits), close=True)
        elif request.keep_body:
            if request.chunked:
                if not self.server.admission.body_bytes.take(len(body)):
                    self._refuse(
                        request, 503, busy_message("body_bytes_in_flight"), True
                    )
                    self.ready.append(request)
                    raise _Stop
                request.reserved += len(body)
            request.chunks.append(body)
            return
        if request.close:
            self.ready.append(request)
            raise _Stop

    def on_message_complete(self) -> None:
        self.ready.append(self.request)
        self.request = None
        self.fed = 0

    def _refuse(self, request, status: int, message: str, close: bool = False):
        request.refusal = (status, message)
        request.close = request.close or close
        request.keep_body = False
        request.chunks = []

    def _admit(self, request: _Request) -> None:
        """Framing, token, route, in-flight slot and body size, in this order."""
        server, limits = self.server, self.server.limits
        request.keep_alive = self.parser.should_keep_alive()
        if self.parser.get_http_version() not in ("1.1", "1.0"):
            return self._refuse(request, 505, "Only HTTP/1.1 and 1.0 are served.", True)
        if len(request.headers) > MAX_HEADERS:
            return self._refuse(request, 431, f"More than {MAX_HEADERS} headers.", True)
        size = len(request.url) + sum(len(n) + len(v) + 4 for n, v in request.headers)
        if size > MAX_HEADER_BYTES:
            message = f"The request head is over {MAX_HEADER_BYTES} bytes."
            return self._refuse(request, 431, message, True)
        coding = request.header(b"transfer-encoding")
        if coding is not None and coding.strip().lower() != b"chunked":
            return self._refuse(
                request, 501, "Transfer-Encoding: only 'chunked' is supported.", True
            )
        self._check_token(request)
        request.method = self.parser.get_method().decode("ascii")
        path = request.url.decode("latin-1")
        request.endpoint, request.handler, request.model = server.api.route(
            request.method, path
        )
        if not server.admission.requests.take():
            return self._refuse(request, 503, busy_message("requests_in_flight"))
        request.admitted = True
        length = request.length
        if length > limits.max_body_bytes:
            return self._refuse(request, 413, _too_large(length, limits), True)
        if request.method == "POST" and length:
            if not server.admission.body_bytes.take(length):
                return self._refuse(
                    request, 503, busy_message("body_bytes_in_flight"), True
                )
            request.reserved = length
        request.keep_body = request.method == "POST"

    def _check_token(self, request: _Request) -> None:
        token = self.server.auth_token
        if not token:
            return
        given = [v for n, v in request.headers if n.lower() == b"authorization"]
        if not given:
            raise ServingError(
                "UNAUTHENTICATED",
                "Missing bearer token: send the header 'Authorization: Bearer <token>'.",
            )
        scheme, _, value = given[0].partition(b" ")
        if (
            len(given) > 1
            or scheme.lower() != b"bearer"
            or not hmac.compare_digest(value.strip(), token.encode())
        ):
            raise ServingError("UNAUTHENTICATED", "Invalid bearer token.")

    # ---- the connection loop -------------------------------------------------------

    def run(self) -> None:
        try:
            self._loop()
        except OSError as e:
            logging.vlog(1, "REST connection dropped: %s", e)
        except Exception:  # noqa: BLE001 - one connection must not end the server.
            logging.exception("Unexpected error on a REST connection.")
        finally:
            for request in (self.request, *self.ready):
                if request is not None:
                    self._release(request)
            self.sock.close()
            self.server.connection_done(self)

    def _loop(self) -> None:
        limits = self.server.limits
        idle_since = time.monotonic()
        while True:
            while self.ready:
                self.busy = True
                request = self.ready.popleft()
                if not self._answer(request):
                    if request.close and request.refusal:
                        self._linger()  # its body may not have been read
                    return
                idle_since = time.monotonic()
            request = self.request
            self.busy = request is not None
            if request is None:
                if self.server.draining:
                    return
                deadline = idle_since + limits.idle_timeout_s
            elif not request.head_done:
                deadline = request.started + limits.header_timeout_s
            else:
                deadline = request.head_done + limits.body_timeout_s
            data = self._receive(deadline, request)
            if data == b"":
                return  # the client closed
            if data is None:
                if request is None or not request.head_done or request.close:
                    return  # idle, slow headers or already refused: just close.
                message = f"The request body did not arrive within {limits.body_timeout_s:g} s (--body_timeout_s)."
                self._refuse(request, 408, message, close=True)
                self.ready.append(request)
                continue
            self._feed(data)

    def _receive(self, deadline: float, request: _Request | None) -> bytes | None:
        """The next bytes; b"" when the client has closed, None at the deadline."""
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        self.sock.settimeout(left)
        in_body = request is not None and bool(request.head_done)
        try:
            data = self.sock.recv(_BODY_RECV_BYTES if in_body else _RECV_BYTES)
        except TimeoutError:
            return None
        return data

    def _feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._close_after_ready()  # the request was answered; no upgrade.
        except httptools.HttpParserCallbackError as e:
            if not isinstance(e.__context__, _Stop):
                raise
        except httptools.HttpParserError as e:
            request = self.request or _Request()
            self._refuse(request, 400, f"Bad request: {e}.", close=True)
            self.ready.append(request)
        else:
            if self.request is not None and not self.request.head_done:
                self.fed += len(data)
                if self.fed > MAX_HEADER_BYTES:
                    message = f"The request head is over {MAX_HEADER_BYTES} bytes."
                    self._refuse(self.request, 431, message, close=True)
                    self.ready.append(self.request)

    def _close_after_ready(self) -> None:
        if self.ready:
            self.ready[-1].close = True
        else:
            raise ConnectionAbortedError("protocol upgrade refused")

    def _answer(self, request: _Request) -> bool:
        """Answers one request; False when the connection is to close."""
        if request.refusal:
            status, message = request.refusal
            payload = {"error": message}
        else:
            status, payload = self._call(request)
        self._release(request)
        keep = request.keep_alive and not request.close and not self.server.draining
        self._send(response(status, payload, keep))
        if self.server.access_log:
            logging.info("%s %d", request.url[:200], status)
        self.server.api.stats.record(
            f"rest:{request.endpoint}",
            request.model,
            str(status),
            status == 200,
            time.monotonic() - request.started,
        )
        return keep

    def _call(self, request: _Request) -> tuple[int, dict]:
        body = b"".join(request.chunks)
        request.chunks = []
        try:
            return 200, request.handler(body)
        except ServingError as e:
            return e.http_status, {"error": e.message}
        except RecursionError:
            return 400, {"error": "The request JSON is nested too deeply."}
        except Exception:  # noqa: BLE001 - a bug must not end the server.
            logging.exception("Unexpected error answering a REST request.")
            return 500, {"error": "Internal error; the server log has the details."}

    def _release(self, request: _Request) -> None:
        admission = self.server.admission
        if request.admitted:
            admission.requests.give()
            request.admitted = False
        if request.reserved:
            admission.body_bytes.give(request.reserved)
            request.reserved = 0

    def _send(self, data: bytes) -> None:
        self.sock.settimeout(self.server.limits.body_timeout_s)
        self.sock.sendall(data)

    def _linger(self) -> None:
        """Closes the write side, then drops what the client still sends for up
        to LINGER_S s: closing with its body unread would reset the connection
        and could lose the reply before the client reads it."""
        deadline = time.monotonic() + LINGER_S
        try:
            self.sock.shutdown(socket.SHUT_WR)
            while (left := deadline - time.monotonic()) > 0:
                self.sock.settimeout(left)
                if not self.sock.recv(_BODY_RECV_BYTES):
                    break
        except OSError:
            pass


def _too_large(size: int, limits: Limits) -> str:
    return (
        f"The request body is {size} bytes or more; the limit is "
        f"{limits.max_body_bytes} bytes (--max_body_bytes)."
    )


def busy_message(limit: str) -> str:
    return f"The server is at its limit of {limit} (--max_{limit}); retry later."


_PHRASES = {s.value: s.phrase for s in http.HTTPStatus}
_date_cache = [0, ""]


def response(status: int, payload: dict, keep_alive: bool) -> bytes:
    body = json.dumps(payload).encode("utf-8")
    now = int(time.time())
    if _date_cache[0] != now:  # the Date header, formatted once per second
        _date_cache[:] = [now, email.utils.formatdate(now, usegmt=True)]
    head = (
        f"HTTP/1.1 {status} {_PHRASES.get(status, '')}\r\n"
        f"Server: GardenModelServer/2\r\nDate: {_date_cache[1]}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    )
    if status == 401:
        head += "WWW-Authenticate: Bearer\r\n"
    if not keep_alive:
        head += "Connection: close\r\n"
    return (head + "\r\n").encode("latin-1") + body
