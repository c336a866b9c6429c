"""COCO JSON (boxes, masks) -> sharded TFRecords for detection and segmentation.

    python tools/convert_coco.py \\
      --annotations_file=/data/coco/annotations/instances_val2017.json \\
      --image_dir=/data/coco/val2017 --output_dir=/data/coco/tfrecords \\
      --prefix=val --num_shards=8

Features use the TF Object Detection API's keys:
`image/encoded`, `image/format`, `image/height`, `image/width`,
`image/filename`, `image/source_id` (the COCO image id),
`image/key/sha256`, `image/object/bbox/{xmin,xmax,ymin,ymax}` (floats
normalized to 0..1), `image/object/class/label` (the COCO category id),
`image/object/class/text`, `image/object/is_crowd`, `image/object/area`,
and with `--include_masks` `image/object/mask`: one PNG per object, values
0/1, decoded from polygons or RLE (`official.datasets.coco_masks`; uses
pycocotools when installed, the `coco` extra).

Skipped and counted: annotations with an empty or out-of-image box, and
images whose file is missing, unreadable or of another size than the JSON
says (listed). Images without annotations are written (no objects).
Also written: `label_map.pbtxt` (the Object Detection API's label map) and
`summary-PREFIX.json`.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import random
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_string("annotations_file", None, "COCO instances JSON.", flag_values=FLAGS)
flags.DEFINE_string("image_dir", None, "Folder of the images.", flag_values=FLAGS)
flags.DEFINE_string("output_dir", None, "Folder for the TFRecords.", flag_values=FLAGS)
flags.DEFINE_string(
    "prefix", "train", "File name prefix (the split).", flag_values=FLAGS
)
flags.DEFINE_integer("num_shards", 8, "Number of TFRecord files.", flag_values=FLAGS)
flags.DEFINE_boolean("include_masks", True, "Write instance masks.", flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "Seed of the example order.", flag_values=FLAGS)
flags.DEFINE_integer(
    "num_workers", os.cpu_count() or 1, "Threads decoding images.", flag_values=FLAGS
)
flags.DEFINE_boolean("progress", True, "Show a progress bar.", flag_values=FLAGS)


def _mask_png(mask) -> bytes:
    import tensorflow as tf

    return tf.io.encode_png(mask[:, :, None]).numpy()


def _objects(
    image_info: dict, annotations: list, categories: dict, include_masks: bool
):
    """The object features of one image; also the number of boxes skipped."""
    from official.datasets import coco_masks

    height, width = image_info["height"], image_info["width"]
    objects = collections.defaultdict(list)
    skipped = 0
    for ann in annotations:
        x, y, w, h = (float(v) for v in ann["bbox"])
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
            skipped += 1
            continue
        objects["xmin"].append(x / width)
        objects["xmax"].append((x + w) / width)
        objects["ymin"].append(y / height)
        objects["ymax"].append((y + h) / height)
        objects["label"].append(int(ann["category_id"]))
        objects["text"].append(categories[ann["category_id"]])
        objects["is_crowd"].append(int(ann.get("iscrowd", 0)))
        objects["area"].append(float(ann.get("area", w * h)))
        if include_masks:
            mask = coco_masks.segmentation_to_mask(ann["segmentation"], height, width)
            objects["mask"].append(_mask_png(mask))
    return objects, skipped


def _example(image_info: dict, image, objects: dict, include_masks: bool):
    from official.datasets import tfrecord_writer as tw

    features = {
        "image/encoded": tw.bytes_feature(image.data),
        "image/format": tw.bytes_feature(image.format),
        "image/height": tw.int64_feature(image.height),
        "image/width": tw.int64_feature(image.width),
        "image/filename": tw.bytes_feature(image_info["file_name"]),
        "image/source_id": tw.bytes_feature(str(image_info["id"])),
        "image/key/sha256": tw.bytes_feature(hashlib.sha256(image.data).hexdigest()),
        "image/object/bbox/xmin": tw.float_feature(objects["xmin"]),
        "image/object/bbox/xmax": tw.float_feature(objects["xmax"]),
        "image/object/bbox/ymin": tw.float_feature(objects["ymin"]),
        "image/object/bbox/ymax": tw.float_feature(objects["ymax"]),
        "image/object/class/label": tw.int64_feature(objects["label"]),
        "image/object/class/text": tw.bytes_feature(objects["text"]),
        "image/object/is_crowd": tw.int64_feature(objects["is_crowd"]),
        "image/object/area": tw.float_feature(objects["area"]),
    }
    if include_masks:
        features["image/object/mask"] = tw.bytes_feature(objects["mask"])
    return tw.example(features)


def label_map_pbtxt(categories: dict[int, str]) -> str:
    """The Object Detection API's `label_map.pbtxt` text for `{id: name}`."""
    return "".join(
        f'item {{\n  id: {i}\n  name: "{name}"\n}}\n'
        for i, name in sorted(categories.items())
    )


