"""Distribution strategies from the runtime config."""

from __future__ import annotations

import tensorflow as tf

STRATEGIES = ("one_device", "mirrored")


def _devices(kind: str) -> list[str]:
    return [d.name for d in tf.config.list_logical_devices(kind)]


def get_strategy(name: str = "one_device", num_devices: int = 0) -> tf.distribute.Strategy:
    """Builds the strategy `name` over `num_devices` devices (0 = all).

    Accelerators (GPU) are used when present; otherwise the CPU's logical
    devices are.
    """
    if name not in STRATEGIES:
        raise ValueError(
            f"Unknown distribution_strategy {name!r}. Valid: {', '.join(STRATEGIES)}."
        )
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
    return tf.distribute.MirroredStrategy(devices)
