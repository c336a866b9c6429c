"""Builds a `SegmentationModel` from its config."""

from __future__ import annotations

import inspect

from official.base.registries import BACKBONES, HEADS
from official.vision.configs.semantic_segmentation import (
    SemanticSegmentationModelConfig,
)
from official.vision.heads.fcn_head import FCNHead
from official.vision.models.segmentation_model import SegmentationModel


def head_arguments(model_config: SemanticSegmentationModelConfig) -> dict:
    """The constructor arguments of the configured head type.

    Every head field of the config is offered; only those the registered
    head's `__init__` accepts are kept (e.g. `dilation_rates` for DeepLab,
    `num_convs` for FCN).
    """
    head = model_config.head
    offered = {
        "num_classes": model_config.num_classes,
        "num_filters": head.num_filters,
        "dropout_rate": head.dropout_rate,
        "dilation_rates": list(head.aspp_dilation_rates),
        "image_pooling": head.aspp_image_pooling,
        "low_level": head.low_level,
        "low_level_filters": head.low_level_filters,
        "num_convs": head.num_convs,
        "num_codewords": head.num_codewords,
    }
    accepted = inspect.signature(HEADS.get(head.type)).parameters
    return {k: v for k, v in offered.items() if k in accepted}


def build_segmentation_model(
    model_config: SemanticSegmentationModelConfig,
) -> SegmentationModel:
    """Backbone (from BACKBONES) + head (from HEADS) + optional auxiliary FCN head.

    The backbone is built for any image size (`(None, None, channels)`);
    backbones with an `output_stride` argument get `model.output_stride`.

    Args:
        model_config: a validated `SemanticSegmentationModelConfig`.

    Returns:
        The `SegmentationModel`.

    Example:
    ```python
    import numpy as np
    import official.registry_imports  # noqa: F401 - registers backbones, heads
    from official.vision.configs.image_classification import BackboneConfig
    from official.vision.configs.semantic_segmentation import (
        SegmentationHeadConfig, SemanticSegmentationModelConfig)
    from official.vision.models.segmentation_factory import build_segmentation_model

    config = SemanticSegmentationModelConfig(
        num_classes=4, input_size=[32, 32, 3], output_stride=8,
        backbone=BackboneConfig("resnet", {"model_id": 10, "width_multiplier": 0.25}),
        head=SegmentationHeadConfig("deeplabv3", num_filters=8,
                                    aspp_dilation_rates=[2, 4]))
    model = build_segmentation_model(config)
    assert tuple(model(np.ones((1, 32, 32, 3), "float32"))["logits"].shape) == (1, 32, 32, 4)
    ```
    """
    backbone_cls = BACKBONES.get(model_config.backbone.type)
    params = dict(model_config.backbone.params)
    if "output_stride" in inspect.signature(backbone_cls).parameters:
        params["output_stride"] = model_config.output_stride
    channels = model_config.input_size[2]
    backbone = backbone_cls(input_shape=(None, None, channels), **params)
    head = HEADS.get(model_config.head.type)(
        **head_arguments(model_config), name="head"
    )
    aux_head = None
    if model_config.aux_head:
        aux_head = FCNHead(
            model_config.num_classes,
            num_filters=model_config.head.num_filters,
            level=model_config.aux_level,
            name="aux_head",
        )
    return SegmentationModel(backbone, head, aux_head)
