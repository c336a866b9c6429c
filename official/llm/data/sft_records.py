"""SFT examples on disk: JSON Lines and TFRecord files, as (roles, contents).

Every example becomes a conversation, two equal-length lists of strings:
- `{"messages": [{"role": "user", "content": "..."}, ...]}` as it is
  (roles: system, user, assistant);
- `{"prompt": p, "completion": c}` -> user `p`, assistant `c`;
- `{"text": t}` -> one `text` message (every token trains).
The keys are those of the data config's `fields` (`SFTFieldsConfig`).

TFRecord files hold one tf.Example per conversation with bytes lists
`roles` and `contents` (`write_sft_tfrecords`).

Example:
```python
import json, os, tempfile
from official.llm.data import sft_records

path = os.path.join(tempfile.mkdtemp(), "train.jsonl")
with open(path, "w") as f:
    f.write(json.dumps({"prompt": "2+2?", "completion": "4"}) + "\\n")
sft_records.read_jsonl([path])  # -> [(['user', 'assistant'], ['2+2?', '4'])]
```
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from official.llm.configs.causal_lm import SFTDataConfig, SFTFieldsConfig
from official.llm.data.chat_template import ROLES

CHAT_ROLES = ("system", "user", "assistant")
DEFAULT_FIELDS = SFTFieldsConfig()


def to_conversation(
    record, where: str, fields: SFTFieldsConfig = DEFAULT_FIELDS
) -> tuple[list[str], list[str]]:
    """One parsed JSON record -> (roles, contents); errors name `where`.

    `fields` names the keys (`SFTFieldsConfig`: messages, role, content,
    prompt, completion, text).
    """
    f = fields
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}.")
    if f.messages in record:
        messages = record[f.messages]
        if not isinstance(messages, list) or not messages:
            raise ValueError(f"{where}: `{f.messages}` must be a non-empty list.")
        roles, contents = [], []
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not {f.role, f.content} <= set(message):
                raise ValueError(
                    f"{where}: {f.messages}[{i}] must be an object with "
                    f"`{f.role}` and `{f.content}`. Received: {message!r}."
                )
            if message[f.role] not in CHAT_ROLES:
                raise ValueError(
                    f"{where}: {f.messages}[{i}].{f.role} must be one of "
                    f"{', '.join(CHAT_ROLES)}. Received: {message[f.role]!r}."
                )
            roles.append(message[f.role])
            contents.append(str(message[f.content]))
        return roles, contents
    if f.prompt in record and f.completion in record:
        return ["user", "assistant"], [str(record[f.prompt]), str(record[f.completion])]
    if f.text in record:
        return ["text"], [str(record[f.text])]
    raise ValueError(
        f"{where}: a record needs `{f.messages}`, `{f.prompt}` and "
        f"`{f.completion}`, or `{f.text}` (names from the data config's "
        f"`fields`). Received keys: {sorted(record)}."
    )


def iter_jsonl(paths, fields: SFTFieldsConfig = DEFAULT_FIELDS):
    """Yields every conversation of the JSON Lines files, in order (blank
    lines skipped), as (roles, contents) lists, one line read at a time."""
    for path in paths:
        with tf.io.gfile.GFile(path) as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{where}: not valid JSON ({e.msg}).") from None
                yield to_conversation(record, where, fields)


def read_jsonl(paths, fields: SFTFieldsConfig = DEFAULT_FIELDS):
    """Every conversation of the JSON Lines files (`iter_jsonl`), as a list."""
    return list(iter_jsonl(paths, fields))


def conversation_example(roles, contents) -> bytes:
    """One conversation as a serialized tf.Example."""
    if len(roles) != len(contents) or any(r not in ROLES for r in roles):
        raise ValueError(
            f"A conversation needs one content per role, roles among "
            f"{', '.join(ROLES)}. Received roles {roles!r}."
        )

    def feature(values):
        return tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[v.encode("utf-8") for v in values])
        )

    example = tf.train.Example(
        features=tf.train.Features(
            feature={"roles": feature(roles), "contents": feature(contents)}
        )
    )
    return example.SerializeToString()


def write_sft_tfrecords(conversations, path: str) -> str:
    """Writes (roles, contents) pairs to one TFRecord file; returns `path`."""
    with tf.io.TFRecordWriter(path) as writer:
        for roles, contents in conversations:
            writer.write(conversation_example(roles, contents))
    return path


def shard_paths(output_prefix: str, num_shards: int) -> list[str]:
    """`prefix-00000-of-00004.tfrecord`, ... for `num_shards` shards."""
    return [
        f"{output_prefix}-{i:05d}-of-{num_shards:05d}.tfrecord"
        for i in range(num_shards)
    ]


def convert_jsonl(
    paths, output_prefix: str, num_shards: int = 1, fields=DEFAULT_FIELDS
) -> tuple[list[str], int]:
    """Streams JSON Lines files into `num_shards` TFRecord files of
    tf.Examples (`roles`, `contents`), conversations dealt round robin.

    Reads one line at a time, so the files may be larger than memory. The
    shards are written under temporary names and renamed once every line
    has converted: a bad line (its file:line in the error) leaves no
    output. Returns (shard paths, number of conversations).
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1. Received: {num_shards}.")
    targets = shard_paths(output_prefix, num_shards)
    temporary = [f"{path}.incomplete" for path in targets]
    directory = os.path.dirname(output_prefix)
    if directory:
        tf.io.gfile.makedirs(directory)
    writers = [tf.io.TFRecordWriter(path) for path in temporary]
    count = 0
    try:
        for roles, contents in iter_jsonl(paths, fields):
            writers[count % num_shards].write(conversation_example(roles, contents))
            count += 1
    except BaseException:
        for writer in writers:
            writer.close()
        for path in temporary:
            if tf.io.gfile.exists(path):
                tf.io.gfile.remove(path)
        raise
    for writer in writers:
        writer.close()
    for source, target in zip(temporary, targets):
        tf.io.gfile.rename(source, target, overwrite=True)
    return targets, count


