"""tools/convert_coco.py writes records the detection input reads box for box."""

import importlib.util
import json
import pathlib

import numpy as np
import tensorflow as tf
from PIL import Image

from official.vision.dataloaders import detection_input

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _convert_coco():
    path = ROOT / "tools" / "convert_coco.py"
    spec = importlib.util.spec_from_file_location("convert_coco", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_coco_records_decode_to_the_annotated_boxes(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(images / "a.png")
    coco = {
        "images": [{"id": 5, "file_name": "a.png", "height": 40, "width": 60}],
        "categories": [{"id": 1, "name": "cat"}, {"id": 18, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 5, "category_id": 18, "iscrowd": 0,
             "bbox": [6.0, 4.0, 30.0, 20.0], "area": 500.0, "segmentation": []},
            {"id": 2, "image_id": 5, "category_id": 1, "iscrowd": 1,
             "bbox": [40.0, 10.0, 15.0, 25.0], "area": 300.0, "segmentation": []},
        ],
    }  # fmt: skip
    (tmp_path / "instances.json").write_text(json.dumps(coco))
    out = tmp_path / "records"
    _convert_coco().convert_coco(
        str(tmp_path / "instances.json"),
        str(images),
        str(out),
        "val",
        num_shards=1,
        include_masks=False,
    )
    (path,) = tf.io.gfile.glob(str(out / "val-*"))
    record = next(iter(tf.data.TFRecordDataset(path)))
    decoded = detection_input.decode_example(record)
    boxes = decoded["boxes"].numpy() * [40, 60, 40, 60]
    np.testing.assert_allclose(boxes, [[4, 6, 24, 36], [10, 40, 35, 55]], atol=1e-4)
    assert decoded["classes"].numpy().tolist() == [18, 1]
    assert decoded["is_crowd"].numpy().tolist() == [False, True]
    np.testing.assert_allclose(decoded["area"].numpy(), [500.0, 300.0])
