"""Tests of `official.datasets.tfrecord_writer`, `image_files` and `coco_masks`."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from official.datasets import coco_masks
from official.datasets import tfrecord_writer as tw
from official.datasets.image_files import UnreadableImageError, load_image_file


def _read(path):
    return [
        tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)
    ]


def test_features_accept_scalars_lists_and_numpy():
    example = tw.example(
        {
            "b": tw.bytes_feature(["a", b"b"]),
            "i": tw.int64_feature(np.array([[1, 2], [3, 4]])),
            "f": tw.float_feature(np.float32(0.5)),
            "s": tw.bytes_feature("text"),
        }
    )
    feature = example.features.feature
    assert feature["b"].bytes_list.value == [b"a", b"b"]
    assert feature["i"].int64_list.value == [1, 2, 3, 4]
    assert feature["f"].float_list.value == [0.5]
    assert feature["s"].bytes_list.value == [b"text"]


def test_sharded_writer_round_robin_and_atomic(tmp_path):
    out = str(tmp_path)
    writer = tw.ShardedTFRecordWriter(out, "val", num_shards=3)
    for i in range(7):
        writer.write(tw.example({"x": tw.int64_feature(i)}))
    # Nothing is in place before close.
    assert not any(name.endswith(".tfrecord") for name in os.listdir(out))
    writer.close()
    assert writer.counts == [3, 2, 2] and writer.num_examples == 7
    values = [
        e.features.feature["x"].int64_list.value[0] for e in _read(writer.paths[0])
    ]
    assert values == [0, 3, 6]
    assert sorted(os.listdir(out)) == [tw.shard_name("val", i, 3) for i in range(3)]
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"x")


def test_sharded_writer_removes_partial_files_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with tw.ShardedTFRecordWriter(str(tmp_path), "train", 2) as writer:
            writer.write(b"record")
            raise RuntimeError("conversion failed")
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="num_shards"):
        tw.ShardedTFRecordWriter(str(tmp_path), "train", 0)


def _save(path, array, **kwargs):
    Image.fromarray(array).save(path, **kwargs)
    return str(path)


def test_load_image_file_keeps_converts_or_rejects(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (6, 9, 3), np.uint8)
    jpeg = load_image_file(_save(tmp_path / "a.jpg", rgb))
    assert (jpeg.format, jpeg.height, jpeg.width, jpeg.converted) == (
        "jpeg",
        6,
        9,
        False,
    )
    assert jpeg.data == (tmp_path / "a.jpg").read_bytes()
    png = load_image_file(_save(tmp_path / "b.png", rgb[..., 0]))
    assert png.format == "png" and not png.converted
    cmyk = tmp_path / "c.jpg"
    Image.fromarray(rgb).convert("CMYK").save(cmyk)
    bmp_as_png = tmp_path / "d.png"
    Image.fromarray(rgb).save(bmp_as_png, format="BMP")
    for path in (cmyk, bmp_as_png):
        image = load_image_file(str(path))
        assert image.converted and image.format == "jpeg"
        decoded = tf.io.decode_jpeg(image.data)
        assert decoded.shape == (6, 9, 3)
    truncated = tmp_path / "e.jpg"
    truncated.write_bytes((tmp_path / "a.jpg").read_bytes()[:100])
    for path, reason in [
        (truncated, "not a readable image"),
        (tmp_path / "missing.jpg", "cannot read"),
    ]:
        with pytest.raises(UnreadableImageError, match=reason) as error:
            load_image_file(str(path))
        assert str(path) in str(error.value)


def encode_rle_string(runs: list[int]) -> str:
    """The compressed COCO RLE string of run lengths (pycocotools' rleToString)."""
    chars = []
    for i, value in enumerate(runs):
        x = value - runs[i - 2] if i > 2 else value
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = not ((x == 0 and not c & 0x10) or (x == -1 and c & 0x10))
            if more:
                c |= 0x20
            chars.append(chr(c + 48))
    return "".join(chars)


def _runs(mask: np.ndarray) -> list[int]:
    flat = mask.T.reshape(-1)
    runs, current, count = [], 0, 0
    for value in flat:
        if value != current:
            runs.append(count)
            current, count = value, 0
        count += 1
    runs.append(count)
    return runs


def _dilate(mask: np.ndarray) -> np.ndarray:
    """3 x 3 binary dilation."""
    padded = np.pad(mask, 1)
    h, w = mask.shape
    shifts = [padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)]
    return np.max(shifts, axis=0)


@pytest.mark.parametrize("use_pycocotools", [False, True])
def test_rle_masks_decode_exactly(use_pycocotools):
    if use_pycocotools and not coco_masks.have_pycocotools():
        pytest.skip("pycocotools is not installed (the `coco` extra).")
    rng = np.random.default_rng(1)
    for _ in range(5):
        mask = (rng.random((11, 7)) > 0.5).astype(np.uint8)
        runs = _runs(mask)
        for counts in (runs, encode_rle_string(runs)):
            rle = {"size": [11, 7], "counts": counts}
            decoded = coco_masks.segmentation_to_mask(rle, 11, 7, use_pycocotools)
            np.testing.assert_array_equal(decoded, mask)
    with pytest.raises(ValueError, match="does not match"):
        coco_masks.rle_to_mask({"size": [3, 3], "counts": [9]}, 4, 4)


def test_polygon_masks_agree_with_pycocotools():
    if not coco_masks.have_pycocotools():
        pytest.skip("pycocotools is not installed (the `coco` extra).")
    polygons = [[3, 2, 25, 4, 20, 22, 5, 18], [28, 25, 35, 25, 35, 30]]
    ours = coco_masks.segmentation_to_mask(polygons, 32, 40, use_pycocotools=False)
    theirs = coco_masks.segmentation_to_mask(polygons, 32, 40, use_pycocotools=True)
    iou = (ours & theirs).sum() / (ours | theirs).sum()
    assert iou > 0.85
    # They differ by at most one pixel along the outline.
    assert (_dilate(ours) >= theirs).all() and (_dilate(theirs) >= ours).all()
    with pytest.raises(ValueError, match="3 \\(x, y\\) points"):
        coco_masks.polygons_to_mask([[1, 2, 3, 4]], 5, 5)
