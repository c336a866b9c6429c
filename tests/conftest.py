"""Shared fixtures: two logical CPU devices, the digits TFRecords once per session."""

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from official.core import cpu_tuning  # noqa: E402

# The binaries' CPU settings (oneDNN kernels, malloc), before TensorFlow loads.
cpu_tuning.tune_process()

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import official.registry_imports  # noqa: E402, F401  (the suite is an entry point)

# Two logical CPUs so that MirroredStrategy runs with two replicas here.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
)


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory):
    """The embedded digits data as ImageNet-style TFRecords."""
    from official.datasets import digits

    out = tmp_path_factory.mktemp("digits")
    digits.write_digits_tfrecords(str(out))
    return str(out)


_ABSL_LEVEL = logging.getLogger("absl").level


@pytest.fixture(autouse=True)
def _absl_logger_level_restored():
    """Each test starts and ends with the absl logger at the level it had
    when the suite began.

    Parsing or unparsing absl's global flags (tests that run a binary's
    `main` in process, module fixtures included) sets that level to
    WARNING; a later test in the same worker then saw none of the absl INFO
    lines it checks with `caplog`.
    """
    logger = logging.getLogger("absl")
    logger.setLevel(_ABSL_LEVEL)
    yield
    logger.setLevel(_ABSL_LEVEL)
