"""tools/load_test.py against a real server on 127.0.0.1, briefly."""

import contextlib
import importlib.util
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from serving import model_config
from serving.server import ModelServer

ROOT = pathlib.Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def serving(model_dir, **kwargs):
    """A server of model "m" from `model_dir`; yields its :predict URL."""
    with ModelServer(
        [model_config.ModelConfig("m", str(model_dir))],
        rest_api_port=0,
        file_system_poll_wait_seconds=0,
        **kwargs,
    ) as server:
        yield f"http://127.0.0.1:{server.rest_port}/v1/models/m:predict"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location(
        "load_test_tool", ROOT / "tools" / "load_test.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A SavedModel whose serving_default takes uint8 images (version 1)."""
    root = tmp_path_factory.mktemp("load_test_models")

    class Model(tf.Module):
        @tf.function(
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, "images")]
        )
        def serve(self, images):
            mean = tf.reduce_mean(tf.cast(images, tf.float32), axis=[1, 2])
            return {
                "scores": mean,
                "classes": tf.argmax(mean, axis=-1, output_type=tf.int32),
            }

    model = Model()
    tf.saved_model.save(
        model, str(root / "m" / "1"), signatures={"serving_default": model.serve}
    )
    return root / "m"


def test_load_test_reports_throughput_and_compares(tool, model_dir, capsys):
    with serving(model_dir) as url:
        code = tool.main(
            [
                "load_test",
                f"--url={url}",
                "--concurrency=4",
                "--duration_s=1.2",
                "--warmup_s=0.2",
                "--image_shape=8,8,3",
                f"--compare_in_process={model_dir / '1'}",
                "--in_process_runner=session",
                "--rounds=2",
            ]
        )
        out = capsys.readouterr().out
        assert code == 0, out
        assert "errors 0" in out and "REST / in-process throughput:" in out
        assert "runner=session" in out
        bad = tool.run_rest(
            url.replace("/m:", "/nope:"), tool.make_body([8, 8, 3]), 2, 0.3, 0.0
        )
    assert bad["requests"] == 0 and bad["errors"] > 0
    assert list(bad["error_kinds"]) == ["HTTP 404"]
    assert "Unknown model 'nope'" in bad["first_errors"]["HTTP 404"]


def test_clients_reconnect_when_the_server_closes(tool, model_dir):
    """A 401 closes the connection: every request still gets its answer."""
    with serving(model_dir, auth_token="secret") as url:
        body = tool.make_body([8, 8, 3])
        refused = tool.run_rest(url, body, 2, 0.3, 0.0, auth_token="wrong")
        served = tool.run_rest(url, body, 2, 0.3, 0.0, auth_token="secret")
    assert refused["requests"] == 0 and refused["errors"] > 2
    assert list(refused["error_kinds"]) == ["HTTP 401"]
    assert "Invalid bearer token" in refused["first_errors"]["HTTP 401"]
    assert served["requests"] > 0 and served["errors"] == 0


@pytest.mark.slow  # A fresh TensorFlow process: 6-10 s on 2 cores.
def test_in_process_threads_can_match_the_server(model_dir):
    """--intra_op_threads / --inter_op_threads set TF's pools in the tool's process.

    TF's thread pools are set once per process, hence a fresh one. The script's
    fast smoke test is `test_tool_flags.py` (`tools/load_test.py --help`).
    """
    import subprocess
    import sys

    with serving(model_dir) as url:
        result = subprocess.run(
            [
                sys.executable,
                str(ROOT / "tools" / "load_test.py"),
                f"--url={url}",
                "--concurrency=1",
                "--duration_s=0.4",
                "--warmup_s=0.1",
                "--rounds=1",
                "--image_shape=8,8,3",
                f"--compare_in_process={model_dir / '1'}",
                "--intra_op_threads=1",
                "--inter_op_threads=2",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "intra_op=1  inter_op=2" in result.stdout


def test_in_process_runners_feed_the_same_request_alike(tool, model_dir):
    body = tool.make_body([8, 8, 3])
    calls = [
        tool.InProcess(str(model_dir / "1"), body, runner=runner)
        for runner in tool.RUNNERS
    ]
    outputs = [call._call() for call in calls]
    assert sorted(outputs[0]) == sorted(outputs[1])
    for key in outputs[0]:
        np.testing.assert_allclose(outputs[0][key], outputs[1][key], rtol=1e-6)
    with pytest.raises(ValueError, match="runner must be one of"):
        tool.InProcess(str(model_dir / "1"), body, runner="grpc")


def test_make_body_is_one_uint8_image(tool):
    import json

    body = json.loads(tool.make_body([4, 4, 3], "image_tensor"))
    assert body["signature_name"] == "image_tensor"
    image = np.asarray(body["instances"])
    assert image.shape == (1, 4, 4, 3) and image.max() <= 255
