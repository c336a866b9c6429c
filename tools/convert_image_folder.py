"""Image folder -> sharded ImageNet-style TFRecords.

    python tools/convert_image_folder.py --input_dir=/data/flowers/train \\
      --output_dir=/data/flowers/tfrecords --prefix=train --num_shards=8

`input_dir` holds one subdirectory per class (`cat/1.jpg`, `dog/2.png`).
Labels are the positions of the class names in sorted order, counted from 0
(the same labels `input_format=image_folder` reads, so the two sources
agree). Every image is decoded once to check it; unreadable files are
skipped and listed, non-JPEG/PNG content is re-encoded as JPEG. Examples are
shuffled (seeded) and spread round-robin over the shards.

Written to `output_dir`: `PREFIX-0000i-of-0000N.tfrecord`, `labels.txt`
(class names, one per line, line i = label i) and `summary-PREFIX.json`
(counts per class, converted and skipped files; named so that the glob
`PREFIX-*` matches only the shards). Features:
`image/encoded`, `image/format`, `image/class/label`, `image/class/text`,
`image/height`, `image/width`, `image/filename` (relative to `input_dir`).
Train with `task.train_data.input_path=OUTPUT_DIR/train-*` (or
`OUTPUT_DIR/train-*.tfrecord`).
"""

from __future__ import annotations

import os
import random
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "input_dir", None, "Folder with one subdirectory per class.", flag_values=FLAGS
)
flags.DEFINE_string("output_dir", None, "Folder for the TFRecords.", flag_values=FLAGS)
flags.DEFINE_string(
    "prefix", "train", "File name prefix (the split).", flag_values=FLAGS
)
flags.DEFINE_integer("num_shards", 8, "Number of TFRecord files.", flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "Seed of the example order.", flag_values=FLAGS)
flags.DEFINE_integer(
    "num_workers", os.cpu_count() or 1, "Threads decoding images.", flag_values=FLAGS
)
flags.DEFINE_boolean("progress", True, "Show a progress bar.", flag_values=FLAGS)


def convert_image_folder(
    input_dir: str,
    output_dir: str,
    prefix: str = "train",
    num_shards: int = 8,
    seed: int = 0,
    num_workers: int = 1,
    progress: bool = False,
) -> dict:
    """Converts an image folder; returns the summary (also written as JSON)."""
    import tensorflow as tf

    from official.core.input_files import list_image_folders
    from official.datasets import tfrecord_writer as tw
    from official.datasets.image_files import (
        UnreadableImageError,
        load_image_file,
        map_with_progress,
    )

    folder = list_image_folders([input_dir])[0]
    items = list(zip(folder.paths, folder.labels))
    random.Random(seed).shuffle(items)
    skipped, converted = [], []
    per_class = {name: 0 for name in folder.class_names}
    with tw.ShardedTFRecordWriter(output_dir, prefix, num_shards) as writer:
        results = map_with_progress(
            lambda item: load_image_file(item[0]), items, num_workers, progress, prefix
        )
        for (path, label), image in results:
            if isinstance(image, UnreadableImageError):
                skipped.append({"path": path, "reason": str(image)})
                continue
            if image.converted:
                converted.append(path)
            name = folder.class_names[label]
            per_class[name] += 1
            writer.write(
                tw.example(
                    {
                        "image/encoded": tw.bytes_feature(image.data),
                        "image/format": tw.bytes_feature(image.format),
                        "image/class/label": tw.int64_feature(label),
                        "image/class/text": tw.bytes_feature(name),
                        "image/height": tw.int64_feature(image.height),
                        "image/width": tw.int64_feature(image.width),
                        "image/filename": tw.bytes_feature(
                            os.path.relpath(path, input_dir)
                        ),
                    }
                )
            )
    with tf.io.gfile.GFile(os.path.join(output_dir, "labels.txt"), "w") as f:
        f.write("".join(f"{name}\n" for name in folder.class_names))
    summary = {
        "input_dir": input_dir,
        "output_dir": output_dir,
        "files": writer.paths,
        "examples_per_shard": writer.counts,
        "num_written": writer.num_examples,
        "num_classes": len(folder.class_names),
        "examples_per_class": per_class,
        "converted_to_jpeg": converted,
        "skipped": skipped,
        "not_images": folder.skipped,
    }
    tw.write_summary(output_dir, prefix, summary)
    return summary


def format_summary(summary: dict) -> str:
    """A short human-readable report of a conversion summary."""
    lines = [
        f"Wrote {summary['num_written']} examples of {summary['num_classes']} classes "
        f"to {len(summary['files'])} shards in {summary['output_dir']} "
        f"(per shard: {summary['examples_per_shard']}).",
        f"Converted to JPEG: {len(summary['converted_to_jpeg'])}. "
        f"Not images (ignored): {len(summary['not_images'])}.",
        f"Skipped (unreadable): {len(summary['skipped'])}.",
    ]
    lines += [f"  {entry['reason']}" for entry in summary["skipped"]]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from tools.tool_flags import parse_flags, run_and_report

    exit_code = parse_flags(FLAGS, argv, __doc__, required=("input_dir", "output_dir"))
    if exit_code is not None:
        return exit_code
    return run_and_report(
        lambda: convert_image_folder(
            FLAGS.input_dir,
            FLAGS.output_dir,
            FLAGS.prefix,
            FLAGS.num_shards,
            FLAGS.seed,
            FLAGS.num_workers,
            FLAGS.progress,
        ),
        format_summary,
    )


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv))
