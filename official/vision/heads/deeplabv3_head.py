"""DeepLabV3 head: ASPP and a 1x1 classifier."""

from __future__ import annotations

import keras

from official.base.registries import HEADS
from official.vision.heads.aspp import ASPP
from official.vision.heads.segmentation_head import SegmentationHead


@HEADS.register("deeplabv3")
@keras.saving.register_keras_serializable(package="official")
class DeepLabV3Head(SegmentationHead):
    """DeepLabV3 (Chen et al. 2017): ASPP on the last level, then a classifier.

    Args:
        num_classes: int, logits per pixel.
        num_filters: int, ASPP channels. Defaults to 256.
        dilation_rates: list of ints, the ASPP rates ([6, 12, 18] at output
            stride 16, [12, 24, 36] at 8). Defaults to (6, 12, 18).
        image_pooling: bool, the ASPP image pooling branch. Defaults to True.
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
    from official.vision.heads.deeplabv3_head import DeepLabV3Head

    head = DeepLabV3Head(num_classes=3, num_filters=8, dilation_rates=[2, 4])
    logits = head({"5": np.ones((2, 4, 4, 16), "float32")})
    assert tuple(logits.shape) == (2, 4, 4, 3)
    ```
    """

    def __init__(
        self,
        num_classes,
        num_filters=256,
        dilation_rates=(6, 12, 18),
        image_pooling=True,
        **kwargs,
    ):
        super().__init__(num_classes, **kwargs)
        self.num_filters = num_filters
        self.dilation_rates = list(dilation_rates)
        self.image_pooling = image_pooling
        conv_args = self.conv_args()
        del conv_args["dtype"]
        self.aspp = ASPP(
            num_filters,
            self.dilation_rates,
            image_pooling=image_pooling,
            dropout_rate=0.0,
            dtype=self.dtype_policy,
            name="aspp",
            **conv_args,
        )

    def build(self, input_shape):
        shape = self.select(input_shape)
        self.aspp.build(shape)
        self.classifier.build((*shape[:3], self.num_filters))

    def call(self, features, training=None):
        x = self.aspp(self.select(features), training=training)
        return self.classify(x, training=training)

    def compute_output_shape(self, input_shape):
        return (*self.select(input_shape)[:3], self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "num_filters": self.num_filters,
            "dilation_rates": self.dilation_rates,
            "image_pooling": self.image_pooling,
        }
