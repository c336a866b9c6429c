"""official.core.quiet_start: known CUDA-absence lines dropped on CPU-only hosts
only, nothing lost on a crash, the user's TF_CPP_MIN_LOG_LEVEL kept; and the
scoped filters around the TFLite converter and the SavedModel writer."""

import io
import logging
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from official.core import quiet_start

ROOT = pathlib.Path(__file__).resolve().parents[3]

CUDA_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written "
    "to STDERR\n",
    "I0000 00:00:1796176651.863881    5424 cudart_stub.cc:31] Could not find cuda "
    "drivers on your machine, GPU will not be used.\n",
    "E0000 00:00:1796176655.918822    5424 cuda_platform.cc:52] failed call to "
    "cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n",
    "2024-01-01 12:00:00.000000: I external/local_xla/xla/stream_executor/cuda/"
    "cuda_diagnostics.cc:137] retrieving CUDA diagnostic information for host: h\n",
]
OTHER_LINES = [
    "I0000 00:00:1796176651.863551    5424 port.cc:153] oneDNN custom operations "
    "are on.\n",
    "W0000 00:00:1796176710.982818    6514 gpu_device.cc:2344] Cannot dlopen some "
    "GPU libraries. Skipping registering GPU devices...\n",
    "F0000 00:00:1.0  42 some_kernel.cc:10] Check failed: x == y\n",
    "Traceback (most recent call last):\n",
    "no newline at the end",
]


def _pump(lines, noise):
    sink = io.BytesIO()
    source = io.BytesIO("".join(lines).encode())
    quiet_start.pump(source, sink, noise)
    return sink.getvalue().decode()


def test_cpu_only_filter_drops_the_cuda_lines_and_keeps_the_others():
    mixed = [line for pair in zip(CUDA_LINES, OTHER_LINES) for line in pair]
    mixed += OTHER_LINES[len(CUDA_LINES) :]
    assert _pump(mixed, quiet_start.CUDA_ABSENCE) == "".join(OTHER_LINES)


def test_gpu_host_drops_nothing(capfd):
    with quiet_start.quiet_start(argv=[], gpu=True):
        for line in CUDA_LINES + OTHER_LINES[:-1]:
            os.write(2, line.encode())
    assert capfd.readouterr().err == "".join(CUDA_LINES + OTHER_LINES[:-1])


def test_cpu_only_host_drops_only_the_cuda_lines(capfd):
    with quiet_start.quiet_start(argv=[], gpu=False):
        for line in CUDA_LINES + OTHER_LINES[:-1]:
            os.write(2, line.encode())
    assert capfd.readouterr().err == "".join(OTHER_LINES[:-1])


def test_verbosity_1_drops_nothing(capfd):
    with quiet_start.quiet_start(argv=["prog", "--verbosity=1"], gpu=False):
        os.write(2, CUDA_LINES[1].encode())
    assert capfd.readouterr().err == CUDA_LINES[1]
    assert quiet_start.is_verbose(["prog", "--verbosity", "2"])
    assert quiet_start.is_verbose(["prog", "-v=1"])
    assert not quiet_start.is_verbose(["prog", "--verbosity=0", "-v"])


@pytest.mark.parametrize(
    "nodes, env, libcuda, expected",
    [
        ([], {}, False, False),
        (["null", "zero", "kfd"], {"CUDA_VISIBLE_DEVICES": "-1"}, False, False),
        ([], {"CUDA_VISIBLE_DEVICES": ""}, False, False),
        (["nvidia0", "nvidiactl"], {}, False, True),
        (["nvidiactl"], {"CUDA_VISIBLE_DEVICES": "-1"}, False, True),
        (["dxg"], {}, False, True),
        ([], {"CUDA_VISIBLE_DEVICES": "0"}, False, True),
        ([], {"CUDA_VISIBLE_DEVICES": "GPU-8a5e"}, False, True),
        ([], {}, True, True),
    ],
)
def test_has_gpu(tmp_path, nodes, env, libcuda, expected):
    for node in nodes:
        (tmp_path / node).touch()
    assert quiet_start.has_gpu(str(tmp_path), env, lambda: libcuda) is expected


def test_has_gpu_without_a_dev_directory(tmp_path):
    assert not quiet_start.has_gpu(str(tmp_path / "missing"), {}, lambda: False)


@pytest.fixture
def fake_module(tmp_path, monkeypatch):
    """Writes `fake_tf.py` with `body`; returns its name, importable."""

    def write(body):
        (tmp_path / "fake_tf.py").write_text(textwrap.dedent(body))
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delitem(sys.modules, "fake_tf", raising=False)
        return "fake_tf"

    return write


