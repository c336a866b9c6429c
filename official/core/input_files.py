"""What an `input_path` names: TFRecord files, image folders, and their shards.

`input_path` is one pattern or several separated by commas. With
`input_format="tfrecord"` each pattern is a glob of TFRecord files; with
`input_format="image_folder"` each is a directory whose subdirectories are
the classes (`DIR/cat/1.jpg`, `DIR/dog/2.png`): labels are the positions of
the class names in the sorted union of all directories' class names, so
several folders mixed together agree on them.

Example:
```python
import os, tempfile
from official.core import input_files

root = tempfile.mkdtemp()
for name in ("dog/a.jpg", "cat/b.png", "cat/notes.txt"):
    os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
    open(os.path.join(root, name), "wb").close()
folder = input_files.list_image_folders([root])[0]
assert folder.class_names == ["cat", "dog"]
assert [os.path.basename(p) for p in folder.paths] == ["b.png", "a.jpg"]
assert folder.labels == [0, 1] and len(folder.skipped) == 1
```
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence

import tensorflow as tf

from official.base.config import ConfigError

# DataConfig.input_format values.
INPUT_FORMATS = ("tfrecord", "image_folder")
# DataConfig.auto_shard_policy values and the tf.data policy each stands for
# when the dataset is handed to `strategy.experimental_distribute_dataset`.
AUTO_SHARD_POLICIES = ("auto", "file", "data", "off")
TF_AUTO_SHARD_POLICIES = {
    "auto": tf.data.experimental.AutoShardPolicy.AUTO,
    "file": tf.data.experimental.AutoShardPolicy.FILE,
    "data": tf.data.experimental.AutoShardPolicy.DATA,
    "off": tf.data.experimental.AutoShardPolicy.OFF,
}
# Image files an image folder source reads (compared lower-case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

_SERVICE_ADDRESS = re.compile(r"^(\w+://)?[^\s:/]+:\d+$")


def is_service_address(address: str) -> bool:
    """True for `host:port` or `protocol://host:port`."""
    return bool(_SERVICE_ADDRESS.match(address))


def split_patterns(input_path: str) -> list[str]:
    """The comma-separated patterns of `input_path`, stripped, empty ones dropped."""
    return [p.strip() for p in input_path.split(",") if p.strip()]


def _require_patterns(input_path: str) -> list[str]:
    patterns = split_patterns(input_path)
    if not patterns:
        raise ValueError(
            f"input_path has no file pattern. Received: input_path={input_path!r}. "
            "Example: input_path=/data/train-*.tfrecord"
        )
    return patterns


def match_files(input_path: str) -> list[str]:
    """Returns the sorted TFRecord files matched by comma-separated glob patterns.

    Every matched path is checked before any is read: a directory, or a file
    whose first bytes are not a TFRecord record header (a JSON summary, a
    labels.txt, an image), is an error naming it, instead of a `DataLossError`
    deep inside the first training step.

    Args:
        input_path: one glob pattern, or several separated by commas.

    Returns:
        The sorted, de-duplicated list of matched files.

    Raises:
        FileNotFoundError: a pattern matches no file (the message names it).
        ConfigError: a pattern matches a directory or a non-TFRecord file (the
            message names it and the pattern; for a directory with class
            sub-folders it suggests `input_format=image_folder`).
    """
    files: dict[str, str] = {}
    for pattern in _require_patterns(input_path):
        matched = tf.io.gfile.glob(pattern)
        if not matched:
            raise FileNotFoundError(
                f"input_path pattern {pattern!r} matches no file. Check the path, "
                "or write the data first (e.g. `python -m official.datasets.digits "
                "--output_dir=DIR` for the default digits data)."
            )
        for path in matched:
            files.setdefault(path, pattern)
    for path, pattern in sorted(files.items()):
        check_tfrecord_file(path, pattern)
    return sorted(files)


def check_tfrecord_file(path: str, pattern: str = "") -> None:
    """Raises ConfigError unless `path` is a file that starts like a TFRecord file.

    Reads the first 12 bytes: a record's uint64 length and the masked CRC-32C
    of those 8 bytes. An empty file (no records) passes.
    """
    matched = f"input_path pattern {pattern!r} matches" if pattern else "input_path has"
    if tf.io.gfile.isdir(path):
        raise ConfigError(f"{matched} the directory {path!r}: {_directory_hint(path)}")
    with tf.io.gfile.GFile(path, "rb") as f:
        header = f.read(12)
    if not header:
        return
    if len(header) < 12 or _masked_crc32c(header[:8]) != int.from_bytes(
        header[8:], "little"
    ):
        raise ConfigError(
            f"{matched} {path!r}, which is not a TFRecord file (its first bytes are "
            f"not a record header: {header[:12]!r}). Narrow the pattern to the "
            "shards, e.g. DIR/validation-*.tfrecord, or move the file elsewhere."
        )


def _directory_hint(path: str) -> str:
    subdirs = [
        name.rstrip("/")
        for name in sorted(tf.io.gfile.listdir(path))
        if tf.io.gfile.isdir(os.path.join(path, name))
    ]
    # Class sub-folders hold images; look into a few only.
    classes = [
        name
        for name in subdirs[:3]
        if any(
            f.lower().endswith(IMAGE_EXTENSIONS)
            for f in tf.io.gfile.listdir(os.path.join(path, name))
        )
    ]
    if classes:
        classes = subdirs
        shown = ", ".join(classes[:5]) + (", ..." if len(classes) > 5 else "")
        return (
            f"with input_format=tfrecord, input_path names TFRecord files. It holds "
            f"class sub-folders ({shown}): to read it as an image folder, set "
            "input_format=image_folder on that split (e.g. --params_override="
            "task.train_data.input_format=image_folder), or convert it with "
            "tools/convert_image_folder.py."
        )
    return (
        "with input_format=tfrecord, input_path names TFRecord files, not "
        f"directories. Use a glob of its shards, e.g. {path.rstrip('/')}/train-*."
    )


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def _masked_crc32c(data: bytes) -> int:
    """The masked CRC-32C (Castagnoli) TFRecord writes after each length."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


