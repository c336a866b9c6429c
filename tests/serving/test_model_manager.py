"""serving.model_manager: versions appear, retire and fail while the server runs."""

import os
import shutil

from serving import model_config
from serving.server import ModelServer
from tests.serving.tiny_model import IMAGE, call, wait_for


def test_a_new_version_is_served_without_restart(server, model_root, expected):
    staging = model_root / "staging"
    shutil.copytree(model_root / "hot" / "1", staging)
    os.rename(staging, model_root / "hot" / "2")  # appears whole
    port = server.rest_port

    def version_2_only():
        status, out = call(port, "GET", "/v1/models/hot")
        states = {s["version"]: s["state"] for s in out.get("model_version_status", [])}
        return states == {"2": "AVAILABLE", "1": "END"}

    assert wait_for(version_2_only), call(port, "GET", "/v1/models/hot")
    status, out = call(port, "GET", "/v1/models/hot/metadata")
    assert out["model_spec"]["version"] == "2"
    images, labels, _ = expected
    status, out = call(
        port,
        "POST",
        "/v1/models/hot/versions/2:predict",
        {"instances": images.tolist()},
    )
    assert (
        status == 200 and [r["classes"] for r in out["predictions"]] == labels.tolist()
    )
    status, out = call(
        port, "POST", "/v1/models/hot/versions/1:predict", {"instances": IMAGE}
    )
    assert status == 404 and "Loaded versions: 2" in out["error"]


def test_a_broken_version_is_reported_and_the_old_one_keeps_serving(
    tmp_path, saved_model, expected
):
    shutil.copytree(saved_model, tmp_path / "1")
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "saved_model.pb").write_bytes(b"not a SavedModel")
    with ModelServer(
        [model_config.ModelConfig("m", str(tmp_path))],
        rest_api_port=0,
        file_system_poll_wait_seconds=0,
    ) as running:
        status, out = call(running.rest_port, "GET", "/v1/models/m")
        states = {
            s["version"]: (s["state"], s["status"]["error_code"])
            for s in out["model_version_status"]
        }
        assert states == {"2": ("END", "UNKNOWN"), "1": ("AVAILABLE", "OK")}
        status, out = call(
            running.rest_port, "POST", "/v1/models/m:predict", {"instances": IMAGE}
        )
        assert status == 200, out
