"""A backbone and segmentation head(s): images to per-pixel class logits."""

from __future__ import annotations

import keras

from official.vision.heads.upsample_like import UpsampleLike


@keras.saving.register_keras_serializable(package="official")
class SegmentationModel(keras.Model):
    """Semantic segmentation: backbone features -> head -> logits at input size.

    The head's logits (at its level's stride) are upsampled bilinearly to
    the input's height and width, so the loss and the metrics compare them
    with the label map pixel for pixel (in float32, also under mixed
    precision). An optional auxiliary head (an FCN head on a middle level)
    is returned beside the main logits for its training loss; a head that
    returns a dict (EncNet) adds its other outputs (`se_logits`).

    Args:
        backbone: `keras.Model` returning a dict from level (str) to feature
            map (ResNet, MobileNet, EfficientNet). Build it with input shape
            `(None, None, 3)` for any image size.
        head: a `SegmentationHead` layer (`FCNHead`, `DeepLabV3Head`,
            `DeepLabV3PlusHead`, `EncNetHead`).
        aux_head: optional `SegmentationHead` (an `FCNHead` on level 4), or
            None. Defaults to None.
        **kwargs: base model arguments (`name`, `trainable`).

    Call arguments:
        inputs: float tensor `(batch, height, width, channels)`, normalized.
        training: bool, batch normalization and dropout mode.

    Returns:
        `{"logits": float32 (batch, height, width, num_classes)}`, plus
        `"aux_logits"` (same shape) with an auxiliary head and `"se_logits"`
        `(batch, num_classes)` with EncNet.

    Example:
    ```python
    import numpy as np
    from official.vision.backbones.resnet import ResNet
    from official.vision.heads.fcn_head import FCNHead
    from official.vision.models.segmentation_model import SegmentationModel

    backbone = ResNet(model_id=10, width_multiplier=0.25, output_stride=8)
    model = SegmentationModel(backbone, FCNHead(num_classes=3, num_filters=8))
    outputs = model(np.ones((2, 32, 32, 3), "float32"))
    assert tuple(outputs["logits"].shape) == (2, 32, 32, 3)
    ```
    """

    def __init__(self, backbone, head, aux_head=None, **kwargs):
        # === Functional Model ===
        inputs = keras.Input(shape=tuple(backbone.input_shape[1:]), name="images")
        features = backbone(inputs)
        if not isinstance(features, dict):
            raise ValueError(
                "`backbone` must return a dict from level to feature map. "
                f"Received outputs of type {type(features).__name__}."
            )
        head_outputs = head(features)
        if not isinstance(head_outputs, dict):
            head_outputs = {"logits": head_outputs}
        upsample = UpsampleLike(dtype="float32", name="upsample")
        outputs = {"logits": upsample(head_outputs["logits"], inputs)}
        if aux_head is not None:
            outputs["aux_logits"] = UpsampleLike(dtype="float32", name="aux_upsample")(
                aux_head(features), inputs
            )
        outputs.update({k: v for k, v in head_outputs.items() if k != "logits"})
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.backbone = backbone
        self.head = head
        self.aux_head = aux_head

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": serialize(self.backbone),
            "head": serialize(self.head),
            "aux_head": None if self.aux_head is None else serialize(self.aux_head),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("backbone", "head", "aux_head"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
