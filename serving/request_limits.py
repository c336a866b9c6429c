"""Per-request limits the model server checks before it allocates anything.

Two limits, each a server flag (`serving/server.py`) with a safe default:

- `--max_tensor_elements` (default 64 Mi = 67,108,864): the elements of all
  input tensors of one request together, counted from the declared shapes
  before a gRPC `TensorProto` becomes an array (a 46-byte TensorProto may
  declare `[1, 20000, 20000, 3]` with no values, which `tf.make_ndarray`
  would fill) and before a REST JSON array is converted. The product is
  computed with early exit, so `[2**40, 32, 32, 3]` is refused without
  ever being multiplied out.
- `--max_image_pixels` (default 40,000,000): the width x height an encoded
  image in a DT_STRING input (REST `{"b64": ...}`, gRPC string tensors, the
  bytes features of Classify / Regress / MultiInference examples) declares
  in its header (`serving/image_header.py`), checked before the model
  decodes it. A 1.1 MB PNG can declare 20000 x 20000 pixels (1.2 GB
  decoded). Garden's exported `image_bytes` and `tf_example` signatures
  check the same inside the graph (`serving.export --max_image_pixels`).

0 turns a limit off. A request over a limit is INVALID_ARGUMENT (REST 400)
with a message naming the input, the limit and the flag.

Imports only numpy and the standard library.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np

from serving.image_header import image_size
from serving.serving_error import invalid

DEFAULT_MAX_TENSOR_ELEMENTS = 1 << 26
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000


def declared_elements(dims: Sequence[int], cap: int) -> int:
    """The product of `dims`, or `cap + 1` as soon as it exceeds `cap`.

    Every dim must be >= 0 (the caller checks). Exact for any product up to
    `cap`; never builds a number much larger than `cap`.
    """
    if 0 in dims:
        return 0
    count = 1
    for dim in dims:
        count *= dim
        if count > cap:
            return cap + 1
    return count


class ElementBudget:
    """The tensor elements one request may still declare."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0

    def take(self, dims: Sequence[int], field: str) -> None:
        """Counts an input of shape `dims`; INVALID_ARGUMENT past the limit."""
        dims = [int(d) for d in dims]
        if any(d < 0 for d in dims):
            raise invalid(f"{field}: the shape {dims} has a negative dimension.")
        if not self.limit:
            return
        left = self.limit - self.used
        count = declared_elements(dims, left)
        if count > left:
            shown = dims if len(dims) <= 8 else [*dims[:8], "..."]
            taken = f" ({self.used} taken by other inputs)" if self.used else ""
            raise invalid(
                f"{field}: shape {shown} is over the limit of {self.limit} tensor "
                f"elements per request{taken}; the server flag "
                f"--max_tensor_elements sets it."
            )
        self.used += count


@dataclasses.dataclass(frozen=True)
class RequestLimits:
    """The server's per-request limits (see the module docstring); 0: off."""

    max_tensor_elements: int = DEFAULT_MAX_TENSOR_ELEMENTS
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"--{field.name} must be an integer >= 0 (0: no limit). "
                    f"Received: {value!r}."
                )

    def budget(self) -> ElementBudget:
        return ElementBudget(self.max_tensor_elements)

    def check_image(self, data: bytes, field: str) -> None:
        """INVALID_ARGUMENT when `data`'s header declares too many pixels."""
        if not self.max_image_pixels:
            return
        size = image_size(data)
        if size is None:
            return
        kind, width, height = size
        if width * height > self.max_image_pixels:
            raise invalid(
                f"{field}: the {kind} image declares {width}x{height} = "
                f"{width * height} pixels, over the limit of "
                f"{self.max_image_pixels} decoded pixels per image; the server "
                f"flag --max_image_pixels sets it."
            )

    def check_strings(self, arrays: dict[str, np.ndarray], field: str) -> None:
        """Checks every encoded image in the DT_STRING arrays of a request."""
        if not self.max_image_pixels:
            return
        for key, array in arrays.items():
            if array.dtype != object and array.dtype.kind != "S":
                continue
            for index, item in enumerate(array.reshape(-1)):
                if isinstance(item, bytes):
                    self.check_image(item, f"{field}[{key!r}][{index}]")

    def check_examples(self, examples: Iterable, field: str) -> None:
        """Checks the images in the bytes features of `tf.train.Example`s."""
        if not self.max_image_pixels:
            return
        for index, example in enumerate(examples):
            for name, feature in example.features.feature.items():
                for data in feature.bytes_list.value:
                    self.check_image(data, f"{field}[{index}][{name!r}]")
