"""tools/convert_*.py on small fixtures: what is written, what is skipped."""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from official.core.experiment_config import DataConfig
from official.core.input_reader import InputReader
from official.datasets.synthetic import write_synthetic_image_folder
from official.vision.dataloaders.classification_input import decode_example

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _examples(pattern: str) -> list[tf.train.Example]:
    files = sorted(tf.io.gfile.glob(pattern))
    return [
        tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files)
    ]


def _bytes(example, key):
    return list(example.features.feature[key].bytes_list.value)


def _ints(example, key):
    return list(example.features.feature[key].int64_list.value)


def _floats(example, key):
    return list(example.features.feature[key].float_list.value)


# ---- image folder -------------------------------------------------------------


def test_convert_image_folder(tmp_path, capsys):
    tool = _tool("convert_image_folder")
    source = tmp_path / "images"
    paths = write_synthetic_image_folder(
        str(source), 7, (12, 16), num_classes=3, seed=0
    )
    rgb = np.zeros((5, 6, 3), np.uint8)
    Image.fromarray(rgb).convert("CMYK").save(source / "class_01" / "cmyk.jpg")
    (source / "class_02" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (source / "class_02" / "notes.txt").write_text("not an image")
    output = tmp_path / "records"
    code = tool.main(
        [
            "convert_image_folder",
            f"--input_dir={source}",
            f"--output_dir={output}",
            "--num_shards=2",
            "--noprogress",
        ]
    )
    assert code == 0
    report = capsys.readouterr().out
    assert "Wrote 8 examples of 3 classes to 2 shards" in report
    assert "Skipped (unreadable): 1" in report and "broken.jpg" in report
    summary = json.loads((output / "summary-train.json").read_text())
    assert summary["examples_per_shard"] == [4, 4]
    assert summary["converted_to_jpeg"] == [str(source / "class_01" / "cmyk.jpg")]
    assert summary["not_images"] == [str(source / "class_02" / "notes.txt")]
    assert (output / "labels.txt").read_text().split() == [
        "class_00",
        "class_01",
        "class_02",
    ]
    # Read back through the input pipeline: labels agree with the folder.
    params = DataConfig(
        input_path=str(output / "train-*.tfrecord"),
        global_batch_size=8,
        is_training=False,
        drop_remainder=False,
    )
    reader = InputReader(params, decode_example, lambda d: d["label"])
    labels = sorted(int(v) for batch in reader.read() for v in batch.numpy())
    expected = sorted(
        [int(os.path.basename(os.path.dirname(p))[-1]) for p in paths] + [1]
    )
    assert labels == expected
    example = _examples(str(output / "train-*.tfrecord"))[0]
    name = _bytes(example, "image/filename")[0].decode()
    assert _bytes(example, "image/class/text")[0].decode() == name.split("/")[0]


def test_convert_image_folder_errors(tmp_path, capsys):
    tool = _tool("convert_image_folder")
    assert tool.main(["x", f"--output_dir={tmp_path}"]) == 2
    missing = tmp_path / "missing"
    assert tool.main(["x", f"--input_dir={missing}", f"--output_dir={tmp_path}"]) == 1
    assert "is not a directory" in capsys.readouterr().err


# ---- COCO ---------------------------------------------------------------------


def _coco_fixture(root: pathlib.Path) -> pathlib.Path:
    images = root / "images"
    images.mkdir()
    for name, (h, w) in {"a.png": (20, 30), "b.png": (10, 10), "c.png": (8, 8)}.items():
        Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(images / name)
    crowd = np.zeros((20, 30), np.uint8)
    crowd[2:6, 20:25] = 1
    flat = crowd.T.reshape(-1)  # Column-major runs, starting with zeros.
    changes = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    coco = {
        "images": [
            {"id": 1, "file_name": "a.png", "height": 20, "width": 30},
            {"id": 2, "file_name": "b.png", "height": 10, "width": 10},
            {"id": 3, "file_name": "missing.png", "height": 5, "width": 5},
            {"id": 4, "file_name": "c.png", "height": 9, "width": 8},  # Wrong size.
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}],
        "annotations": [
            {
                "id": 10,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": [3.0, 4.0, 10.0, 8.0],
                "area": 80.0,
                "segmentation": [[3.0, 4.0, 13.0, 4.0, 13.0, 12.0, 3.0, 12.0]],
            },
            {
                "id": 11,
                "image_id": 1,
                "category_id": 3,
                "iscrowd": 1,
                "bbox": [20.0, 2.0, 5.0, 4.0],
                "area": 20.0,
                "segmentation": {"size": [20, 30], "counts": runs},
            },
            {
                "id": 12,
                "image_id": 1,
                "category_id": 3,
                "iscrowd": 0,
                "bbox": [5.0, 5.0, 0.0, 3.0],
                "area": 0.0,  # Empty box: skipped.
                "segmentation": [[5.0, 5.0, 5.0, 8.0, 5.0, 6.0]],
            },
        ],
    }
    path = root / "instances.json"
    path.write_text(json.dumps(coco))
    return path


