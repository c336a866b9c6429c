"""RetinaNet: backbone -> FPN -> RetinaNet head, and its builder from a config."""

from __future__ import annotations

import keras

from official.vision.decoders.fpn import FPN
from official.vision.heads.retinanet_head import RetinaNetHead


@keras.saving.register_keras_serializable(package="official")
class RetinaNetModel(keras.Model):
    """Images -> raw per-anchor class logits and box regression outputs.

    Decoding and non-maximum suppression are not part of the Keras model:
    `official.vision.ops.detection_generator.DetectionGenerator` turns these
    outputs into detections, the same way in evaluation and in every
    exported signature.

    Args:
        backbone: `keras.Model` returning a dict from level (str) to feature
            map (ResNet, MobileNet, EfficientNet), built for the input size.
        decoder: an `FPN` layer.
        head: a `RetinaNetHead` layer.
        **kwargs: base model arguments (`name`, `trainable`).

    Call arguments:
        inputs: float `(batch, height, width, 3)`, normalized images of the
            backbone's input size.
        training: bool.

    Returns:
        `{"cls_outputs": float32 (batch, N, num_classes), "box_outputs":
        float32 (batch, N, 4)}`.

    Example:
    ```python
    import numpy as np
    from official.vision.backbones.resnet import ResNet
    from official.vision.decoders.fpn import FPN
    from official.vision.heads.retinanet_head import RetinaNetHead
    from official.vision.models.retinanet_model import RetinaNetModel

    backbone = ResNet(model_id=10, width_multiplier=0.25, input_shape=(32, 32, 3))
    model = RetinaNetModel(
        backbone, FPN(3, 5, num_filters=8),
        RetinaNetHead(3, 5, num_classes=2, num_anchors_per_location=1,
                      num_convs=1, num_filters=8))
    outputs = model(np.ones((1, 32, 32, 3), "float32"))
    assert tuple(outputs["cls_outputs"].shape) == (1, 16 + 4 + 1, 2)
    ```
    """

    def __init__(self, backbone, decoder, head, **kwargs):
        # === Functional Model ===
        inputs = keras.Input(shape=tuple(backbone.input_shape[1:]), name="images")
        features = backbone(inputs)
        if not isinstance(features, dict):
            raise ValueError(
                "`backbone` must return a dict from level to feature map. "
                f"Received outputs of type {type(features).__name__}."
            )
        outputs = head(decoder(features))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.backbone = backbone
        self.decoder = decoder
        self.head = head

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": serialize(self.backbone),
            "decoder": serialize(self.decoder),
            "head": serialize(self.head),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("backbone", "decoder", "head"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def build_retinanet_model(model_config) -> RetinaNetModel:
    """Backbone (from BACKBONES, at `model_config.input_size`) + FPN + head.

    Args:
        model_config: a validated `RetinaNetModelConfig`.

    Example:
    ```python
    import numpy as np
    import official.registry_imports  # noqa: F401 - registers backbones
    from official.vision.configs.image_classification import BackboneConfig
    from official.vision.configs.retinanet import (
        AnchorConfig, DecoderConfig, RetinaNetHeadConfig, RetinaNetModelConfig)
    from official.vision.models.retinanet_model import build_retinanet_model

    config = RetinaNetModelConfig(
        num_classes=4, input_size=[32, 32, 3], min_level=3, max_level=5,
        backbone=BackboneConfig("resnet", {"model_id": 10, "width_multiplier": 0.25}),
        anchor=AnchorConfig(num_scales=1, aspect_ratios=[1.0]),
        decoder=DecoderConfig(num_filters=8),
        head=RetinaNetHeadConfig(num_convs=1, num_filters=8))
    model = build_retinanet_model(config)
    outputs = model(np.ones((1, 32, 32, 3), "float32"))
    assert tuple(outputs["box_outputs"].shape) == (1, 16 + 4 + 1, 4)
    ```
    """
    from official.base.registries import BACKBONES
    from official.vision.configs.retinanet import RetinaNetModelConfig

    config: RetinaNetModelConfig = model_config
    backbone = BACKBONES.get(config.backbone.type)(
        input_shape=tuple(config.input_size), **dict(config.backbone.params)
    )
    if config.decoder.type != "fpn":
        raise ValueError(
            f"model.decoder.type must be 'fpn'. Received: {config.decoder.type!r}."
        )
    decoder = FPN(
        config.min_level,
        config.max_level,
        num_filters=config.decoder.num_filters,
        name="decoder",
    )
    anchor = config.anchor
    head = RetinaNetHead(
        config.min_level,
        config.max_level,
        num_classes=config.num_classes,
        num_anchors_per_location=anchor.num_scales * len(anchor.aspect_ratios),
        num_convs=config.head.num_convs,
        num_filters=config.head.num_filters,
        prior_prob=config.head.prior_prob,
        name="head",
    )
    return RetinaNetModel(backbone, decoder, head)
