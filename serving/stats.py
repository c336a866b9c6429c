"""Request counts and latency percentiles for `GET /monitoring/stats`.

Every answered request is recorded under `"<api>:<method>"` (e.g.
`"rest:predict"`, `"grpc:Predict"`) and under its model, with its status
(the HTTP status for REST, the status code name for gRPC) and its latency.
Percentiles are computed over the most recent `window` requests of each
endpoint. `snapshot()` returns:

    {"uptime_s": 12.3,
     "requests": {"total": 1000, "errors": 2},
     "endpoints": {"rest:predict": {"count": 998, "errors": 0,
                                    "status": {"200": 998},
                                    "latency_ms": {"p50": 1.9, "p90": 2.4,
                                                   "p99": 3.1, "max": 8.0,
                                                   "mean": 2.0}}, ...},
     "models": {"digits": {"count": 998, "errors": 0}},
     "batching": {"calls": 400, "requests": 998, "rows": 998,
                  "mean_rows_per_call": 2.5, "max_rows": 11}}

Imports only the standard library.
"""

from __future__ import annotations

import collections
import threading
import time


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


def summarize_latencies(seconds: list[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean in milliseconds, rounded to microseconds."""
    values = sorted(seconds)
    mean = sum(values) / len(values) if values else 0.0
    result = {f"p{p}": percentile(values, p / 100) for p in (50, 90, 99)}
    result.update(max=values[-1] if values else 0.0, mean=mean)
    return {key: round(value * 1000, 3) for key, value in result.items()}


class _Endpoint:
    def __init__(self, window: int):
        self.count = 0
        self.errors = 0
        self.status: collections.Counter = collections.Counter()
        self.latencies: collections.deque = collections.deque(maxlen=window)


class ServerStats:
    """Thread-safe counters shared by the REST and gRPC front ends.

    Args:
        window: how many recent latencies each endpoint keeps.
    """

    def __init__(self, window: int = 10000):
        self._window = window
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._endpoints: dict[str, _Endpoint] = {}
        self._models: dict[str, collections.Counter] = {}
        self._batches = collections.Counter()
        self._max_rows = 0
        self._sources: dict = {}

    def add_source(self, name: str, snapshot) -> None:
        """Adds `name: snapshot()` to every `snapshot()` (e.g. admission counts)."""
        self._sources[name] = snapshot

    def record(
        self, endpoint: str, model: str | None, status: str, ok: bool, seconds: float
    ) -> None:
        """One answered request (`model` None when none was resolved)."""
        with self._lock:
            entry = self._endpoints.get(endpoint)
            if entry is None:
                entry = self._endpoints[endpoint] = _Endpoint(self._window)
            entry.count += 1
            entry.errors += not ok
            entry.status[status] += 1
            entry.latencies.append(seconds)
            if model is not None:
                counter = self._models.setdefault(model, collections.Counter())
                counter["count"] += 1
                counter["errors"] += not ok

    def record_batch(self, requests: int, rows: int) -> None:
        """One model call that served `requests` requests with `rows` rows."""
        with self._lock:
            self._batches["calls"] += 1
            self._batches["requests"] += requests
            self._batches["rows"] += rows
            self._max_rows = max(self._max_rows, rows)

    def snapshot(self) -> dict:
        with self._lock:
            endpoints = {
                name: {
                    "count": e.count,
                    "errors": e.errors,
                    "status": dict(sorted(e.status.items())),
                    "latency_ms": summarize_latencies(list(e.latencies)),
                }
                for name, e in sorted(self._endpoints.items())
            }
            models = {name: dict(c) for name, c in sorted(self._models.items())}
            calls = self._batches["calls"]
            batching = {
                "calls": calls,
                "requests": self._batches["requests"],
                "rows": self._batches["rows"],
                "mean_rows_per_call": round(self._batches["rows"] / calls, 3)
                if calls
                else 0.0,
                "max_rows": self._max_rows,
            }
        return {
            "uptime_s": round(time.monotonic() - self._started, 3),
            "requests": {
                "total": sum(e["count"] for e in endpoints.values()),
                "errors": sum(e["errors"] for e in endpoints.values()),
            },
            "endpoints": endpoints,
            "models": models,
            "batching": batching,
            **{name: source() for name, source in self._sources.items()},
        }
