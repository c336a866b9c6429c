"""keras.applications models that match a Garden model, and their output gap.

`build_source_model` rebuilds the keras.applications model a weights file
came from (same width or variant, input size, classifier), so that an import
can be checked by running both models; `compare_outputs` runs them on the
same images and returns the largest absolute difference.
"""

from __future__ import annotations

import keras
import numpy as np

from official.vision.importers.restore_report import WeightImportError

# The last layer of the feature extractor, and (EfficientNet) the layer whose
# input is the preprocessed image, in keras.applications' models.
_FEATURE_LAYER = {"mobilenet_v2": "out_relu", "efficientnet": "top_activation"}
_FIRST_LAYER = {"efficientnet": "stem_conv_pad"}


def split_model(target: keras.Model):
    """(backbone, head or None) of a Garden classifier or bare backbone."""
    backbone = getattr(target, "backbone", None)
    if isinstance(backbone, keras.Model):
        return backbone, getattr(target, "head", None)
    return target, None


def build_source_model(
    architecture: str, garden_model: keras.Model, classes: int | None
) -> keras.Model:
    """The keras.applications model (random weights) matching `garden_model`.

    Width or variant and input size come from the Garden backbone; `classes`
    is the size of the source's classifier (None: `include_top=False`), which
    returns logits.

    Raises:
        WeightImportError: a Garden EfficientNet with overridden coefficients
            (no keras.applications model has them).
    """
    backbone, _ = split_model(garden_model)
    common = dict(
        input_shape=tuple(backbone.input_shape[1:]),
        include_top=classes is not None,
        classes=classes or 1000,
        weights=None,
        classifier_activation=None,
    )
    if architecture == "mobilenet_v2":
        return keras.applications.MobileNetV2(alpha=backbone.width_multiplier, **common)
    if backbone.width_coefficient is not None or backbone.depth_coefficient is not None:
        raise WeightImportError(
            "keras.applications has no EfficientNet with width_coefficient="
            f"{backbone.width_coefficient!r}, depth_coefficient="
            f"{backbone.depth_coefficient!r}; leave both None."
        )
    builder = getattr(keras.applications, f"EfficientNet{backbone.model_id.upper()}")
    return builder(**common)


def compare_outputs(
    architecture: str,
    source_model: keras.Model,
    garden_model: keras.Model,
    images: np.ndarray,
) -> tuple[float, float, str]:
    """Runs both models on `images` (inference mode); the largest difference.

    The Garden model gets what the keras model's first convolution sees (for
    EfficientNet, the images after its built-in rescaling and normalization).
    Classifiers are compared when both have one with equal shapes (the keras
    classifier's activation applied to Garden's logits), otherwise the final
    feature maps.

    Returns:
        (max absolute difference, max absolute reference value, what was
        compared: "logits" or "features").
    """
    backbone, head = split_model(garden_model)
    garden_in = images
    if architecture in _FIRST_LAYER:
        first = source_model.get_layer(_FIRST_LAYER[architecture]).input
        garden_in = keras.Model(source_model.inputs, first)(images, training=False)
    has_top = "predictions" in [layer.name for layer in source_model.layers]
    if head is not None and has_top:
        dense = source_model.get_layer("predictions")
        if tuple(dense.kernel.shape) == tuple(head.dense.kernel.shape):
            reference = source_model(images, training=False)
            candidate = dense.activation(garden_model(garden_in, training=False))
            return _gap(reference, candidate) + ("logits",)
    features = source_model.get_layer(_FEATURE_LAYER[architecture]).output
    reference = keras.Model(source_model.inputs, features)(images, training=False)
    candidate = backbone(garden_in, training=False)["5"]
    return _gap(reference, candidate) + ("features",)


def _gap(reference, candidate) -> tuple[float, float]:
    reference = np.asarray(reference, np.float64)
    candidate = np.asarray(candidate, np.float64)
    return float(np.max(np.abs(reference - candidate))), float(
        np.max(np.abs(reference))
    )
