"""Tests of `official.core.input_reader`."""

from __future__ import annotations

import os

import pytest
import tensorflow as tf

from official.core.experiment_config import DataConfig
from official.core.input_reader import InputReader, match_files


def _example(value: int) -> bytes:
    feature = {"x": tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))}
    return tf.train.Example(
        features=tf.train.Features(feature=feature)
    ).SerializeToString()


def _write(tmp_path, num_files: int, per_file: int, prefix: str = "data") -> str:
    """Writes values 0..num_files*per_file-1, file i holding a contiguous run."""
    for i in range(num_files):
        path = os.path.join(tmp_path, f"{prefix}-{i:05d}-of-{num_files:05d}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for j in range(per_file):
                writer.write(_example(i * per_file + j))
    return os.path.join(tmp_path, f"{prefix}-*.tfrecord")


def _decode(record):
    return tf.io.parse_single_example(
        record, {"x": tf.io.FixedLenFeature([], tf.int64)}
    )


def _parse(decoded):
    return decoded["x"]


def _values(dataset, num_batches=None) -> list[int]:
    if num_batches is not None:
        dataset = dataset.take(num_batches)
    return [int(v) for batch in dataset for v in batch.numpy()]


def _context(pipeline_id: int, num: int = 2) -> tf.distribute.InputContext:
    return tf.distribute.InputContext(
        num_input_pipelines=num, input_pipeline_id=pipeline_id, num_replicas_in_sync=num
    )


def _eval_config(pattern: str, batch_size: int, drop_remainder: bool = False, **kw):
    return DataConfig(
        input_path=pattern,
        global_batch_size=batch_size,
        is_training=False,
        drop_remainder=drop_remainder,
        **kw,
    )


def test_eval_batches_keep_order_and_remainder(tmp_path):
    pattern = _write(tmp_path, num_files=2, per_file=5)
    dataset = InputReader(_eval_config(pattern, 4), _decode, _parse).read()
    shapes = [batch.shape[0] for batch in dataset]
    assert shapes == [4, 4, 2]
    # Sorted files one after another: the original order, every time.
    assert _values(dataset) == list(range(10))
    assert _values(dataset) == list(range(10))


def test_drop_remainder_drops_the_last_partial_batch(tmp_path):
    pattern = _write(tmp_path, num_files=2, per_file=5)
    dataset = InputReader(
        _eval_config(pattern, 4, drop_remainder=True), _decode, _parse
    ).read()
    assert dataset.element_spec.shape.as_list() == [4]
    assert [b.shape[0] for b in dataset] == [4, 4]


def test_training_shuffles_repeats_and_is_reproducible_with_seed(tmp_path):
    pattern = _write(tmp_path, num_files=3, per_file=4)
    params = DataConfig(
        input_path=pattern, global_batch_size=4, shuffle_buffer_size=12, seed=7
    )
    reader = InputReader(params, _decode, _parse)
    first = _values(reader.read(), num_batches=9)  # 3 epochs of 12.
    assert len(first) == 36
    for epoch in range(3):
        assert sorted(first[epoch * 12 : (epoch + 1) * 12]) == list(range(12))
    assert first[:12] != list(range(12))
    assert _values(reader.read(), num_batches=9) == first


def test_per_replica_batch_and_file_sharding_are_disjoint_and_complete(tmp_path):
    pattern = _write(tmp_path, num_files=4, per_file=5)
    params = _eval_config(pattern, batch_size=4)
    seen = []
    for pipeline_id in range(2):
        dataset = InputReader(params, _decode, _parse).read(_context(pipeline_id))
        batches = list(dataset)
        assert {b.shape[0] for b in batches} == {2}  # 4 global / 2 replicas.
        seen.append(set(_values(dataset)))
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == set(range(20))


@pytest.mark.parametrize("is_training", [False, True])
def test_record_sharding_when_fewer_files_than_pipelines(tmp_path, is_training):
    pattern = _write(tmp_path, num_files=1, per_file=10)
    params = DataConfig(
        input_path=pattern,
        global_batch_size=2,
        is_training=is_training,
        drop_remainder=False,
        shuffle_buffer_size=10,
    )
    seen = []
    for pipeline_id in range(2):
        dataset = InputReader(params, _decode, _parse).read(_context(pipeline_id))
        # One epoch of a pipeline's shard: 5 records in batches of 1.
        values = _values(dataset, num_batches=5)
        assert len(values) == 5 and len(set(values)) == 5
        seen.append(set(values))
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == set(range(10))


def test_global_batch_size_must_divide_by_replicas(tmp_path):
    pattern = _write(tmp_path, num_files=2, per_file=2)
    reader = InputReader(_eval_config(pattern, 3), _decode, _parse)
    with pytest.raises(ValueError, match="divisible"):
        reader.read(_context(0))


def test_pattern_without_match_names_the_pattern(tmp_path):
    pattern = _write(tmp_path, num_files=1, per_file=2)
    missing = os.path.join(tmp_path, "nothing-*.tfrecord")
    reader = InputReader(_eval_config(f"{pattern},{missing}", 2), _decode, _parse)
    with pytest.raises(FileNotFoundError, match="nothing-"):
        reader.read()


def test_comma_separated_patterns_are_merged(tmp_path):
    a = _write(tmp_path, num_files=1, per_file=3, prefix="a")
    b = _write(tmp_path, num_files=1, per_file=3, prefix="b")
    assert len(match_files(f"{a}, {b}")) == 2
    values = _values(InputReader(_eval_config(f"{a},{b}", 2), _decode, _parse).read())
    assert values == [0, 1, 2, 0, 1, 2]


def test_cache_and_postprocess(tmp_path):
    pattern = _write(tmp_path, num_files=2, per_file=3)
    params = _eval_config(pattern, 3, cache=True)
    reader = InputReader(params, _decode, _parse, postprocess_fn=lambda b: b * 10)
    dataset = reader.read()
    assert _values(dataset) == [v * 10 for v in range(6)]
    assert _values(dataset) == [v * 10 for v in range(6)]


def test_config_errors():
    with pytest.raises(ValueError, match="exactly one"):
        InputReader(DataConfig(), _decode, _parse)
    with pytest.raises(ValueError, match="tfds_split"):
        InputReader(DataConfig(tfds_name="mnist"), _decode, _parse)


def test_tfds_mock_data_offline():
    tfds = pytest.importorskip("tensorflow_datasets")

    def decode(features):
        return {"image": features["image"], "label": features["label"]}

    def parse(decoded):
        return tf.cast(decoded["image"], tf.float32), decoded["label"]

    params = DataConfig(
        tfds_name="mnist",
        tfds_split="train",
        global_batch_size=4,
        is_training=False,
        drop_remainder=False,
    )
    with tfds.testing.mock_data(num_examples=10):
        batches = list(InputReader(params, decode, parse).read())
    assert [images.shape[0] for images, _ in batches] == [4, 4, 2]
    assert batches[0][0].shape[1:] == (28, 28, 1)
    assert batches[0][1].dtype == tf.int64


def test_tfds_not_prepared_is_an_error_not_a_download(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    params = DataConfig(
        tfds_name="mnist", tfds_split="train", tfds_data_dir=str(tmp_path)
    )
    reader = InputReader(params, lambda x: x, lambda x: x)
    with pytest.raises(FileNotFoundError, match="not prepared"):
        reader.read()
