"""LoRA adapters with Keras' own `enable_lora`: select, save, load, merge.

Keras 3 Dense, EinsumDense and Conv1D/2D/3D layers have
`enable_lora(rank, lora_alpha)`: the layer keeps its kernel (made
non-trainable) and adds `lora_kernel_a` and `lora_kernel_b`; its `kernel`
property then returns `kernel + (alpha / rank) * a @ b`, which every call
uses. Here the layers are picked by patterns over their kernels' paths, the
adapters alone are written to (and read from) a small `.npz` file keyed by
variable path, and `merge` folds them into the kernels for export.

Example:
```python
import keras
import numpy as np
from official.core import lora

model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="head")])
layers = lora.enable(model, rank=2, alpha=4.0)
[v.name for v in model.trainable_variables]  # -> ['lora_kernel_a', 'lora_kernel_b']
lora.merge(model)  # the kernel now includes (4 / 2) * a @ b
```
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from official.core import variable_paths as paths_lib

# The layers with Keras' `enable_lora` whose adapters `merge` can fold in.
LORA_LAYERS = (
    keras.layers.Dense,
    keras.layers.EinsumDense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
)
ADAPTER_NAMES = ("lora_kernel_a", "lora_kernel_b")
# Kernels LoRA adapts: float (None) and Keras' int8 (`model.quantize("int8")`,
# whose layers add the float adapters' product to the int8 matmul's output).
LORA_QUANTIZATION_MODES = (None, "int8")
ADAPTERS_FILE = "lora_adapters.npz"
_META_KEY = "__lora__"


def is_adapter(path: str) -> bool:
    """Whether a variable path names a LoRA adapter."""
    return path.rsplit("/", 1)[-1] in ADAPTER_NAMES


def enable(
    model: keras.Model,
    rank: int,
    alpha: float = 0.0,
    target_patterns: Sequence[str] = (),
    exclude_patterns: Sequence[str] = (),
) -> list[keras.layers.Layer]:
    """Enables LoRA on the model's layers whose kernel path matches.

    Args:
        model: a built Keras model.
        rank: int > 0, the adapters' rank.
        alpha: float, the scale is `alpha / rank`; 0 means `alpha` = `rank`.
        target_patterns: regexes searched in each candidate layer's kernel
            path; empty selects every Dense, EinsumDense and Conv1D/2D/3D
            layer. Each pattern must select at least one layer.
        exclude_patterns: regexes of kernel paths left without LoRA (those
            that train whole, such as a new head).

    Returns:
        The layers LoRA was enabled on, in model order.
    """
    paths = {id(v): p for p, v in paths_lib.variable_paths(model).items()}
    candidates = []
    for layer in paths_lib.all_layers(model):
        if isinstance(layer, LORA_LAYERS) and not layer.lora_enabled:
            if not layer.built:
                raise ValueError(
                    f"LoRA needs built layers; {layer.name!r} is not built. Build "
                    f"the model (call it on an input) before trainer.finetune.lora."
                )
            candidates.append((paths[id(layer.kernel)], layer))
    if not candidates:
        raise ValueError(
            "trainer.finetune.lora: the model has no Dense, EinsumDense or "
            "Conv1D/2D/3D layer to adapt."
        )
    for pattern in target_patterns:
        if not any(re.search(pattern, path) for path, _ in candidates):
            raise ValueError(
                f"trainer.finetune.lora.target_patterns: {pattern!r} matches no "
                f"adaptable kernel. Kernels: {_some([p for p, _ in candidates])}."
            )
    chosen = [
        layer
        for path, layer in candidates
        if (not target_patterns or any(re.search(p, path) for p in target_patterns))
        and not any(re.search(p, path) for p in exclude_patterns)
    ]
    if not chosen:
        raise ValueError(
            "trainer.finetune.lora: no layer left to adapt after "
            f"trainable_patterns {list(exclude_patterns)}."
        )
    for layer in chosen:
        if layer.quantization_mode not in LORA_QUANTIZATION_MODES:
            raise ValueError(
                f"trainer.finetune.lora: layer {layer.name!r} is quantized "
                f"({layer.quantization_mode}); LoRA adapts float or int8 kernels "
                "only. Exclude it with trainable_patterns or target_patterns."
            )
        layer.enable_lora(rank, lora_alpha=alpha or None)
    return chosen


def adapter_variables(model: keras.Model) -> dict[str, keras.Variable]:
    """`{path: variable}` of every LoRA adapter in the model."""
    return {
        path: v
        for path, v in paths_lib.variable_paths(model).items()
        if is_adapter(path)
    }


def save_adapters(model: keras.Model, path: str, metadata: dict | None = None) -> str:
    """Writes the adapters alone to `path` (.npz, keyed by variable path).

    The file is written beside `path` and renamed into place, so a reader
    never sees half of it. `metadata` (JSON-able: rank, alpha, step) is
    stored with it. Returns `path`.
    """
    adapters = adapter_variables(model)
    if not adapters:
        raise ValueError("save_adapters: the model has no LoRA adapters.")
    arrays = {
        name: np.asarray(keras.ops.convert_to_numpy(v)) for name, v in adapters.items()
    }
    arrays[_META_KEY] = np.asarray(json.dumps(metadata or {}))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    temporary = f"{path}.tmp-{os.getpid()}"
    with tf.io.gfile.GFile(temporary, "wb") as f:
        f.write(buffer.getvalue())
    tf.io.gfile.rename(temporary, path, overwrite=True)
    return path


def read_adapters(path: str) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and the metadata of an adapters file."""
    with tf.io.gfile.GFile(path, "rb") as f:
        data = np.load(io.BytesIO(f.read()), allow_pickle=False)
        arrays = {k: data[k] for k in data.files if k != _META_KEY}
        metadata = json.loads(str(data[_META_KEY])) if _META_KEY in data.files else {}
    return arrays, metadata


