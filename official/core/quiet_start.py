"""A quiet start on machines without a GPU.

TensorFlow's C++ runtime writes CUDA-driver messages straight to the stderr
file descriptor while it is imported and when it first lists devices, before
any logging flag applies. On a machine with no GPU these lines say nothing
useful. `quiet_stderr()` captures the file descriptor around those two
moments and writes back every line except the known CUDA-absence noise, so
real errors still show. `--verbosity=1` (or higher) on the command line turns
the filter off.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

# Lines TensorFlow prints when no CUDA driver is installed.
_NOISE = re.compile(
    r"cudart_stub\.cc|cuda_platform\.cc.*cuInit|cuda_diagnostics|"
    r"All log messages before absl::InitializeLog\(\) is called|"
    r"Unable to register cu(DNN|FFT|BLAS) factory|"
    r"computation placer already registered|cpu_feature_guard\.cc|"
    r"To enable the following instructions: .* rebuild TensorFlow"
)


def _verbose(argv: list[str]) -> bool:
    for arg in argv:
        match = re.fullmatch(r"--(?:verbosity|v)=(-?\d+)", arg)
        if match and int(match.group(1)) >= 1:
            return True
    return False


@contextlib.contextmanager
def quiet_stderr(argv: list[str] | None = None):
    """Filters known no-GPU noise from fd 2 inside the block."""
    argv = sys.argv if argv is None else argv
    if _verbose(argv):
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines(True):
                if not _NOISE.search(line):
                    sys.stderr.write(line)
            sys.stderr.flush()


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow and lists its devices under `quiet_stderr`."""
    with quiet_stderr():
        import tensorflow as tf

        # Listing devices starts TensorFlow's runtime, which a multi-worker
        # strategy must configure first: not under TF_CONFIG.
        if "TF_CONFIG" not in os.environ:
            tf.config.list_logical_devices()
    if not _verbose(sys.argv):
        # TensorFlow's Python INFO lines (checkpoint sharding timings, ...).
        import logging

        logging.getLogger("tensorflow").setLevel(logging.WARNING)
