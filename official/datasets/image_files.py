"""Reading image files for TFRecords: check they decode, keep or re-encode.

`load_image_file` decodes every file completely with Pillow (a truncated or
corrupt file fails here, not in training). JPEGs in RGB or grayscale and
PNGs are kept byte for byte; anything else (CMYK JPEG, BMP, GIF, WebP, a
".jpg" that is really another format) is converted to an RGB JPEG
(quality 95) and marked `converted`.

Example:
```python
import io, os, tempfile
import numpy as np
from PIL import Image
from official.datasets.image_files import UnreadableImageError, load_image_file

folder = tempfile.mkdtemp()
good, bad = os.path.join(folder, "a.png"), os.path.join(folder, "b.jpg")
Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(good)
open(bad, "wb").write(b"not an image")
image = load_image_file(good)
assert (image.format, image.height, image.width, image.converted) == ("png", 4, 6, False)
try:
    load_image_file(bad)
except UnreadableImageError as e:
    assert "b.jpg" in str(e)
```
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import io
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import tensorflow as tf

T = TypeVar("T")

# Items processed ahead of the consumer, per worker thread.
_CHUNK_PER_WORKER = 32


class UnreadableImageError(ValueError):
    """A file that is missing or does not decode as an image; names the file."""


@dataclasses.dataclass(frozen=True)
class EncodedImage:
    """Image bytes ready for `image/encoded`.

    Attributes:
        data: JPEG or PNG bytes.
        format: "jpeg" or "png".
        height: pixels.
        width: pixels.
        converted: True when the original was re-encoded as JPEG.
    """

    data: bytes
    format: str
    height: int
    width: int
    converted: bool


def load_image_file(path: str) -> EncodedImage:
    """Reads and fully decodes an image file; see the module docstring.

    Raises:
        UnreadableImageError: missing, truncated, corrupt or not an image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
    except tf.errors.OpError as e:
        raise UnreadableImageError(f"{path}: cannot read ({e.message})") from None
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            kind, mode, (width, height) = image.format, image.mode, image.size
            if kind == "JPEG" and mode in ("RGB", "L"):
                return EncodedImage(data, "jpeg", height, width, converted=False)
            if kind == "PNG":
                return EncodedImage(data, "png", height, width, converted=False)
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=95)
    except UnidentifiedImageError:
        raise UnreadableImageError(
            f"{path}: not an image (unknown format, {len(data)} bytes)"
        ) from None
    except (OSError, ValueError, SyntaxError) as e:
        # Pillow raises OSError (truncated, unidentified), ValueError and,
        # for some malformed headers, SyntaxError.
        raise UnreadableImageError(f"{path}: not a readable image ({e})") from None
    return EncodedImage(buffer.getvalue(), "jpeg", height, width, converted=True)


def map_with_progress(
    fn: Callable[[T], Any],
    items: Sequence[T],
    num_workers: int,
    progress: bool,
    desc: str,
) -> Iterator[tuple[T, Any]]:
    """Yields `(item, fn(item))` in order, computed by `num_workers` threads.

    An `UnreadableImageError` raised by `fn` is yielded as the result instead
    of stopping the run. A tqdm progress bar (on stderr) counts the items
    when `progress` is True. Pillow and TensorFlow release the GIL while
    decoding, so threads decode in parallel.
    """
    from tqdm import tqdm  # A dependency of tensorflow-datasets.

    def safe(item):
        try:
            return fn(item)
        except UnreadableImageError as e:
            return e

    workers = max(num_workers, 1)
    chunk = workers * _CHUNK_PER_WORKER
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        with tqdm(total=len(items), desc=desc, unit="img", disable=not progress) as bar:
            for start in range(0, len(items), chunk):
                part = items[start : start + chunk]
                for item, result in zip(part, pool.map(safe, part)):
                    bar.update(1)
                    yield item, result