def test_convert_coco_boxes_and_masks(tmp_path):
    tool = _tool("convert_coco")
    annotations = _coco_fixture(tmp_path)
    output = tmp_path / "records"
    summary = tool.convert_coco(
        str(annotations), str(tmp_path / "images"), str(output), "val", num_shards=1
    )
    assert summary["num_written"] == 2 and summary["num_objects"] == 2
    assert summary["num_crowd_objects"] == 1 and summary["num_skipped_boxes"] == 1
    reasons = " ".join(entry["reason"] for entry in summary["skipped"])
    assert "missing.png" in reasons and "9x8" in reasons
    label_map = (output / "label_map.pbtxt").read_text()
    assert 'id: 3\n  name: "dog"' in label_map
    examples = {
        _bytes(e, "image/source_id")[0]: e
        for e in _examples(str(output / "val-*.tfrecord"))
    }
    empty = examples[b"2"]
    assert _ints(empty, "image/object/class/label") == []
    example = examples[b"1"]
    assert _ints(example, "image/object/class/label") == [1, 3]
    assert _bytes(example, "image/object/class/text") == [b"cat", b"dog"]
    assert _ints(example, "image/object/is_crowd") == [0, 1]
    np.testing.assert_allclose(
        _floats(example, "image/object/bbox/xmin"), [0.1, 20 / 30]
    )
    np.testing.assert_allclose(_floats(example, "image/object/bbox/ymax"), [0.6, 0.3])
    masks = [
        tf.io.decode_png(m).numpy()[..., 0]
        for m in _bytes(example, "image/object/mask")
    ]
    assert masks[0].shape == (20, 30) and set(np.unique(masks[0])) == {0, 1}
    assert masks[0][6:10, 5:11].all() and not masks[0][15:, :].any()
    expected_crowd = np.zeros((20, 30), np.uint8)
    expected_crowd[2:6, 20:25] = 1
    np.testing.assert_array_equal(masks[1], expected_crowd)


def test_convert_coco_rejects_other_json(tmp_path):
    tool = _tool("convert_coco")
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="not a COCO instances file"):
        tool.convert_coco(str(path), str(tmp_path), str(tmp_path / "out"))


# ---- Pascal VOC segmentation --------------------------------------------------


def _voc_fixture(root: pathlib.Path) -> None:
    tool = _tool("convert_voc_segmentation")
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True)
    mask = np.zeros((12, 16), np.uint8)
    mask[2:8, 3:9] = 15
    mask[0, :] = 255
    palette = tool.voc_colormap()
    for image_id in ("a", "b", "c", "d"):
        Image.fromarray(np.full((12, 16, 3), 120, np.uint8)).save(
            root / "JPEGImages" / f"{image_id}.jpg"
        )
    indexed = Image.fromarray(mask, mode="P")
    indexed.putpalette(palette.reshape(-1).tolist())
    indexed.save(root / "SegmentationClass" / "a.png")
    Image.fromarray(palette[mask]).save(root / "SegmentationClass" / "b.png")  # RGB.
    Image.fromarray(mask[:10]).save(root / "SegmentationClass" / "c.png")  # Too small.
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("a\nb\nc\nd\n")
    return mask


def test_convert_voc_segmentation(tmp_path):
    tool = _tool("convert_voc_segmentation")
    mask = _voc_fixture(tmp_path / "VOC")
    output = tmp_path / "records"
    summary = tool.convert_voc_segmentation(
        str(tmp_path / "VOC"), "train", str(output), num_shards=2
    )
    assert summary["num_written"] == 2 and summary["examples_per_shard"] == [1, 1]
    reasons = {entry["id"]: entry["reason"] for entry in summary["skipped"]}
    assert "mask is 10x16" in reasons["c"] and "mask file missing" in reasons["d"]
    assert summary["images_per_class_index"] == {"0": 2, "15": 2, "255": 2}
    for example in _examples(str(output / "train-*.tfrecord")):
        assert _bytes(example, "image/format") == [b"jpeg"]
        decoded = tf.io.decode_png(
            _bytes(example, "image/segmentation/class/encoded")[0]
        )
        np.testing.assert_array_equal(decoded.numpy()[..., 0], mask)
        image = tf.io.decode_jpeg(_bytes(example, "image/encoded")[0])
        assert image.shape == (12, 16, 3)


def test_convert_voc_segmentation_names_missing_split(tmp_path):
    tool = _tool("convert_voc_segmentation")
    _voc_fixture(tmp_path / "VOC")
    with pytest.raises(FileNotFoundError, match="Splits available: train"):
        tool.convert_voc_segmentation(str(tmp_path / "VOC"), "val", str(tmp_path / "o"))
