"""SFT examples from a prepared TensorFlow Datasets split, as (roles, contents).

`task.*_data.tfds_name` (with `tfds_split`, `tfds_data_dir`) reads a
dataset prepared on disk (`tfds build NAME --data_dir=DIR`, or a builder's
`download_and_prepare`); nothing is downloaded. Which features make a
conversation is decided once from the dataset's feature spec, with the names
of the data config's `fields` (`SFTFieldsConfig`), in this order:

- `messages`: a `tfds.features.Sequence` of `{role, content}` text features
  (roles system, user, assistant) -> the messages as they are;
- `prompt` and `completion` text features -> user `prompt`, assistant
  `completion`;
- `text` -> one `text` message (every token trains).

The split is read by Garden's TFDS reader (`official.core.tfds_source`:
sharding across input pipelines, file shuffling), then mapped to the same
(roles, contents) pairs as JSON Lines and TFRecord files, so the chat
template, tokenization and packing are the same.

Example:
```python
import tensorflow_datasets as tfds
from official.llm.configs.causal_lm import SFTFieldsConfig
from official.llm.data import sft_tfds

features = tfds.features.FeaturesDict(
    {"question": tfds.features.Text(), "answer": tfds.features.Text()})
fields = SFTFieldsConfig(prompt="question", completion="answer")
to_conversation = sft_tfds.conversation_fn(features, fields, "train_data")
roles, contents = to_conversation({"question": "2+2?", "answer": "4"})
roles.numpy().tolist()  # -> [b'user', b'assistant']
```
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from official.core import tfds_source
from official.llm.configs.causal_lm import SFTDataConfig, SFTFieldsConfig


def _keys(feature) -> list[str]:
    """The sub-feature names of a FeaturesDict (or a Sequence of one)."""
    inner = getattr(feature, "feature", feature)
    return sorted(inner.keys()) if hasattr(inner, "keys") else []


def conversation_fn(
    features, fields: SFTFieldsConfig, where: str
) -> Callable[[dict], tuple[tf.Tensor, tf.Tensor]]:
    """A function from one example's feature dict to (roles, contents).

    Args:
        features: the dataset's `tfds.features.FeaturesDict`.
        fields: the field names (`SFTFieldsConfig`).
        where: the data config's name, for errors.
    """
    f = fields
    names = set(features.keys())
    if f.messages in names:
        inner = _keys(features[f.messages])
        if not {f.role, f.content} <= set(inner):
            raise ValueError(
                f"{where}: TFDS feature {f.messages!r} must be a Sequence of "
                f"{{{f.role!r}, {f.content!r}}} text features (names from "
                f"{where}.fields). It holds: {inner or type(features[f.messages]).__name__}."
            )

        def messages(example):
            turns = example[f.messages]
            return turns[f.role], turns[f.content]

        return messages
    if {f.prompt, f.completion} <= names:

        def prompt_completion(example):
            contents = tf.stack([example[f.prompt], example[f.completion]])
            return tf.constant(["user", "assistant"]), contents

        return prompt_completion
    if f.text in names:

        def text(example):
            return tf.constant(["text"]), tf.reshape(example[f.text], [1])

        return text
    raise ValueError(
        f"{where}: the TFDS features {sorted(names)} have neither "
        f"{f.messages!r}, nor {f.prompt!r} and {f.completion!r}, nor {f.text!r}. "
        f"Name the dataset's fields with {where}.fields (e.g. "
        f"fields.prompt=question, fields.completion=answer)."
    )


def _features(data: SFTDataConfig):
    import tensorflow_datasets as tfds  # Slow to import: only when used.

    return tfds.builder(data.tfds_name, data_dir=data.tfds_data_dir or None).info.features


def read_split(
    data: SFTDataConfig,
    input_context: tf.distribute.InputContext | None,
    where: str = "SFT data",
) -> tf.data.Dataset:
    """This pipeline's share of the split, as (roles, contents) string tensors."""
    to_conversation = conversation_fn(_features(data), data.fields, where)
    dataset = tfds_source.read_split(data, input_context)
    return dataset.map(to_conversation, num_parallel_calls=tf.data.AUTOTUNE)


def iter_conversations(data: SFTDataConfig):
    """The split's conversations in Python, one (roles, contents) at a time."""
    for roles, contents in read_split(data, None):
        yield (
            [r.decode("utf-8") for r in roles.numpy()],
            [c.decode("utf-8") for c in contents.numpy()],
        )