def load_adapters(model: keras.Model, path: str) -> dict:
    """Assigns the adapters in `path` to the model's (LoRA already enabled).

    Every adapter of the model must be in the file and every array of the
    file must fit an adapter, with the same shape; otherwise a `ValueError`
    names the difference. Returns the file's metadata.
    """
    arrays, metadata = read_adapters(path)
    adapters = adapter_variables(model)
    missing = sorted(set(adapters) - set(arrays))
    extra = sorted(set(arrays) - set(adapters))
    if missing or extra:
        raise ValueError(
            f"LoRA adapters in {path!r} do not fit the model: missing from the "
            f"file {_some(missing)}; in the file but not in the model "
            f"{_some(extra)}. Enable LoRA with the same rank and targets first."
        )
    for name, variable in adapters.items():
        if tuple(arrays[name].shape) != tuple(variable.shape):
            raise ValueError(
                f"LoRA adapter {name!r}: shape {tuple(arrays[name].shape)} in "
                f"{path!r}, {tuple(variable.shape)} in the model (another rank?)."
            )
    for name, variable in adapters.items():
        variable.assign(arrays[name])
    return metadata


def merge(model: keras.Model) -> int:
    """Folds every layer's adapters into its kernel and turns LoRA off.

    Afterwards each layer computes with `kernel + (alpha / rank) * a @ b`
    (Keras' own formula, in float32) stored in the kernel itself, so an
    export runs no adapter matmul; the adapter variables stay, unused.
    A quantized (int8) layer keeps its adapters, which its call adds to the
    int8 product: its kernel cannot hold the float sum. Returns the number
    of layers merged.
    """
    merged = 0
    for layer in paths_lib.all_layers(model):
        if not (isinstance(layer, LORA_LAYERS) and layer.lora_enabled):
            continue
        if layer.quantization_mode:
            continue
        base = getattr(layer, "_kernel", None)
        if base is None:  # Keras keeps the base kernel in `_kernel`.
            raise RuntimeError(
                f"Cannot merge LoRA into {layer.name!r}: Keras {keras.__version__} "
                f"has no `_kernel` on {type(layer).__name__}."
            )
        # Keras' formula, in float32 (its `kernel` property would round to
        # the compute dtype under mixed precision).
        delta = (layer.lora_alpha / layer.lora_rank) * keras.ops.matmul(
            layer.lora_kernel_a, layer.lora_kernel_b
        )
        merged_kernel = keras.ops.add(keras.ops.cast(base, "float32"), delta)
        base.assign(keras.ops.cast(merged_kernel, base.dtype))
        layer.lora_enabled = False
        merged += 1
    return merged


def checkpoint_adapters(prefix: str) -> list[str]:
    """Names of the LoRA adapter values stored in a checkpoint."""
    return [
        name
        for name, _ in tf.train.list_variables(prefix)
        if any(f"/{a}/" in name for a in ADAPTER_NAMES)
    ]


def _some(names: Sequence[str], limit: int = 8) -> str:
    names = list(names)
    if not names:
        return "(none)"
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
