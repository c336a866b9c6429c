"""Pascal VOC layout (images + class masks) -> segmentation TFRecords.

    python tools/convert_voc_segmentation.py --voc_root=/data/VOC2012 \\
      --split=train --output_dir=/data/voc/tfrecords --num_shards=4

Layout read (VOC2012; other datasets in the same layout work too):
`VOC_ROOT/ImageSets/Segmentation/SPLIT.txt` lists image ids;
`VOC_ROOT/JPEGImages/ID.jpg` are the images; `VOC_ROOT/SegmentationClass/ID.png`
the masks, whose pixel values are class indices (255 = boundary / ignore).
Palette ("P") and grayscale masks are read as indices; RGB masks are mapped
back through the VOC color map (a color outside it skips the image).

Features: `image/encoded`, `image/format`, `image/height`, `image/width`,
`image/filename`, `image/source_id` (the id),
`image/segmentation/class/encoded` (single-channel PNG of class indices),
`image/segmentation/class/format` ("png"). Images with a missing or
unreadable file, or whose mask size differs from the image, are skipped and
listed in `summary-PREFIX.json`, which also counts the images containing each
class index.
"""

from __future__ import annotations

import collections
import io
import os
import random
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "voc_root",
    None,
    "Folder with JPEGImages/, SegmentationClass/, ImageSets/.",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "split",
    "train",
    "Split listed in ImageSets/Segmentation/SPLIT.txt.",
    flag_values=FLAGS,
)
flags.DEFINE_string("output_dir", None, "Folder for the TFRecords.", flag_values=FLAGS)
flags.DEFINE_string(
    "prefix", None, "File name prefix; defaults to the split.", flag_values=FLAGS
)
flags.DEFINE_integer("num_shards", 4, "Number of TFRecord files.", flag_values=FLAGS)
flags.DEFINE_string(
    "image_subdir", "JPEGImages", "Images folder under voc_root.", flag_values=FLAGS
)
flags.DEFINE_string(
    "mask_subdir",
    "SegmentationClass",
    "Masks folder under voc_root.",
    flag_values=FLAGS,
)
flags.DEFINE_integer("seed", 0, "Seed of the example order.", flag_values=FLAGS)
flags.DEFINE_integer(
    "num_workers", os.cpu_count() or 1, "Threads decoding images.", flag_values=FLAGS
)
flags.DEFINE_boolean("progress", True, "Show a progress bar.", flag_values=FLAGS)

_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def voc_colormap():
    """The 256 x 3 uint8 Pascal VOC palette (index -> RGB)."""
    import numpy as np

    colormap = np.zeros((256, 3), np.uint8)
    for index in range(256):
        r = g = b = 0
        c = index
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colormap[index] = (r, g, b)
    return colormap


def read_mask(path: str):
    """A VOC mask file -> uint8 `[height, width]` class indices.

    Raises:
        UnreadableImageError: missing, unreadable, or RGB colors outside the
            VOC palette.
    """
    import numpy as np
    import tensorflow as tf
    from PIL import Image

    from official.datasets.image_files import UnreadableImageError

    if not tf.io.gfile.exists(path):
        raise UnreadableImageError(f"{path}: mask file missing")
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            image = Image.open(io.BytesIO(f.read()))
            image.load()
    except (OSError, ValueError, SyntaxError) as e:
        raise UnreadableImageError(f"{path}: not a readable mask ({e})") from None
    if image.mode in ("P", "L"):
        return np.asarray(image, np.uint8)
    rgb = np.asarray(image.convert("RGB"), np.uint8)
    colors = voc_colormap().astype(np.int32)
    codes = (colors[:, 0] << 16) | (colors[:, 1] << 8) | colors[:, 2]
    lookup = {int(code): index for index, code in enumerate(codes)}
    pixels = rgb.astype(np.int32)
    pixel_codes = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    unique = np.unique(pixel_codes)
    unknown = [int(u) for u in unique if int(u) not in lookup]
    if unknown:
        shown = ", ".join(f"#{u:06x}" for u in unknown[:5])
        raise UnreadableImageError(
            f"{path}: RGB colors outside the VOC palette: {shown}"
        )
    table = np.zeros(unique.max() + 1, np.uint8)
    for u in unique:
        table[u] = lookup[int(u)]
    return table[pixel_codes]


def _find_image(directory: str, image_id: str) -> str:
    import tensorflow as tf

    for extension in _IMAGE_EXTENSIONS:
        path = os.path.join(directory, image_id + extension)
        if tf.io.gfile.exists(path):
            return path
    return os.path.join(directory, image_id + ".jpg")


