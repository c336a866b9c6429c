"""ONNX export of a detector (extra `onnx`): any batch size, parity with Keras.

A tiny RetinaNet of `retinanet_shapes` whose class and box predictions are
made confident and varied (`save_confident_checkpoint`), so that every
image has many candidates above the parity score threshold and suppression
has real work; its detections are compared with onnxruntime's by the detection
parity measures (matched fraction at IoU >= 0.9, mAP change). About 30 s a
test on 2 cores: `make test-all` runs them.
"""

import json

import numpy as np
import pytest

pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from official.core import task_factory  # noqa: E402
from official.datasets import detection_shapes  # noqa: E402
from official.vision.tasks.detection_parity import DETECTION_TOLERANCES  # noqa: E402
from serving import export, onnx_export  # noqa: E402
from tests.official.vision.tasks.test_retinanet import (  # noqa: E402
    save_confident_checkpoint,
    tiny_config,
)

pytestmark = pytest.mark.slow

OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    """(config, checkpoint dir) of a tiny detector with confident outputs."""
    data = tmp_path_factory.mktemp("shapes")
    detection_shapes.write_detection_shapes(
        str(data), num_train=8, num_validation=8, image_size=64
    )
    cfg = tiny_config(str(data))
    path = str(tmp_path_factory.mktemp("model_dir"))
    save_confident_checkpoint(cfg, path)
    return cfg, path


@pytest.mark.parametrize("nms_type", ["per_class", "class_agnostic"])
def test_detector_exports_to_onnx_with_parity(tmp_path, detector, nms_type):
    cfg, checkpoint = detector
    cfg = cfg.copy()
    cfg.task.model.detection_generator.nms_type = nms_type
    report = export.export_experiment(
        cfg, checkpoint, str(tmp_path), formats=["onnx"], num_parity_examples=8
    )
    with open(tmp_path / "parity.json") as f:
        parity = json.load(f)
    result = parity["artifacts"]["model.onnx"]
    assert report["parity"]["passed"] and result["passed"], result
    assert result["kind"] == "onnx"
    assert (
        result["matched_fraction"]
        >= DETECTION_TOLERANCES["onnx"].minimum["matched_fraction"]
    )
    assert abs(result["map_drop"]) <= 0.01
    # Any batch size; every image has many detections above the parity
    # score threshold, so the match above is not vacuous.
    images, _ = task_factory.get_task(cfg.task).serving_examples(3)
    outputs = onnx_export.run(str(tmp_path / onnx_export.FILE_NAME), images)
    assert set(OUTPUTS) <= set(outputs)
    assert outputs["detection_boxes"].shape == (3, 20, 4)
    assert outputs["num_detections"].dtype == np.int32
    assert outputs["detection_classes"].dtype == np.int32
    assert (outputs["num_detections"] == 20).all(), outputs["num_detections"]
    assert (outputs["detection_scores"][:, 10] > 0.3).all()
