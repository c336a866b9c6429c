"""A backbone and a classification head: images to class logits."""

from __future__ import annotations

import keras

from official.vision.heads.classification_head import ClassificationHead


@keras.saving.register_keras_serializable(package="official")
class ImageClassifier(keras.Model):
    """Classifies images with any backbone that returns leveled feature maps.

    Runs the backbone, takes its highest-level (coarsest) feature map, and
    applies a `ClassificationHead` (global average pooling, dropout, dense).

    Args:
        backbone: `keras.Model`, called on the images; returns a dict from
            level (str of an int) to feature map, like `ResNet`. Its input
            shape becomes the classifier's input shape.
        num_classes: int, number of classes.
        dropout_rate: float in [0, 1), dropout before the dense layer.
            Defaults to 0.0.
        **kwargs: base model arguments (`name`, `trainable`).

    Call arguments:
        inputs: float tensor of shape `(batch, height, width, channels)`,
            already normalized.
        training: bool, training mode for batch normalization and dropout.

    Returns:
        float32 tensor of shape `(batch, num_classes)`, the logits.

    Example:
    ```python
    import numpy as np
    from official.vision.backbones.resnet import ResNet
    from official.vision.models.image_classifier import ImageClassifier

    backbone = ResNet(model_id=10, width_multiplier=0.25, input_shape=(32, 32, 3))
    model = ImageClassifier(backbone, num_classes=10)
    logits = model(np.ones((2, 32, 32, 3), "float32"))
    assert tuple(logits.shape) == (2, 10)
    ```
    """

    def __init__(self, backbone, num_classes, dropout_rate=0.0, **kwargs):
        # === Layers ===
        head = ClassificationHead(
            num_classes,
            dropout_rate=dropout_rate,
            # A backbone may ask for a hidden layer after pooling (MobileNetV3).
            pre_logits_units=getattr(backbone, "pre_logits_units", 0),
            pre_logits_activation=getattr(
                backbone, "pre_logits_activation", "hard_swish"
            ),
            name="head",
        )

        # === Functional Model ===
        inputs = keras.Input(shape=tuple(backbone.input_shape[1:]), name="images")
        features = backbone(inputs)
        if not isinstance(features, dict):
            raise ValueError(
                "`backbone` must return a dict from level to feature map. "
                f"Received outputs of type {type(features).__name__}."
            )
        if "pooled" in features:
            # A backbone's own pooled representation (e.g. ViT's class token).
            logits = head(features["pooled"])
        else:
            top_level = max((k for k in features if k.isdigit()), key=int)
            logits = head(features[top_level])
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.backbone = backbone
        self.head = head
        self.num_classes = num_classes
        self.dropout_rate = dropout_rate

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "num_classes": self.num_classes,
            "dropout_rate": self.dropout_rate,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["backbone"], dict):
            config["backbone"] = keras.saving.deserialize_keras_object(
                config["backbone"]
            )
        return cls(**config)
