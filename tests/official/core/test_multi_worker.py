"""Two workers on 127.0.0.1 under MultiWorkerMirroredStrategy (TF_CONFIG).

Each test starts two or more TensorFlow processes (20-80 s each on 2 cores):
`make test-all` runs them, `make test` does not.
"""

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from tests.official.core.multi_worker_ports import PortTaken, bind_failed, with_ports

pytestmark = pytest.mark.slow

WORKER = textwrap.dedent('''
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
''')


def _start(index, ports, digits_dir, model_dir, timeout):
    env = dict(os.environ)
    env["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
        "task": {"type": "worker", "index": index},
    })
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, digits_dir, model_dir, str(timeout)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def _result(process):
    try:
        out, err = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"worker hung:\n{err[-3000:]}")
    return process.returncode, out, err


def test_two_workers_train_to_identical_weights(digits_dir, tmp_path):
    model_dir = str(tmp_path / "mw")
    ports = _free_ports(2)
    workers = [_start(i, ports, digits_dir, model_dir, 120) for i in range(2)]
    results = []
    for process in workers:
        code, out, err = _result(process)
        assert code == 0, err[-3000:]
        line = [l for l in out.splitlines() if l.startswith("RESULT ")][-1]
        results.append(json.loads(line[len("RESULT "):]))
    assert results[0]["weights"] == results[1]["weights"]
    # Both report the same evaluation over the whole split (metrics summed over workers).
    assert results[0]["accuracy"] == pytest.approx(results[1]["accuracy"])
    # Only the chief writes: checkpoints, params.yaml, no worker leftovers.
    files = sorted(os.listdir(model_dir))
    assert "ckpt-4.index" in files and "params.yaml" in files
    assert not os.path.exists(os.path.join(model_dir, ".worker_tmp", "worker_1", "checkpoint"))


def _start_binary(index, ports, digits_dir, model_dir, timeout, train_steps):
    env = dict(os.environ)
    env["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
        "task": {"type": "worker", "index": index},
    })
    overrides = ",".join([
        f"task.train_data.input_path={digits_dir}/train-*",
        f"task.validation_data.input_path={digits_dir}/validation-*",
        "task.train_data.global_batch_size=16",
        "task.model.backbone.params.width_multiplier=0.125",
        "runtime.distribution_strategy=multi_worker_mirrored",
        f"runtime.worker_start_timeout_seconds={timeout}",
        f"trainer.train_steps={train_steps}", "trainer.steps_per_loop=2",
        f"trainer.checkpoint_interval={train_steps}", "trainer.validation_interval=0",
    ])
    return subprocess.Popen(
        [sys.executable, "-m", "official.train", "--experiment=resnet_digits",
         "--mode=train", f"--model_dir={model_dir}", f"--params_override={overrides}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def test_missing_peer_fails_within_the_start_timeout(digits_dir, tmp_path):
    ports = _free_ports(2)
    process = _start_binary(0, ports, digits_dir, str(tmp_path / "alone"), 5, 4)
    code, out, err = _result(process)
    assert code != 0
    assert "did not all start within 5 s" in err
    assert f"/job:worker/task:1 (127.0.0.1:{ports[1]})" in err


def test_a_peer_killed_mid_run_stops_the_other(digits_dir, tmp_path):
    import time

    ports = _free_ports(2)
    model_dir = str(tmp_path / "killed")
    workers = [_start_binary(i, ports, digits_dir, model_dir, 120, 100000) for i in range(2)]
    # Wait until worker 1 trains, then kill it.
    deadline = time.monotonic() + 180
    for line in workers[1].stderr:
        if "train | step" in line or time.monotonic() > deadline:
            break
    workers[1].kill()
    workers[1].wait()
    killed_at = time.monotonic()
    code, out, err = _result(workers[0])
    assert code == 1, err[-3000:]
    assert time.monotonic() - killed_at < 60
    assert "error:" in err and ("task:1" in err or "Unavailable" in err), err[-3000:]
