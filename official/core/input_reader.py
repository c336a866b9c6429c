"""`InputReader`: files or TFDS -> shard -> decode -> parse -> batch -> prefetch.

The reader owns the dataset plumbing (file matching, per-worker sharding,
interleaving, mixing, caching, shuffling, repeating, batching, prefetching,
the tf.data service). What an example *means* lives in three plain functions
passed to it:

- `decoder_fn(record) -> decoded`: a serialized record, an image folder
  entry (a dict, see below) or, with TFDS, the feature dict TFDS yields, to
  tensors;
- `parser_fn(decoded) -> features`: per-example preprocessing and
  augmentation, e.g. `(image, label)`;
- `postprocess_fn(batch) -> batch` (optional): anything that needs a batch
  (mixup, packing).

With `stateless_seeds=True` the reader also passes a seed: `parser_fn(decoded,
seed)` and `postprocess_fn(batch, seed)` get an int64 `[2]` tensor for
stateless random ops, one per example and one per batch, drawn from a stream
seeded by `params.seed`: augmentation is then reproducible at any
parallelism.

Sources (`DataConfig`):

- `input_format="tfrecord"`: `input_path` is TFRecord globs, comma-separated;
- `input_format="image_folder"`: `input_path` is directories whose
  subdirectories are the classes; `decoder_fn` gets `{"image/encoded": file
  bytes, "image/class/label": int64 label by sorted class name,
  "image/filename": path}`;
- `tfds_name`: a prepared TFDS dataset (`tfds_split` may slice, e.g.
  `train[:90%]`); TFDS never downloads here.

Stages for `input_path`, per pattern group (all patterns form one group
unless `input_weights` gives each pattern its own sampling weight):

    match files -> shard per input pipeline (`auto_shard_policy`) ->
    interleave files (`cycle_length`; training: file order shuffled; every
    record tagged with its file and index) -> cache (optional) -> shuffle
    (training) -> repeat (training)
    then: mix groups (`tf.data.Dataset.sample_from_datasets`) -> decode +
    parse (parallel; a failing record is named by file and index, or skipped
    and counted with `ignore_errors`) -> batch (per-replica size) ->
    postprocess -> tf.data service (optional) -> prefetch

Sharding with an input context of N > 1 pipelines (`auto_shard_policy`):
`file` gives each pipeline every N-th file (an error with fewer files than
pipelines); `data` has every pipeline read all files in the same order and
keep every N-th record; `auto` is `file` when there are at least N files,
else `data`; `off` does not shard (each pipeline sees everything). The reader
shards by itself, so the dataset it returns carries
`Options().experimental_distribute.auto_shard_policy = OFF` when given an
input context; without one it carries the configured policy (AUTO, FILE,
DATA or OFF), which `strategy.experimental_distribute_dataset` then applies.

Order: evaluation neither shuffles nor repeats, and reads files one after
another in sorted order. `deterministic` (default: True for evaluation and
for seeded training) keeps the element order of the parallel stages; with a
seed, training is reproducible in order.

Example:
```python
import os, tempfile
import tensorflow as tf
from official.core.experiment_config import DataConfig
from official.core.input_reader import InputReader

path = os.path.join(tempfile.mkdtemp(), "data.tfrecord")
with tf.io.TFRecordWriter(path) as writer:
    for i in range(10):
        writer.write(tf.train.Example(features=tf.train.Features(feature={
            "x": tf.train.Feature(int64_list=tf.train.Int64List(value=[i]))
        })).SerializeToString())

def decode(record):
    return tf.io.parse_single_example(
        record, {"x": tf.io.FixedLenFeature([], tf.int64)})["x"]

params = DataConfig(input_path=path, global_batch_size=4, is_training=False,
                    drop_remainder=False)
batches = list(InputReader(params, decode, lambda x: x * 2).read())
assert [b.shape[0] for b in batches] == [4, 4, 2]
assert batches[0].numpy().tolist() == [0, 2, 4, 6]
```
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf
from absl import logging

from official.core import input_files, record_guard, tfds_source
from official.core.experiment_config import DataConfig
from official.core.input_files import match_files  # noqa: F401 - public here too.

AUTOTUNE = tf.data.AUTOTUNE

# Offset between the seed of the per-example stream and the per-batch one.
_BATCH_SEED_OFFSET = 1_000_003


def _tagged_records(file: tf.Tensor) -> tf.data.Dataset:
    """`((file, index), record)` for every record of one TFRecord file."""
    tags = tf.data.Dataset.zip(
        (tf.data.Dataset.from_tensors(file).repeat(), tf.data.Dataset.range(2**62))
    )
    return tf.data.Dataset.zip((tags, tf.data.TFRecordDataset(file)))


class InputReader:
    """Builds a `tf.data.Dataset` of batches from a `DataConfig`.

    Args:
        params: the split's `DataConfig`; exactly one of `input_path` and
            `tfds_name` must be set. It is validated here.
        decoder_fn: `record -> decoded` (see the module docstring for what
            `record` is per source).
        parser_fn: `decoded -> features` (or `(decoded, seed) -> features`
            with `stateless_seeds`), run in parallel.
        postprocess_fn: optional `batch -> batch` (or `(batch, seed) ->
            batch`), run after batching.
        stateless_seeds: pass int64 `[2]` seeds to `parser_fn` and
            `postprocess_fn`. Default False.

    Call arguments (`read`):
        input_context: a `tf.distribute.InputContext` (from
            `strategy.distribute_datasets_from_function`), or `None` for a
            single input pipeline that yields global batches.

    Returns (`read`):
        A dataset of batches of the per-replica batch size
        `input_context.get_per_replica_batch_size(global_batch_size)`.
    """

    def __init__(
        self,
        params: DataConfig,
        decoder_fn: Callable[[Any], Any],
        parser_fn: Callable[..., Any],
        postprocess_fn: Callable[..., Any] | None = None,
        stateless_seeds: bool = False,
    ):
        if bool(params.input_path) == bool(params.tfds_name):
            raise ValueError(
                "Set exactly one of `input_path`, `tfds_name`. Received: "
                f"input_path={params.input_path!r}, tfds_name={params.tfds_name!r}."
            )
        params.validate("data")
        self.params = params
        self.decoder_fn = decoder_fn
        self.parser_fn = parser_fn
        self.postprocess_fn = postprocess_fn
        self.stateless_seeds = stateless_seeds
        self._image_folders: list[input_files.ImageFolder] | None = None

    # ---- public -------------------------------------------------------------

    @property
    def deterministic(self) -> bool:
        """Whether the parallel stages keep the element order."""
        p = self.params
        if p.deterministic is not None:
            return p.deterministic
        return (not p.is_training) or p.seed is not None

    @property
    def class_names(self) -> list[str]:
        """Sorted class names of an `image_folder` source (label = position)."""
        if self.params.input_format != "image_folder":
            raise ValueError(
                "class_names comes from an image folder source; this reader has "
                f"input_format={self.params.input_format!r}."
            )
        return self._list_image_folders()[0].class_names

    def read(
        self, input_context: tf.distribute.InputContext | None = None
    ) -> tf.data.Dataset:
        """Returns the dataset of batches for one input pipeline."""
        p = self.params
        batch_size = self._batch_size(input_context)
        if p.tfds_name:
            dataset = self._decode_and_parse_plain(self._read_tfds(input_context))
        else:
            groups = (
                [[pattern] for pattern in input_files.split_patterns(p.input_path)]
                if p.input_weights
                else [input_files.split_patterns(p.input_path)]
            )
            streams = [
                self._read_group(patterns, index, input_context)
                for index, patterns in enumerate(groups)
            ]
            dataset = self._mix(streams)
            dataset = self._decode_and_parse_guarded(dataset)
        dataset = dataset.batch(batch_size, drop_remainder=p.drop_remainder)
        if self.postprocess_fn is not None:
            dataset = self._postprocess(dataset)
        dataset = dataset.with_options(self._options(input_context))
        if p.tf_data_service_address:
            # Every iteration is its own job: the service's workers run the
            # pipeline above (they must see the same files) and the local
            # process only receives batches.
            dataset = dataset.apply(
                tf.data.experimental.service.distribute(
                    processing_mode=tf.data.experimental.service.ShardingPolicy.OFF,
                    service=p.tf_data_service_address,
                )
            )
        return dataset.prefetch(AUTOTUNE)

    # ---- stages -------------------------------------------------------------

    def _batch_size(self, ctx: tf.distribute.InputContext | None) -> int:
        global_batch_size = self.params.global_batch_size
        if ctx is None:
            return global_batch_size
        replicas = ctx.num_replicas_in_sync
        if global_batch_size % replicas:
            suggestion = (global_batch_size // replicas + 1) * replicas
            raise ValueError(
                f"global_batch_size ({global_batch_size}) must be divisible by the "
                f"number of replicas ({replicas}). Hint: use {suggestion}."
            )
        return ctx.get_per_replica_batch_size(global_batch_size)

    def _group_seed(self, index: int) -> int | None:
        return None if self.params.seed is None else self.params.seed + index

    def _list_image_folders(self) -> list[input_files.ImageFolder]:
        if self._image_folders is None:
            directories = input_files.split_patterns(self.params.input_path)
            self._image_folders = input_files.list_image_folders(directories)
        return self._image_folders

    def _read_group(
        self, patterns: list[str], index: int, ctx: tf.distribute.InputContext | None
    ) -> tf.data.Dataset:
        """One pattern group -> `((file, index), record)`, shuffled, repeated."""
        p = self.params
        seed = self._group_seed(index)
        if p.input_format == "image_folder":
            dataset = self._read_image_folder(patterns, ctx, seed)
        else:
            dataset = self._read_tfrecords(patterns, ctx, seed)
        return self._cache_shuffle_repeat(dataset, seed)

    def _read_tfrecords(
        self,
        patterns: list[str],
        ctx: tf.distribute.InputContext | None,
        seed: int | None,
    ) -> tf.data.Dataset:
        p = self.params
        files = match_files(",".join(patterns))
        num_pipelines = ctx.num_input_pipelines if ctx else 1
        pipeline_id = ctx.input_pipeline_id if ctx else 0
        files, shard_records = input_files.shard_files(
            files, num_pipelines, pipeline_id, p.auto_shard_policy
        )
        if shard_records:
            logging.warning(
                "%d file(s) for %d input pipelines (auto_shard_policy=%s): sharding "
                "by records, so every pipeline reads all files. Write at least %d "
                "files to shard by files.",
                len(files),
                num_pipelines,
                p.auto_shard_policy,
                num_pipelines,
            )
        logging.info(
            "InputReader: %d file(s) from %r (training=%s).",
            len(files),
            ",".join(patterns),
            p.is_training,
        )
        file_ds = tf.data.Dataset.from_tensor_slices(files)
        if not p.is_training or len(files) == 1:
            # One file after another, in sorted order: a stable example order.
            dataset = file_ds.flat_map(_tagged_records)
        else:
            if not shard_records:
                file_ds = file_ds.shuffle(len(files), seed=seed)
            dataset = file_ds.interleave(
                _tagged_records,
                cycle_length=min(len(files), p.cycle_length),
                num_parallel_calls=AUTOTUNE,
                # Record sharding needs the same order in every pipeline.
                deterministic=shard_records or self.deterministic,
            )
        if shard_records:
            dataset = dataset.shard(num_pipelines, pipeline_id)
        return dataset

    def _read_image_folder(
        self,
        directories: list[str],
        ctx: tf.distribute.InputContext | None,
        seed: int | None,
    ) -> tf.data.Dataset:
        p = self.params
        by_dir = {f.directory: f for f in self._list_image_folders()}
        items = [
            item
            for directory in directories
            for item in zip(by_dir[directory].paths, by_dir[directory].labels)
        ]
        if ctx and ctx.num_input_pipelines > 1 and p.auto_shard_policy != "off":
            # Every image is its own file: file and record sharding coincide.
            items = items[ctx.input_pipeline_id :: ctx.num_input_pipelines]
        logging.info(
            "InputReader: %d image(s) of %d class(es) from %r (training=%s).",
            len(items),
            len(self.class_names),
            ",".join(directories),
            p.is_training,
        )
        return input_files.image_folder_records(
            items, p.is_training, seed, self.deterministic
        )

    def _read_tfds(self, ctx: tf.distribute.InputContext | None) -> tf.data.Dataset:
        """TFDS split -> feature dicts, sharded, cached, shuffled, repeated."""
        dataset = tfds_source.read_split(self.params, ctx)
        return self._cache_shuffle_repeat(dataset, self.params.seed)

    def _cache_shuffle_repeat(
        self, dataset: tf.data.Dataset, seed: int | None
    ) -> tf.data.Dataset:
        p = self.params
        if p.cache:
            dataset = dataset.cache()
        if p.is_training:
            if p.shuffle_buffer_size > 1:
                dataset = dataset.shuffle(p.shuffle_buffer_size, seed=seed)
            dataset = dataset.repeat()
        return dataset

    def _mix(self, streams: list[tf.data.Dataset]) -> tf.data.Dataset:
        p = self.params
        if len(streams) == 1:
            return streams[0]
        total = float(sum(p.input_weights))
        weights = [w / total for w in p.input_weights]
        logging.info(
            "InputReader: mixing %d pattern(s) with weights %s.", len(streams), weights
        )
        return tf.data.Dataset.sample_from_datasets(
            streams, weights=weights, seed=p.seed
        )

    def _seeds(self, seed: int | None) -> tf.data.Dataset:
        """An endless stream of int64 `[2]` seeds, reproducible with `seed`."""
        return tf.data.Dataset.random(seed=seed).batch(2, drop_remainder=True)

    def _with_seeds(self, dataset: tf.data.Dataset, seed: int | None):
        """Zips `dataset` with an int64 `[2]` seed per element."""
        return tf.data.Dataset.zip((dataset, self._seeds(seed)))

    def _example_fn(self) -> Callable[..., Any]:
        decoder_fn, parser_fn = self.decoder_fn, self.parser_fn
        if self.stateless_seeds:
            return lambda record, seed: parser_fn(decoder_fn(record), seed)
        return lambda record: parser_fn(decoder_fn(record))

    def _decode_and_parse_guarded(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        """`((file, index), record)` -> parsed examples; bad records named."""
        p = self.params
        return record_guard.guarded_map(
            dataset,
            self._example_fn(),
            ignore_errors=p.ignore_errors,
            deterministic=self.deterministic,
            # A py_function cannot be serialized for the tf.data service.
            explain=not p.tf_data_service_address,
            group_seeds=self._seeds(p.seed) if self.stateless_seeds else None,
        )

    def _decode_and_parse_plain(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        """TFDS feature dicts -> parsed examples (TFDS decodes images itself)."""
        p = self.params
        fn = self._example_fn()
        if self.stateless_seeds:
            dataset = self._with_seeds(dataset, p.seed)
        dataset = dataset.map(
            fn, num_parallel_calls=AUTOTUNE, deterministic=self.deterministic
        )
        if p.ignore_errors:
            dataset = dataset.ignore_errors(log_warning=True)
        return dataset

    def _postprocess(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        p = self.params
        fn = self.postprocess_fn
        if self.stateless_seeds:
            seed = None if p.seed is None else p.seed + _BATCH_SEED_OFFSET
            dataset = self._with_seeds(dataset, seed)
            return dataset.map(
                fn, num_parallel_calls=AUTOTUNE, deterministic=self.deterministic
            )
        # `map` spreads a tuple over arguments; the function gets the batch.
        return dataset.map(
            lambda *parts: fn(parts[0] if len(parts) == 1 else parts),
            num_parallel_calls=AUTOTUNE,
            deterministic=self.deterministic,
        )

    def _options(self, ctx: tf.distribute.InputContext | None) -> tf.data.Options:
        options = tf.data.Options()
        options.deterministic = self.deterministic
        policy = (
            tf.data.experimental.AutoShardPolicy.OFF
            if ctx is not None
            else input_files.TF_AUTO_SHARD_POLICIES[self.params.auto_shard_policy]
        )
        options.experimental_distribute.auto_shard_policy = policy
        return options
