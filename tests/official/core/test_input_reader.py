"""Tests of `official.core.input_reader`."""

from __future__ import annotations

import os
import types

import pytest
import tensorflow as tf

from official.core.experiment_config import DataConfig
from official.core.input_reader import InputReader, match_files


def _example(value: int) -> bytes:
    feature = {"x": tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))}
    return tf.train.Example(
        features=tf.train.Features(feature=feature)
    ).SerializeToString()


def _write(
    tmp_path, num_files: int, per_file: int, prefix: str = "data", offset: int = 0
) -> str:
    """Writes values offset + 0..num_files*per_file-1, file i a contiguous run."""
    for i in range(num_files):
        path = os.path.join(tmp_path, f"{prefix}-{i:05d}-of-{num_files:05d}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for j in range(per_file):
                writer.write(_example(offset + i * per_file + j))
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


# ---- sharding policies --------------------------------------------------------


def _pipelines_values(params, num=2, num_batches=None):
    return [
        _values(
            InputReader(params, _decode, _parse).read(_context(i, num)), num_batches
        )
        for i in range(num)
    ]


@pytest.mark.parametrize("policy", ["auto", "file", "data"])
def test_two_workers_see_disjoint_data_covering_the_set(tmp_path, policy):
    pattern = _write(tmp_path, num_files=4, per_file=5)
    params = _eval_config(pattern, batch_size=2, auto_shard_policy=policy)
    first, second = (set(v) for v in _pipelines_values(params))
    assert not first & second
    assert first | second == set(range(20))
    if policy == "data":  # Every other record of the same sorted stream.
        assert first == set(range(0, 20, 2))
    else:  # Whole files.
        assert first == set(range(0, 5)) | set(range(10, 15))


def test_training_shards_are_disjoint_per_epoch(tmp_path):
    pattern = _write(tmp_path, num_files=4, per_file=5)
    params = DataConfig(
        input_path=pattern, global_batch_size=2, shuffle_buffer_size=10, seed=3
    )
    # One epoch of each pipeline's half: 10 records in batches of 1.
    first, second = (set(v) for v in _pipelines_values(params, num_batches=10))
    assert len(first) == len(second) == 10
    assert not first & second and first | second == set(range(20))


def test_shard_policy_off_gives_every_worker_everything(tmp_path):
    pattern = _write(tmp_path, num_files=2, per_file=3)
    params = _eval_config(pattern, batch_size=2, auto_shard_policy="off")
    assert _pipelines_values(params) == [list(range(6)), list(range(6))]


def test_shard_policy_file_needs_a_file_per_worker(tmp_path):
    pattern = _write(tmp_path, num_files=1, per_file=4)
    params = _eval_config(pattern, batch_size=2, auto_shard_policy="file")
    with pytest.raises(ValueError, match="auto_shard_policy=file needs"):
        InputReader(params, _decode, _parse).read(_context(0))


def test_dataset_options_carry_the_auto_shard_policy(tmp_path):
    pattern = _write(tmp_path, num_files=2, per_file=2)
    policy = tf.data.experimental.AutoShardPolicy
    reader = InputReader(
        _eval_config(pattern, 2, auto_shard_policy="data"), _decode, _parse
    )
    # Without an input context, tf.distribute shards with the configured policy.
    options = reader.read().options()
    assert options.experimental_distribute.auto_shard_policy == policy.DATA
    # With one, the reader has sharded already.
    options = reader.read(_context(0)).options()
    assert options.experimental_distribute.auto_shard_policy == policy.OFF


def test_reader_options_are_validated(tmp_path):
    pattern = _write(tmp_path, num_files=1, per_file=2)
    for kwargs, match in [
        ({"auto_shard_policy": "files"}, "auto_shard_policy must be one of"),
        ({"input_format": "jpeg"}, "input_format must be one of"),
        ({"cycle_length": 0}, "cycle_length"),
        ({"tf_data_service_address": "localhost"}, "grpc://host:port"),
        ({"input_weights": [1.0]}, "input_weights mix"),  # Evaluation.
    ]:
        with pytest.raises(ValueError, match=match):
            InputReader(_eval_config(pattern, 2, **kwargs), _decode, _parse)


# ---- mixing, interleave, determinism ------------------------------------------


def test_mixing_weights_give_the_sampling_ratio(tmp_path):
    a = _write(tmp_path, num_files=2, per_file=50, prefix="a")  # 0..99
    b = _write(tmp_path, num_files=1, per_file=50, prefix="b", offset=1000)
    params = DataConfig(
        input_path=f"{a},{b}",
        input_weights=[3.0, 1.0],
        global_batch_size=100,
        shuffle_buffer_size=10,
        seed=0,
    )
    values = _values(InputReader(params, _decode, _parse).read(), num_batches=20)
    fraction_a = sum(v < 1000 for v in values) / len(values)
    # 2,000 draws: the standard error of the share is 0.01.
    assert abs(fraction_a - 0.75) < 0.04
    assert set(values) == set(range(100)) | set(range(1000, 1050))
    with pytest.raises(ValueError, match="one weight per comma-separated"):
        InputReader(
            DataConfig(input_path=f"{a},{b}", input_weights=[1.0]), _decode, _parse
        )


def test_cycle_length_one_reads_files_one_after_another(tmp_path):
    pattern = _write(tmp_path, num_files=3, per_file=4)

    def runs(cycle_length):
        params = DataConfig(
            input_path=pattern,
            global_batch_size=12,
            shuffle_buffer_size=1,
            cycle_length=cycle_length,
            seed=0,
        )
        values = _values(InputReader(params, _decode, _parse).read(), num_batches=1)
        return [v // 4 for v in values]  # The file each value came from.

    files = runs(1)
    assert all(files[i] == files[i - i % 4] for i in range(12))  # Whole files.
    files = runs(3)
    assert files[:3] != [files[0]] * 3  # Three files interleaved.


def test_deterministic_switch(tmp_path):
    pattern = _write(tmp_path, num_files=2, per_file=4)
    forced = InputReader(_eval_config(pattern, 2, deterministic=False), _decode, _parse)
    assert not forced.deterministic
    assert not forced.read().options().deterministic
    assert sorted(_values(forced.read())) == list(range(8))
    seeded = InputReader(DataConfig(input_path=pattern, seed=1), _decode, _parse)
    unseeded = InputReader(DataConfig(input_path=pattern), _decode, _parse)
    assert seeded.deterministic and not unseeded.deterministic


def test_stateless_seeds_are_per_example_and_reproducible(tmp_path):
    pattern = _write(tmp_path, num_files=2, per_file=5)

    def parse(decoded, seed):
        return tf.random.stateless_uniform([], seed, maxval=1000, dtype=tf.int32)

    def postprocess(batch, seed):
        return batch, seed

    params = DataConfig(input_path=pattern, global_batch_size=5, seed=4)
    reader = InputReader(params, _decode, parse, postprocess, stateless_seeds=True)
    first = [(b.numpy().tolist(), s.numpy().tolist()) for b, s in reader.read().take(3)]
    again = [(b.numpy().tolist(), s.numpy().tolist()) for b, s in reader.read().take(3)]
    assert first == again
    draws = [v for batch, _ in first for v in batch]
    assert len(set(draws)) > 10  # A different seed for every example.
    assert len({tuple(s) for _, s in first}) == 3  # And for every batch.


# ---- image folders, TFDS slicing, tf.data service -----------------------------


def _image_folder(root, counts: dict[str, int]):
    import numpy as np

    for name, count in counts.items():
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(count):
            image = np.full((4, 5, 3), 10 * i, np.uint8)
            path = os.path.join(root, name, f"{i}.png")
            tf.io.write_file(path, tf.io.encode_png(image))
    return str(root)


def _folder_decode(record):
    image = tf.io.decode_png(record["image/encoded"], channels=3)
    return {"shape": tf.shape(image), "label": record["image/class/label"]}


def test_image_folder_labels_follow_sorted_class_names(tmp_path):
    root = _image_folder(tmp_path / "folder", {"zebra": 1, "ant": 2, "cat": 3})
    (tmp_path / "folder" / "cat" / "notes.txt").write_text("not an image")
    params = _eval_config(root, 3, input_format="image_folder")
    reader = InputReader(params, _folder_decode, lambda d: (d["shape"], d["label"]))
    assert reader.class_names == ["ant", "cat", "zebra"]
    batches = list(reader.read())
    labels = [int(v) for _, ys in batches for v in ys.numpy()]
    assert labels == [0, 0, 1, 1, 1, 2]
    assert batches[0][0].numpy().tolist()[0] == [4, 5, 3]


def test_image_folder_sharding_and_mixing_share_one_label_map(tmp_path):
    a = _image_folder(tmp_path / "a", {"cat": 2, "dog": 2})
    b = _image_folder(tmp_path / "b", {"bird": 4})
    params = DataConfig(
        input_path=f"{a},{b}",
        input_format="image_folder",
        input_weights=[1.0, 1.0],
        global_batch_size=2,
        seed=0,
    )

    def parse(d):
        return d["label"]

    reader = InputReader(params, _folder_decode, parse)
    assert reader.class_names == ["bird", "cat", "dog"]
    labels = set(_values(reader.read(_context(0)), num_batches=20))
    assert labels == {0, 1, 2}


def test_image_folder_errors_name_the_directory(tmp_path):
    params = _eval_config(str(tmp_path / "missing"), 2, input_format="image_folder")
    with pytest.raises(FileNotFoundError, match="missing"):
        InputReader(params, _folder_decode, _parse).read()
    with pytest.raises(ValueError, match="image_folder reads directories"):
        InputReader(
            DataConfig(
                tfds_name="mnist", tfds_split="train", input_format="image_folder"
            ),
            _folder_decode,
            _parse,
        )


def test_tfds_split_slicing_passes_through():
    tfds = pytest.importorskip("tensorflow_datasets")
    requested = []

    def as_dataset(builder, split, **kwargs):
        # TFDS resolves `train[:50%]` itself; the mock records what it got.
        requested.append(split)
        instruction = tfds.core.ReadInstruction.from_spec(split)
        ten = types.SimpleNamespace(num_examples=10)
        (absolute,) = instruction.to_absolute({"train": ten})
        return tf.data.Dataset.range(absolute.from_ or 0, absolute.to).map(
            lambda i: {"label": i}
        )

    params = DataConfig(
        tfds_name="mnist",
        tfds_split="train[:50%]",
        global_batch_size=4,
        is_training=False,
        drop_remainder=False,
    )
    with tfds.testing.mock_data(num_examples=10, as_dataset_fn=as_dataset):
        values = _values(InputReader(params, lambda f: f["label"], lambda x: x).read())
    assert requested == ["train[:50%]"]
    assert values == [0, 1, 2, 3, 4]


def test_tf_data_service_serves_the_pipeline(tmp_path):
    pattern = _write(tmp_path, num_files=2, per_file=4)
    dispatcher = tf.data.experimental.service.DispatchServer()
    address = dispatcher.target.split("://")[1]
    worker = tf.data.experimental.service.WorkerServer(
        tf.data.experimental.service.WorkerConfig(dispatcher_address=address)
    )
    params = _eval_config(pattern, 4, tf_data_service_address=dispatcher.target)
    values = _values(InputReader(params, _decode, _parse).read())
    assert sorted(values) == list(range(8))
    del worker, dispatcher


# ---- corrupt records ----------------------------------------------------------


def _write_with_bad_records(path: str) -> None:
    """Records 0..5 of `y = i`; record 2 has a corrupt image, record 4 no label."""
    import numpy as np

    with tf.io.TFRecordWriter(path) as writer:
        for i in range(6):
            encoded = tf.io.encode_png(np.full((3, 3, 3), i, np.uint8)).numpy()
            if i == 2:
                encoded = encoded[:20]  # Truncated.
            feature = {
                "image": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[encoded])
                ),
                "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
            }
            if i == 4:
                del feature["y"]
            writer.write(
                tf.train.Example(
                    features=tf.train.Features(feature=feature)
                ).SerializeToString()
            )