def convert_voc_segmentation(
    voc_root: str,
    split: str,
    output_dir: str,
    prefix: str | None = None,
    num_shards: int = 4,
    image_subdir: str = "JPEGImages",
    mask_subdir: str = "SegmentationClass",
    seed: int = 0,
    num_workers: int = 1,
    progress: bool = False,
) -> dict:
    """Converts one VOC segmentation split; returns the summary (also JSON)."""
    import numpy as np
    import tensorflow as tf

    from official.datasets import tfrecord_writer as tw
    from official.datasets.image_files import (
        UnreadableImageError,
        load_image_file,
        map_with_progress,
    )

    sets_dir = os.path.join(voc_root, "ImageSets", "Segmentation")
    list_file = os.path.join(sets_dir, f"{split}.txt")
    if not tf.io.gfile.exists(list_file):
        available = (
            sorted(n[:-4] for n in tf.io.gfile.listdir(sets_dir) if n.endswith(".txt"))
            if tf.io.gfile.isdir(sets_dir)
            else []
        )
        raise FileNotFoundError(
            f"Split list {list_file} not found. Splits available: "
            f"{', '.join(available) or 'none (is voc_root the VOC folder?)'}."
        )
    with tf.io.gfile.GFile(list_file) as f:
        ids = [line.strip() for line in f if line.strip()]
    random.Random(seed).shuffle(ids)
    image_dir = os.path.join(voc_root, image_subdir)
    mask_dir = os.path.join(voc_root, mask_subdir)

    def load(image_id):
        image = load_image_file(_find_image(image_dir, image_id))
        mask = read_mask(os.path.join(mask_dir, image_id + ".png"))
        if mask.shape != (image.height, image.width):
            raise UnreadableImageError(
                f"{image_id}: mask is {mask.shape[0]}x{mask.shape[1]}, the image "
                f"{image.height}x{image.width}"
            )
        return image, mask

    skipped = []
    images_per_class = collections.Counter()
    prefix = prefix or split
    with tw.ShardedTFRecordWriter(output_dir, prefix, num_shards) as writer:
        for image_id, result in map_with_progress(
            load, ids, num_workers, progress, prefix
        ):
            if isinstance(result, UnreadableImageError):
                skipped.append({"id": image_id, "reason": str(result)})
                continue
            image, mask = result
            images_per_class.update(int(v) for v in np.unique(mask))
            writer.write(
                tw.example(
                    {
                        "image/encoded": tw.bytes_feature(image.data),
                        "image/format": tw.bytes_feature(image.format),
                        "image/height": tw.int64_feature(image.height),
                        "image/width": tw.int64_feature(image.width),
                        "image/filename": tw.bytes_feature(
                            f"{image_id}.{image.format}"
                        ),
                        "image/source_id": tw.bytes_feature(image_id),
                        "image/segmentation/class/encoded": tw.bytes_feature(
                            tf.io.encode_png(mask[:, :, None]).numpy()
                        ),
                        "image/segmentation/class/format": tw.bytes_feature("png"),
                    }
                )
            )
    summary = {
        "voc_root": voc_root,
        "split": split,
        "output_dir": output_dir,
        "files": writer.paths,
        "examples_per_shard": writer.counts,
        "num_written": writer.num_examples,
        "images_per_class_index": {
            str(k): v for k, v in sorted(images_per_class.items())
        },
        "skipped": skipped,
    }
    tw.write_summary(output_dir, prefix, summary)
    return summary


def format_summary(summary: dict) -> str:
    lines = [
        f"Wrote {summary['num_written']} images of split {summary['split']!r} to "
        f"{len(summary['files'])} shards in {summary['output_dir']} "
        f"(per shard: {summary['examples_per_shard']}).",
        f"Images per class index: {summary['images_per_class_index']}.",
        f"Skipped: {len(summary['skipped'])}.",
    ]
    lines += [f"  {entry['reason']}" for entry in summary["skipped"]]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from tools.tool_flags import parse_flags, run_and_report

    exit_code = parse_flags(FLAGS, argv, __doc__, required=("voc_root", "output_dir"))
    if exit_code is not None:
        return exit_code
    return run_and_report(
        lambda: convert_voc_segmentation(
            FLAGS.voc_root,
            FLAGS.split,
            FLAGS.output_dir,
            FLAGS.prefix,
            FLAGS.num_shards,
            FLAGS.image_subdir,
            FLAGS.mask_subdir,
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
