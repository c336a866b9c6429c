"""A local HTTP file server for download tests: Range requests, faults, a log.

`FileServer` serves the files of a dict (URL path -> bytes) on 127.0.0.1
(port 0: the system picks a free one and the socket stays bound until
`close`). It answers `Range: bytes=N-` with 206 (the standard library's
`SimpleHTTPRequestHandler` ignores Range), records every request's path and
Range header (`received` is set at the first), and can misbehave on purpose: `drop_once` paths send half of
their body on the first request and then close the connection; `hold_first`
makes the first request wait for `release.set()` before its body; with
`range_support=False` Range headers are ignored (status 200).

Example:
```python
import urllib.request
from official.testing.file_server import FileServer
with FileServer({"a.bin": b"0123456789"}) as server:
    request = urllib.request.Request(server.url("a.bin"), headers={"Range": "bytes=4-"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 206 and response.read() == b"456789"
    assert server.requests == [("a.bin", "bytes=4-")]
```
"""

from __future__ import annotations

import http.server
import re
import threading


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FileServer._Server

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        owner = self.server.owner
        path = self.path.lstrip("/")
        requested = self.headers.get("Range")
        with owner.lock:
            owner.requests.append((path, requested))
            first = len(owner.requests) == 1
        owner.received.set()
        data = owner.files.get(path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", requested or "")
        if match and owner.range_support:
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header(
                "Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}"
            )
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if first and owner.hold_first:
            owner.release.wait()
        with owner.lock:
            drop = path in owner.drop_once
            owner.drop_once.discard(path)
        if drop:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass


class FileServer:
    """Serves `files` on 127.0.0.1 from a background thread until `close`."""

    class _Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        owner: FileServer

    def __init__(
        self,
        files: dict[str, bytes] | None = None,
        drop_once: set[str] | None = None,
        hold_first: bool = False,
        range_support: bool = True,
    ):
        self.files = dict(files or {})
        self.drop_once = set(drop_once or ())
        self.hold_first = hold_first
        self.range_support = range_support
        self.release = threading.Event()
        self.received = threading.Event()  # Set at the first request.
        self.requests: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()
        self._server = self._Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> FileServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
