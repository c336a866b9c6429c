"""CPU settings applied at process start: oneDNN kernels and glibc malloc."""

import ctypes
import os
import platform
import subprocess
import sys

import pytest

from official.core import cpu_tuning

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def test_onednn_is_asked_for_on_x86_64_unless_set():
    assert cpu_tuning.onednn_setting({}, "x86_64") == "1"
    assert cpu_tuning.onednn_setting({}, "AMD64") == "1"
    assert cpu_tuning.onednn_setting({}, "aarch64") is None
    assert cpu_tuning.onednn_setting({"TF_ENABLE_ONEDNN_OPTS": "0"}, "x86_64") is None
    assert cpu_tuning.onednn_setting({"GARDEN_CPU_TUNING": "off"}, "x86_64") is None


def test_inference_only_processes_keep_tensorflows_default():
    assert cpu_tuning.onednn_setting({}, "x86_64", inference_only=True) is None
    code = (
        "import os\n"
        "from official.core.quiet_start import quiet_start\n"
        "with quiet_start(gpu=False, inference_only={}):\n"
        "    pass\n"
        "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset'))\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TF_ENABLE_ONEDNN_OPTS", "GARDEN_CPU_TUNING")
    }
    seen = {
        mode: subprocess.run(
            [sys.executable, "-c", code.format(mode)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for mode in (True, False)
    }
    assert seen[True] == "unset"
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    assert seen[False] == ("1" if x86 else "unset")


def test_malloc_settings_leave_the_users_variables_alone():
    assert cpu_tuning.malloc_settings({}) == {
        "M_TRIM_THRESHOLD": 2**31 - 1,
        "M_TOP_PAD": 256 << 20,
    }
    assert "M_TOP_PAD" not in cpu_tuning.malloc_settings({"MALLOC_TOP_PAD_": "0"})
    assert cpu_tuning.malloc_settings({"GARDEN_CPU_TUNING": "0"}) == {}
    assert cpu_tuning.malloc_settings({"GARDEN_CPU_TUNING": "1"}) != {}


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks "
            "fordblks keepcost"
        ).split()
    ]


_PROBE = r"""
import ctypes, sys
from official.core import cpu_tuning
from tests.official.core.test_cpu_tuning import _Mallinfo2

if sys.argv[1] == "tuned":
    assert cpu_tuning.tune_malloc()["M_TRIM_THRESHOLD"] == 2**31 - 1
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
libc.mallinfo2.restype = _Mallinfo2
# 64 MiB in blocks below the mmap threshold: they come from the heap.
blocks = [libc.malloc(64 << 10) for _ in range(1024)]
for block in reversed(blocks):
    libc.free(block)
# Still mapped after the free (MiB). Tuned, the heap grew by the 256 MiB top
# pad and keeps it; by default it grew by 128 KiB steps and is trimmed where
# the heap can shrink (a main arena that glibc had to place with mmap, as on
# some hosts, is never trimmed, so the default figure is not asserted).
print(libc.mallinfo2().arena >> 20)
"""


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_freed_heap_memory_stays_mapped_once_tuned():
    # Fresh interpreters: this process already has the settings (conftest).
    kept = {}
    for mode in ("default", "tuned"):
        out = subprocess.run(
            [sys.executable, "-c", _PROBE, mode],
            capture_output=True,
            text=True,
            env={"PATH": "", "GARDEN_CPU_TUNING": "1"},
            check=True,
        )
        kept[mode] = int(out.stdout.strip())
    assert kept["default"] < 256 <= kept["tuned"], kept


def test_the_binaries_and_the_suite_run_with_onednn():
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("oneDNN is asked for on x86-64 only")
    assert cpu_tuning.onednn_enabled() is True


def test_warning_names_the_variable(monkeypatch):
    messages = []

    class Log:
        def warning(self, fmt, *args):
            messages.append(fmt % args)

    monkeypatch.setattr(cpu_tuning, "_warned", False)
    monkeypatch.setattr(cpu_tuning, "onednn_enabled", lambda: False)
    monkeypatch.setattr(cpu_tuning.platform, "machine", lambda: "x86_64")
    cpu_tuning.warn_if_onednn_off(Log())
    cpu_tuning.warn_if_onednn_off(Log())  # once per process
    assert len(messages) == 1
    assert "TF_ENABLE_ONEDNN_OPTS=1" in messages[0]
