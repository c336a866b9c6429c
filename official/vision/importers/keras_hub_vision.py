"""Imports keras-hub vision presets into Garden's backbones (the `hub` extra).

A keras-hub preset directory (`config.json` + `model.weights.h5`, as
`Backbone.save_to_preset` writes it) is loaded with keras-hub itself and its
variables are mapped onto the Garden backbone by structure: each Garden
layer is paired with the keras-hub layer that plays the same part, and their
weights are zipped in the layers' own order with the weight names checked.
Nothing is matched by shape or guessed.

Supported (outputs equal within float32 rounding):

- `vit`: `keras_hub.models.ViTBackbone` into Garden's `ViT` (square power-of-two
  patch, biases everywhere, `use_class_token` <-> `pooling="token"`, the same
  `layer_norm_epsilon`, exact GELU, the same input size).
- `resnet`: `keras_hub.models.ResNetBackbone` v1 (`basic_block` /
  `bottleneck_block`, no pre-activation) into Garden's `ResNet` with
  `padding="symmetric"` and `norm_epsilon=1e-5`. keras-hub's v1 strides on
  the 3x3 convolution, as Garden's v1.5 does, but pads like PyTorch: every
  strided convolution and the stem pool zero-pad `(k - 1) // 2` on every
  side, where "same" puts the odd pixel after the image for even sizes.

Refused, with the reason (`REFUSALS`): keras-hub's ResNet v2 (pre-activation)
and vd variants, `EfficientNetBackbone` and `MobileNetBackbone` (symmetric
padding of their depthwise convolutions, which Garden's inverted bottlenecks
do not offer).
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np

from official.vision.importers import keras_hub_mappings as mappings
from official.vision.importers.restore_report import RestoreReport, WeightImportError
from official.vision.importers.source_models import split_model

INSTALL_HINT = 'pip install -e ".[hub]"'
ARCHITECTURES = {"ViTBackbone": "vit", "ResNetBackbone": "resnet"}
_SIZE_PARAMS = {
    "vit": "hidden_size, num_layers, num_heads, mlp_dim",
    "resnet": "model_id, width_multiplier",
}
_MAPPINGS = {
    "vit": (mappings.check_vit, mappings.vit_pairs),
    "resnet": (mappings.check_resnet, mappings.resnet_pairs),
}
_PADDING_REASON = (
    "pads every strided depthwise convolution symmetrically, PyTorch style "
    "(ZeroPadding2D(k // 2) then 'valid'), where Garden's inverted bottlenecks "
    "pad 'same', which for even sizes puts the odd pixel after the image: every "
    "strided window moves by one pixel and every output changes (Garden's "
    "padding='symmetric' exists for ResNet only)."
)
REFUSALS = {
    "EfficientNetBackbone": (
        "keras-hub's EfficientNetBackbone cannot be imported into Garden's "
        "EfficientNet: its stem and blocks "
        + _PADDING_REASON
        + " Its batch-norm epsilon is 1e-5 (Garden: norm_epsilon) and its V2 "
        "variants use fused MBConv blocks, which Garden's EfficientNet lacks. "
        "keras.applications' EfficientNet B0-B7 import exactly "
        "(--source=keras_applications)."
    ),
    "MobileNetBackbone": (
        "keras-hub's MobileNetBackbone (MobileNetV3 blocks) cannot be imported "
        "into Garden's MobileNet: its stem and blocks "
        + _PADDING_REASON
        + " keras.applications' MobileNetV2 imports exactly "
        "(--source=keras_applications)."
    ),
}


class KerasHubMissingError(ImportError):
    """keras-hub is not installed; the message names the `hub` extra."""


def require_keras_hub():
    """The `keras_hub` module, or `KerasHubMissingError` naming the extra."""
    try:
        import keras_hub
    except ImportError as e:
        raise KerasHubMissingError(
            "Importing keras-hub presets needs keras-hub, which is not installed "
            f"({e}). Install Garden's `hub` extra: {INSTALL_HINT}"
        ) from None
    return keras_hub


def read_preset_config(preset_dir: str) -> dict:
    """The backbone entry of a preset's `config.json`, checked for its files.

    Raises:
        FileNotFoundError: no such directory, or no `config.json` or
            `model.weights.h5` in it.
        WeightImportError: `config.json` is not a keras-hub backbone config.
    """
    preset_dir = os.fspath(preset_dir)
    if not os.path.isdir(preset_dir):
        raise FileNotFoundError(
            f"No keras-hub preset directory at {preset_dir!r} (a folder holding "
            "config.json and model.weights.h5, as Backbone.save_to_preset writes)."
        )
    for name in ("config.json", "model.weights.h5"):
        if not os.path.isfile(os.path.join(preset_dir, name)):
            raise FileNotFoundError(
                f"The keras-hub preset {preset_dir!r} has no {name}; found: "
                f"{', '.join(sorted(os.listdir(preset_dir))) or 'nothing'}."
            )
    with open(os.path.join(preset_dir, "config.json")) as f:
        try:
            config = json.load(f)
        except json.JSONDecodeError as e:
            raise WeightImportError(
                f"{preset_dir}/config.json is not JSON: {e}."
            ) from None
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise WeightImportError(
            f"{preset_dir}/config.json is not a keras-hub backbone config (no "
            "'config' object)."
        )
    return config


def _class_name(config: dict) -> str:
    registered = str(config.get("registered_name") or config.get("class_name", ""))
    return registered.split(">")[-1]


def detect_architecture(class_name: str) -> str:
    """The architecture key of a keras-hub backbone class name.

    Raises:
        WeightImportError: a refused backbone (`REFUSALS`, with the reason)
            or any other class.
    """
    if class_name in ARCHITECTURES:
        return ARCHITECTURES[class_name]
    if class_name in REFUSALS:
        raise WeightImportError(REFUSALS[class_name])
    raise WeightImportError(
        f"keras-hub backbone {class_name or '(unnamed)'!r} has no Garden "
        f"counterpart. Supported: {', '.join(ARCHITECTURES)}; refused with a "
        f"reason: {', '.join(REFUSALS)}."
    )


def load_preset(preset_dir: str) -> keras.Model:
    """The keras-hub backbone of a preset directory, weights loaded.

    The architecture is checked from `config.json` first, so a refused one
    fails before anything is built.

    Raises:
        KerasHubMissingError: keras-hub is not installed.
        FileNotFoundError, WeightImportError: see `read_preset_config` and
            `detect_architecture`.
    """
    detect_architecture(_class_name(read_preset_config(preset_dir)))
    keras_hub = require_keras_hub()
    return keras_hub.models.Backbone.from_preset(os.fspath(preset_dir))


def import_keras_hub_preset(
    preset_or_backbone, garden_model_or_backbone: keras.Model
) -> RestoreReport:
    """Copies a keras-hub preset's backbone weights into a Garden model.

    Every Garden backbone variable must receive a value and every source
    weight must be used, otherwise nothing is assigned. A keras-hub backbone
    preset holds no classifier: a Garden `ImageClassifier`'s head is reported
    missing and keeps its initial values.

    Args:
        preset_or_backbone: a keras-hub preset directory (path) or an already
            built keras-hub backbone (e.g. from `load_preset`).
        garden_model_or_backbone: an `ImageClassifier` or a bare Garden
            backbone whose architecture matches the source.

    Returns:
        `RestoreReport`: every variable matched, missing, skipped by shape,
        every unused source weight, and notes for fine-tuning.

    Raises:
        KerasHubMissingError: keras-hub is not installed.
        WeightImportError: a refused architecture (`REFUSALS`), a Garden
            configuration whose outputs would differ, or weights that do not
            fit (with `.report`).
        FileNotFoundError: no preset at the path.

    Example:
    ```python
    import keras_hub
    from official.vision.backbones.vit import ViT
    from official.vision.importers.keras_hub_vision import import_keras_hub_preset

    source = keras_hub.models.ViTBackbone(
        image_shape=(16, 16, 3), patch_size=8, num_layers=1, num_heads=2,
        hidden_dim=8, mlp_dim=16)
    garden = ViT("ti16", patch_size=8, hidden_size=8, num_layers=1, num_heads=2,
                 mlp_dim=16, input_shape=(16, 16, 3))
    report = import_keras_hub_preset(source, garden)
    assert not report.missing and not report.unused and len(report.matched) == 22
    ```
    """
    if isinstance(preset_or_backbone, keras.Model):
        source_model = preset_or_backbone
        label = f"keras-hub model {source_model.name!r}"
    else:
        label = os.fspath(preset_or_backbone)
        source_model = load_preset(label)
    architecture = detect_architecture(type(source_model).__name__)
    backbone, head = split_model(garden_model_or_backbone)
    check, pair = _MAPPINGS[architecture]
    check(source_model, backbone)
    report = RestoreReport(label, f"keras_hub_{architecture}")
    pairs, report.missing = pair(source_model, backbone)
    fatal = [path for path, _ in report.missing]
    assignments, used = [], set()
    for garden_var, source_var in pairs:
        used.add(id(source_var))
        value = np.asarray(keras.ops.convert_to_numpy(source_var))
        if tuple(value.shape) != tuple(garden_var.shape):
            report.skipped_by_shape.append(
                (
                    garden_var.path,
                    source_var.path,
                    tuple(garden_var.shape),
                    tuple(value.shape),
                )
            )
            fatal.append(garden_var.path)
        else:
            report.matched.append(
                (garden_var.path, source_var.path, tuple(value.shape))
            )
            assignments.append((garden_var, value))
    for variable in source_model.weights:
        if id(variable) not in used:
            report.unused.append(
                (
                    variable.path,
                    "no Garden variable maps to it: the architectures differ",
                )
            )
            fatal.append(variable.path)
    if head is not None:
        for variable in head.weights:
            report.missing.append(
                (variable.path, "a keras-hub backbone preset holds no classifier")
            )
        report.notes.append(
            "The classifier was not imported (a backbone preset has none): "
            "fine-tune with trainer.init_checkpoint_modules=backbone, or train "
            "the new head."
        )
    report.notes.append(
        "keras-hub applies its preprocessing (the preset's image converter: "
        "resizing and scaling) outside the backbone; Garden normalizes with the "
        "ImageNet mean and stddev in its input pipeline. Check the preset's "
        "preprocessor.json before fine-tuning."
    )
    if fatal:
        raise WeightImportError(
            f"The keras-hub {architecture} does not fit the Garden backbone (check "
            f"its size params: {_SIZE_PARAMS[architecture]}): "
            f"{', '.join(fatal[:8])}{' ...' if len(fatal) > 8 else ''}.\n"
            + report.summary(),
            report,
        )
    for variable, value in assignments:
        variable.assign(value.astype(variable.dtype))
    return report


def compare_outputs(
    source_model: keras.Model, garden_model: keras.Model, images: np.ndarray
) -> tuple[float, float, str]:
    """Runs both backbones on `images` (inference); the largest difference.

    ViT: the keras-hub backbone returns the normalized token sequence; the
    Garden ViT's pooled class token (none with "gap") and its patch-token
    feature map are put back in that order ("tokens"). ResNet: the feature
    maps of every level, keras-hub's `pyramid_outputs` P2-P5 against Garden's
    "2"-"5" ("feature maps").

    Returns:
        (max absolute difference, max absolute reference value, what was
        compared).
    """
    backbone, _ = split_model(garden_model)
    features = backbone(images, training=False)
    if detect_architecture(type(source_model).__name__) == "resnet":
        levels = sorted(source_model.pyramid_outputs)
        pyramid = keras.Model(
            source_model.input, [source_model.pyramid_outputs[k] for k in levels]
        )
        reference = pyramid(images, training=False)
        candidate = [features[k[1:]] for k in levels]
        compared = "feature maps"
    else:
        level = next(key for key in features if key != "pooled")
        patches = np.asarray(features[level])
        tokens = patches.reshape(patches.shape[0], -1, patches.shape[-1])
        if backbone.pooling == "token":
            pooled = np.asarray(features["pooled"])[:, None]
            tokens = np.concatenate([pooled, tokens], axis=1)
        reference, candidate = [source_model(images, training=False)], [tokens]
        compared = "tokens"
    gap = scale = 0.0
    for ref, cand in zip(reference, candidate):
        ref, cand = np.asarray(ref, np.float64), np.asarray(cand, np.float64)
        gap = max(gap, float(np.max(np.abs(ref - cand))))
        scale = max(scale, float(np.max(np.abs(ref))))
    return gap, scale, compared