@dataclasses.dataclass(frozen=True)
class ImageFolder:
    """The images of one class-per-directory folder.

    Attributes:
        directory: the folder.
        class_names: sorted class names (shared by folders listed together).
        paths: image files, sorted by class then file name.
        labels: the class index of each path.
        skipped: files under the class directories that are not images.
    """

    directory: str
    class_names: list[str]
    paths: list[str]
    labels: list[int]
    skipped: list[str]


def _class_dirs(directory: str) -> list[str]:
    if not tf.io.gfile.isdir(directory):
        raise FileNotFoundError(
            f"Image folder {directory!r} is not a directory. With "
            "input_format=image_folder, input_path names directories whose "
            "subdirectories are the classes (DIR/cat/1.jpg, DIR/dog/2.png)."
        )
    names = sorted(
        name.rstrip("/")
        for name in tf.io.gfile.listdir(directory)
        if tf.io.gfile.isdir(os.path.join(directory, name))
    )
    if not names:
        raise FileNotFoundError(
            f"Image folder {directory!r} has no class subdirectories; expected "
            "DIR/<class name>/<image>.jpg."
        )
    return names


def list_image_folders(directories: Sequence[str]) -> list[ImageFolder]:
    """Lists class-per-directory image folders with one shared label map.

    Args:
        directories: folders whose subdirectories are the classes.

    Returns:
        One `ImageFolder` per directory; labels index the sorted union of
        every folder's class names.

    Raises:
        FileNotFoundError: a directory is missing, has no class
            subdirectories or holds no image (the message names it).
    """
    per_dir = {d: _class_dirs(d) for d in directories}
    class_names = sorted(set().union(*per_dir.values()))
    index = {name: i for i, name in enumerate(class_names)}
    folders = []
    for directory, names in per_dir.items():
        paths, labels, skipped = [], [], []
        for name in names:
            class_dir = os.path.join(directory, name)
            for file_name in sorted(tf.io.gfile.listdir(class_dir)):
                path = os.path.join(class_dir, file_name)
                if tf.io.gfile.isdir(path):
                    skipped.append(path)
                elif file_name.lower().endswith(IMAGE_EXTENSIONS):
                    paths.append(path)
                    labels.append(index[name])
                else:
                    skipped.append(path)
        if not paths:
            raise FileNotFoundError(
                f"Image folder {directory!r} holds no image "
                f"({', '.join(IMAGE_EXTENSIONS)}) in its class directories."
            )
        folders.append(ImageFolder(directory, class_names, paths, labels, skipped))
    return folders


def shard_files(
    files: list,
    num_pipelines: int,
    pipeline_id: int,
    policy: str,
) -> tuple[list, bool]:
    """Chooses how input pipeline `pipeline_id` of `num_pipelines` splits data.

    Args:
        files: the sorted files (or any list of per-file items).
        num_pipelines: number of input pipelines (workers).
        pipeline_id: this pipeline's index.
        policy: an `AUTO_SHARD_POLICIES` value.

    Returns:
        `(files to read, shard_records)`: with `shard_records` True every
        pipeline reads all files in the same order and keeps every
        `num_pipelines`-th record.

    Raises:
        ValueError: policy `file` with fewer files than pipelines.
    """
    if num_pipelines <= 1 or policy == "off":
        return files, False
    if policy == "data":
        return files, True
    if len(files) >= num_pipelines:
        return files[pipeline_id::num_pipelines], False
    if policy == "file":
        raise too_few_files_error(len(files), num_pipelines)
    return files, True


def too_few_files_error(num_files: int, num_pipelines: int) -> ValueError:
    """The error of `auto_shard_policy=file` with fewer files than pipelines."""
    return ValueError(
        f"auto_shard_policy=file needs at least one file per input pipeline: "
        f"{num_files} file(s) for {num_pipelines} pipelines. Write more files, "
        "or use auto_shard_policy=data (or auto) to shard by records."
    )


def image_folder_records(
    items: Sequence[tuple[str, int]],
    shuffle: bool,
    seed: int | None,
    deterministic: bool,
) -> tf.data.Dataset:
    """`((path, 0), record)` per image; the files are read in parallel.

    Args:
        items: `(path, label)` pairs.
        shuffle: shuffle the order of the paths, anew every epoch.
        seed: seed of that shuffle, or None.
        deterministic: keep the order of the parallel reads.

    Returns:
        A dataset of `((path, 0), {"image/encoded": file bytes,
        "image/class/label": int64, "image/filename": path})`: each image is
        record 0 of its own file.
    """
    if not items:
        raise ValueError(
            "No image for this input pipeline: the image folder has fewer images "
            "than there are input pipelines."
        )
    paths, labels = zip(*items)
    dataset = tf.data.Dataset.from_tensor_slices(
        (list(paths), tf.constant(labels, tf.int64))
    )
    if shuffle:
        dataset = dataset.shuffle(len(items), seed=seed)

    def read(path, label):
        record = {
            "image/encoded": tf.io.read_file(path),
            "image/class/label": label,
            "image/filename": path,
        }
        return (path, tf.constant(0, tf.int64)), record

    return dataset.map(
        read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
    )
