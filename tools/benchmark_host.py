"""What `tools/benchmark_train.py` reports besides the rate.

- `host_info()`: the CPU model and the instruction sets that decide
  TensorFlow's kernels (AVX2, AVX-512, VNNI, bfloat16, AMX), the cores this
  process may use, whether TensorFlow runs oneDNN's kernels and which malloc
  settings `official.core.cpu_tuning` applied.
- `usage()` / `usage_delta()`: user and system CPU seconds and page faults of
  this process, from `getrusage`, around the timed loops.
- `run_reference()`: tf-models-official's train step on the same batch, in a
  virtual environment of its own (`tools/tfm_reference_step.py` runs there),
  made on first use with `ensure_reference_venv()`.

Example:
```python
from tools import benchmark_host

info = benchmark_host.host_info()
assert info["cpu_model"] and info["cores"] >= 1
before = benchmark_host.usage()
delta = benchmark_host.usage_delta(before, benchmark_host.usage())
assert delta["user_seconds"] >= 0 and delta["minor_faults"] >= 0
```
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile

# The reference the comparison was asked against; pip resolves the rest.
REFERENCE_PACKAGES = ("tf-models-official==2.20.0", "tensorflow==2.20.0")
REFERENCE_STEP = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "tfm_reference_step.py"
)

# /proc/cpuinfo flag -> the name printed.
_FEATURES = (
    ("avx2", "AVX2"),
    ("avx512f", "AVX-512"),
    ("avx512_vnni", "VNNI"),
    ("avx512_bf16", "AVX512-BF16"),
    ("amx_bf16", "AMX-BF16"),
)


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model or platform.processor() or platform.machine(), flags


def host_info() -> dict:
    """The CPU, its relevant instruction sets, cores, oneDNN and malloc state."""
    from official.core import cpu_tuning

    model, flags = _cpuinfo()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return {
        "cpu_model": model,
        "cpu_features": [name for flag, name in _FEATURES if flag in flags],
        "cores": cores,
        "onednn": cpu_tuning.onednn_enabled(),
        "malloc_settings": cpu_tuning.tune_malloc(),
    }


def on_off(flag: bool | None) -> str:
    """A setting's state for a report line: on, off or unknown (None)."""
    return {True: "on", False: "off"}.get(flag, "unknown")


def usage() -> tuple[float, float, int, int]:
    """(user s, system s, minor faults, major faults) of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime, r.ru_minflt, r.ru_majflt


def usage_delta(before, after) -> dict:
    """The difference of two `usage()` snapshots, as a dict."""
    return {
        "user_seconds": after[0] - before[0],
        "system_seconds": after[1] - before[1],
        "minor_faults": after[2] - before[2],
        "major_faults": after[3] - before[3],
    }


def ensure_reference_venv(directory: str, log=print) -> str:
    """The Python of `directory`, a venv with `REFERENCE_PACKAGES` (made if absent)."""
    python = os.path.join(directory, "bin", "python")
    if os.path.exists(os.path.join(directory, ".garden-reference-ready")):
        return python
    log(
        f"Making the reference environment {directory} "
        f"(pip install {' '.join(REFERENCE_PACKAGES)}; about 1.5 GB, once)."
    )
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", directory], check=True)
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", *REFERENCE_PACKAGES], check=True
    )
    open(os.path.join(directory, ".garden-reference-ready"), "w").close()
    return python


def reference_spec(config, num_loops: int, steps_per_loop: int) -> dict:
    """tf-models-official's settings for the run `config` describes.

    `family` and `experiment` name the task family
    (`tools/benchmark_families.py`) and tf-models-official's experiment;
    the family adds its model and input settings.

    Raises:
        ValueError: naming what has no counterpart there (e.g. a backbone
            other than ResNet, several replicas, soft labels).
    """
    from tools import benchmark_families

    family = benchmark_families.family_of(config.task)
    if config.runtime.distribution_strategy != "one_device":
        raise ValueError(
            "--reference=tf_models_official runs one device; set "
            "runtime.distribution_strategy=one_device. Received: "
            f"{config.runtime.distribution_strategy!r}."
        )
    return {
        "family": family.name,
        "experiment": family.reference_experiment,
        **family.reference_spec(config),
        "global_batch_size": config.task.train_data.global_batch_size,
        "mixed_precision_dtype": config.runtime.mixed_precision_dtype,
        "num_loops": num_loops,
        "steps_per_loop": steps_per_loop,
    }


def reference_environment() -> dict:
    """This process's environment as the user gave it (Garden's settings removed).

    tf-models-official's binary runs with what the user set; the oneDNN
    variable that `cpu_tuning` added for Garden's process is taken out.
    """
    from official.core import cpu_tuning

    env = dict(os.environ)
    if cpu_tuning.onednn_set_here():
        env.pop(cpu_tuning.ONEDNN_VARIABLE, None)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def run_reference(spec: dict, arrays: dict, python: str) -> dict:
    """Runs `tools/tfm_reference_step.py` under `python` on the given batch.

    `arrays` (name -> array, `Family.arrays` of `tools/benchmark_families.py`)
    goes to it as an `.npz` file.

    Returns its result (per-loop seconds, CPU time and faults, versions).

    Raises:
        RuntimeError: naming the command and the last lines it printed.
    """
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="tfm_reference_") as tmp:
        batch_file = os.path.join(tmp, "batch.npz")
        np.savez(batch_file, **{k: np.asarray(v) for k, v in arrays.items()})
        spec_file = os.path.join(tmp, "spec.json")
        with open(spec_file, "w") as f:
            json.dump({**spec, "batch_file": batch_file}, f)
        result_file = os.path.join(tmp, "result.json")
        command = [python, "-I", REFERENCE_STEP, spec_file, result_file]
        done = subprocess.run(
            command,
            cwd=tmp,
            env=reference_environment(),
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
            raise RuntimeError(
                f"the reference run failed (exit {done.returncode}): "
                f"{' '.join(command)}\n{tail}"
            )
        with open(result_file) as f:
            return json.load(f)
