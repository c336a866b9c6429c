"""Process settings that decide TensorFlow's training speed on a CPU.

Two settings, both measured with `tools/benchmark_train.py` on TensorFlow
2.21 (AMD EPYC Zen 5, 2 cores; figures in README's speed section):

**oneDNN kernels.** TensorFlow's x86 build carries two sets of CPU kernels
for convolutions, matrix products and batch norm: oneDNN's and Eigen's. It
turns oneDNN on by default only on CPUs with AVX512_VNNI, AVX512_BF16 or
AMX, so on an older AVX-512 (Skylake) or an AVX2-only machine a convolution
network trains on Eigen's kernels, whose backward convolutions are slow on
small feature maps: ResNet-18 at 32 px, batch 128, trained at 63-64
examples/s on Eigen's kernels and 729-730 with oneDNN's on the same machine.
`enable_onednn()` sets `TF_ENABLE_ONEDNN_OPTS=1` before TensorFlow is
imported, on x86-64, unless the variable is already set (`=0` keeps Eigen's
kernels). oneDNN may round differently from Eigen in the last bits.

That choice is for training. Inference at small batches goes the other way
on CPUs without AVX-512: there oneDNN runs convolutions through its generic
GEMM path, with the batch norm folded in as per-channel post-ops, and a
batch-1 forward pass of ResNet-50 at 224 px took 778 ms against 51 ms on
Eigen's kernels (MobileNet 275 vs 15 ms, RetinaNet R50-FPN at 640 px 6.7 vs
0.74 s; oneDNN limited to AVX2 with `ONEDNN_MAX_CPU_ISA=AVX2` on an Intel
Xeon with AMX, whose own AVX-512/AMX kernels took 51, 15 and 790 ms). So
processes that only run trained models (`serving.export`, the export
benchmark; the model server never sets it) call
`tune_process(inference_only=True)`, which leaves the variable to
TensorFlow's own default: Eigen on such CPUs, oneDNN on those with VNNI,
BF16 or AMX.

**glibc malloc.** TensorFlow's CPU allocator takes every tensor buffer from
`malloc`, mostly from the arenas of its worker threads, whose memory glibc
maps in heaps of up to 64 MiB. By default glibc gives memory back to the
kernel as soon as the free space at a heap's top passes its trim threshold
(deleting a thread heap that empties), so a train step that frees its
activations hands their pages back and the next step maps them again; the
kernel faults in and zeroes every page each time. ResNet-50 at 128 px,
batch 8 (`strace -f -c`: 98 `mmap` / `munmap` pairs per step by default):
66,000 minor page faults per step, 22 % of the CPU
time in the kernel and 23.2 / 23.5 examples/s (two runs) by default;
800-5,800 faults per step, 5.7 % and 30.2 / 30.2 examples/s with the settings
(peak RSS of a short run 1.70 vs 1.73 GB). `tune_malloc()` sets, through
`mallopt`:

- `M_TRIM_THRESHOLD` = 2^31 - 1: free memory at a heap's top stays mapped
  for the next step;
- `M_TOP_PAD` = 256 MiB: a heap grows in large steps (ResNet-18 at 32 px,
  batch 128 still took 33,000 faults per step with the trim threshold
  alone, 500 with both).

Setting either also fixes glibc's mmap threshold at 128 KiB (no dynamic
raise); blocks above it are still mapped and unmapped one by one, which
measured no slower here. The price is memory kept: the resident size stays
at its peak instead of shrinking between steps. A setting given in the
environment (`MALLOC_TRIM_THRESHOLD_`, `MALLOC_TOP_PAD_`, which glibc reads
at start) is left as the user set it. On a C library other than glibc
(musl, macOS) nothing is changed.

`tune_process()` does both. The binaries call it when they start
(`quiet_start()`, before TensorFlow is imported); `Trainer` calls it when it
is built, where only the malloc part can still act, and logs a warning when
TensorFlow runs without oneDNN on x86-64. `GARDEN_CPU_TUNING=0` turns all of
it off.

Example:
```python
from official.core import cpu_tuning

assert cpu_tuning.onednn_setting({}, "x86_64") == "1"
assert cpu_tuning.onednn_setting({"TF_ENABLE_ONEDNN_OPTS": "0"}, "x86_64") is None
assert cpu_tuning.malloc_settings({"MALLOC_TOP_PAD_": "65536"}) == {
    "M_TRIM_THRESHOLD": 2**31 - 1,
}
assert cpu_tuning.malloc_settings({"GARDEN_CPU_TUNING": "0"}) == {}
```
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from collections.abc import Mapping

DISABLE_VARIABLE = "GARDEN_CPU_TUNING"
ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"

# mallopt parameter numbers from glibc's <malloc.h>.
_MALLOPT_PARAMS = {"M_TRIM_THRESHOLD": -1, "M_TOP_PAD": -2}

# Parameter -> (value, the environment variable glibc reads for it).
MALLOC_SETTINGS = {
    "M_TRIM_THRESHOLD": (2**31 - 1, "MALLOC_TRIM_THRESHOLD_"),
    "M_TOP_PAD": (256 << 20, "MALLOC_TOP_PAD_"),
}

_X86_64 = ("x86_64", "amd64")

_malloc_applied: dict[str, int] | None = None
_malloc_done = False
_warned = False
_onednn_set = False


def disabled(environ: Mapping[str, str]) -> bool:
    """Whether `GARDEN_CPU_TUNING` turns the tuning off (0/false/off/no)."""
    value = environ.get(DISABLE_VARIABLE, "").strip().lower()
    return value in ("0", "false", "off", "no")


def malloc_settings(environ: Mapping[str, str]) -> dict[str, int]:
    """The mallopt settings to apply under `environ` (name -> value)."""
    if disabled(environ):
        return {}
    return {
        name: value
        for name, (value, variable) in MALLOC_SETTINGS.items()
        if variable not in environ
    }


def onednn_setting(
    environ: Mapping[str, str], machine: str, inference_only: bool = False
) -> str | None:
    """The value to give `TF_ENABLE_ONEDNN_OPTS`, or None to leave it.

    None for an `inference_only` process: TensorFlow's default is the faster
    choice for small-batch inference (see the module docstring).
    """
    if disabled(environ) or ONEDNN_VARIABLE in environ or inference_only:
        return None
    return "1" if machine.lower() in _X86_64 else None


def _libc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") else None


def tune_malloc() -> dict[str, int] | None:
    """Applies the malloc settings once per process; returns what was set.

    None where the C library is not glibc, else the dict of parameter name
    -> value set (empty when the environment set them all, or turned the
    tuning off).
    """
    global _malloc_applied, _malloc_done
    if _malloc_done:
        return _malloc_applied
    _malloc_done = True
    libc = _libc()
    if libc is None:
        return None
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.mallopt.restype = ctypes.c_int
    applied = {}
    for name, value in malloc_settings(os.environ).items():
        if libc.mallopt(_MALLOPT_PARAMS[name], value) == 1:
            applied[name] = value
    _malloc_applied = applied
    return applied


def enable_onednn(inference_only: bool = False) -> bool:
    """Sets `TF_ENABLE_ONEDNN_OPTS=1` if TensorFlow is not imported yet
    (never for an `inference_only` process).

    Returns whether the variable was set. Child processes inherit it.
    """
    global _onednn_set
    if "tensorflow" in sys.modules:
        return False
    value = onednn_setting(os.environ, platform.machine(), inference_only)
    if value is None:
        return False
    os.environ[ONEDNN_VARIABLE] = value
    _onednn_set = True
    return True


def onednn_set_here() -> bool:
    """Whether `enable_onednn` set the variable (the user had not)."""
    return _onednn_set


def onednn_enabled() -> bool | None:
    """Whether the imported TensorFlow runs oneDNN's kernels (None: unknown)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def warn_if_onednn_off(log) -> None:
    """Warns once (`log.warning`) if x86-64 TensorFlow runs Eigen's kernels."""
    global _warned
    if _warned or platform.machine().lower() not in _X86_64:
        return
    if onednn_enabled() is not False:
        return
    _warned = True
    log.warning(
        "TensorFlow runs without its oneDNN CPU kernels (%s=%s); convolutions "
        "on small images train up to 10x slower. Set %s=1 before TensorFlow "
        "is imported (the Garden binaries do unless it is set).",
        ONEDNN_VARIABLE,
        os.environ.get(ONEDNN_VARIABLE, "unset: off by default on this CPU"),
        ONEDNN_VARIABLE,
    )


def tune_process(inference_only: bool = False) -> None:
    """`enable_onednn(inference_only)` and `tune_malloc()`; safe to call more
    than once (the first call before TensorFlow's import decides oneDNN)."""
    enable_onednn(inference_only)
    tune_malloc()
