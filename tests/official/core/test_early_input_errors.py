"""Bad `input_path`s fail when the input is built, naming the path.

Before: a directory failed after the first training steps with
"FailedPreconditionError ... Is a directory"; a glob matching the converter's
JSON summary failed with a 40-line DataLossError naming no file.
"""

import os

import pytest
import tensorflow as tf

from official.core import input_files
from official.core.experiment_config import DataConfig
from official.core.input_reader import InputReader
from official.datasets import tfrecord_writer as tw
from official.datasets.synthetic import write_synthetic_image_folder


def _reader(input_path):
    params = DataConfig(input_path=input_path, global_batch_size=2, is_training=True)
    return InputReader(params, lambda record: record, lambda x: x)


def _write_shards(directory, prefix="validation", num_shards=2):
    with tw.ShardedTFRecordWriter(str(directory), prefix, num_shards) as writer:
        for i in range(4):
            writer.write(tw.example({"x": tw.int64_feature(i)}))
    return writer.paths


def test_an_image_folder_given_as_tfrecords_suggests_image_folder(tmp_path):
    folder = str(tmp_path / "flowers")
    write_synthetic_image_folder(folder, 4, 8, num_classes=2, seed=0)
    with pytest.raises(ValueError) as raised:
        _reader(folder).read()
    message = str(raised.value)
    assert repr(folder) in message
    assert "input_format=image_folder" in message and "class_00" in message


def test_a_plain_directory_asks_for_a_glob(tmp_path):
    _write_shards(tmp_path)
    with pytest.raises(ValueError, match="not directories") as raised:
        _reader(str(tmp_path)).read()
    assert "image_folder" not in str(raised.value)


def test_a_non_tfrecord_file_in_the_glob_is_named(tmp_path):
    _write_shards(tmp_path)
    stray = tmp_path / "validation-notes.json"
    stray.write_text('{"not": "records"}')
    with pytest.raises(ValueError, match="not a TFRecord file") as raised:
        _reader(str(tmp_path / "validation-*")).read()
    assert str(stray) in str(raised.value)
    assert "'" + str(tmp_path / "validation-*") + "'" in str(raised.value)


def test_tfrecord_shards_and_empty_files_pass(tmp_path):
    paths = _write_shards(tmp_path)
    empty = tmp_path / "validation-empty.tfrecord"
    empty.write_bytes(b"")
    assert input_files.match_files(str(tmp_path / "validation-*")) == sorted(
        [*paths, str(empty)]
    )


def test_a_truncated_header_is_not_a_tfrecord_file(tmp_path):
    (path,) = _write_shards(tmp_path, num_shards=1)
    with open(path, "rb") as f:
        header = f.read(12)
    bad = tmp_path / "validation-flipped.tfrecord"
    bad.write_bytes(header[:8] + bytes([header[8] ^ 1]) + header[9:])
    with pytest.raises(ValueError, match="validation-flipped.tfrecord"):
        input_files.check_tfrecord_file(str(bad))


def test_the_converter_summary_is_not_matched_by_the_shard_glob(tmp_path):
    from tools.convert_image_folder import convert_image_folder

    source = str(tmp_path / "images")
    write_synthetic_image_folder(source, 6, 8, num_classes=2, seed=0)
    output = tmp_path / "records"
    convert_image_folder(source, str(output), prefix="validation", num_shards=2)
    assert (output / "summary-validation.json").exists()
    matched = tf.io.gfile.glob(str(output / "validation-*"))
    assert sorted(os.path.basename(p) for p in matched) == [
        "validation-00000-of-00002.tfrecord",
        "validation-00001-of-00002.tfrecord",
    ]
    assert input_files.match_files(str(output / "validation-*")) == sorted(matched)
