"""Writing `tf.Example`s: feature constructors and a sharded, atomic writer.

`ShardedTFRecordWriter` spreads examples round-robin over `num_shards` files
named `PREFIX-00000-of-00008.tfrecord` (so every shard gets a similar number
and, after a shuffle of the inputs, a similar mix of classes). Each shard is
written to a `.tmp` file and renamed into place only when the writer closes
without an error; on an error the partial files are removed.

Example:
```python
import os, tempfile
import tensorflow as tf
from official.datasets import tfrecord_writer as tw

out = tempfile.mkdtemp()
with tw.ShardedTFRecordWriter(out, "train", num_shards=2) as writer:
    for i in range(5):
        writer.write(tw.example({"x": tw.int64_feature(i)}))
assert writer.counts == [3, 2]
assert sorted(os.listdir(out)) == ["train-00000-of-00002.tfrecord",
                                   "train-00001-of-00002.tfrecord"]
```
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf


def _as_list(values: Any) -> list:
    if isinstance(values, (list, tuple)):
        return list(values)
    if isinstance(values, np.ndarray):
        return values.reshape(-1).tolist()
    if isinstance(values, np.generic):
        return [values.item()]
    return [values]


def bytes_feature(values: bytes | str | Iterable[bytes | str]) -> tf.train.Feature:
    """A `bytes_list` feature; `str` values are UTF-8 encoded."""
    items = [v.encode("utf-8") if isinstance(v, str) else v for v in _as_list(values)]
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=items))


def int64_feature(values: int | Iterable[int]) -> tf.train.Feature:
    """An `int64_list` feature."""
    items = [int(v) for v in _as_list(values)]
    return tf.train.Feature(int64_list=tf.train.Int64List(value=items))


def float_feature(values: float | Iterable[float]) -> tf.train.Feature:
    """A `float_list` feature."""
    items = [float(v) for v in _as_list(values)]
    return tf.train.Feature(float_list=tf.train.FloatList(value=items))


def example(features: Mapping[str, tf.train.Feature]) -> tf.train.Example:
    """A `tf.train.Example` from `{key: feature}`."""
    return tf.train.Example(features=tf.train.Features(feature=dict(features)))


def shard_name(prefix: str, index: int, num_shards: int) -> str:
    """`train-00000-of-00002.tfrecord`-style file name."""
    return f"{prefix}-{index:05d}-of-{num_shards:05d}.tfrecord"


class ShardedTFRecordWriter:
    """Writes serialized examples round-robin into `num_shards` TFRecord files.

    Args:
        output_dir: folder of the files (created if missing).
        prefix: file name prefix, e.g. the split name.
        num_shards: number of files, >= 1.

    Attributes:
        paths: the final path of every shard.
        counts: examples written to each shard so far.

    Use as a context manager; `close()` renames the finished shards into
    place (an exception inside the `with` removes them instead).
    """

    def __init__(self, output_dir: str, prefix: str, num_shards: int):
        if num_shards < 1:
            raise ValueError(
                f"num_shards must be >= 1. Received: num_shards={num_shards}."
            )
        tf.io.gfile.makedirs(output_dir)
        self.paths = [
            os.path.join(output_dir, shard_name(prefix, i, num_shards))
            for i in range(num_shards)
        ]
        self.counts = [0] * num_shards
        self._writers = [tf.io.TFRecordWriter(p + ".tmp") for p in self.paths]
        self._next = 0
        self._closed = False

    @property
    def num_examples(self) -> int:
        return sum(self.counts)

    def write(self, record: tf.train.Example | bytes) -> None:
        """Writes one example (or serialized bytes) to the next shard."""
        if self._closed:
            raise ValueError("ShardedTFRecordWriter is closed.")
        if isinstance(record, tf.train.Example):
            record = record.SerializeToString()
        self._writers[self._next].write(record)
        self.counts[self._next] += 1
        self._next = (self._next + 1) % len(self._writers)

    def close(self) -> None:
        """Finishes every shard and renames it into place."""
        self._finish(keep=True)

    def abort(self) -> None:
        """Closes and deletes the partial files."""
        self._finish(keep=False)

    def _finish(self, keep: bool) -> None:
        if self._closed:
            return
        self._closed = True
        for writer, path in zip(self._writers, self.paths):
            writer.close()
            if keep:
                tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
            elif tf.io.gfile.exists(path + ".tmp"):
                tf.io.gfile.remove(path + ".tmp")

    def __enter__(self) -> ShardedTFRecordWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def summary_name(prefix: str) -> str:
    """`summary-PREFIX.json`: never matched by the shard glob `PREFIX-*`."""
    return f"summary-{prefix}.json"


def write_summary(output_dir: str, prefix: str, summary: Mapping[str, Any]) -> str:
    """Writes a converter's summary as `output_dir/summary-PREFIX.json`.

    The name starts with `summary-`, not the prefix, so that the shard glob a
    converter documents (`OUTPUT_DIR/PREFIX-*`) matches only TFRecord files.
    Returns the path.
    """
    import json

    path = os.path.join(output_dir, summary_name(prefix))
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(summary, f, indent=2)
    return path
