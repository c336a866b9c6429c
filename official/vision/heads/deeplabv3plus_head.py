"""DeepLabV3+ head: ASPP and a decoder that fuses low-level features."""

from __future__ import annotations

import keras

from official.base.registries import HEADS
from official.modeling.layers import ConvNormAct
from official.vision.heads.aspp import ASPP
from official.vision.heads.segmentation_head import SegmentationHead
from official.vision.heads.upsample_like import resize_bilinear


@HEADS.register("deeplabv3plus")
@keras.saving.register_keras_serializable(package="official")
class DeepLabV3PlusHead(SegmentationHead):
    """DeepLabV3+ (Chen et al. 2018): ASPP, then a decoder at a finer level.

    The ASPP output (level `level`) is upsampled bilinearly to level
    `low_level` (stride 4 by default) and concatenated with that level's
    features projected to `low_level_filters` channels by a 1x1 convolution;
    two 3x3 convolutions with `num_filters` channels refine the result before
    the classifier.

    Args:
        num_classes: int, logits per pixel.
        num_filters: int, ASPP and decoder channels. Defaults to 256.
        dilation_rates: list of ints, the ASPP rates. Defaults to (6, 12, 18).
        image_pooling: bool, the ASPP image pooling branch. Defaults to True.
        low_level: int, the backbone level fused by the decoder. Defaults to 2.
        low_level_filters: int, channels of its 1x1 projection. Defaults to 48.
        **kwargs: `SegmentationHead` arguments (`level`, `dropout_rate`,
            `kernel_initializer`, normalization) and base layer arguments.

    Call arguments:
        features: dict from level (str) to feature map.
        training: bool, batch normalization and dropout mode.

    Returns:
        float32 logits `(batch, h, w, num_classes)` at level `low_level`.

    Example:
    ```python
    import numpy as np
    from official.vision.heads.deeplabv3plus_head import DeepLabV3PlusHead

    head = DeepLabV3PlusHead(num_classes=3, num_filters=8, dilation_rates=[2],
                             low_level_filters=4)
    features = {"2": np.ones((2, 16, 16, 8), "float32"),
                "5": np.ones((2, 4, 4, 16), "float32")}
    assert tuple(head(features).shape) == (2, 16, 16, 3)
    ```
    """

    def __init__(
        self,
        num_classes,
        num_filters=256,
        dilation_rates=(6, 12, 18),
        image_pooling=True,
        low_level=2,
        low_level_filters=48,
        **kwargs,
    ):
        super().__init__(num_classes, **kwargs)
        self.num_filters = num_filters
        self.dilation_rates = list(dilation_rates)
        self.image_pooling = image_pooling
        self.low_level = low_level
        self.low_level_filters = low_level_filters
        conv_args = self.conv_args()
        aspp_args = {k: v for k, v in conv_args.items() if k != "dtype"}
        self.aspp = ASPP(
            num_filters,
            self.dilation_rates,
            image_pooling=image_pooling,
            dropout_rate=0.0,
            dtype=self.dtype_policy,
            name="aspp",
            **aspp_args,
        )
        self.low_level_project = ConvNormAct(
            low_level_filters, 1, name="low_level_project", **conv_args
        )
        # Attributes, not a list: TensorFlow checkpoints do not see layers
        # inside a Keras-tracked list.
        self.fuse0 = ConvNormAct(num_filters, 3, name="fuse0", **conv_args)
        self.fuse1 = ConvNormAct(num_filters, 3, name="fuse1", **conv_args)

    def build(self, input_shape):
        high = self.select(input_shape)
        low = self.select(input_shape, self.low_level)
        self.aspp.build(high)
        self.low_level_project.build(low)
        shape = (*low[:3], self.num_filters + self.low_level_filters)
        for conv in (self.fuse0, self.fuse1):
            conv.build(shape)
            shape = (*low[:3], self.num_filters)
        self.classifier.build(shape)

    def call(self, features, training=None):
        high = self.aspp(self.select(features), training=training)
        low = self.low_level_project(
            self.select(features, self.low_level), training=training
        )
        shape = keras.ops.shape(low)
        x = keras.ops.concatenate(
            [resize_bilinear(high, shape[1], shape[2]), low], axis=-1
        )
        for conv in (self.fuse0, self.fuse1):
            x = conv(x, training=training)
        return self.classify(x, training=training)

    def compute_output_shape(self, input_shape):
        return (*self.select(input_shape, self.low_level)[:3], self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "num_filters": self.num_filters,
            "dilation_rates": self.dilation_rates,
            "image_pooling": self.image_pooling,
            "low_level": self.low_level,
            "low_level_filters": self.low_level_filters,
        }
