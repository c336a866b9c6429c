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
    """Returns the sorted files matched by comma-separated glob patterns.

    Args:
        input_path: one glob pattern, or several separated by commas.

    Returns:
        The sorted, de-duplicated list of matched files.

    Raises:
        FileNotFoundError: a pattern matches no file (the message names it).
    """
    files: set[str] = set()
    for pattern in _require_patterns(input_path):
        matched = tf.io.gfile.glob(pattern)
        if not matched:
            raise FileNotFoundError(
                f"input_path pattern {pattern!r} matches no file. Check the path, "
                "or write the data first (e.g. `python -m official.datasets.digits "
                "--output_dir=DIR` for the default digits data)."
            )
        files.update(matched)
    return sorted(files)


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