def parse_conversation(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """A serialized tf.Example -> (roles, contents) string tensors."""
    parsed = tf.io.parse_single_example(
        serialized,
        {
            "roles": tf.io.VarLenFeature(tf.string),
            "contents": tf.io.VarLenFeature(tf.string),
        },
    )
    roles = tf.sparse.to_dense(parsed["roles"])
    contents = tf.sparse.to_dense(parsed["contents"])
    check = tf.debugging.assert_equal(
        tf.size(roles),
        tf.size(contents),
        message="SFT tf.Example: `roles` and `contents` differ in length",
    )
    with tf.control_dependencies([check]):
        return tf.identity(roles), tf.identity(contents)


def split_prompt(roles, contents) -> tuple[list[str], list[str], str] | None:
    """(prompt roles, prompt contents, reference) of a conversation ending in
    an assistant turn; None when it has no assistant turn."""
    roles, contents = list(roles), list(contents)
    last = max((i for i, r in enumerate(roles) if r == "assistant"), default=None)
    if last is None or last == 0:
        return None
    return roles[:last], contents[:last], contents[last]


def read_conversations(
    paths, input_format: str, limit: int = 0, fields: SFTFieldsConfig = DEFAULT_FIELDS
):
    """Conversations of JSONL or TFRecord files, in Python (at most `limit`)."""
    if input_format == "jsonl":
        found = read_jsonl(paths, fields)
        return found[:limit] if limit else found
    out = []
    for record in tf.data.TFRecordDataset(list(paths)):
        roles, contents = parse_conversation(record)
        out.append(
            (
                [r.decode("utf-8") for r in roles.numpy()],
                [c.decode("utf-8") for c in contents.numpy()],
            )
        )
        if limit and len(out) >= limit:
            break
    return out


def _parse_fields(text: str) -> SFTFieldsConfig:
    """`prompt=question,completion=answer` -> the fields config."""
    fields = SFTFieldsConfig()
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--fields: {item!r} is not name=key.")
        fields.override({name.strip(): value.strip()})
    fields.validate("--fields")
    return fields


def main(argv: list[str]) -> int:
    """Converts; a bad file, line or flag is one line on stderr and exit 1."""
    del argv
    import sys

    from absl import flags

    from official.llm.data import sft_input

    options = flags.FLAGS
    try:
        files = sft_input.input_files(
            SFTDataConfig(input_path=",".join(options.input_path))
        )
        written, count = convert_jsonl(
            files,
            options.output_prefix,
            options.num_shards,
            _parse_fields(options.fields),
        )
    except (FileNotFoundError, KeyError, ValueError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {type(e).__name__}: {message}", file=sys.stderr)
        return 1
    print(f"{count} conversations from {len(files)} file(s) -> {len(written)} shard(s):")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_list(
        "input_path", None, "JSONL files or globs, comma-separated.", required=True
    )
    flags.DEFINE_string(
        "output_prefix", None, "Shards go to PREFIX-00000-of-0000N.tfrecord.", required=True
    )
    flags.DEFINE_integer("num_shards", 1, "TFRecord files to deal the examples into.")
    flags.DEFINE_string(
        "fields", "", "Renamed JSON keys, e.g. prompt=question,completion=answer."
    )
    app.run(main)