def _image_decode(record):
    parsed = tf.io.parse_single_example(
        record,
        {
            "image": tf.io.FixedLenFeature([], tf.string),
            "y": tf.io.FixedLenFeature([], tf.int64),
        },
    )
    image = tf.io.decode_png(parsed["image"], channels=3)
    return {"x": parsed["y"] + tf.cast(tf.reduce_sum(image) * 0, tf.int64)}


def test_corrupt_record_error_names_file_and_index(tmp_path):
    path = str(tmp_path / "bad.tfrecord")
    _write_with_bad_records(path)
    reader = InputReader(_eval_config(path, 2), _image_decode, _parse)
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        list(reader.read())
    message = error.value.message
    assert f"record 2 of {path}" in message
    assert "ignore_errors" in message


def test_missing_feature_error_names_the_feature(tmp_path):
    path = str(tmp_path / "bad.tfrecord")
    _write_with_bad_records(path)

    def decode_label_only(record):
        return tf.io.parse_single_example(
            record, {"y": tf.io.FixedLenFeature([], tf.int64)}
        )

    reader = InputReader(_eval_config(path, 2), decode_label_only, lambda d: d["y"])
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        list(reader.read())
    assert f"record 4 of {path}" in error.value.message
    assert "Feature: y" in error.value.message


def test_ignore_errors_skips_and_counts_bad_records(tmp_path, caplog):
    path = str(tmp_path / "bad.tfrecord")
    _write_with_bad_records(path)
    params = _eval_config(path, 2, ignore_errors=True)
    with caplog.at_level("WARNING", logger="absl"):
        values = _values(InputReader(params, _image_decode, _parse).read())
    assert values == [0, 1, 3, 5]
    skips = [
        r.getMessage() for r in caplog.records if "skipped record" in r.getMessage()
    ]
    assert len(skips) == 2
    assert f"record 2 of {path}" in skips[0] and "1 record(s) skipped" in skips[0]
    assert f"record 4 of {path}" in skips[1] and "2 record(s) skipped" in skips[1]
