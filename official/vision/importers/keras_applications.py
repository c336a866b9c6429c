"""Imports keras.applications weights into Garden's MobileNetV2 and EfficientNet.

Variables are mapped by structure: for each Garden layer a table names the
keras.applications layer (by the fixed names keras.applications gives them)
and the kind of weights it holds; weights are read in the layer's own order.
Nothing is matched by shape or guessed. Supported:

- `mobilenet_v2`: `keras.applications.MobileNetV2(alpha=a)` into
  `MobileNet("MobileNetV2", width_multiplier=a)`.
- `efficientnet`: `keras.applications.EfficientNetB0` ... `B7` into
  `EfficientNet("b0")` ... `("b7")`.

Both match keras.applications' outputs exactly at inference: every
convolution is bias-free with batch normalization (epsilon 1e-3), Garden's
"same" padding of a strided convolution pads as keras' `ZeroPadding2D(
correct_pad(...))` + "valid" does for a model built with a fixed input size,
and the squeeze-excitation 1x1 convolutions become Garden's dense layers (same
numbers, kernel `(1, 1, C, S)` reshaped to `(C, S)`). keras.applications'
`ResNet50/101/152` are refused (`RESNET_REFUSAL`): they are ResNet v1, which
Garden's ResNet (v1.5) cannot express.
"""

from __future__ import annotations

import os
import re
import warnings

import keras
import numpy as np

from official.vision.backbones.efficientnet import EfficientNet
from official.vision.backbones.mobilenet import MobileNet
from official.vision.backbones.resnet import ResNet
from official.vision.importers.restore_report import RestoreReport, WeightImportError
from official.vision.importers.source_models import build_source_model, split_model
from official.vision.importers.weight_sources import (
    LayerWeights,
    classifier_units,
    is_keras3_weights_file,
    read_weights_file,
    weights_of_model,
)

ARCHITECTURES = ("mobilenet_v2", "efficientnet")
KERAS_NORM_EPSILON = 1e-3
RESNET_REFUSAL = (
    "keras.applications' ResNet50/101/152 cannot be imported into Garden's "
    "ResNet: they are ResNet v1, which strides on the first 1x1 convolution "
    "of each downsampling bottleneck, where Garden's ResNet (v1.5) strides on "
    "the 3x3 convolution, and their stem pads explicitly (ZeroPadding2D(3) "
    "before the 7x7/2 convolution, ZeroPadding2D(1) before the 3x3/2 max "
    "pool), where Garden's 'same' padding pads (2, 3) and (0, 1). Either "
    "difference changes every output. (Their convolution biases alone could "
    "be folded into the batch-norm moving means.) Train Garden's ResNet or "
    "import MobileNetV2 / EfficientNet instead."
)
# Weight names in a layer, in the order Keras keeps them.
_ROLES = {
    "conv": ("kernel",),
    "bn": ("gamma", "beta", "moving_mean", "moving_variance"),
    "dense": ("kernel", "bias"),
}
_PREPROCESSING = re.compile(r"normalization(_\d+)?")
_MOBILENET_V2_PREPROCESSING = (
    "keras.applications' MobileNetV2 expects pixels scaled to [-1, 1] "
    "(mobilenet_v2.preprocess_input); Garden's input pipeline normalizes with "
    "the ImageNet mean and stddev (normalize_image), a slightly different input "
    "distribution to fine-tune from."
)


def detect_architecture(weights: LayerWeights) -> str:
    """The architecture key of keras.applications weights, from layer names.

    Raises:
        WeightImportError: for ResNet (`RESNET_REFUSAL`) or any other model.
    """
    names = set(weights)
    if {"Conv1", "expanded_conv_depthwise"} <= names:
        return "mobilenet_v2"
    if {"stem_conv", "block1a_dwconv"} <= names:
        return "efficientnet"
    if "conv1_conv" in names and any(n.startswith("conv2_block1_") for n in names):
        raise WeightImportError(RESNET_REFUSAL)
    shown = ", ".join(sorted(names)[:6])
    raise WeightImportError(
        "Not keras.applications weights of a supported architecture "
        f"({', '.join(ARCHITECTURES)}): no MobileNetV2 ('Conv1', "
        "'expanded_conv_depthwise') or EfficientNet ('stem_conv', "
        f"'block1a_dwconv') layers. First layers found: {shown}."
    )


