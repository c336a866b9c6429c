"""An image folder of circles, squares and stripes: "your own images" for tests.

Writes PNGs in the class-per-directory layout that `input_format=image_folder`
and the `image_folder` experiment read:

    DIR/train/circles/0000.png ... DIR/train/stripes/0059.png
    DIR/validation/circles/0000.png ... DIR/validation/stripes/0019.png

Each image has a random light background color with a little pixel noise.
A circle or a square (a random darker color, size and position) is drawn on
it, or stripes (random darker color, period, phase and one of four
directions) fill it: an easy set, like a first folder of one's own. Colors
carry no class information. Generation is deterministic for a `seed`; the validation
images come from their own stream, so they differ from the training ones.

Run:

    python -m official.datasets.shape_folder --output_dir=data/shapes_folder

Example:
```python
import os, tempfile
from official.datasets import shape_folder

root = tempfile.mkdtemp()
counts = shape_folder.write_shape_folder(root, num_train=2, num_validation=1, image_size=16)
assert counts == {"train": 6, "validation": 3}
assert sorted(os.listdir(os.path.join(root, "train"))) == ["circles", "squares", "stripes"]
image = shape_folder.draw(shape_folder.CLASS_NAMES.index("stripes"), 16, seed=0)
assert image.shape == (16, 16, 3) and image.dtype.name == "uint8"
```
"""

from __future__ import annotations

import os

import numpy as np

CLASS_NAMES = ("circles", "squares", "stripes")
# Separate seed streams per split, so validation images are new ones.
_SPLIT_STREAMS = {"train": 0, "validation": 1}


def _background(rng: np.random.Generator) -> np.ndarray:
    """A light color: every channel in [170, 255]."""
    return rng.integers(170, 256, 3).astype(np.float32)


def _foreground(rng: np.random.Generator) -> np.ndarray:
    """A darker color: every channel in [0, 150]."""
    return rng.integers(0, 151, 3).astype(np.float32)


def draw(class_index: int, image_size: int, seed: int | None = None, rng=None):
    """One `[image_size, image_size, 3]` uint8 image of class `class_index`.

    Args:
        class_index: position in `CLASS_NAMES`.
        image_size: side of the square image, in pixels.
        seed: seed of a new generator (ignored when `rng` is given).
        rng: a `numpy.random.Generator` to draw from.
    """
    rng = rng if rng is not None else np.random.default_rng(seed)
    size = image_size
    background = _background(rng)
    color = _foreground(rng)
    ys, xs = np.mgrid[0:size, 0:size] + 0.5  # Pixel centers.
    name = CLASS_NAMES[class_index]
    if name == "stripes":
        direction = rng.integers(4)  # Horizontal, vertical, two diagonals.
        along = (ys, xs, (ys + xs) / np.sqrt(2), (ys - xs) / np.sqrt(2))[direction]
        period = rng.uniform(0.12, 0.25) * size
        phase = rng.uniform(0, period)
        mask = ((along + phase) % period) < period / 2
    else:
        half = rng.uniform(0.22, 0.38) * size  # Radius or half side.
        cy, cx = rng.uniform(half, size - half, 2)
        if name == "circles":
            mask = (ys - cy) ** 2 + (xs - cx) ** 2 <= half**2
        else:
            mask = (np.abs(ys - cy) <= half) & (np.abs(xs - cx) <= half)
    image = np.where(mask[..., None], color, background)
    image = image + rng.normal(0, 6, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def write_shape_folder(
    output_dir: str,
    num_train: int = 60,
    num_validation: int = 20,
    image_size: int = 64,
    seed: int = 0,
) -> dict[str, int]:
    """Writes `output_dir/{train,validation}/<class>/NNNN.png`.

    Args:
        output_dir: the folder to write into (created; existing files with
            the same names are overwritten).
        num_train: training images per class.
        num_validation: validation images per class.
        image_size: side of the square images, in pixels.
        seed: generator seed; the same seed writes the same images.

    Returns:
        The number of images written per split.
    """
    from PIL import Image

    if min(num_train, num_validation) < 1 or image_size < 8:
        raise ValueError(
            "num_train and num_validation must be >= 1 and image_size >= 8. "
            f"Received: num_train={num_train}, num_validation={num_validation}, "
            f"image_size={image_size}."
        )
    counts = {}
    for split, per_class in (("train", num_train), ("validation", num_validation)):
        rng = np.random.default_rng([seed, _SPLIT_STREAMS[split]])
        for class_index, name in enumerate(CLASS_NAMES):
            class_dir = os.path.join(output_dir, split, name)
            os.makedirs(class_dir, exist_ok=True)
            for i in range(per_class):
                image = draw(class_index, image_size, rng=rng)
                Image.fromarray(image).save(os.path.join(class_dir, f"{i:04d}.png"))
        counts[split] = per_class * len(CLASS_NAMES)
    return counts


def main(argv: list[str]) -> None:
    """Writes the folder named by the flags and prints what it wrote."""
    del argv
    from absl import flags

    fv = flags.FLAGS
    counts = write_shape_folder(
        fv.output_dir, fv.num_train, fv.num_validation, fv.image_size, fv.seed
    )
    for split, count in counts.items():
        print(
            f"{os.path.join(fv.output_dir, split)}: {count} images, "
            f"classes {', '.join(CLASS_NAMES)}"
        )


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string(
        "output_dir", None, "Folder to write train/ and validation/ into."
    )
    flags.DEFINE_integer("num_train", 60, "Training images per class.")
    flags.DEFINE_integer("num_validation", 20, "Validation images per class.")
    flags.DEFINE_integer("image_size", 64, "Side of the square images, in pixels.")
    flags.DEFINE_integer("seed", 0, "Generator seed.")
    flags.mark_flag_as_required("output_dir")
    app.run(main)
