"""`InputReader`: files or TFDS -> shard -> decode -> parse -> batch -> prefetch.

The reader owns the dataset plumbing (file matching, per-worker sharding,
interleaving, caching, shuffling, repeating, batching, prefetching). What an
example *means* lives in three plain functions passed to it:

- `decoder_fn(record) -> decoded`: a serialized record (or, with TFDS, the
  feature dict TFDS yields) to tensors;
- `parser_fn(decoded) -> features`: per-example preprocessing and
  augmentation, e.g. `(image, label)`;
- `postprocess_fn(batch) -> batch` (optional): anything that needs a batch
  (mixup, packing).

Stages, in order, for `input_path`:

    match files (each comma-separated glob) -> shard per input pipeline
    (by files when there are at least as many files as pipelines, else by
    records) -> interleave TFRecords (training: file order shuffled) ->
    cache (optional) -> shuffle (training) -> repeat (training) ->
    decode + parse (parallel) -> batch (per-replica size) -> postprocess ->
    prefetch

For `tfds_name` the first stages are TFDS's own (`as_dataset` with a
`ReadConfig` carrying the input context); TFDS never downloads here.

Evaluation (`is_training=False`) neither shuffles nor repeats: files are read
one after another in sorted order and the order of examples is stable. With
`seed` set, training is reproducible in order: file shuffling, the shuffle
buffer and the random ops of a parser that takes the same seed are seeded and
`map` keeps its order. (Stateful random ops run in a parallel `map` may still
draw in a different order between runs; `tf.config.experimental.
enable_op_determinism()` makes tf.data run such functions sequentially.)

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

from official.core.experiment_config import DataConfig

AUTOTUNE = tf.data.AUTOTUNE

# Files read at once while training (interleave cycle length).
_MAX_PARALLEL_FILES = 16


def match_files(input_path: str) -> list[str]:
    """Returns the sorted files matched by comma-separated glob patterns.

    Args:
        input_path: one glob pattern, or several separated by commas.

    Returns:
        The sorted, de-duplicated list of matched files.

    Raises:
        FileNotFoundError: a pattern matches no file (the message names it).
    """
    patterns = [p.strip() for p in input_path.split(",") if p.strip()]
    if not patterns:
        raise ValueError(
            f"input_path has no file pattern. Received: input_path={input_path!r}. "
            "Example: input_path=/data/train-*.tfrecord"
        )
    files: set[str] = set()
    for pattern in patterns:
        matched = tf.io.gfile.glob(pattern)
        if not matched:
            raise FileNotFoundError(
                f"input_path pattern {pattern!r} matches no file. Check the path, "
                "or write the data first (e.g. `python -m official.datasets.digits "
                "--output_dir=DIR` for the default digits data)."
            )
        files.update(matched)
    return sorted(files)


class InputReader:
    """Builds a `tf.data.Dataset` of batches from a `DataConfig`.

    Args:
        params: the split's `DataConfig`; exactly one of `input_path` and
            `tfds_name` must be set.
        decoder_fn: `record -> decoded`. `record` is a serialized string for
            TFRecord files and the TFDS feature dict for `tfds_name`.
        parser_fn: `decoded -> features`, run in a parallel `map`.
        postprocess_fn: optional `batch -> batch`, run after batching.

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
        parser_fn: Callable[[Any], Any],
        postprocess_fn: Callable[[Any], Any] | None = None,
    ):
        if bool(params.input_path) == bool(params.tfds_name):
            raise ValueError(
                "Set exactly one of `input_path`, `tfds_name`. Received: "
                f"input_path={params.input_path!r}, tfds_name={params.tfds_name!r}."
            )
        if params.tfds_name and not params.tfds_split:
            raise ValueError(
                f"tfds_split must be set with tfds_name={params.tfds_name!r} "
                "(e.g. 'train' or 'validation')."
            )
        if params.global_batch_size <= 0:
            raise ValueError(
                f"global_batch_size must be > 0. Received: {params.global_batch_size}."
            )
        self.params = params
        self.decoder_fn = decoder_fn
        self.parser_fn = parser_fn
        self.postprocess_fn = postprocess_fn

    # ---- public -------------------------------------------------------------

    def read(
        self, input_context: tf.distribute.InputContext | None = None
    ) -> tf.data.Dataset:
        """Returns the dataset of batches for one input pipeline."""
        p = self.params
        batch_size = self._batch_size(input_context)
        if p.tfds_name:
            dataset, shard_records = self._read_tfds(input_context)
        else:
            dataset, shard_records = self._read_files(input_context)
        if shard_records:
            dataset = dataset.shard(
                input_context.num_input_pipelines, input_context.input_pipeline_id
            )
        if p.cache:
            dataset = dataset.cache()
        if p.is_training:
            if p.shuffle_buffer_size > 1:
                dataset = dataset.shuffle(p.shuffle_buffer_size, seed=p.seed)
            dataset = dataset.repeat()

        decoder_fn, parser_fn = self.decoder_fn, self.parser_fn

        def decode_and_parse(record):
            return parser_fn(decoder_fn(record))

        # Evaluation keeps its order; training trades order for speed unless
        # it was asked to be reproducible.
        deterministic = (not p.is_training) or p.seed is not None
        dataset = dataset.map(
            decode_and_parse, num_parallel_calls=AUTOTUNE, deterministic=deterministic
        )
        dataset = dataset.batch(batch_size, drop_remainder=p.drop_remainder)
        if self.postprocess_fn is not None:
            dataset = dataset.map(
                self.postprocess_fn,
                num_parallel_calls=AUTOTUNE,
                deterministic=deterministic,
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

    def _read_files(
        self, ctx: tf.distribute.InputContext | None
    ) -> tuple[tf.data.Dataset, bool]:
        """Matched TFRecord files -> records; says whether to shard records."""
        p = self.params
        files = match_files(p.input_path)
        num_pipelines = ctx.num_input_pipelines if ctx else 1
        shard_records = False
        if num_pipelines > 1:
            if len(files) >= num_pipelines:
                files = files[ctx.input_pipeline_id :: num_pipelines]
            else:
                # Every pipeline must see the records in the same order for
                # `shard` to split them, so file order is not shuffled then.
                shard_records = True
                logging.warning(
                    "%d file(s) for %d input pipelines: sharding by records, so "
                    "every pipeline reads all files. Write at least %d files to "
                    "shard by files.",
                    len(files),
                    num_pipelines,
                    num_pipelines,
                )
        logging.info(
            "InputReader: %d file(s) from %r (training=%s).",
            len(files),
            p.input_path,
            p.is_training,
        )
        if not p.is_training or len(files) == 1:
            # One file after another, in sorted order: a stable example order.
            return tf.data.TFRecordDataset(files), shard_records
        file_ds = tf.data.Dataset.from_tensor_slices(files)
        if not shard_records:
            file_ds = file_ds.shuffle(len(files), seed=p.seed)
        dataset = file_ds.interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(len(files), _MAX_PARALLEL_FILES),
            num_parallel_calls=AUTOTUNE,
            deterministic=shard_records or p.seed is not None,
        )
        return dataset, shard_records

    def _read_tfds(
        self, ctx: tf.distribute.InputContext | None
    ) -> tuple[tf.data.Dataset, bool]:
        """TFDS split -> feature dicts; says whether to shard records."""
        import tensorflow_datasets as tfds  # Slow to import: only when used.

        p = self.params
        data_dir = p.tfds_data_dir or None
        builder = tfds.builder(p.tfds_name, data_dir=data_dir)
        num_pipelines = ctx.num_input_pipelines if ctx else 1
        shard_records = False
        if num_pipelines > 1:
            num_files = _tfds_num_files(builder, p.tfds_split)
            shard_records = num_files is not None and num_files < num_pipelines
        read_config = tfds.ReadConfig(
            input_context=ctx if num_pipelines > 1 and not shard_records else None,
            shuffle_seed=p.seed,
        )
        try:
            dataset = builder.as_dataset(
                split=p.tfds_split,
                shuffle_files=p.is_training and not shard_records,
                read_config=read_config,
            )
        except AssertionError as e:  # TFDS's "could not find data" check.
            raise FileNotFoundError(
                f"TFDS dataset {p.tfds_name!r} is not prepared in tfds_data_dir="
                f"{str(builder.data_dir_root)!r}; it is never downloaded at run time. "
                f"Prepare it first, e.g. `tfds build {p.tfds_name} --data_dir=DIR`, "
                "then set tfds_data_dir=DIR."
            ) from e
        logging.info(
            "InputReader: TFDS %s split %r from %s (training=%s).",
            p.tfds_name,
            p.tfds_split,
            builder.data_dir_root,
            p.is_training,
        )
        return dataset, shard_records


def _tfds_num_files(builder: Any, split: str) -> int | None:
    """Number of files behind a TFDS split, or None when unknown."""
    try:
        return len(builder.info.splits[split].file_instructions)
    except Exception:  # noqa: BLE001 - unknown split metadata: let TFDS decide.
        return None