def _conv_norm(layer, conv: str, bn: str) -> list:
    return [(layer.conv, conv, "conv"), (layer.norm, bn, "bn")]


def _blocks(backbone: keras.Model, pattern: str) -> list:
    return [layer for layer in backbone.layers if re.fullmatch(pattern, layer.name)]


def _mobilenet_v2_pairs(backbone: MobileNet) -> list:
    pairs = _conv_norm(backbone.get_layer("stem_conv"), "Conv1", "bn_Conv1")
    for block in _blocks(backbone, r"block\d+"):
        index = int(block.name[len("block") :])
        prefix = f"block_{index}_" if index else "expanded_conv_"
        if block.expand is not None:
            pairs += _conv_norm(block.expand, prefix + "expand", prefix + "expand_BN")
        pairs += [
            (block.depthwise, prefix + "depthwise", "conv"),
            (block.depthwise_norm, prefix + "depthwise_BN", "bn"),
        ]
        pairs += _conv_norm(block.project, prefix + "project", prefix + "project_BN")
    return pairs + _conv_norm(backbone.get_layer("top_conv"), "Conv_1", "Conv_1_bn")


def _efficientnet_pairs(backbone: EfficientNet) -> list:
    pairs = _conv_norm(backbone.get_layer("stem_conv"), "stem_conv", "stem_bn")
    for block in _blocks(backbone, r"stage\d+_block\d+"):
        stage, index = re.fullmatch(r"stage(\d+)_block(\d+)", block.name).groups()
        prefix = f"block{stage}{chr(96 + int(index))}_"
        if block.expand is not None:
            pairs += _conv_norm(
                block.expand, prefix + "expand_conv", prefix + "expand_bn"
            )
        pairs += [
            (block.depthwise, prefix + "dwconv", "conv"),
            (block.depthwise_norm, prefix + "bn", "bn"),
            (block.squeeze_excite.squeeze, prefix + "se_reduce", "dense"),
            (block.squeeze_excite.excite, prefix + "se_expand", "dense"),
        ]
        pairs += _conv_norm(
            block.project, prefix + "project_conv", prefix + "project_bn"
        )
    return pairs + _conv_norm(backbone.get_layer("top_conv"), "top_conv", "top_bn")


def _check_backbone(backbone: keras.Model, architecture: str) -> list[str]:
    """Refuses Garden configurations whose inference outputs would differ."""
    if isinstance(backbone, ResNet):
        raise WeightImportError(RESNET_REFUSAL)
    wanted = MobileNet if architecture == "mobilenet_v2" else EfficientNet
    if not isinstance(backbone, wanted):
        raise WeightImportError(
            f"keras.applications {architecture} weights need a Garden "
            f"{wanted.__name__} backbone. Received: {type(backbone).__name__}."
        )
    if architecture == "mobilenet_v2" and backbone.model_id != "MobileNetV2":
        raise WeightImportError(
            "keras.applications MobileNetV2 weights need "
            f"MobileNet(model_id='MobileNetV2'). Received: model_id={backbone.model_id!r}."
        )
    if not np.isclose(backbone.norm_epsilon, KERAS_NORM_EPSILON, rtol=0, atol=1e-12):
        raise WeightImportError(
            f"keras.applications uses batch-norm epsilon {KERAS_NORM_EPSILON}; the "
            f"Garden backbone has norm_epsilon={backbone.norm_epsilon!r}, which "
            "changes every output. Set backbone params norm_epsilon=0.001."
        )
    if architecture == "mobilenet_v2":
        notes = [_MOBILENET_V2_PREPROCESSING]
        if backbone.norm_momentum != 0.999:
            notes.append(
                "keras.applications' MobileNetV2 trains with batch-norm momentum "
                f"0.999; this backbone has norm_momentum={backbone.norm_momentum} "
                "(training only; outputs are unchanged)."
            )
        return notes
    return []


