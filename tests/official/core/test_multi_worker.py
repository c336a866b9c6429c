"""Two workers on 127.0.0.1 under MultiWorkerMirroredStrategy (TF_CONFIG).

Each test runs two TensorFlow processes for 13-75 s on 2 cores: `make test-all`
runs them, `make test` does not.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

pytestmark = pytest.mark.slow

WORKER = textwrap.dedent("""
    import hashlib, json, sys
    import numpy as np
    import official.registry_imports  # noqa: F401
    from official.core.config_loader import load_experiment_config
    from official.core.train_lib import run_experiment
    digits, model_dir, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    cfg = load_experiment_config("resnet_digits", params_override={
        "task.train_data.input_path": digits + "/train-*",
        "task.validation_data.input_path": digits + "/validation-*",
        "task.train_data.global_batch_size": 16,
        "task.validation_data.global_batch_size": 90,
        "task.model.backbone.params.width_multiplier": 0.125,
        "runtime.distribution_strategy": "multi_worker_mirrored",
        "runtime.worker_start_timeout_seconds": timeout,
        "trainer.train_steps": 4, "trainer.steps_per_loop": 2,
        "trainer.checkpoint_interval": 2, "trainer.validation_interval": 4})
    import official.core.trainer as trainer_lib
    captured = {}
    original = trainer_lib.Trainer.train
    def train(self, *args):
        logs = original(self, *args)
        digest = hashlib.sha256()
        for v in self.model.weights:
            digest.update(np.asarray(v.numpy()).tobytes())
        captured["weights"] = digest.hexdigest()
        return logs
    trainer_lib.Trainer.train = train
    logs = run_experiment(cfg, "train_and_eval", model_dir)
    print("RESULT " + json.dumps({"weights": captured["weights"], **logs}))
""")


# ---- ports ---------------------------------------------------------------------------
# TF's gRPC server binds the port TF_CONFIG names itself, with SO_REUSEPORT off:
# a test can neither hand it a bound socket nor hold the port while it binds.
# So the ports are picked free, and a run in which a worker could not bind its
# port (another process took it in between) starts again on new ports.

# distribute.py turns TensorFlow's "Could not start gRPC server" into this.
BIND_FAILED = "could not listen on"


class PortTaken(Exception):
    """A worker could not bind its port."""


def pick_ports(n):
    """`n` distinct ports free on every interface now (TF binds 0.0.0.0)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def on_free_ports(run, n=2, attempts=3):
    """`run(ports, started)`, again on new ports while a worker cannot bind.

    `run` appends the processes it starts to `started`; those still running
    when it returns or raises are killed.
    """
    for attempt in range(attempts):
        started = []
        try:
            return run(pick_ports(n), started)
        except PortTaken:
            if attempt == attempts - 1:
                raise
        finally:
            for process in started:
                if process.poll() is None:
                    process.kill()
                    process.wait()


def tf_config(ports, index):
    return json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        }
    )


def results(processes, timeout=240):
    """`(returncode, stdout, stderr)` of each process, read concurrently.

    Raises PortTaken as soon as one exits because it could not bind.
    """
    outputs = [None] * len(processes)

    def collect(index):
        outputs[index] = processes[index].communicate()

    threads = [
        threading.Thread(target=collect, args=(i,), daemon=True)
        for i in range(len(processes))
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    while any(thread.is_alive() for thread in threads):
        for thread, output in zip(threads, outputs):
            if not thread.is_alive() and BIND_FAILED in output[1]:
                raise PortTaken(output[1][-2000:])
        if time.monotonic() > deadline:
            for process in processes:
                process.kill()
            for thread in threads:
                thread.join()
            pytest.fail(f"workers hung:\n{outputs[0][1][-3000:]}")
        time.sleep(0.2)
    for _, err in outputs:
        if BIND_FAILED in err:
            raise PortTaken(err[-2000:])
    return [(p.returncode, out, err) for p, (out, err) in zip(processes, outputs)]


def wait_for_line(process, text, others, timeout=180):
    """The stderr lines of `process` up to one containing `text`.

    Raises PortTaken when it, or one of `others`, exits unable to bind.
    """
    lines = []
    found = threading.Event()

    def read():
        for line in process.stderr:
            lines.append(line)
            if text in line:
                break
        found.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not found.wait(0.2):
        for other in others:
            if other.poll() is not None:
                err = other.stderr.read()
                if BIND_FAILED in err:
                    raise PortTaken(err[-2000:])
                pytest.fail(f"a worker exited early:\n{err[-3000:]}")
        if time.monotonic() > deadline:
            break
    seen = "".join(lines)
    if BIND_FAILED in seen:
        raise PortTaken(seen[-2000:])
    assert text in seen, seen[-3000:]
    return lines


# ---- the tests -----------------------------------------------------------------------


def _start(index, ports, digits_dir, model_dir, timeout):
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, digits_dir, model_dir, str(timeout)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, TF_CONFIG=tf_config(ports, index)),
    )


