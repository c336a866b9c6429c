"""The HTTP side of the REST API, on the standard library's ThreadingHTTPServer.

HTTP/1.1 with keep-alive, one thread per connection. Header lines of the
plain `Name: value` form are read without the email package (the stdlib
still parses any other form and every unusual request line). Before a request is
routed (`serving/rest_api.py`) it may be refused with `{"error": ...}` and
401 (a missing or wrong bearer token when the server has one), 411 (a POST
without Content-Length; chunked bodies are not supported) or 413 (a body over
`max_body_bytes`, refused before it is read); those close the connection,
since the body was not read. Any other failure is answered 500 and the server
keeps serving.

`RestServer.stop()` stops accepting, lets in-flight requests finish, closes
idle keep-alive connections (their pending read ends) and returns when every
handler is done or `grace_s` has passed.

Imports only the standard library (and absl logging).
"""

from __future__ import annotations

import email.parser
import email.utils
import hmac
import http
import http.client
import http.server
import json
import socket
import threading
import time

from absl import logging

from serving.rest_api import RestApi
from serving.serving_error import ServingError, invalid

IDLE_TIMEOUT_S = 60.0  # an idle keep-alive connection is closed after this.


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GardenModelServer/1"
    disable_nagle_algorithm = True
    rbufsize = 1 << 16  # a request of up to 64 KiB arrives in one read
    wbufsize = 1 << 16  # one write per response (flushed after each request)
    timeout = IDLE_TIMEOUT_S
    server: _HTTPServer

    def setup(self):
        super().setup()
        self.busy = False
        self.server.track(self, add=True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.track(self, add=False)

    def parse_request(self):
        with self.server.lock:
            self.busy = True
        words = str(self.raw_requestline, "iso-8859-1").split()
        if len(words) != 3 or words[2] not in ("HTTP/1.1", "HTTP/1.0"):
            return super().parse_request()  # the stdlib answers the odd ones
        return self._parse_plain_request(*words)

    def _parse_plain_request(self, command: str, path: str, version: str) -> bool:
        """The stdlib's parse_request for `METHOD PATH HTTP/1.x`, with headers
        read without the email parser when they are plain `Name: value` lines
        (about 10x faster; the email parser still reads any other form)."""
        self.requestline = f"{command} {path} {version}"
        self.command, self.request_version = command, version
        self.path = "/" + path.lstrip("/") if path.startswith("//") else path
        self.close_connection = version != "HTTP/1.1"
        try:
            self.headers = _read_headers(self.rfile)
        except http.client.LineTooLong as e:
            self.send_error(431, "Line too long", str(e))
            return False
        except http.client.HTTPException as e:
            self.send_error(431, "Too many headers", str(e))
            return False
        connection = self.headers.get("Connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        expect = self.headers.get("Expect", "").lower()
        if expect == "100-continue" and version == "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def handle_one_request(self):
        try:
            super().handle_one_request()
        finally:
            with self.server.lock:
                self.busy = False
            if self.server.draining:
                self.close_connection = True

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature.
        logging.vlog(1, "%s %s", self.address_string(), format % args)

    def log_request(self, code="-", size="-"):
        if self.server.access_log:  # one line per request with --v=1
            super().log_request(code, size)

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")

    def do_DELETE(self):
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        started = time.monotonic()
        api: RestApi = self.server.api
        endpoint, model = "other", None
        unread_body = False
        try:
            endpoint, handler, model = api.route(method, self.path)
            self._check_token()
            body = self._read_body() if method == "POST" else b""
            status, payload = 200, handler(body)
        except ServingError as e:
            status, payload = e.http_status, {"error": e.message}
            if method == "POST" and (
                e.code == "UNAUTHENTICATED" or status in (411, 413)
            ):
                self.close_connection = unread_body = True
        except (TimeoutError, ConnectionError) as e:
            logging.vlog(1, "Connection dropped while reading a request: %s", e)
            self.close_connection = True
            return
        except RecursionError:
            status, payload = 400, {"error": "The request JSON is nested too deeply."}
        except Exception as e:  # noqa: BLE001 - a bug must not end the server.
            logging.exception("Unexpected error answering %s %s", method, self.path)
            status, payload = 500, {"error": f"Internal error: {type(e).__name__}: {e}"}
        self._send(status, payload)
        if unread_body:
            self._linger()
        api.stats.record(
            f"rest:{endpoint}",
            model,
            str(status),
            status == 200,
            time.monotonic() - started,
        )

    def _linger(self, seconds: float = 2.0, max_bytes: int = 64 << 20) -> None:
        """Reads and drops what a refused client still sends, for a while.

        The reply to a body that was never read (401, 411, 413) goes out
        before the client has finished writing; closing at once would make
        its next write fail (broken pipe, connection reset) before it reads
        the reply. So the write side is closed and the rest of the body
        consumed, up to `max_bytes` or `seconds`.
        """
        deadline = time.monotonic() + seconds
        received = 0
        try:
            self.wfile.flush()  # the reply first: writes are buffered.
            self.connection.shutdown(socket.SHUT_WR)
            while received < max_bytes:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.connection.settimeout(left)
                chunk = self.connection.recv(65536)
                if not chunk:
                    break
                received += len(chunk)
        except OSError:
            pass

    def _check_token(self) -> None:
        token = self.server.auth_token
        if not token:
            return
        header = self.headers.get("Authorization", "")
        if not header:
            raise ServingError(
                "UNAUTHENTICATED",
                "Missing bearer token: send the header "
                "'Authorization: Bearer <token>'.",
            )
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            raise ServingError("UNAUTHENTICATED", "Invalid bearer token.")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise ServingError(
                "INVALID_ARGUMENT",
                "Chunked request bodies are not supported; send Content-Length.",
                411,
            )
        length = self.headers.get("Content-Length")
        if length is None:
            raise ServingError(
                "INVALID_ARGUMENT", "A POST request needs a Content-Length header.", 411
            )
        if not length.isdigit():
            raise invalid(f"Invalid Content-Length {length!r}.")
        limit = self.server.max_body_bytes
        if int(length) > limit:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"The request body is {int(length)} bytes; the limit is {limit} "
                f"bytes (--max_body_bytes).",
                413,
            )
        return self.rfile.read(int(length))

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.log_request(status, len(body))
        head = [
            f"{self.protocol_version} {status} {_PHRASES.get(status, '')}",
            f"Server: {self.server_version}",
            f"Date: {_http_date()}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
        ]
        if status == 401:
            head.append("WWW-Authenticate: Bearer")
        if self.close_connection or self.server.draining:
            head.append("Connection: close")
            self.close_connection = True
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


_PHRASES = {status.value: status.phrase for status in http.HTTPStatus}
_MAX_LINE = 65536  # as http.client
_MAX_HEADERS = 100


class _Headers(dict):
    """Request headers by lower-cased name (the first of repeated ones)."""

    def get(self, name: str, default=None):
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name: str):
        return dict.get(self, name.lower())

    def __contains__(self, name) -> bool:
        return dict.__contains__(self, name.lower())


