"""FCN head: 3x3 convolutions and a 1x1 classifier on one backbone level."""

from __future__ import annotations

import keras

from official.base.registries import HEADS
from official.modeling.layers import ConvNormAct
from official.vision.heads.segmentation_head import SegmentationHead


@HEADS.register("fcn")
@keras.saving.register_keras_serializable(package="official")
class FCNHead(SegmentationHead):
    """Fully convolutional head (Long et al. 2015; the dilated-ResNet variant).

    `num_convs` 3x3 convolutions with `num_filters` channels (batch norm,
    relu), dropout, then a 1x1 classifier. Used as the main head of FCN and
    as the auxiliary head (on level 4) of PSPNet / EncNet style training.

    Args:
        num_classes: int, logits per pixel.
        num_filters: int, channels of the 3x3 convolutions. Defaults to 256.
        num_convs: int >= 0, number of 3x3 convolutions. Defaults to 1.
        **kwargs: `SegmentationHead` arguments (`level`, `dropout_rate`,
            `kernel_initializer`, normalization) and base layer arguments.

    Call arguments:
        features: dict from level (str) to feature map.
        training: bool, batch normalization and dropout mode.

    Returns:
        float32 logits `(batch, h, w, num_classes)` at level `level`.

    Example:
    ```python
    import numpy as np
    from official.vision.heads.fcn_head import FCNHead

    head = FCNHead(num_classes=3, num_filters=8, level=4)
    logits = head({"4": np.ones((2, 4, 4, 16), "float32")})
    assert tuple(logits.shape) == (2, 4, 4, 3)
    ```
    """

    def __init__(self, num_classes, num_filters=256, num_convs=1, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.num_filters = num_filters
        self.num_convs = num_convs
        # One attribute per convolution, not a list: TensorFlow checkpoints
        # do not see layers inside a Keras-tracked list.
        for i in range(num_convs):
            conv = ConvNormAct(num_filters, 3, name=f"conv{i}", **self.conv_args())
            setattr(self, f"conv{i}", conv)

    @property
    def convs(self) -> list:
        """The 3x3 convolutions, in order."""
        return [getattr(self, f"conv{i}") for i in range(self.num_convs)]

    def build(self, input_shape):
        shape = self.select(input_shape)
        for conv in self.convs:
            conv.build(shape)
            shape = (*shape[:3], self.num_filters)
        self.classifier.build(shape)

    def call(self, features, training=None):
        x = self.select(features)
        for conv in self.convs:
            x = conv(x, training=training)
        return self.classify(x, training=training)

    def compute_output_shape(self, input_shape):
        return (*self.select(input_shape)[:3], self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "num_filters": self.num_filters,
            "num_convs": self.num_convs,
        }
