"""SIGTERM to one of two workers: both save the same step, exit 42, and resume."""

import os
import re
import signal

import pytest

from tests.official.core.test_multi_worker import (
    on_free_ports,
    results,
    start_binary,
    wait_for_line,
)

pytestmark = pytest.mark.slow


def _start_workers(ports, started, digits_dir, model_dir, train_steps):
    started += [
        start_binary(i, ports, digits_dir, model_dir, 120, train_steps)
        for i in range(2)
    ]
    return started


def test_sigterm_to_one_worker_stops_both_at_the_same_step(digits_dir, tmp_path):
    model_dir = str(tmp_path / "preempted")

    def preempt(ports, started):
        workers = _start_workers(ports, started, digits_dir, model_dir, 100000)
        # Signal worker 1 (not the chief) once it trains.
        seen = wait_for_line(workers[1], "train | step", others=[workers[0]])
        workers[1].send_signal(signal.SIGTERM)
        (code_0, _, err_0), (code_1, _, err_1) = results(workers)
        return [(code_0, err_0), (code_1, "".join(seen) + err_1)]

    steps = []
    finished = on_free_ports(preempt)
    for code, err in finished:
        assert code == 42, err[-3000:]
        match = re.search(r"Stopped by SIGTERM at step (\d+)", err)
        assert match, err[-3000:]
        steps.append(int(match.group(1)))
    assert steps[0] == steps[1] and steps[0] % 2 == 0
    assert "A peer worker got SIGTERM" in finished[0][1]
    step = steps[0]
    # The chief wrote that step's checkpoint; no worker scratch files remain.
    assert os.path.exists(os.path.join(model_dir, f"ckpt-{step}.index"))
    assert not os.path.exists(
        os.path.join(model_dir, ".worker_tmp", "worker_1", "checkpoint")
    )

    # The restart resumes from the saved step and trains on from there.
    def resume(ports, started):
        return results(_start_workers(ports, started, digits_dir, model_dir, step + 4))

    for code, _, err in on_free_ports(resume):
        assert code == 0, err[-3000:]
        assert f"at step {step}." in err and "Restored" in err, err[-3000:]
    assert os.path.exists(os.path.join(model_dir, f"ckpt-{step + 4}.index"))
