"""A quiet TensorFlow start on hosts without a GPU, with nothing else hidden.

TensorFlow's C++ runtime writes straight to file descriptor 2 while it is
imported and when it first lists devices, before any logging flag applies.
On a host without a GPU, some of those lines only say that CUDA is absent
(`CUDA_ABSENCE`: "Could not find cuda drivers", "failed call to cuInit", ...).

`import_tensorflow_quietly()` (called by the binaries before anything imports
TensorFlow) first applies `official.core.cpu_tuning.tune_process()` (oneDNN
kernels, malloc settings; always, whatever the verbosity), then does, unless
`--verbosity=1` (or higher) is on the command line:

- On a CPU-only host (`has_gpu()` is False: no `/dev/nvidia*` device node, no
  `CUDA_VISIBLE_DEVICES` naming a GPU, no loadable `libcuda`; decided without
  importing TensorFlow), the `CUDA_ABSENCE` lines written during the import
  and the first device listing are dropped. On a host with a GPU nothing is
  dropped: a broken driver or a missing CUDA library shows.
- When `TF_CPP_MIN_LOG_LEVEL` is not set, it is 1 while TensorFlow loads, so
  C++ INFO lines stay off for the process (TensorFlow reads the variable once;
  the few lines written before its logging is set up, such as oneDNN's notice,
  show regardless) while C++ warnings and errors show. The variable is then
  unset again: child processes see the environment the user gave. A value the
  user set is used as is.

`drop_stderr_lines(pattern)` is the filter itself, also used around single
calls known to print noise (the TFLite converter). Inside the block, fd 2 is a
pipe read by a small separate process that copies every line to the real
stderr as it arrives, except lines matching `pattern`. Since that process
outlives a crash of this one, what was written before an abort or a failed
import is never lost.

Example:
```python
import os
from official.core import quiet_start

line = ("I0000 00:00:1.5  42 cudart_stub.cc:31] Could not find cuda drivers "
        "on your machine, GPU will not be used.")
assert quiet_start.CUDA_ABSENCE.search(line)
assert not quiet_start.CUDA_ABSENCE.search("W0000 ... Out of memory")

with quiet_start.drop_stderr_lines(r"^known noise$"):
    os.write(2, b"known noise\\n")  # dropped
    os.write(2, b"anything else\\n")  # reaches stderr
```
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import BinaryIO

# What TensorFlow prints on a host without CUDA. Dropped only on such a host.
CUDA_ABSENCE = re.compile(
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are "
    r"written to STDERR$"
    r"|\bcudart_stub\.cc:\d+\] Could not find cuda drivers on your machine"
    r"|\bcuda_(?:platform|executor|driver)\.cc:\d+\] failed call to cuInit"
    r"|\bcuda_diagnostics\.cc:\d+\] "
    r"|Unable to register cu(?:DNN|FFT|BLAS) factory: Attempting to register "
    r"factory for plugin"
    r"|TF-TRT Warning: Could not find TensorRT"
)

LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
_QUIET_LEVEL = "1"  # C++ INFO off; WARNING, ERROR and FATAL on.
_DRAIN_TIMEOUT_S = 5.0
_LINE_LIMIT = 1 << 16


def is_verbose(argv: Sequence[str] | None = None) -> bool:
    """Whether `argv` (default `sys.argv`) asks for `--verbosity` >= 1."""
    argv = list(sys.argv if argv is None else argv)
    for i, arg in enumerate(argv):
        match = re.fullmatch(r"(?:--verbosity|--v|-v)=(-?\d+)", arg)
        if match is None and arg == "--verbosity" and i + 1 < len(argv):
            match = re.fullmatch(r"(-?\d+)", argv[i + 1])
        if match and int(match.group(1)) >= 1:
            return True
    return False


def _libcuda_loadable() -> bool:
    import ctypes

    names = ("nvcuda.dll",) if os.name == "nt" else ("libcuda.so.1", "libcuda.so")
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def has_gpu(
    dev_dir: str = "/dev",
    environ: Mapping[str, str] | None = None,
    libcuda_loadable: Callable[[], bool] = _libcuda_loadable,
) -> bool:
    """Whether this host may have an NVIDIA GPU, decided without TensorFlow.

    True when `dev_dir` has an NVIDIA device node (`nvidia0`, `nvidiactl`, or
    `dxg` under WSL), when `CUDA_VISIBLE_DEVICES` names a device (not empty,
    not `-1`), or when the CUDA driver library loads.
    """
    environ = os.environ if environ is None else environ
    try:
        nodes = os.listdir(dev_dir)
    except OSError:
        nodes = []
    if any(node.startswith("nvidia") or node == "dxg" for node in nodes):
        return True
    visible = environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    if visible and not visible.startswith("-"):
        return True
    return libcuda_loadable()


def pump(source: BinaryIO, sink: BinaryIO, noise: re.Pattern[str]) -> None:
    """Copies `source` to `sink` line by line as it arrives, except `noise`.

    Reads to the end even when `sink` fails, so that writers never block.
    """
    sink_ok = True
    for line in iter(lambda: source.readline(_LINE_LIMIT), b""):
        if noise.search(line.decode("utf-8", "replace")) or not sink_ok:
            continue
        try:
            sink.write(line)
            sink.flush()
        except OSError:
            sink_ok = False


def _flush_stderr() -> None:
    with contextlib.suppress(Exception):
        sys.stderr.flush()


@contextlib.contextmanager
def drop_stderr_lines(
    pattern: str | re.Pattern[str], argv: Sequence[str] | None = None
) -> Iterator[None]:
    """Drops the lines matching `pattern` that fd 2 receives inside the block.

    Every other line reaches the real stderr as it is written, even if this
    process aborts inside the block. A no-op with `--verbosity=1` in `argv`
    (default `sys.argv`), or where no filter process can be started.
    """
    pattern = pattern if isinstance(pattern, str) else pattern.pattern
    script = os.path.abspath(__file__)
    if (
        is_verbose(argv)
        or getattr(sys, "frozen", False)
        or not sys.executable
        or not os.path.isfile(script)
    ):
        yield
        return
    _flush_stderr()
    try:
        real_stderr = os.dup(2)
    except OSError:  # No fd 2 to filter.
        yield
        return
    try:
        filter_process = subprocess.Popen(
            [sys.executable, "-I", "-S", script, pattern],
            stdin=subprocess.PIPE,
            stdout=real_stderr,
            stderr=real_stderr,
            start_new_session=True,  # Ctrl-C here must not stop the filter.
        )
    except OSError:
        os.close(real_stderr)
        yield
        return
    os.dup2(filter_process.stdin.fileno(), 2)
    try:
        yield
    finally:
        _flush_stderr()
        os.dup2(real_stderr, 2)
        os.close(real_stderr)
        filter_process.stdin.close()
        # A process started inside the block may still hold the pipe; the
        # filter then ends with it.
        with contextlib.suppress(subprocess.TimeoutExpired):
            filter_process.wait(timeout=_DRAIN_TIMEOUT_S)


@contextlib.contextmanager
def quiet_start(
    argv: Sequence[str] | None = None,
    gpu: bool | None = None,
    inference_only: bool = False,
) -> Iterator[None]:
    """The scope in which to import TensorFlow (see the module docstring).

    Args:
        argv: the command line (default `sys.argv`); `--verbosity=1` makes
            the quieting a no-op (the CPU settings still apply).
        gpu: whether the host has a GPU; `has_gpu()` when None.
        inference_only: the process runs trained models and never trains
            (`cpu_tuning.tune_process`: oneDNN left to TensorFlow's default).
    """
    # Before TensorFlow loads (see cpu_tuning). Imported here: this file also
    # runs alone, without `official` importable, as the filter process.
    from official.core import cpu_tuning

    cpu_tuning.tune_process(inference_only)
    if is_verbose(argv):
        yield
        return
    user_level = os.environ.get(LOG_LEVEL)
    if user_level is None:
        os.environ[LOG_LEVEL] = _QUIET_LEVEL
    try:
        if has_gpu() if gpu is None else gpu:
            yield
        else:
            with drop_stderr_lines(CUDA_ABSENCE, argv):
                yield
    finally:
        if user_level is None:
            os.environ.pop(LOG_LEVEL, None)


def import_tensorflow_quietly(inference_only: bool = False) -> None:
    """Imports TensorFlow and lists its devices under `quiet_start()`."""
    with quiet_start(inference_only=inference_only):
        import tensorflow as tf

        # Listing devices starts TensorFlow's runtime, which a multi-worker
        # strategy must configure first: not under TF_CONFIG.
        if "TF_CONFIG" not in os.environ:
            tf.config.list_logical_devices()
    if not is_verbose():
        # INFO lines of TensorFlow's Python logger (`tf.get_logger()`).
        import logging

        logging.getLogger("tensorflow").setLevel(logging.WARNING)


if __name__ == "__main__":  # The filter process of `drop_stderr_lines`.
    pump(sys.stdin.buffer, sys.stdout.buffer, re.compile(sys.argv[1]))
