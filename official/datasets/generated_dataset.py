"""Idempotent writing of the small datasets Garden generates (digits, shapes).

A generated dataset is a folder of TFRecord shards per split, `labels.txt`
and `manifest.json`, which records what was asked for (generator version,
seed, image size, shard plan) and how many records each file holds. A second
request with the same manifest finds the folder complete and rewrites
nothing; anything else (another size, a missing or short file, an
interrupted write) rewrites it. The manifest is removed before writing and
written last, so an interrupted write is never taken for a complete one.

Example:
```python
import tempfile
import tensorflow as tf
from official.datasets import generated_dataset as gd

out = tempfile.mkdtemp()
files = gd.shard_plan({"train": 3, "validation": 1}, (1, 1))
manifest = {"version": 1, "files": files}

def write():
    for name, count in files.items():
        with tf.io.TFRecordWriter(f"{out}/{name}") as w:
            for _ in range(count):
                w.write(b"x")

first = gd.write_once(out, manifest, ["a", "b"], write, "Toy")
again = gd.write_once(out, manifest, ["a", "b"], write, "Toy")
assert not first["skipped"] and again["skipped"]
assert again["train"]["num_examples"] == 3
```
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from absl import logging

from official.datasets.tfrecord_writer import shard_name

MANIFEST = "manifest.json"
LABELS = "labels.txt"
SPLITS = ("train", "validation")


def shard_plan(counts: Mapping[str, int], num_shards: Sequence[int]) -> dict[str, int]:
    """`{file name: records}` spreading each split's records over its shards.

    Args:
        counts: `{"train": n, "validation": m}`.
        num_shards: `(train, validation)` numbers of files, each >= 1.
    """
    if len(num_shards) != len(SPLITS) or min(num_shards) < 1:
        raise ValueError(
            "num_shards must be (train, validation) positive ints. Received: "
            f"num_shards={tuple(num_shards)!r}."
        )
    files = {}
    for split, shards in zip(SPLITS, num_shards):
        for index, chunk in enumerate(np.array_split(np.arange(counts[split]), shards)):
            files[shard_name(split, index, shards)] = len(chunk)
    return files


def _count_records(path: str) -> int:
    return int(tf.data.TFRecordDataset(path).reduce(np.int64(0), lambda n, _: n + 1))


def is_complete(output_dir: str, manifest: Mapping[str, Any]) -> bool:
    """True when `output_dir` holds `manifest`, the labels and every file
    with its recorded number of records."""
    path = os.path.join(output_dir, MANIFEST)
    if not tf.io.gfile.exists(path):
        return False
    with tf.io.gfile.GFile(path) as f:
        try:
            if json.load(f) != manifest:
                return False
        except json.JSONDecodeError:
            return False
    if not tf.io.gfile.exists(os.path.join(output_dir, LABELS)):
        return False
    for name, count in manifest["files"].items():
        file_path = os.path.join(output_dir, name)
        if not tf.io.gfile.exists(file_path) or _count_records(file_path) != count:
            return False
    return True


def summary(
    output_dir: str, manifest: Mapping[str, Any], num_classes: int, skipped: bool
) -> dict[str, Any]:
    """`{"output_dir", "image_size", "num_classes", "labels_path", "skipped",
    "train": {"files", "pattern", "num_examples"}, "validation": {...}}`."""
    result: dict[str, Any] = {
        "output_dir": output_dir,
        "image_size": manifest.get("image_size"),
        "num_classes": num_classes,
        "labels_path": os.path.join(output_dir, LABELS),
        "skipped": skipped,
    }
    for split in SPLITS:
        names = sorted(n for n in manifest["files"] if n.startswith(f"{split}-"))
        result[split] = {
            "files": [os.path.join(output_dir, n) for n in names],
            "pattern": os.path.join(output_dir, f"{split}-*.tfrecord"),
            "num_examples": sum(manifest["files"][n] for n in names),
        }
    return result


def write_once(
    output_dir: str,
    manifest: Mapping[str, Any],
    class_names: Sequence[str],
    write_files: Callable[[], None],
    what: str,
) -> dict[str, Any]:
    """Writes a generated dataset unless `output_dir` already holds it.

    Args:
        output_dir: the folder (created if missing).
        manifest: JSON-able dict with a `"files"` entry (`shard_plan`).
        class_names: written to `labels.txt`, one per line.
        write_files: writes every file of `manifest["files"]` into
            `output_dir` (called only when the folder is not complete).
        what: the dataset's name for the log lines.

    Returns:
        The `summary` of the folder.
    """
    if is_complete(output_dir, manifest):
        logging.info(
            "%s TFRecords already complete in %s; not rewritten.", what, output_dir
        )
        return summary(output_dir, manifest, len(class_names), skipped=True)
    tf.io.gfile.makedirs(output_dir)
    manifest_path = os.path.join(output_dir, MANIFEST)
    if tf.io.gfile.exists(manifest_path):  # Invalidate before rewriting.
        tf.io.gfile.remove(manifest_path)
    write_files()
    with tf.io.gfile.GFile(os.path.join(output_dir, LABELS), "w") as f:
        f.write("".join(f"{name}\n" for name in class_names))
    with tf.io.gfile.GFile(manifest_path, "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
    logging.info(
        "Wrote %d %s examples to %s.", sum(manifest["files"].values()), what, output_dir
    )
    return summary(output_dir, manifest, len(class_names), skipped=False)


def write_seeded_splits(
    output_dir: str,
    seed: int,
    splits: Sequence[tuple[str, int, int]],
    make_example: Callable[[np.random.Generator], bytes],
) -> None:
    """Writes `(split, count, shards)` in order, every example from one
    generator seeded by `seed` (`make_example(rng)` -> serialized record)."""
    from official.datasets import tfrecord_writer

    rng = np.random.default_rng(seed)
    for split, count, shards in splits:
        with tfrecord_writer.ShardedTFRecordWriter(output_dir, split, shards) as writer:
            for _ in range(count):
                writer.write(make_example(rng))


def run_cli(write: Callable[..., Mapping[str, Any]]) -> None:
    """The command line of a generated dataset module (`python -m ...`).

    `write(output_dir, num_train=, num_validation=, image_size=, seed=)`
    runs with the flags, and its summary is printed as JSON.
    """
    from absl import app, flags

    flags.DEFINE_string("output_dir", None, "Folder to write the TFRecords into.")
    flags.DEFINE_integer("num_train", 1024, "Training examples.")
    flags.DEFINE_integer("num_validation", 128, "Validation examples.")
    flags.DEFINE_integer("image_size", 64, "Side of the square images.")
    flags.DEFINE_integer("seed", 0, "Generator seed.")
    flags.mark_flag_as_required("output_dir")

    def main(argv: list[str]) -> None:
        del argv
        fv = flags.FLAGS
        result = write(
            fv.output_dir,
            num_train=fv.num_train,
            num_validation=fv.num_validation,
            image_size=fv.image_size,
            seed=fv.seed,
        )
        print(json.dumps(result, indent=2))

    app.run(main)