def _architecture_of(backbone: keras.Model) -> str:
    if isinstance(backbone, ResNet):
        raise WeightImportError(RESNET_REFUSAL)
    if isinstance(backbone, (MobileNet, EfficientNet)):
        return "mobilenet_v2" if isinstance(backbone, MobileNet) else "efficientnet"
    raise WeightImportError(
        "keras.applications weights import into Garden's MobileNet "
        f"(MobileNetV2) or EfficientNet. Received: {type(backbone).__name__}."
    )


def _read_file(path: str, garden_model: keras.Model, architecture) -> LayerWeights:
    """Layer name -> weights of a legacy `.h5` or a Keras 3 `.weights.h5`.

    A Keras 3 file names no layer (see `weight_sources`): it is loaded into
    the keras.applications model the Garden backbone corresponds to.
    """
    if not is_keras3_weights_file(path):
        return read_weights_file(path)
    architecture = architecture or _architecture_of(split_model(garden_model)[0])
    _check_backbone(split_model(garden_model)[0], architecture)
    template = build_source_model(architecture, garden_model, classifier_units(path))
    try:
        with warnings.catch_warnings():
            # Keras warns per layer group before a mismatch fails; the error
            # below says it once.
            warnings.filterwarnings("ignore", message="Skipping nested container")
            template.load_weights(path)
    except ValueError as e:
        raise WeightImportError(
            f"{path!r} does not fit keras.applications' {template.name} built "
            "from the Garden backbone's config (check width_multiplier / "
            f"model_id, and the architecture): {e}"
        ) from None
    return weights_of_model(template)


def _role(weight_name: str) -> str:
    role = weight_name.split("/")[-1].split(":")[0]
    return "kernel" if role == "depthwise_kernel" else role


def _unused_reason(layer: str, has_head: bool) -> tuple[str, bool]:
    """(why a source layer is unused, whether that is acceptable)."""
    if _PREPROCESSING.fullmatch(layer):
        return (
            "input preprocessing inside the keras model; Garden normalizes in its "
            "input pipeline",
            True,
        )
    if layer == "predictions" and not has_head:
        return "the classifier; the Garden target is a backbone", True
    return "no Garden layer maps to it: the architectures differ", False