def _read_headers(rfile):
    """The header block, as `_Headers`, or as the email parser's message when
    any line is not a plain `Name: value` (folded lines, defects)."""
    lines = []
    while True:
        line = rfile.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("header line")
        if line in (b"\r\n", b"\n", b""):
            break
        lines.append(line)
        if len(lines) > _MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")
    headers = _Headers()
    for line in lines:
        name, colon, value = line.decode("iso-8859-1").partition(":")
        if not colon or not name or name != name.strip() or name[0] in " \t":
            text = b"".join(lines).decode("iso-8859-1")
            return email.parser.Parser(_class=http.client.HTTPMessage).parsestr(text)
        headers.setdefault(name.lower(), value.strip())
    return headers


_date_cache = [0, ""]


def _http_date() -> str:
    """The Date header, formatted once per second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[:] = [now, email.utils.formatdate(now, usegmt=True)]
    return _date_cache[1]


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True  # stop() waits for handlers itself, with a bound.
    block_on_close = False
    request_queue_size = 128  # the listen backlog (socketserver: 5)

    def __init__(self, address, api: RestApi, auth_token: str, max_body_bytes: int):
        self.api = api
        self.access_log = logging.get_verbosity() >= 1
        self.auth_token = auth_token
        self.max_body_bytes = max_body_bytes
        self.lock = threading.Lock()
        self.handlers: set[_Handler] = set()
        self.idle = threading.Condition(self.lock)
        self.draining = False
        super().__init__(address, _Handler)

    def track(self, handler: _Handler, add: bool) -> None:
        with self.lock:
            if add:
                self.handlers.add(handler)
            else:
                self.handlers.discard(handler)
                self.idle.notify_all()


class RestServer:
    """The REST front end on `host:port` (port 0 picks a free one).

    Args:
        api: answers the requests.
        host: the address to bind; 127.0.0.1 by default.
        port: the TCP port; 0 picks a free one (see `port` after start).
        auth_token: when set, every request needs `Authorization: Bearer <token>`.
        max_body_bytes: larger request bodies are refused with 413.
    """

    def __init__(
        self,
        api: RestApi,
        host: str = "127.0.0.1",
        port: int = 8501,
        auth_token: str = "",
        max_body_bytes: int = 64 << 20,
    ):
        self._httpd = _HTTPServer((host, port), api, auth_token, max_body_bytes)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="rest-accept", daemon=True
        )
        self._thread.start()

    def stop(self, grace_s: float = 30.0) -> None:
        """Stops accepting, finishes in-flight requests, closes idle connections."""
        httpd = self._httpd
        if self._thread is None:  # never started
            httpd.server_close()
            return
        httpd.shutdown()  # the accept loop ends; no new connections.
        httpd.socket.close()
        deadline = time.monotonic() + grace_s
        with httpd.lock:
            httpd.draining = True
            while httpd.handlers and time.monotonic() < deadline:
                for handler in httpd.handlers:
                    if not handler.busy:  # idle keep-alive: wake its read.
                        try:
                            handler.connection.shutdown(socket.SHUT_RD)
                        except OSError:
                            pass
                httpd.idle.wait(min(0.1, max(0.0, deadline - time.monotonic())))
            left = len(httpd.handlers)
        if left:
            logging.warning(
                "%d REST connections were still busy after %.0f s.", left, grace_s
            )
        if self._thread is not None:
            self._thread.join()
