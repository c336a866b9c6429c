"""Text examples as `tf.data`: files, TFRecords or TFDS -> batches of strings.

Every source yields the same element: `{"text_a": string, ["text_b":
string,] ["label": int32 class id or float32 score]}`, which a task then
tokenizes and packs per batch (`batch_fn`), in the graph. TFRecords and TFDS
go through `official.core.input_reader.InputReader` (sharding, shuffling,
named bad records); TSV/CSV/JSONL/TXT files are read in Python
(`text_files.read_rows`) and then follow the same stages: shard per input
pipeline, cache, shuffle and repeat when training, batch, `batch_fn`,
prefetch. `batch_fn(batch, seed)` gets an int64 `[2]` stateless seed per
batch, reproducible from `DataConfig.seed`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from official.core.input_files import split_patterns
from official.core.input_reader import InputReader
from official.nlp.configs.text_data import TextDataConfig
from official.nlp.dataloaders.text_files import read_rows

AUTOTUNE = tf.data.AUTOTUNE
# Label kinds: class ids, regression scores, or no label (MLM).
LABEL_KINDS = ("class", "score", "none")


def _columns(data: TextDataConfig, label_kind: str) -> dict[str, str]:
    """Element key -> the source's column name."""
    columns = {"text_a": data.text_a_key}
    if data.text_b_key:
        columns["text_b"] = data.text_b_key
    if label_kind != "none":
        columns["label"] = data.label_key
    return columns


def convert_labels(
    values: Sequence[Any], label_kind: str, label_names: Sequence[str], where: str
) -> np.ndarray:
    """Labels read from text (or numbers) -> int32 class ids or float32 scores.

    A class label is an integer id or, with `label_names`, a class name.

    Example:
    ```python
    from official.nlp.dataloaders.text_input import convert_labels

    assert convert_labels(["pos", "neg"], "class", ["neg", "pos"], "x").tolist() == [1, 0]
    assert convert_labels(["0.5"], "score", [], "x").tolist() == [0.5]
    ```
    """
    if label_kind == "score":
        try:
            return np.asarray([float(v) for v in values], np.float32)
        except ValueError as e:
            raise ValueError(
                f"{where}: a regression label is not a number ({e})."
            ) from None
    index = {name: i for i, name in enumerate(label_names)}
    out = []
    for value in values:
        text = str(value).strip()
        if text in index:
            out.append(index[text])
            continue
        try:
            label = int(float(text))
        except ValueError:
            known = f" (label_names: {list(label_names)})" if label_names else ""
            raise ValueError(
                f"{where}: label {text!r} is neither a class id nor a class name"
                f"{known}. Set task.label_names to the class names in id order."
            ) from None
        if label_names and not 0 <= label < len(label_names):
            raise ValueError(
                f"{where}: class id {label} is outside [0, {len(label_names)})."
            )
        out.append(label)
    return np.asarray(out, np.int32)


def match_text_files(input_path: str) -> list[str]:
    """The sorted files of comma-separated glob patterns; every pattern must
    match a file."""
    files = []
    for pattern in split_patterns(input_path):
        matched = sorted(
            p for p in tf.io.gfile.glob(pattern) if not tf.io.gfile.isdir(p)
        )
        if not matched:
            raise FileNotFoundError(f"input_path pattern {pattern!r} matches no file.")
        files.extend(p for p in matched if p not in files)
    return files


def _seeded(dataset: tf.data.Dataset, seed: int | None) -> tf.data.Dataset:
    seeds = tf.data.Dataset.random(seed=seed).batch(2, drop_remainder=True)
    return tf.data.Dataset.zip((dataset, seeds))