def test_output_before_a_failed_import_reaches_stderr(capfd, fake_module):
    name = fake_module(
        f"""
        import os
        os.write(2, {CUDA_LINES[1].encode()!r})
        os.write(2, b"fatal: the library is broken\\n")
        raise ImportError("broken")
        """
    )
    with pytest.raises(ImportError, match="broken"):
        with quiet_start.quiet_start(argv=[], gpu=False):
            __import__(name)
    assert capfd.readouterr().err == "fatal: the library is broken\n"


def test_output_before_an_abort_during_import_reaches_stderr(tmp_path):
    """The process dies inside the block: no finally runs, nothing is lost."""
    (tmp_path / "fake_tf.py").write_text(
        "import os\n"
        f"os.write(2, {CUDA_LINES[2].encode()!r})\n"
        "os.write(2, b'F0000 check failed: the library is broken\\n')\n"
        "os.abort()\n"
    )
    script = (
        "from official.core import quiet_start\n"
        "with quiet_start.quiet_start(argv=[], gpu=False):\n"
        "    import fake_tf\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]))
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.decode() == "F0000 check failed: the library is broken\n"


@pytest.mark.parametrize("user_level", [None, "0", "3"])
def test_log_level_is_the_users_after_start_up(monkeypatch, fake_module, user_level):
    if user_level is None:
        monkeypatch.delenv(quiet_start.LOG_LEVEL, raising=False)
    else:
        monkeypatch.setenv(quiet_start.LOG_LEVEL, user_level)
    name = fake_module(
        "import os\nLEVEL_AT_IMPORT = os.environ.get('TF_CPP_MIN_LOG_LEVEL')\n"
    )
    with quiet_start.quiet_start(argv=[], gpu=False):
        module = __import__(name)
    # Unset: C++ INFO lines off while TensorFlow loads (warnings on); set: as is.
    assert module.LEVEL_AT_IMPORT == (user_level or "1")
    assert os.environ.get(quiet_start.LOG_LEVEL) == user_level


def test_import_tensorflow_quietly_keeps_the_users_log_level(monkeypatch):
    monkeypatch.delenv(quiet_start.LOG_LEVEL, raising=False)
    quiet_start.import_tensorflow_quietly()
    assert quiet_start.LOG_LEVEL not in os.environ


@pytest.mark.slow  # A TensorFlow import in a fresh process: about 10 s on 2 cores.
@pytest.mark.skipif(quiet_start.has_gpu(), reason="this host has a GPU")
def test_tensorflow_starts_without_cuda_lines_on_a_cpu_only_host():
    """A fresh process: the real import, then fd 2 is the real stderr again."""
    script = (
        "import os\n"
        "from official.core.quiet_start import import_tensorflow_quietly\n"
        "import_tensorflow_quietly()\n"
        "os.write(2, b'after start-up\\n')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != quiet_start.LOG_LEVEL}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cuda" not in result.stderr.lower(), result.stderr
    assert "absl::InitializeLog" not in result.stderr
    assert result.stderr.endswith("after start-up\n")


# ---- the scoped filters of the export --------------------------------------


def test_tflite_converter_noise_is_dropped_and_the_rest_kept():
    import re

    from serving import tflite_export

    noise = [
        "W0000 00:00:1.0  9 tf_tfl_flatbuffer_helpers.cc:364] Ignored output_format.\n",
        "W0000 00:00:1.0  9 tf_tfl_flatbuffer_helpers.cc:367] Ignored "
        "drop_control_dependency.\n",
        "fully_quantize: 0, inference_type: 6, input_inference_type: FLOAT32, "
        "output_inference_type: FLOAT32\n",
        "W0000 00:00:1.0  9 flatbuffer_export.cc:3851] Skipping runtime version "
        "metadata in the model. This will be generated by the exporter.\n",
    ]
    kept = [
        "W0000 00:00:1.0  9 tf_tfl_flatbuffer_helpers.cc:99] Ignored something new.\n",
        "error: 'tf.Cumprod' op is neither a custom op nor a flex op\n",
    ]
    pattern = re.compile(tflite_export.CONVERTER_NOISE)
    assert _pump(noise + kept, pattern) == "".join(kept)


def test_saved_model_writer_drops_only_the_captured_resource_rename(caplog):
    from serving import saved_model_export

    template = (
        "Function `%s` contains input name(s) %s with unsupported characters "
        "which will be renamed to %s in the SavedModel."
    )
    logger = logging.getLogger("absl")
    with caplog.at_level(logging.INFO, logger="absl"):
        with saved_model_export._without_captured_resource_renames():
            logger.info(template, "image_tensor", "resource", "head_bias_resource")
            logger.info(template, "image_tensor", "my image", "my_image")
        logger.info(template, "image_tensor", "resource", "head_bias_resource")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        template % ("image_tensor", "my image", "my_image"),
        template % ("image_tensor", "resource", "head_bias_resource"),
    ]
