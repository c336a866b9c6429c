"""An int8 base with LoRA adapters as one float model, for its keras-hub preset.

A LoRA run on an int8 base (`task.model.quantize=int8`) computes, in each
adapted layer, the int8 matmul (int8 kernel, per-channel scales, inputs
quantized per token) plus the float adapters' product. No keras-hub preset
stores that: `save_to_preset` folds the adapters into the kernel and
quantizes the sum again, so every kernel entry whose change is under half a
quantization step rounds back to the base and most of the fine-tuning is
lost (on the tiny test model the greedy tokens of half the prompts change).

`float_merged_lm` builds the same architecture unquantized and gives each
int8 layer its dequantized kernel plus the adapters' delta
(`kernel / scale + (alpha / rank) * a @ b`, Keras' own formula) and each
int8 embedding its dequantized table; every other variable is copied. The
float model keeps the whole fine-tuning; it differs from the trained model
only in that its matmuls do not round their inputs to int8 (load it with
`task.model.quantize=int8` to quantize it again). The SavedModel of such a
run keeps the int8 kernels and the adapters unmerged, so it computes exactly
what was trained.

Example:
```python
import warnings

import keras_hub
import numpy as np
from official.core import lora
from official.llm.export import float_merge

def tiny():
    return keras_hub.models.GPT2CausalLM(keras_hub.models.GPT2Backbone(
        vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=16))

int8 = tiny()
with warnings.catch_warnings():  # about the layers Keras does not quantize
    warnings.simplefilter("ignore")
    int8.backbone.quantize("int8")
lora.enable(int8, rank=2, alpha=4.0, target_patterns=["transformer_layer"])
len(float_merge.int8_lora_layers(int8))  # -> 6 (q, k, v, output, 2 dense)
merged = float_merge.float_weights_into(int8, tiny())
ids = {"token_ids": np.ones((1, 4), "int32"), "padding_mask": np.ones((1, 4))}
gap = np.abs(np.asarray(merged(ids)) - np.asarray(int8(ids))).max()
# gap: small, the int8 model's rounding of its matmul inputs
```
"""

from __future__ import annotations

import keras

from official.core import variable_paths as paths_lib


def _layer_path(paths: dict[int, str], variable) -> str:
    return paths[id(variable)].rsplit("/", 1)[0]


def int8_lora_layers(lm) -> list[str]:
    """Paths of the layers holding int8 weights and LoRA adapters."""
    paths = {id(v): p for p, v in paths_lib.variable_paths(lm).items()}
    return [
        _layer_path(paths, layer.lora_kernel_a)
        for layer in paths_lib.all_layers(lm)
        if getattr(layer, "quantization_mode", None) == "int8"
        and getattr(layer, "lora_enabled", False)
        and hasattr(layer, "lora_kernel_a")
    ]


def _dequantized(layer, where: str) -> dict[str, object]:
    """`{variable name: float value}` of an int8 layer's quantized weights."""
    mode = layer.quantization_mode
    if mode != "int8":
        raise ValueError(
            f"Cannot write a float preset: layer {where!r} is quantized as "
            f"{mode!r}; only int8 weights are dequantized."
        )
    if isinstance(layer, keras.layers.Embedding):
        if layer.lora_enabled:
            raise ValueError(
                f"Cannot write a float preset: embedding {where!r} has LoRA "
                f"adapters; only Dense and EinsumDense adapters are merged."
            )
        out = {
            "embeddings": keras.ops.cast(layer._embeddings, "float32")
            / keras.ops.expand_dims(layer.embeddings_scale, -1)
        }
        if getattr(layer, "reverse_embeddings_scale", None) is not None:
            out["reverse_embeddings"] = keras.ops.cast(
                layer.reverse_embeddings, "float32"
            ) / keras.ops.expand_dims(layer.reverse_embeddings_scale, 0)
        return out
    if not isinstance(layer, (keras.layers.Dense, keras.layers.EinsumDense)):
        raise ValueError(
            f"Cannot write a float preset: int8 layer {where!r} is a "
            f"{type(layer).__name__}; Dense, EinsumDense and embeddings are "
            f"dequantized."
        )
    scale = layer.kernel_scale
    if isinstance(layer, keras.layers.EinsumDense):
        # Keras stores an EinsumDense scale in the layout of its matmul.
        scale = layer._adjust_scale_for_dequant(scale)
    kernel = keras.ops.cast(layer._kernel, "float32") / scale
    if layer.lora_enabled:
        kernel = kernel + (layer.lora_alpha / layer.lora_rank) * keras.ops.matmul(
            layer.lora_kernel_a, layer.lora_kernel_b
        )
    return {"kernel": kernel}


def _backbone_only(lm, which: str):
    inside = {id(v) for v in lm.backbone.weights}
    outside = [v.path for v in lm.weights if id(v) not in inside]
    if outside:
        raise ValueError(
            f"The {which} causal LM has weights outside its backbone "
            f"({outside[:4]}); only backbone weights are dequantized."
        )
    return lm.backbone


def float_weights_into(int8_lm, float_lm):
    """Assigns `int8_lm`'s weights, dequantized and merged, to `float_lm`.

    `float_lm` is the same architecture built unquantized (and built); the
    two backbones' variables are matched by path below the backbone.
    Returns `float_lm`.
    """
    int8_paths = paths_lib.variable_paths(_backbone_only(int8_lm, "int8"))
    by_variable = {id(v): p for p, v in int8_paths.items()}
    dequantized = {}
    for layer in paths_lib.all_layers(int8_lm.backbone):
        if getattr(layer, "quantization_mode", None) and layer.built:
            where = _layer_path(by_variable, layer.weights[0])
            for name, value in _dequantized(layer, where).items():
                dequantized[f"{where}/{name}"] = value
    float_paths = paths_lib.variable_paths(_backbone_only(float_lm, "float"))
    missing = sorted(set(float_paths) - set(int8_paths))
    if missing:
        raise ValueError(
            f"The float model has variables the int8 model lacks: {missing[:4]}; "
            f"build both from the same config."
        )
    for path, variable in float_paths.items():
        value = dequantized.get(path, int8_paths[path])
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"{path}: shape {tuple(value.shape)} in the int8 model, "
                f"{tuple(variable.shape)} in the float model."
            )
        if path not in dequantized and int8_paths[path].dtype == "int8":
            raise ValueError(f"{path}: an int8 variable with no dequantization.")
        variable.assign(keras.ops.cast(value, variable.dtype))
    return float_lm