def _read_text_files(
    data: TextDataConfig,
    columns: dict[str, str],
    label_kind: str,
    label_names: Sequence[str],
    ctx: tf.distribute.InputContext | None,
) -> tf.data.Dataset:
    files = match_text_files(data.input_path)
    rows = read_rows(files, data.file_format, list(columns.values()))
    elements = {key: rows[column] for key, column in columns.items()}
    if "label" in elements:
        elements["label"] = convert_labels(
            elements["label"], label_kind, label_names, data.input_path
        )
    if not elements["text_a"]:
        raise ValueError(f"No example in {data.input_path!r} ({data.file_format}).")
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    if (
        ctx is not None
        and ctx.num_input_pipelines > 1
        and data.auto_shard_policy != "off"
    ):
        dataset = dataset.shard(ctx.num_input_pipelines, ctx.input_pipeline_id)
    if data.cache:
        dataset = dataset.cache()
    if data.is_training:
        if data.shuffle_buffer_size > 1:
            dataset = dataset.shuffle(data.shuffle_buffer_size, seed=data.seed)
        dataset = dataset.repeat()
    return dataset


def _batch_size(data: TextDataConfig, ctx: tf.distribute.InputContext | None) -> int:
    if ctx is None:
        return data.global_batch_size
    if data.global_batch_size % ctx.num_replicas_in_sync:
        raise ValueError(
            f"global_batch_size ({data.global_batch_size}) must be divisible by the "
            f"number of replicas ({ctx.num_replicas_in_sync})."
        )
    return ctx.get_per_replica_batch_size(data.global_batch_size)


def _example_decoder(
    data: TextDataConfig, columns: dict[str, str], label_kind: str
) -> Callable[[tf.Tensor], dict[str, tf.Tensor]]:
    """A serialized tf.Example (or a TFDS feature dict) -> the element."""
    label_dtype = tf.float32 if label_kind == "score" else tf.int64

    def decode_example(record):
        spec = {
            column: tf.io.FixedLenFeature([], tf.string)
            for key, column in columns.items()
            if key != "label"
        }
        if "label" in columns:
            spec[columns["label"]] = tf.io.FixedLenFeature([], label_dtype)
        parsed = tf.io.parse_single_example(record, spec)
        return {key: parsed[column] for key, column in columns.items()}

    def decode_tfds(features):
        missing = [c for c in columns.values() if c not in features]
        if missing:
            raise ValueError(
                f"TFDS {data.tfds_name!r} has no feature {', '.join(map(repr, missing))} "
                f"(features: {sorted(features)}). Set text_a_key / text_b_key / "
                f"label_key to its feature names."
            )
        return {key: features[column] for key, column in columns.items()}

    return decode_tfds if data.tfds_name else decode_example


def _cast_label(element: dict, label_kind: str) -> dict:
    if "label" in element:
        dtype = tf.float32 if label_kind == "score" else tf.int32
        element = {**element, "label": tf.cast(element["label"], dtype)}
    return element


def build_text_dataset(
    data: TextDataConfig,
    batch_fn: Callable[[dict, tf.Tensor], Any],
    label_kind: str,
    label_names: Sequence[str] = (),
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """Batches of `batch_fn(element_batch, seed)` from one split.

    Args:
        data: the split's config (source, columns, batching).
        batch_fn: `(batch, seed) -> (features, labels)`; `batch` is the
            dict of `[batch]` tensors described in the module docstring.
        label_kind: `class`, `score` or `none`.
        label_names: class names by id, for string labels in text files.
        input_context: from `distribute_datasets_from_function`, or None.

    Returns:
        A prefetched dataset of per-replica batches.
    """
    if label_kind not in LABEL_KINDS:
        raise ValueError(
            f"label_kind must be one of {', '.join(LABEL_KINDS)}. Received: {label_kind!r}."
        )
    columns = _columns(data, label_kind)
    if data.tfds_name or data.file_format == "tfrecord":
        decoder = _example_decoder(data, columns, label_kind)
        reader = InputReader(
            data,
            decoder,
            lambda element, seed: _cast_label(element, label_kind),
            postprocess_fn=batch_fn,
            stateless_seeds=True,
        )
        return reader.read(input_context)
    data.validate("data")
    dataset = _read_text_files(data, columns, label_kind, label_names, input_context)
    dataset = dataset.batch(
        _batch_size(data, input_context), drop_remainder=data.drop_remainder
    )
    seed = None if data.seed is None else data.seed + 1_000_003
    dataset = _seeded(dataset, seed).map(batch_fn, num_parallel_calls=AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = (not data.is_training) or data.seed is not None
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF
    )
    return dataset.with_options(options).prefetch(AUTOTUNE)