def import_keras_application(
    source_model_or_path, garden_model_or_backbone: keras.Model, architecture=None
) -> RestoreReport:
    """Copies keras.applications weights into a Garden classifier or backbone.

    Every Garden backbone variable must receive a value and every source
    backbone weight must be used, otherwise nothing is assigned. The
    classifier is imported when both sides have one with the same number of
    classes; otherwise the head is reported missing or skipped by shape and
    keeps its initial values (fine-tuning on other classes).

    Args:
        source_model_or_path: a keras.applications `keras.Model`, or the path
            of its weights: `.weights.h5` (Keras 3 `save_weights`) or a legacy
            `.h5` (Keras 2, e.g. the published ImageNet files).
        garden_model_or_backbone: an `ImageClassifier` or a bare backbone
            (`MobileNet("MobileNetV2", ...)` or `EfficientNet(...)`), whose
            width and depth match the source, with `norm_epsilon=1e-3`.
        architecture: "mobilenet_v2", "efficientnet" or None (detected from
            the source's layer names; when given, it must agree).

    Returns:
        `RestoreReport` listing every variable matched, missing, skipped by
        shape, every unused source weight, and notes for fine-tuning.

    Raises:
        WeightImportError: an unsupported or refused architecture (ResNet:
            `RESNET_REFUSAL`), a Garden configuration that would change the
            outputs, or a backbone that does not fit (with `.report`).
        FileNotFoundError, ValueError: an unreadable weights file.

    Example:
    ```python
    import keras
    from official.vision.backbones.mobilenet import MobileNet
    from official.vision.importers.keras_applications import import_keras_application

    source = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None)
    backbone = MobileNet("MobileNetV2", width_multiplier=0.35, input_shape=(32, 32, 3))
    report = import_keras_application(source, backbone)
    assert not report.missing and not report.skipped_by_shape
    ```
    """
    if isinstance(source_model_or_path, keras.Model):
        weights = weights_of_model(source_model_or_path)
        source = f"keras model {source_model_or_path.name!r}"
    else:
        source = os.fspath(source_model_or_path)
        weights = _read_file(source, garden_model_or_backbone, architecture)
    detected = detect_architecture(weights)
    if architecture is not None and architecture != detected:
        raise WeightImportError(
            f"architecture={architecture!r}, but the source holds {detected} weights."
        )
    backbone, head = split_model(garden_model_or_backbone)
    report = RestoreReport(source, detected, notes=_check_backbone(backbone, detected))
    pairs = [
        (layer, name, kind, True)
        for layer, name, kind in (
            _mobilenet_v2_pairs(backbone)
            if detected == "mobilenet_v2"
            else _efficientnet_pairs(backbone)
        )
    ]
    if head is not None:
        if head.pre_logits is not None:
            raise WeightImportError(
                "The Garden head has a pre-logits layer; keras.applications' has none."
            )
        pairs.append((head.dense, "predictions", "dense", False))
    assignments, used, fatal = [], set(), []
    for layer, name, kind, in_backbone in pairs:
        found = weights.get(name, [])
        for j, role in enumerate(_ROLES[kind]):
            variable = getattr(layer, role)
            garden_path = variable.path
            if j >= len(found):
                why = (
                    f"the source has no layer {name!r}"
                    if not found
                    else f"{name!r} has no {role}"
                )
                report.missing.append((garden_path, why))
                fatal += [garden_path] if in_backbone else []
                continue
            weight_name, value = found[j]
            if weight_name is not None and _role(weight_name) != role:
                raise WeightImportError(
                    f"Source weight {j} of {name!r} is {weight_name!r}, expected {role!r}."
                )
            used.add((name, j))
            if value.ndim == 4 and kind == "dense" and value.shape[:2] == (1, 1):
                value = value.reshape(value.shape[2:])  # 1x1 convolution -> dense
            source_path = f"{name}/{role}"
            if tuple(value.shape) != tuple(variable.shape):
                report.skipped_by_shape.append(
                    (
                        garden_path,
                        source_path,
                        tuple(variable.shape),
                        tuple(value.shape),
                    )
                )
                fatal += [garden_path] if in_backbone else []
            else:
                report.matched.append((garden_path, source_path, tuple(value.shape)))
                assignments.append((variable, value))
    for name, found in weights.items():
        for j, (weight_name, value) in enumerate(found):
            if (name, j) in used:
                continue
            why, acceptable = _unused_reason(name, head is not None)
            label = _role(weight_name) if weight_name else str(j)
            report.unused.append((f"{name}/{label}", why))
            fatal += [] if acceptable else [f"{name}/{label}"]
            if _PREPROCESSING.fullmatch(name) and j < 2:
                stat = ("mean", "variance")[j]
                report.notes.append(
                    f"The source normalizes its inputs inside the model: {stat} "
                    f"{np.round(value.reshape(-1), 4).tolist()} after scaling by 1/255."
                )
    head_paths = {v.path for v in head.dense.weights} if head is not None else set()
    if head_paths - {g for g, _, _ in report.matched}:
        report.notes.append(
            "The classifier was not imported (see missing / skipped by shape): "
            "fine-tune with trainer.init_checkpoint_modules=backbone, or train "
            "the new head."
        )
    if fatal:
        raise WeightImportError(
            f"The {detected} source does not fit the Garden backbone (check "
            "width_multiplier / model_id): "
            f"{', '.join(fatal[:8])}{' ...' if len(fatal) > 8 else ''}.\n"
            + report.summary(),
            report,
        )
    for variable, value in assignments:
        variable.assign(value.astype(variable.dtype))
    return report
