"""TSV / CSV / JSON-lines text examples -> sharded tf.Example TFRecords.

    python tools/convert_text_classification.py --input_path=/data/sst2/train.tsv \\
      --file_format=tsv --text_a_key=sentence --label_key=label \\
      --output_dir=/data/sst2/tfrecords --prefix=train --num_shards=4

Each row becomes a tf.Example whose string features keep the source's column
names (`text_a_key`, and `text_b_key` for pairs), so the task's data config
reads the TFRecords with the same keys (`file_format=tfrecord`). The label
(`label_key`) is written as int64 class ids (`--label_names=neg,pos` maps
class names in the data to ids; integers are taken as ids) or, with
`--regression`, as float32 scores. Rows are shuffled (seeded; `--noshuffle` keeps their order) and spread
round-robin over the shards; rows whose text is empty are skipped and
counted.

Written to `output_dir`: `PREFIX-0000i-of-0000N.tfrecord`, `labels.txt`
(with `--label_names`) and `summary-PREFIX.json` (counts per class, skipped
rows). Train with `task.train_data.input_path=OUTPUT_DIR/train-*`.
"""

from __future__ import annotations

import os
import random
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "input_path", None, "Input file glob(s), comma-separated.", flag_values=FLAGS
)
flags.DEFINE_enum(
    "file_format", "tsv", ["tsv", "csv", "jsonl"], "Input format.", flag_values=FLAGS
)
flags.DEFINE_string("text_a_key", "sentence", "First text column.", flag_values=FLAGS)
flags.DEFINE_string("text_b_key", "", "Second text column (pairs).", flag_values=FLAGS)
flags.DEFINE_string("label_key", "label", "Label column.", flag_values=FLAGS)
flags.DEFINE_list("label_names", [], "Class names in id order.", flag_values=FLAGS)
flags.DEFINE_bool("regression", False, "Float labels (scores).", flag_values=FLAGS)
flags.DEFINE_string("output_dir", None, "Folder for the TFRecords.", flag_values=FLAGS)
flags.DEFINE_string(
    "prefix", "train", "File name prefix (the split).", flag_values=FLAGS
)
flags.DEFINE_integer("num_shards", 4, "Number of TFRecord files.", flag_values=FLAGS)
flags.DEFINE_bool("shuffle", True, "Shuffle the rows (seeded).", flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "Shuffling seed.", flag_values=FLAGS)
flags.DEFINE_boolean("progress", True, "Show a progress bar.", flag_values=FLAGS)


def convert_text_classification(
    input_path: str,
    output_dir: str,
    file_format: str = "tsv",
    text_a_key: str = "sentence",
    text_b_key: str = "",
    label_key: str = "label",
    label_names: list[str] | None = None,
    regression: bool = False,
    prefix: str = "train",
    num_shards: int = 4,
    seed: int = 0,
    progress: bool = False,
    shuffle: bool = True,
) -> dict:
    """Converts text examples; returns the summary (also written as JSON)."""
    import tensorflow as tf
    from tqdm import tqdm

    from official.datasets import tfrecord_writer as tw
    from official.nlp.dataloaders.text_files import read_rows
    from official.nlp.dataloaders.text_input import convert_labels, match_text_files

    label_names = list(label_names or [])
    if regression and label_names:
        raise ValueError("--label_names and --regression exclude each other.")
    text_keys = [text_a_key] + ([text_b_key] if text_b_key else [])
    files = match_text_files(input_path)
    rows = read_rows(files, file_format, [*text_keys, label_key])
    labels = convert_labels(
        rows[label_key], "score" if regression else "class", label_names, input_path
    )
    order = list(range(len(labels)))
    if shuffle:
        random.Random(seed).shuffle(order)
    per_class: dict[str, int] = {}
    skipped = 0
    with tw.ShardedTFRecordWriter(output_dir, prefix, num_shards) as writer:
        for index in tqdm(order, desc=prefix, unit="ex", disable=not progress):
            texts = {key: rows[key][index] for key in text_keys}
            if not all(text.strip() for text in texts.values()):
                skipped += 1
                continue
            feature = {key: tw.bytes_feature(text) for key, text in texts.items()}
            label = labels[index]
            if regression:
                feature[label_key] = tw.float_feature(float(label))
            else:
                feature[label_key] = tw.int64_feature(int(label))
                name = label_names[label] if label_names else str(int(label))
                per_class[name] = per_class.get(name, 0) + 1
            writer.write(tw.example(feature))
    if label_names:
        with tf.io.gfile.GFile(os.path.join(output_dir, "labels.txt"), "w") as f:
            f.write("".join(f"{name}\n" for name in label_names))
    summary = {
        "input_files": files,
        "output_dir": output_dir,
        "files": writer.paths,
        "examples_per_shard": writer.counts,
        "num_written": writer.num_examples,
        "num_skipped_empty": skipped,
        "examples_per_class": dict(sorted(per_class.items())),
        "features": {"texts": text_keys, "label": label_key},
        "label_type": "float" if regression else "int64",
    }
    tw.write_summary(output_dir, prefix, summary)
    return summary


def format_summary(summary: dict) -> str:
    """A short human-readable report of a conversion summary."""
    lines = [
        f"Wrote {summary['num_written']} examples to {len(summary['files'])} shards "
        f"in {summary['output_dir']} (per shard: {summary['examples_per_shard']}).",
        f"Skipped (empty text): {summary['num_skipped_empty']}.",
    ]
    if summary["examples_per_class"]:
        lines.append(f"Per class: {summary['examples_per_class']}.")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from tools.tool_flags import parse_flags, run_and_report

    exit_code = parse_flags(FLAGS, argv, __doc__, required=("input_path", "output_dir"))
    if exit_code is not None:
        return exit_code
    return run_and_report(
        lambda: convert_text_classification(
            FLAGS.input_path,
            FLAGS.output_dir,
            FLAGS.file_format,
            FLAGS.text_a_key,
            FLAGS.text_b_key,
            FLAGS.label_key,
            FLAGS.label_names,
            FLAGS.regression,
            FLAGS.prefix,
            FLAGS.num_shards,
            FLAGS.seed,
            FLAGS.progress,
            FLAGS.shuffle,
        ),
        format_summary,
    )


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv))
