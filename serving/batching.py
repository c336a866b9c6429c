"""Dynamic batching: concurrent requests to one signature run as one call.

Every model call of the server goes through a `BatchScheduler`: a queue and
`num_batch_threads` worker threads. A worker takes the oldest request, then
every queued request that can join it: the same signature of the same loaded
version, and inputs of the same dtypes and the same shapes after the batch
dimension (so 32x32 and 64x64 images never mix). It concatenates their inputs
along axis 0 until `max_batch_size` rows, calls the signature once, and splits
every output back by the rows each request sent. With `batch_timeout_micros`
> 0 a worker waits up to that long (from the first request's arrival) for a
batch to fill; with 0 (the default) it only joins requests that are already
waiting, so an idle server adds no latency and a busy one batches naturally
while the previous batch runs.

A request never shares a call when its signature is not batchable (an input
or output without an unknown leading dimension) or when it alone is larger
than `max_batch_size`. If a batched call fails, each request in it is run
again on its own, so that one bad input (a corrupt JPEG) fails only its own
request. `max_batch_size` <= 1 turns batching off; the workers then only
bound how many model calls run at once.

Imports only numpy and the standard library.
"""

from __future__ import annotations

import collections
import concurrent.futures
import threading
import time
from collections.abc import Callable

import numpy as np

from serving.serving_error import ServingError
from serving.signature import Signature


class _Task:
    __slots__ = ("signature", "arrays", "size", "key", "future", "enqueued")

    def __init__(self, signature: Signature, arrays: dict[str, np.ndarray]):
        self.signature = signature
        self.arrays = arrays
        self.size = signature.batch_size(arrays)
        self.key = None
        if self.size is not None:
            self.key = (
                signature,
                tuple(
                    (name, arrays[name].dtype.str, arrays[name].shape[1:])
                    for name in sorted(arrays)
                ),
            )
        self.future: concurrent.futures.Future = concurrent.futures.Future()
        self.enqueued = time.monotonic()


class BatchScheduler:
    """Runs signature calls on worker threads, batching compatible requests.

    Args:
        max_batch_size: the most rows in one call; <= 1 disables batching.
        batch_timeout_micros: how long a worker may wait for a batch to fill.
        num_batch_threads: worker threads, i.e. model calls running at once.
        on_batch: called with each call's number of requests and rows.
    """

    def __init__(
        self,
        max_batch_size: int = 32,
        batch_timeout_micros: int = 0,
        num_batch_threads: int = 2,
        on_batch: Callable[[int, int], None] | None = None,
    ):
        if num_batch_threads < 1:
            raise ValueError(
                f"num_batch_threads must be >= 1. Received: {num_batch_threads}."
            )
        if batch_timeout_micros < 0:
            raise ValueError(
                f"batch_timeout_micros must be >= 0. Received: {batch_timeout_micros}."
            )
        self.max_batch_size = max_batch_size
        self.batch_timeout_s = batch_timeout_micros / 1e6
        self._on_batch = on_batch
        self._queue: collections.deque[_Task] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._workers = [
            threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
            for i in range(num_batch_threads)
        ]
        for worker in self._workers:
            worker.start()

    def submit(self, signature: Signature, arrays: dict[str, np.ndarray]):
        """Queues one call; returns a `concurrent.futures.Future` of its outputs."""
        task = _Task(signature, arrays)
        with self._cond:
            if self._stopping:
                raise ServingError("UNAVAILABLE", "The server is shutting down.")
            self._queue.append(task)
            self._cond.notify_all()
        return task.future

    def run(
        self, signature: Signature, arrays: dict[str, np.ndarray], timeout_s: float
    ) -> dict[str, np.ndarray]:
        """Submits and waits at most `timeout_s` (then DEADLINE_EXCEEDED)."""
        future = self.submit(signature, arrays)
        try:
            return future.result(timeout=timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise ServingError(
                "DEADLINE_EXCEEDED",
                f"The request did not finish within {timeout_s * 1000:.0f} ms "
                f"(--rest_api_timeout_in_ms).",
            ) from None

    def stop(self) -> None:
        """Runs what is queued, then ends the workers."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for worker in self._workers:
            worker.join()

    # ---- workers ---------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            batch = [t for t in batch if t.future.set_running_or_notify_cancel()]
            if batch:
                self._execute(batch)

    def _next_batch(self) -> list[_Task] | None:
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                self._cond.wait()
            first = self._queue.popleft()
            batch = [first]
            if first.key is None or self.max_batch_size <= 1:
                return batch
            rows = first.size
            deadline = first.enqueued + self.batch_timeout_s
            while True:
                rows = self._take_compatible(first.key, batch, rows)
                remaining = deadline - time.monotonic()
                if rows >= self.max_batch_size or remaining <= 0 or self._stopping:
                    return batch
                self._cond.wait(remaining)

    def _take_compatible(self, key, batch: list[_Task], rows: int) -> int:
        kept = collections.deque()
        for task in self._queue:
            if task.key == key and rows + task.size <= self.max_batch_size:
                batch.append(task)
                rows += task.size
            else:
                kept.append(task)
        self._queue = kept
        return rows

    def _execute(self, batch: list[_Task]) -> None:
        if self._on_batch is not None:
            self._on_batch(len(batch), sum(t.size or 1 for t in batch))
        if len(batch) == 1:
            self._run_alone(batch[0])
            return
        signature = batch[0].signature
        try:
            arrays = {
                name: np.concatenate([t.arrays[name] for t in batch])
                for name in batch[0].arrays
            }
            outputs = signature.run(arrays)
            total = sum(t.size for t in batch)
            if any(value.shape[:1] != (total,) for value in outputs.values()):
                raise ValueError("an output's leading dimension is not the batch size")
        except Exception:  # noqa: BLE001 - retried one by one, errors go to their own.
            for task in batch:
                self._run_alone(task)
            return
        offset = 0
        for task in batch:
            end = offset + task.size
            task.future.set_result({k: v[offset:end] for k, v in outputs.items()})
            offset = end

    @staticmethod
    def _run_alone(task: _Task) -> None:
        try:
            task.future.set_result(task.signature.run(task.arrays))
        except Exception as e:  # noqa: BLE001 - handed to the waiting request.
            task.future.set_exception(e)
