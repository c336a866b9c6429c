"""The SFT input pipeline: files -> conversations -> tokens -> rows -> batches.

Stages (all in tf.data except reading JSON Lines, which is parsed in Python
when the pipeline is built and held in memory):

    files (input_path globs, sharded per input pipeline), or a TFDS split
      -> (roles, contents)          JSONL records, tf.Examples or TFDS
                                    features (`sft_tfds`)
      -> (ids, weights)             chat template + tokenizer (`sft_tokenize`)
      -> examples without a trained token (after the cut) dropped
      -> cache (`cache`: tokenized examples kept in memory after one pass)
      -> shuffle (training)
      -> rows of `sequence_length`  packed (segment ids) or padded (`packing`)
      -> repeat (training), batches of the per-replica batch size

keras-hub's BPE tokenizer runs at a few ms per example on a CPU core: with
several epochs over a small set, `cache: true` tokenizes it once.

JSON Lines are parsed in Python, not streamed: TensorFlow has no JSON op, and
a `tf.py_function` per line would hold the GIL inside the input pipeline and
report a bad line only when training reaches it (here every line is checked,
with its file:line, before the first step). The split's text is held in
memory; a split larger than that belongs in TFRecords
(`sft_records.write_sft_tfrecords`) or TFDS, which stream.

Example:
```python
import json, os, tempfile
from official.llm.configs.causal_lm import SFTDataConfig
from official.llm.data import byte_tokenizer, chat_template, sft_input, sft_tokenize
from official.llm.models.causal_lm_builder import read_tokenizer_dir

d = tempfile.mkdtemp()
with open(os.path.join(d, "train.jsonl"), "w") as f:
    for a in range(4):
        f.write(json.dumps({"prompt": f"{a}+1?", "completion": str(a + 1)}) + "\\n")
encoder = sft_tokenize.ConversationEncoder(
    read_tokenizer_dir(byte_tokenizer.write_byte_tokenizer(d + "/tok")),
    chat_template.get_template("default"), start_id=0, end_id=0)
data = SFTDataConfig(input_path=d + "/*.jsonl", global_batch_size=2,
                     sequence_length=32, is_training=False)
features, labels = next(iter(sft_input.build_sft_dataset(data, encoder)))
features["token_ids"].shape  # -> (2, 32)
```
"""

from __future__ import annotations

import tensorflow as tf

from official.llm.configs.causal_lm import SFTDataConfig
from official.llm.data import packing, sft_records, sft_tfds
from official.llm.data.sft_tokenize import ConversationEncoder


def input_files(data: SFTDataConfig) -> list[str]:
    """The sorted files of `data.input_path` (comma-separated globs)."""
    files = []
    for pattern in data.input_path.split(","):
        pattern = pattern.strip()
        if not pattern:
            continue
        matched = sorted(tf.io.gfile.glob(pattern))
        if not matched:
            raise FileNotFoundError(
                f"SFT data: no file matches {pattern!r} (input_path="
                f"{data.input_path!r})."
            )
        files += matched
    if not files:
        raise FileNotFoundError(f"SFT data: input_path is empty ({data.input_path!r}).")
    return files


def iter_conversations(data: SFTDataConfig):
    """The split's (roles, contents) conversations in Python, in order
    (files or TFDS; a TFDS split is read as far as it is iterated)."""
    if data.tfds_name:
        return sft_tfds.iter_conversations(data)
    return iter(
        sft_records.read_conversations(input_files(data), data.input_format, 0, data.fields)
    )


def _conversations(
    data: SFTDataConfig, input_context: tf.distribute.InputContext | None
) -> tf.data.Dataset:
    if data.tfds_name:
        return sft_tfds.read_split(data, input_context)
    files = input_files(data)
    pipelines = input_context.num_input_pipelines if input_context else 1
    index = input_context.input_pipeline_id if input_context else 0
    if data.input_format == "jsonl":
        conversations = sft_records.read_jsonl(files, data.fields)
        if not conversations:
            raise ValueError(f"SFT data: no records in {files}.")
        roles = tf.ragged.constant([r for r, _ in conversations], dtype=tf.string)
        contents = tf.ragged.constant([c for _, c in conversations], dtype=tf.string)
        dataset = tf.data.Dataset.from_tensor_slices((roles, contents))
        return dataset.shard(pipelines, index) if pipelines > 1 else dataset
    dataset = tf.data.TFRecordDataset(files)
    if pipelines > 1:
        dataset = dataset.shard(pipelines, index)
    return dataset.map(sft_records.parse_conversation)


def build_sft_dataset(
    data: SFTDataConfig,
    encoder: ConversationEncoder,
    input_context: tf.distribute.InputContext | None = None,
    pad_id: int = 0,
) -> tf.data.Dataset:
    """`(features, labels)` batches of `data` (see the module docstring).

    `encoder` tokenizes; its `train_on_all` should follow `data.loss_on`
    (`CausalLMTask.encoder(data)` makes one that does).

    Features are `{"token_ids", "segment_ids", "positions"}` when packing,
    else `{"token_ids", "padding_mask"}`; labels `{"targets", "weights"}`,
    all `[batch, sequence_length]`.
    """
    dataset = _conversations(data, input_context)
    options = tf.data.Options()
    deterministic = data.deterministic
    if deterministic is None:
        deterministic = not data.is_training or data.seed is not None
    options.deterministic = deterministic
    examples = dataset.map(
        lambda roles, contents: encoder.encode(roles, contents),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    ).filter(lambda ids, w: packing.trains_something(ids, w, data.sequence_length))
    if data.cache:  # Tokenized once; later epochs only shuffle and pack.
        examples = examples.cache()
    if data.is_training:
        examples = examples.shuffle(
            data.shuffle_buffer_size, seed=data.seed, reshuffle_each_iteration=True
        )
    if data.packing:
        rows = packing.pack(examples, data.sequence_length, pad_id)
    else:
        rows = packing.pad(examples, data.sequence_length, pad_id)
    if data.is_training:
        rows = rows.repeat()
    batch_size = (
        input_context.get_per_replica_batch_size(data.global_batch_size)
        if input_context
        else data.global_batch_size
    )
    rows = rows.batch(batch_size, drop_remainder=data.drop_remainder)
    return rows.with_options(options).prefetch(tf.data.AUTOTUNE)
