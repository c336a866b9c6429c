"""Admission control for the REST front end: what the server holds at once.

`Limits` bounds open connections, requests in flight, the size of one body
and the body bytes held by all requests together, and sets deadlines for a
client to send a request's headers and its body. `Admission` counts against
the first three; a request over a bound is refused at once (503, load
shedding) rather than queued, so a burst never grows memory or latency
without bound. Every bound is checked before anything is allocated for it.

Imports only the standard library.
"""

from __future__ import annotations

import dataclasses
import threading


@dataclasses.dataclass(frozen=True)
class Limits:
    """The REST server's bounds (each a `serving.server` flag of the same name).

    Args:
        max_connections: open connections; one more is answered 503 and closed.
        max_requests_in_flight: requests between their headers and their
            answer; one more is answered 503.
        max_body_bytes: the largest request body; a larger one is 413.
        max_body_bytes_in_flight: body bytes held by all requests at once; a
            body that does not fit is answered 503.
        header_timeout_s: seconds from a request's first byte to the end of
            its headers; a slower client is disconnected.
        body_timeout_s: seconds from the end of the headers to the end of the
            body; a slower client is answered 408 and disconnected.
        idle_timeout_s: seconds an idle keep-alive connection stays open.
    """

    max_connections: int = 512
    max_requests_in_flight: int = 256
    max_body_bytes: int = 64 << 20
    max_body_bytes_in_flight: int = 256 << 20
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    idle_timeout_s: float = 60.0

    def validate(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not value > 0:
                raise ValueError(f"--{field.name} must be > 0. Received: {value!r}.")
        if self.max_body_bytes > self.max_body_bytes_in_flight:
            raise ValueError(
                "--max_body_bytes must be <= --max_body_bytes_in_flight (one body "
                f"must fit). Received: max_body_bytes={self.max_body_bytes}, "
                f"max_body_bytes_in_flight={self.max_body_bytes_in_flight}."
            )


class _Counter:
    """A count that may not pass `limit`; `take` fails instead of waiting."""

    def __init__(self, limit: int):
        self.limit = limit
        self.value = 0
        self.refused = 0
        self._lock = threading.Lock()

    def take(self, amount: int = 1) -> bool:
        with self._lock:
            if self.value + amount > self.limit:
                self.refused += 1
                return False
            self.value += amount
            return True

    def give(self, amount: int = 1) -> None:
        with self._lock:
            self.value -= amount


class Admission:
    """Counts connections, requests and body bytes against `limits`."""

    def __init__(self, limits: Limits):
        limits.validate()
        self.limits = limits
        self.connections = _Counter(limits.max_connections)
        self.requests = _Counter(limits.max_requests_in_flight)
        self.body_bytes = _Counter(limits.max_body_bytes_in_flight)

    def snapshot(self) -> dict:
        """Current use and refusals, for `GET /monitoring/stats`."""
        return {
            name: {"open": c.value, "limit": c.limit, "refused": c.refused}
            for name, c in (
                ("connections", self.connections),
                ("requests_in_flight", self.requests),
                ("body_bytes_in_flight", self.body_bytes),
            )
        }
