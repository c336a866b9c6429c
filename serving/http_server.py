"""The HTTP side of the REST API: httptools' HTTP/1.1 parser, a thread per connection.

An accept loop hands each connection to a thread running
`serving/http_connection.py`. Parsing is httptools' (MagicStack's binding of llhttp, Node.js' HTTP parser,
and uvicorn's default): strict request lines and headers; duplicate or
conflicting `Content-Length`, a second `Transfer-Encoding`, or both framing
headers together are refused with 400 and the connection closed (no request
smuggling); chunked request bodies, keep-alive and pipelining as HTTP/1.1
says. This module adds the bounds of `serving/admission.py`: too many
connections or requests in flight, or too many body bytes held at once,
are answered 503 at once; a body over `max_body_bytes` is 413 before it is
read; a client slower than the header deadline is disconnected, one slower
than the body deadline is answered 408 and disconnected.

Each request is checked when its headers are complete, in this order, each
step answering `{"error": ...}` with its own status: framing (400, 431, 501,
505), the bearer token when the server has one (401), routing
(`serving/rest_api.py`: 404, 405, 400, 501), requests in flight (503), body
size and bytes in flight (413, 503). A refused request's body is read and
dropped when it is small (the connection stays open, one answer per
request); otherwise the answer says `Connection: close` and the connection
closes. The handler runs once the body is in. An error the handler did not
expect is logged and answered 500 without its text.

`RestServer.stop()` stops accepting, lets in-flight requests finish, closes
idle keep-alive connections and returns when every connection is done or
`grace_s` has passed.

Imports httptools (through `http_connection`), absl logging and the standard
library.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time

from absl import logging

from serving.admission import Admission, Limits
from serving.http_connection import Connection, busy_message, response
from serving.rest_api import RestApi

_RECV_BYTES = 1 << 16


class RestServer:
    """The REST front end on `host:port` (port 0 picks a free one).

    Args:
        api: answers the requests.
        host: the address to bind; 127.0.0.1 by default.
        port: the TCP port; 0 picks a free one (see `port` after start).
        auth_token: when set, every request needs `Authorization: Bearer <token>`.
        max_body_bytes: larger request bodies are refused with 413 (None: the
            one in `limits`).
        limits: connections, requests and bytes held at once, and deadlines.
    """

    def __init__(
        self,
        api: RestApi,
        host: str = "127.0.0.1",
        port: int = 8501,
        auth_token: str = "",
        max_body_bytes: int | None = None,
        limits: Limits | None = None,
    ):
        limits = limits or Limits()
        if max_body_bytes is not None:
            limits = dataclasses.replace(limits, max_body_bytes=max_body_bytes)
        self.api = api
        self.auth_token = auth_token
        self.limits = limits
        self.admission = Admission(limits)
        self.access_log = logging.get_verbosity() >= 1
        self.draining = False
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._connections: set[Connection] = set()
        self._socket = socket.create_server((host, port), backlog=128)
        self._thread: threading.Thread | None = None
        api.stats.add_source("admission", self.admission.snapshot)

    @property
    def port(self) -> int:
        return self._socket.getsockname()[1]

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._accept_loop, name="rest-accept", daemon=True
        )
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self.draining:
            try:
                sock, _ = self._socket.accept()
            except OSError:
                if self.draining:
                    return
                time.sleep(0.01)  # e.g. out of file descriptors: back off, retry.
                continue
            if not self.admission.connections.take():
                _refuse_connection(sock)
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = Connection(self, sock)
            with self._lock:
                self._connections.add(connection)
            threading.Thread(
                target=connection.run, name="rest-conn", daemon=True
            ).start()

    def connection_done(self, connection: Connection) -> None:
        self.admission.connections.give()
        with self._lock:
            self._connections.discard(connection)
            self._done.notify_all()

    def stop(self, grace_s: float = 30.0) -> None:
        """Stops accepting, finishes in-flight requests, closes idle connections."""
        self.draining = True
        try:
            self._socket.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join()
        self._socket.close()
        deadline = time.monotonic() + grace_s
        with self._lock:
            while self._connections and time.monotonic() < deadline:
                for connection in self._connections:
                    if not connection.busy:  # idle keep-alive: wake its read.
                        try:
                            connection.sock.shutdown(socket.SHUT_RD)
                        except OSError:
                            pass
                self._done.wait(min(0.1, max(0.0, deadline - time.monotonic())))
            left = len(self._connections)
        if left:
            logging.warning(
                "%d REST connections were still busy after %.0f s.", left, grace_s
            )


_OVER_CONNECTIONS = response(
    503, {"error": busy_message("connections")}, keep_alive=False
)


def _refuse_connection(sock: socket.socket) -> None:
    """503 to a connection over --max_connections, without a thread for it."""
    try:
        sock.setblocking(False)
        try:
            sock.recv(_RECV_BYTES)  # what already arrived, so closing does not reset
        except OSError:
            pass
        sock.send(_OVER_CONNECTIONS)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        sock.close()
