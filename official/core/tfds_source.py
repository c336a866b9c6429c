"""Reading a prepared TensorFlow Datasets split for the `InputReader`.

TFDS is never asked to download here: a split that is not prepared in
`tfds_data_dir` is an error that says how to prepare it. `tfds_split` goes to
TFDS as is, so its slicing syntax works (`train[:90%]`, `train[10%:]+test`).
Sharding across input pipelines follows `auto_shard_policy`: by files
(TFDS's `ReadConfig(input_context=...)`) when the split has at least one file
per pipeline (or the policy is `file`), by records (`Dataset.shard`)
otherwise or with `data`, not at all with `off`.

Example:
```python
import tensorflow_datasets as tfds
from official.core.experiment_config import DataConfig
from official.core.tfds_source import read_split

params = DataConfig(tfds_name="mnist", tfds_split="train", is_training=False)
with tfds.testing.mock_data(num_examples=3):
    assert len(list(read_split(params, None))) == 3
```
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from absl import logging

from official.core import input_files
from official.core.experiment_config import DataConfig


def num_files(builder: Any, split: str) -> int | None:
    """Number of files behind a TFDS split, or None when unknown."""
    try:
        return len(builder.info.splits[split].file_instructions)
    except Exception:  # noqa: BLE001 - unknown split metadata: let TFDS decide.
        return None


def read_split(
    params: DataConfig, ctx: tf.distribute.InputContext | None
) -> tf.data.Dataset:
    """The feature dicts of `params.tfds_split`, this pipeline's share.

    Files are shuffled (seeded by `params.seed`) when training with file
    sharding; caching, shuffling examples and repeating are the reader's.
    """
    import tensorflow_datasets as tfds  # Slow to import: only when used.

    p = params
    builder = tfds.builder(p.tfds_name, data_dir=p.tfds_data_dir or None)
    num_pipelines = ctx.num_input_pipelines if ctx else 1
    by_files = shard_records = False
    if num_pipelines > 1 and p.auto_shard_policy != "off":
        files = num_files(builder, p.tfds_split)
        if p.auto_shard_policy == "data":
            shard_records = True
        elif files is not None and files < num_pipelines:
            if p.auto_shard_policy == "file":
                raise input_files.too_few_files_error(files, num_pipelines)
            shard_records = True
        else:
            by_files = True
    read_config = tfds.ReadConfig(
        input_context=ctx if by_files else None,
        shuffle_seed=p.seed,
        interleave_cycle_length=p.cycle_length,
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
    if shard_records:
        dataset = dataset.shard(num_pipelines, ctx.input_pipeline_id)
    return dataset
