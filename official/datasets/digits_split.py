"""Class subsets of the embedded digits, for transfer experiments.

Writes the digits of some classes only (relabelled 0..k-1 in the order
given), optionally keeping only a few labelled training examples per class,
in the same TFRecord layout as `official.datasets.digits`:

    DIR/train-00000-of-00001.tfrecord, DIR/validation-00000-of-00001.tfrecord,
    DIR/labels.txt (the original digit of each new label), DIR/manifest.json

The split is the fixed one of `digits.load_split` (so a subset's validation
images are never another subset's training images); the few-shot examples
are the first `train_per_class` of each class after a permutation seeded by
`seed`. Writing is idempotent, as for the full digits.

Run (digits 0-4 to pretrain on; 5-9 with 10 labelled examples each):

    python -m official.datasets.digits_split --output_dir=data/digits_0to4 --classes=0,1,2,3,4
    python -m official.datasets.digits_split --output_dir=data/digits_5to9_10shot --classes=5,6,7,8,9 --train_per_class=10

Example:
```python
import tempfile
from official.datasets.digits_split import write_digits_subset_tfrecords

summary = write_digits_subset_tfrecords(
    tempfile.mkdtemp(), classes=[5, 6, 7, 8, 9], train_per_class=10, image_size=16)
assert summary["train"]["num_examples"] == 50 and summary["num_classes"] == 5
assert summary["validation"]["num_examples"] == 180
```
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from official.datasets import digits, generated_dataset
from official.datasets.synthetic import classification_example
from official.datasets.tfrecord_writer import shard_name

_VERSION = 1


def _check_classes(classes: Sequence[int]) -> list[int]:
    classes = list(classes)
    if (
        not classes
        or any(
            isinstance(c, bool) or not isinstance(c, (int, np.integer)) for c in classes
        )
        or any(not 0 <= c < digits.NUM_CLASSES for c in classes)
        or len(set(classes)) != len(classes)
    ):
        raise ValueError(
            "classes must be distinct digits in 0..9 (at least one). Received: "
            f"classes={classes!r}."
        )
    return [int(c) for c in classes]


def select(
    images: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[int],
    per_class: int = 0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The examples of `classes`, relabelled by their position in `classes`.

    With `per_class` > 0, the first `per_class` of each class after a
    permutation seeded by `seed` (in the order of the permuted data).

    Raises:
        ValueError: a class has fewer than `per_class` examples.
    """
    classes = _check_classes(classes)
    order = np.random.default_rng(seed).permutation(len(labels))
    keep = []
    for c in classes:
        rows = order[labels[order] == c]
        if per_class:
            if len(rows) < per_class:
                raise ValueError(
                    f"Digit {c} has {len(rows)} examples in this split; "
                    f"train_per_class={per_class} asks for more."
                )
            rows = rows[:per_class]
        keep.append(rows)
    rows = np.sort(np.concatenate(keep))
    lookup = {c: i for i, c in enumerate(classes)}
    return images[rows], np.array([lookup[int(y)] for y in labels[rows]], np.int64)


def write_digits_subset_tfrecords(
    output_dir: str,
    classes: Sequence[int],
    train_per_class: int = 0,
    image_size: int = 32,
    seed: int = 0,
) -> dict[str, Any]:
    """Writes the digits of `classes` as ImageNet-format TFRecords (idempotent).

    Args:
        output_dir: folder to write into (created if missing).
        classes: distinct digits 0..9; digit `classes[i]` gets label `i`.
        train_per_class: int >= 0, training examples kept per class (0: all).
            Validation always keeps every example of the classes.
        image_size: side of the square RGB images, >= 8. Default 32.
        seed: int, picks the few-shot examples. Default 0.

    Returns:
        `generated_dataset.summary`: `{"output_dir", "image_size",
        "num_classes", "labels_path", "skipped", "train": {...},
        "validation": {...}}`.
    """
    classes = _check_classes(classes)
    if isinstance(train_per_class, bool) or train_per_class < 0:
        raise ValueError(
            "train_per_class must be an int >= 0 (0 keeps all). Received: "
            f"train_per_class={train_per_class!r}."
        )
    if image_size < 8:
        raise ValueError(f"image_size must be >= 8. Received: image_size={image_size}.")
    full = digits.load_split()
    splits = {
        "train": select(*full["train"], classes, train_per_class, seed),
        "validation": select(*full["validation"], classes),
    }
    files = generated_dataset.shard_plan(
        {split: len(labels) for split, (_, labels) in splits.items()}, (1, 1)
    )
    manifest = {
        "version": _VERSION,
        "source": "sklearn.datasets.load_digits",
        "digits_split_seed": digits.SPLIT_SEED,
        "classes": classes,
        "train_per_class": train_per_class,
        "seed": seed,
        "image_size": image_size,
        "files": files,
    }

    def write_files():
        for split in generated_dataset.SPLITS:
            images, labels = splits[split]
            path = os.path.join(output_dir, shard_name(split, 0, 1))
            with tf.io.TFRecordWriter(path + ".tmp") as writer:
                for image, label in zip(
                    digits.to_rgb_uint8(images, image_size), labels
                ):
                    example = classification_example(image, int(label), "png")
                    writer.write(example.SerializeToString())
            tf.io.gfile.rename(path + ".tmp", path, overwrite=True)

    return generated_dataset.write_once(
        output_dir, manifest, [str(c) for c in classes], write_files, "Digit subset"
    )


def main(argv: list[str]) -> None:
    del argv
    from absl import flags

    summary = write_digits_subset_tfrecords(
        flags.FLAGS.output_dir,
        classes=[int(c) for c in flags.FLAGS.classes],
        train_per_class=flags.FLAGS.train_per_class,
        image_size=flags.FLAGS.image_size,
        seed=flags.FLAGS.seed,
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("output_dir", None, "Folder to write the TFRecords into.")
    flags.DEFINE_list("classes", None, "Digits to keep, e.g. 5,6,7,8,9.")
    flags.DEFINE_integer("train_per_class", 0, "Training examples per class (0: all).")
    flags.DEFINE_integer("image_size", 32, "Side of the square RGB images.")
    flags.DEFINE_integer("seed", 0, "Seed choosing the few-shot examples.")
    flags.mark_flags_as_required(["output_dir", "classes"])
    app.run(main)
