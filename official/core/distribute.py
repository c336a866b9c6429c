"""Distribution strategies from the runtime config.

- `one_device`: the first GPU, or the CPU.
- `mirrored`: every local GPU (or the CPU's logical devices), synchronous.
- `multi_worker_mirrored`: synchronous across the workers named in the
  `TF_CONFIG` environment variable, e.g. for the first of two workers:
  `{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type":
  "worker", "index": 0}}`. Worker 0 (or the `chief`) writes checkpoints and
  summaries. Start-up waits at most `runtime.worker_start_timeout_seconds`
  for every peer.
- `tpu`: a Cloud TPU named by `runtime.tpu_address` (or the local TPU when
  empty), through `TPUClusterResolver`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf
from absl import logging

from official.base.config import ConfigError

STRATEGIES = ("one_device", "mirrored", "multi_worker_mirrored", "tpu")


def _devices(kind: str) -> list[str]:
    return [d.name for d in tf.config.list_logical_devices(kind)]


def read_tf_config() -> dict:
    """The parsed `TF_CONFIG`, with a clear error when missing or malformed."""
    text = os.environ.get("TF_CONFIG", "")
    example = (
        '{"cluster": {"worker": ["127.0.0.1:12345", "127.0.0.1:12346"]}, '
        '"task": {"type": "worker", "index": 0}}'
    )
    if not text:
        raise ValueError(
            "runtime.distribution_strategy=multi_worker_mirrored needs the "
            f"TF_CONFIG environment variable, e.g. TF_CONFIG='{example}'."
        )
    try:
        config = json.loads(text)
        config["cluster"]["worker"]
        config["task"]["type"], config["task"]["index"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(
            f"TF_CONFIG is not valid: {text!r}. Expected JSON like {example}."
        ) from None
    return config


def _peers(config: dict) -> list[tuple[str, str]]:
    """(task name, address) of every other task in the cluster."""
    me = (config["task"]["type"], int(config["task"]["index"]))
    return [
        (f"/job:{task_type}/task:{index}", address)
        for task_type, addresses in config["cluster"].items()
        for index, address in enumerate(addresses)
        if (task_type, index) != me
    ]


# Runs in a separate process: TensorFlow may block the whole interpreter
# (GIL included) while it waits for peers, so no thread here could act.
_WATCHDOG = """
import json, os, signal, socket, sys, time
parent, timeout, peers = int(sys.argv[1]), float(sys.argv[2]), json.loads(sys.argv[3])
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    time.sleep(0.2)
    try:
        os.kill(parent, 0)
    except OSError:
        sys.exit(0)
missing = []
for name, address in peers:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=1.0).close()
    except OSError:
        missing.append(f"{name} ({address})")
sys.stderr.write(
    f"error: TimeoutError: Workers did not all start within {timeout:.0f} s "
    f"(runtime.worker_start_timeout_seconds). Not reachable: "
    f"{', '.join(missing) or 'none by TCP; a peer may be starting slowly'}.\\n")
sys.stderr.flush()
os.kill(parent, signal.SIGKILL)
"""


def _multi_worker_strategy(timeout: float) -> tf.distribute.Strategy:
    config = read_tf_config()
    watchdog = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _WATCHDOG,
            str(os.getpid()),
            str(timeout),
            json.dumps(_peers(config)),
        ]
    )
    started = time.time()
    try:
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except tf.errors.UnknownError as e:
            if "Could not start gRPC server" not in str(e):
                raise
            task = config["task"]
            address = config["cluster"][task["type"]][int(task["index"])]
            raise ConfigError(
                f"This worker ({task['type']} {task['index']} in TF_CONFIG) could "
                f"not listen on {address}: the port is in use or the address is "
                "not this host's. Give it a free port in every worker's TF_CONFIG."
            ) from None
        # A first collective: returns only once every worker is up.
        strategy.reduce(
            tf.distribute.ReduceOp.SUM,
            strategy.run(lambda: tf.constant(1.0)),
            axis=None,
        )
    finally:
        watchdog.kill()
        watchdog.wait()
    logging.info(
        "All %d workers connected in %.1f s.",
        sum(len(v) for v in config["cluster"].values()),
        time.time() - started,
    )
    return strategy


def _tpu_strategy(address: str) -> tf.distribute.Strategy:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def get_strategy(
    name: str = "one_device",
    num_devices: int = 0,
    worker_start_timeout: float = 120.0,
    tpu_address: str = "",
) -> tf.distribute.Strategy:
    """Builds the strategy `name`.

    Args:
        name: one of `STRATEGIES`.
        num_devices: devices for `one_device`/`mirrored` (0 = all).
        worker_start_timeout: seconds `multi_worker_mirrored` waits for peers.
        tpu_address: the TPU for `tpu` ("" = local).
    """
    if name not in STRATEGIES:
        raise ValueError(
            f"Unknown distribution_strategy {name!r}. Valid: {', '.join(STRATEGIES)}."
        )
    if name == "multi_worker_mirrored":
        return _multi_worker_strategy(worker_start_timeout)
    if name == "tpu":
        return _tpu_strategy(tpu_address)
    devices = _devices("GPU") or _devices("CPU")
    if num_devices:
        if num_devices > len(devices):
            raise ValueError(
                f"runtime.num_devices={num_devices} but only {len(devices)} devices "
                f"are visible: {', '.join(devices)}."
            )
        devices = devices[:num_devices]
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(devices[0])
    if not _devices("GPU"):
        # Logical CPU devices share one memory: reducing on one of them is a
        # copy. Collective ops (MirroredStrategy's default) number their
        # instances from the same keys in every strategy object, so a second
        # mirrored strategy in one process (a test, a notebook) collides with
        # the first: "Shape mismatch in the collective instance".
        return tf.distribute.MirroredStrategy(
            devices, cross_device_ops=tf.distribute.ReductionToOneDevice(devices[0])
        )
    return tf.distribute.MirroredStrategy(devices)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints, summaries and results."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def gather_across_workers(strategy: tf.distribute.Strategy, array) -> np.ndarray:
    """Every worker's `array` concatenated along axis 0, in worker order.

    For state kept on the host (numpy) that each worker collected from its
    own shard. Every worker calls it at the same point with arrays of the
    same dtype and trailing shape; the first dimension may differ. Two
    collectives run: the sizes, then the rows padded to the longest (so
    every replica sends a tensor of the same shape); each worker's first
    replica sends its rows, the others none. Without several workers,
    returns `array`.
    """
    array = np.asarray(array)
    if not is_multi_worker(strategy):
        return array
    local = len(strategy.extended.worker_devices)

    def from_first_replicas(value: np.ndarray) -> np.ndarray:
        values = strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(
                value
                if ctx.replica_id_in_sync_group % local == 0
                else np.zeros_like(value)
            )
        )
        return strategy.gather(values, axis=0).numpy()

    sizes = from_first_replicas(np.array([len(array)], np.int64))
    longest = max(int(sizes.max()), 1)
    padded = np.zeros((longest, *array.shape[1:]), array.dtype)
    padded[: len(array)] = array
    rows = from_first_replicas(padded).reshape(len(sizes), *padded.shape)
    return np.concatenate([part[:size] for part, size in zip(rows, sizes)])
