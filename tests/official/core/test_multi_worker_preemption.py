"""SIGTERM to one of two workers: both save the same step, exit 42, and resume."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_workers(digits_dir, model_dir, train_steps):
    ports = _free_ports(2)
    overrides = ",".join([
        f"task.train_data.input_path={digits_dir}/train-*",
        f"task.validation_data.input_path={digits_dir}/validation-*",
        "task.train_data.global_batch_size=16",
        "task.model.backbone.params.width_multiplier=0.125",
        "runtime.distribution_strategy=multi_worker_mirrored",
        "runtime.worker_start_timeout_seconds=120",
        f"trainer.train_steps={train_steps}", "trainer.steps_per_loop=2",
        f"trainer.checkpoint_interval={train_steps}", "trainer.validation_interval=0",
    ])
    workers = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        }))
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "official.train", "--experiment=resnet_digits",
             "--mode=train", f"--model_dir={model_dir}", f"--params_override={overrides}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        ))
    return workers


def _finish(process, timeout=240):
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"worker hung:\n{err[-3000:]}")
    return process.returncode, err


def test_sigterm_to_one_worker_stops_both_at_the_same_step(digits_dir, tmp_path):
    model_dir = str(tmp_path / "preempted")
    workers = _start_workers(digits_dir, model_dir, train_steps=100000)
    # Signal worker 1 (not the chief) once it trains.
    seen = []
    deadline = time.monotonic() + 180
    for line in workers[1].stderr:
        seen.append(line)
        if "train | step" in line or time.monotonic() > deadline:
            break
    assert any("train | step" in l for l in seen), "".join(seen)[-3000:]
    workers[1].send_signal(signal.SIGTERM)
    results = [_finish(p) for p in workers]
    errs = ["".join(seen) + results[1][1] if i == 1 else results[0][1] for i in range(2)]
    steps = []
    for (code, _), err in zip(results, errs):
        assert code == 42, err[-3000:]
        match = re.search(r"Stopped by SIGTERM at step (\d+)", err)
        assert match, err[-3000:]
        steps.append(int(match.group(1)))
    assert steps[0] == steps[1] and steps[0] % 2 == 0
    assert "A peer worker got SIGTERM" in errs[0]
    step = steps[0]
    # The chief wrote that step's checkpoint; no worker scratch files remain.
    assert os.path.exists(os.path.join(model_dir, f"ckpt-{step}.index"))
    assert not os.path.exists(os.path.join(model_dir, ".worker_tmp", "worker_1", "checkpoint"))

    # The restart resumes from the saved step and trains on from there.
    workers = _start_workers(digits_dir, model_dir, train_steps=step + 4)
    for process in workers:
        code, err = _finish(process)
        assert code == 0, err[-3000:]
        assert f"at step {step}." in err and "Restored" in err, err[-3000:]
    assert os.path.exists(os.path.join(model_dir, f"ckpt-{step + 4}.index"))
