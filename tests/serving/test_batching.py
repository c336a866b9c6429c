"""serving.batching: who makes each call, what shares it, what it returns.

A fake signature (doubles its input, records each call's thread and rows, and
can be held at a gate) keeps these tests independent of TensorFlow and of
timing: every assertion is about calls, threads and results, not durations.
"""

import threading

import numpy as np
import pytest

from serving.batching import BatchScheduler
from serving.serving_error import ServingError


class FakeSignature:
    """A batchable signature `{"x": [n, 2]} -> {"y": 2 * x}`."""

    name = "fake"

    def __init__(self, fail_on=None, raise_error=None):
        self.calls = []  # (thread ident, rows) per call
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail_on = fail_on
        self.raise_error = raise_error

    def batch_size(self, arrays):
        return arrays["x"].shape[0]

    def run(self, arrays):
        self.entered.set()
        self.gate.wait(30)
        self.calls.append((threading.get_ident(), arrays["x"].shape[0]))
        if self.raise_error is not None:
            raise self.raise_error
        if self.fail_on is not None and np.any(arrays["x"] == self.fail_on):
            raise ServingError("INVALID_ARGUMENT", "bad row")
        return {"y": arrays["x"] * 2}


def rows(n, value):
    return {"x": np.full((n, 2), value, np.int64)}


def wait_until(condition, timeout_s=30.0):
    """Polls the scheduler's state (not a clock) until `condition()` holds."""
    done = threading.Event()
    for _ in range(int(timeout_s / 0.001)):
        if condition():
            return True
        done.wait(0.001)
    return False


@pytest.fixture
def make_scheduler():
    made = []

    def make(**kwargs):
        scheduler = BatchScheduler(**kwargs)
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.stop()


def test_a_lone_request_runs_in_its_own_thread_at_once(make_scheduler):
    batches = []
    scheduler = make_scheduler(
        max_batch_size=8,
        num_batch_threads=1,
        on_batch=lambda requests, n: batches.append((requests, n)),
    )
    signature = FakeSignature()
    out = scheduler.run(signature, rows(3, 5), timeout_s=30)
    np.testing.assert_array_equal(out["y"], np.full((3, 2), 10))
    # No hand-off to a worker, no wait for a batch window: the caller made it.
    assert signature.calls == [(threading.get_ident(), 3)]
    assert scheduler.own_thread_calls == 1 and batches == [(1, 3)]


def test_with_batching_off_a_lone_request_also_runs_in_its_own_thread(
    make_scheduler,
):
    scheduler = make_scheduler(max_batch_size=1, num_batch_threads=2)
    signature = FakeSignature()
    scheduler.run(signature, rows(1, 1), timeout_s=30)
    assert signature.calls == [(threading.get_ident(), 1)]


def test_requests_queued_behind_a_busy_slot_form_one_batch(make_scheduler):
    batches = []
    scheduler = make_scheduler(
        max_batch_size=8,
        num_batch_threads=1,
        on_batch=lambda requests, n: batches.append((requests, n)),
    )
    signature = FakeSignature()
    signature.gate.clear()
    results = {}
    first = threading.Thread(
        target=lambda: results.update(
            first=scheduler.run(signature, rows(1, 1), timeout_s=30)
        )
    )
    first.start()
    assert signature.entered.wait(30)  # the only slot is taken
    futures = [scheduler.submit(signature, rows(1 + i, 10 + i)) for i in range(3)]
    signature.gate.set()
    first.join(30)
    outs = [future.result(timeout=30) for future in futures]
    assert [o["y"].tolist() for o in outs] == [
        [[20 + 2 * i] * 2] * (1 + i) for i in range(3)
    ]
    np.testing.assert_array_equal(results["first"]["y"], [[2, 2]])
    # The caller's own call, then one worker call for the three queued ones.
    assert batches == [(1, 1), (3, 6)]
    assert signature.calls[0][0] == first.ident
    assert signature.calls[1][0] != first.ident
    assert scheduler.own_thread_calls == 1