def test_two_workers_train_to_identical_weights(digits_dir, tmp_path):
    model_dir = str(tmp_path / "mw")

    def run(ports, started):
        started += [_start(i, ports, digits_dir, model_dir, 120) for i in range(2)]
        return results(started)

    reports = []
    for code, out, err in on_free_ports(run):
        assert code == 0, err[-3000:]
        line = [x for x in out.splitlines() if x.startswith("RESULT ")][-1]
        reports.append(json.loads(line[len("RESULT ") :]))
    assert reports[0]["weights"] == reports[1]["weights"]
    # Both report the same evaluation over the whole split (metrics summed over workers).
    assert reports[0]["accuracy"] == pytest.approx(reports[1]["accuracy"])
    # Only the chief writes: checkpoints, params.yaml, no worker leftovers.
    files = sorted(os.listdir(model_dir))
    assert "ckpt-4.index" in files and "params.yaml" in files
    assert not os.path.exists(
        os.path.join(model_dir, ".worker_tmp", "worker_1", "checkpoint")
    )


def start_binary(index, ports, digits_dir, model_dir, timeout, train_steps):
    """`python -m official.train` as worker `index` of the cluster on `ports`."""
    overrides = ",".join(
        [
            f"task.train_data.input_path={digits_dir}/train-*",
            f"task.validation_data.input_path={digits_dir}/validation-*",
            "task.train_data.global_batch_size=16",
            "task.model.backbone.params.width_multiplier=0.125",
            "runtime.distribution_strategy=multi_worker_mirrored",
            f"runtime.worker_start_timeout_seconds={timeout}",
            f"trainer.train_steps={train_steps}",
            "trainer.steps_per_loop=2",
            f"trainer.checkpoint_interval={train_steps}",
            "trainer.validation_interval=0",
        ]
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "official.train",
            "--experiment=resnet_digits",
            "--mode=train",
            f"--model_dir={model_dir}",
            f"--params_override={overrides}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, TF_CONFIG=tf_config(ports, index)),
    )


def test_missing_peer_fails_within_the_start_timeout(digits_dir, tmp_path):
    def run(ports, started):
        started.append(
            start_binary(0, ports, digits_dir, str(tmp_path / "alone"), 5, 4)
        )
        return ports, results(started)[0]

    ports, (code, out, err) = on_free_ports(run)
    assert code != 0
    assert "did not all start within 5 s" in err
    assert f"/job:worker/task:1 (127.0.0.1:{ports[1]})" in err


def test_a_peer_killed_mid_run_stops_the_other(digits_dir, tmp_path):
    model_dir = str(tmp_path / "killed")

    def run(ports, started):
        started += [
            start_binary(i, ports, digits_dir, model_dir, 120, 100000) for i in range(2)
        ]
        # Wait until worker 1 trains, then kill it.
        wait_for_line(started[1], "train | step", others=[started[0]])
        started[1].kill()
        started[1].wait()
        killed_at = time.monotonic()
        code, out, err = results([started[0]])[0]
        return code, err, time.monotonic() - killed_at

    code, err, seconds = on_free_ports(run)
    assert code == 1, err[-3000:]
    assert seconds < 60
    assert "error:" in err and ("task:1" in err or "Unavailable" in err), err[-3000:]


def test_a_taken_port_is_a_clear_error(tmp_path):
    """A worker whose own TF_CONFIG port is held by another socket says so."""
    holder = socket.socket()
    holder.bind(("", 0))
    holder.listen()
    try:
        port = holder.getsockname()[1]
        tf_config = {
            "cluster": {"worker": [f"127.0.0.1:{port}", "127.0.0.1:1"]},
            "task": {"type": "worker", "index": 0},
        }
        script = (
            "from official.core import distribute\n"
            "try:\n"
            "    distribute.get_strategy('multi_worker_mirrored', 1,"
            " worker_start_timeout=30)\n"
            "except Exception as e:\n"
            "    print(type(e).__name__, e)\n"
        )
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "PYTHONPATH": "."}
        out = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    finally:
        holder.close()
    assert out.startswith("ConfigError"), out
    assert f"could not listen on 127.0.0.1:{port}" in out
    assert "worker 0 in TF_CONFIG" in out
