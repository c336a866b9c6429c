"""Builds vision models from their configs."""

from __future__ import annotations

from official.base.registries import BACKBONES
from official.vision.configs.image_classification import ImageClassificationModelConfig
from official.vision.models.image_classifier import ImageClassifier


def build_image_classifier(
    model_config: ImageClassificationModelConfig,
) -> ImageClassifier:
    """Builds an `ImageClassifier` whose backbone comes from the BACKBONES registry.

    The backbone's module must have been imported (see
    `official/registry_imports.py`) for its type to be registered.

    Args:
        model_config: `ImageClassificationModelConfig`; `input_size` is the
            backbone's `input_shape`, `backbone.params` its other arguments.

    Returns:
        The classifier, producing `(batch, num_classes)` float32 logits.

    Example:
    ```python
    import numpy as np
    import official.vision.backbones.resnet  # registers "resnet"
    from official.vision.configs.image_classification import (
        BackboneConfig, ImageClassificationModelConfig)
    from official.vision.models.factory import build_image_classifier

    config = ImageClassificationModelConfig(
        num_classes=10,
        input_size=[32, 32, 3],
        backbone=BackboneConfig("resnet", {"model_id": 10, "width_multiplier": 0.25}),
    )
    model = build_image_classifier(config)
    assert tuple(model(np.ones((1, 32, 32, 3), "float32")).shape) == (1, 10)
    ```
    """
    backbone_cls = BACKBONES.get(model_config.backbone.type)
    backbone = backbone_cls(
        input_shape=tuple(model_config.input_size), **model_config.backbone.params
    )
    return ImageClassifier(
        backbone,
        num_classes=model_config.num_classes,
        dropout_rate=model_config.dropout_rate,
    )