def test_a_busy_slot_sends_the_next_request_to_the_queue(make_scheduler):
    scheduler = make_scheduler(max_batch_size=8, num_batch_threads=1)
    signature = FakeSignature()
    signature.gate.clear()
    first = threading.Thread(
        target=lambda: scheduler.run(signature, rows(1, 1), timeout_s=30)
    )
    first.start()
    assert signature.entered.wait(30)
    second = {}
    thread = threading.Thread(
        target=lambda: second.update(
            out=scheduler.run(signature, rows(2, 3), timeout_s=30),
            ident=threading.get_ident(),
        )
    )
    thread.start()
    assert wait_until(lambda: len(scheduler._queue) == 1)  # queued, not running
    signature.gate.set()
    first.join(30)
    thread.join(30)
    np.testing.assert_array_equal(second["out"]["y"], np.full((2, 2), 6))
    # Only one slot: the second request did not make its own call.
    assert scheduler.own_thread_calls == 1
    assert [ident for ident, _ in signature.calls].count(second["ident"]) == 0


def test_a_batch_window_still_lets_later_requests_join(make_scheduler):
    batches = []
    scheduler = make_scheduler(
        max_batch_size=4,
        batch_timeout_micros=30_000_000,  # ends when the batch is full
        num_batch_threads=2,
        on_batch=lambda requests, n: batches.append((requests, n)),
    )
    signature = FakeSignature()
    out = {}
    leader = threading.Thread(
        target=lambda: out.update(y=scheduler.run(signature, rows(1, 1), 30)["y"])
    )
    leader.start()
    assert wait_until(lambda: scheduler._forming)  # the leader waits to fill
    futures = [scheduler.submit(signature, rows(1, 2 + i)) for i in range(3)]
    results = [future.result(timeout=30)["y"].tolist() for future in futures]
    leader.join(30)
    assert results == [[[4, 4]], [[6, 6]], [[8, 8]]]
    assert out["y"].tolist() == [[2, 2]]
    assert batches == [(4, 4)]  # one call, made by the waiting leader
    assert signature.calls == [(leader.ident, 4)]


def test_a_failing_batch_fails_only_the_bad_request(make_scheduler):
    scheduler = make_scheduler(
        max_batch_size=8, batch_timeout_micros=30_000_000, num_batch_threads=1
    )
    signature = FakeSignature(fail_on=-1)
    futures = [
        scheduler.submit(signature, rows(1, value)) for value in (1, -1, 3, 4, 5)
    ]
    futures += [scheduler.submit(signature, rows(3, 6))]  # fills the batch of 8
    assert futures[0].result(timeout=30)["y"].tolist() == [[2, 2]]
    with pytest.raises(ServingError, match="bad row"):
        futures[1].result(timeout=30)
    assert futures[5].result(timeout=30)["y"].tolist() == [[12, 12]] * 3
    assert [n for _, n in signature.calls] == [8, 1, 1, 1, 1, 1, 3]


def test_errors_and_deadlines_reach_the_caller_on_its_own_thread(make_scheduler):
    scheduler = make_scheduler(max_batch_size=8, num_batch_threads=1)
    broken = FakeSignature(raise_error=ServingError("INTERNAL", "it broke"))
    with pytest.raises(ServingError, match="it broke"):
        scheduler.run(broken, rows(1, 1), timeout_s=30)
    with pytest.raises(ServingError, match="did not finish within 0 ms") as info:
        scheduler.run(FakeSignature(), rows(1, 1), timeout_s=1e-9)
    assert info.value.code == "DEADLINE_EXCEEDED"
    assert scheduler.own_thread_calls == 2
    # The slot was given back each time: a third call still runs here.
    signature = FakeSignature()
    scheduler.run(signature, rows(1, 1), timeout_s=30)
    assert signature.calls == [(threading.get_ident(), 1)]


def test_after_stop_requests_are_refused(make_scheduler):
    scheduler = make_scheduler(max_batch_size=8, num_batch_threads=1)
    scheduler.stop()
    with pytest.raises(ServingError, match="shutting down") as info:
        scheduler.run(FakeSignature(), rows(1, 1), timeout_s=30)
    assert info.value.code == "UNAVAILABLE"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_batch_threads=0), "num_batch_threads must be >= 1"),
        (dict(batch_timeout_micros=-1), "batch_timeout_micros must be >= 0"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BatchScheduler(**kwargs)