def convert_coco(
    annotations_file: str,
    image_dir: str,
    output_dir: str,
    prefix: str = "train",
    num_shards: int = 8,
    include_masks: bool = True,
    seed: int = 0,
    num_workers: int = 1,
    progress: bool = False,
) -> dict:
    """Converts a COCO split; returns the summary (also written as JSON)."""
    import tensorflow as tf

    from official.datasets import tfrecord_writer as tw
    from official.datasets.image_files import (
        UnreadableImageError,
        load_image_file,
        map_with_progress,
    )

    with tf.io.gfile.GFile(annotations_file) as f:
        coco = json.load(f)
    for key in ("images", "annotations", "categories"):
        if key not in coco:
            raise ValueError(
                f"{annotations_file} is not a COCO instances file: no {key!r} key. "
                f"Keys found: {sorted(coco)}."
            )
    categories = {int(c["id"]): c["name"] for c in coco["categories"]}
    by_image = collections.defaultdict(list)
    for ann in coco["annotations"]:
        by_image[ann["image_id"]].append(ann)
    images = sorted(coco["images"], key=lambda info: info["id"])
    random.Random(seed).shuffle(images)

    def load(info):
        image = load_image_file(os.path.join(image_dir, info["file_name"]))
        if (image.height, image.width) != (info["height"], info["width"]):
            raise UnreadableImageError(
                f"{info['file_name']}: image is {image.height}x{image.width}, the "
                f"annotations say {info['height']}x{info['width']}"
            )
        objects, skipped = _objects(
            info, by_image[info["id"]], categories, include_masks
        )
        return image, objects, skipped

    skipped_images, num_objects, skipped_boxes, crowd = [], 0, 0, 0
    with tw.ShardedTFRecordWriter(output_dir, prefix, num_shards) as writer:
        for info, result in map_with_progress(
            load, images, num_workers, progress, prefix
        ):
            if isinstance(result, UnreadableImageError):
                skipped_images.append(
                    {"file_name": info["file_name"], "reason": str(result)}
                )
                continue
            image, objects, skipped = result
            skipped_boxes += skipped
            num_objects += len(objects["label"])
            crowd += sum(objects["is_crowd"])
            writer.write(_example(info, image, objects, include_masks))
    with tf.io.gfile.GFile(os.path.join(output_dir, "label_map.pbtxt"), "w") as f:
        f.write(label_map_pbtxt(categories))
    summary = {
        "annotations_file": annotations_file,
        "output_dir": output_dir,
        "files": writer.paths,
        "examples_per_shard": writer.counts,
        "num_written": writer.num_examples,
        "num_objects": num_objects,
        "num_crowd_objects": crowd,
        "num_skipped_boxes": skipped_boxes,
        "masks": include_masks,
        "skipped": skipped_images,
    }
    tw.write_summary(output_dir, prefix, summary)
    return summary


def format_summary(summary: dict) -> str:
    lines = [
        f"Wrote {summary['num_written']} images with {summary['num_objects']} objects "
        f"({summary['num_crowd_objects']} crowd) to {len(summary['files'])} shards in "
        f"{summary['output_dir']} (per shard: {summary['examples_per_shard']}).",
        f"Skipped boxes (empty or outside the image): {summary['num_skipped_boxes']}.",
        f"Skipped images: {len(summary['skipped'])}.",
    ]
    lines += [f"  {entry['reason']}" for entry in summary["skipped"]]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from tools.tool_flags import parse_flags, run_and_report

    required = ("annotations_file", "image_dir", "output_dir")
    exit_code = parse_flags(FLAGS, argv, __doc__, required=required)
    if exit_code is not None:
        return exit_code
    return run_and_report(
        lambda: convert_coco(
            FLAGS.annotations_file,
            FLAGS.image_dir,
            FLAGS.output_dir,
            FLAGS.prefix,
            FLAGS.num_shards,
            FLAGS.include_masks,
            FLAGS.seed,
            FLAGS.num_workers,
            FLAGS.progress,
        ),
        format_summary,
    )


if __name__ == "__main__":
    # Run from a checkout without installing: make `official` importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv))
