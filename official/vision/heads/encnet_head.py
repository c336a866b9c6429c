"""EncNet head: context encoding, channel attention and the SE-loss branch."""

from __future__ import annotations

import keras

from official.base.registries import HEADS
from official.modeling.layers import ConvNormAct, FusedBatchNormalization
from official.vision.heads.encoding import Encoding
from official.vision.heads.segmentation_head import SegmentationHead


@HEADS.register("encnet")
@keras.saving.register_keras_serializable(package="official")
class EncNetHead(SegmentationHead):
    """EncNet's head (Zhang et al. 2018, "Context Encoding for Semantic Segmentation").

    A 3x3 convolution, then the context encoding module: a 1x1 convolution,
    `Encoding` into `num_codewords` codewords, batch normalization over the
    codewords, relu and their mean, a vector `e`. A dense sigmoid layer on
    `e` scales the channels of the map (`x + x * gamma`, relu), which then
    goes to the classifier; a second dense layer on `e` predicts which
    classes occur in the image (`se_logits`, trained by the SE loss).

    Args:
        num_classes: int, logits per pixel.
        num_filters: int, channels of the convolutions. Defaults to 512.
        num_codewords: int, codewords of the encoding. Defaults to 32.
        **kwargs: `SegmentationHead` arguments (`level`, `dropout_rate`,
            `kernel_initializer`, normalization) and base layer arguments.

    Call arguments:
        features: dict from level (str) to feature map.
        training: bool, batch normalization and dropout mode.

    Returns:
        `{"logits": float32 (batch, h, w, num_classes) at level `level`,
        "se_logits": float32 (batch, num_classes)}`.

    Example:
    ```python
    import numpy as np
    from official.vision.heads.encnet_head import EncNetHead

    head = EncNetHead(num_classes=3, num_filters=8, num_codewords=4)
    out = head({"5": np.ones((2, 4, 4, 16), "float32")})
    assert tuple(out["logits"].shape) == (2, 4, 4, 3)
    assert tuple(out["se_logits"].shape) == (2, 3)
    ```
    """

    def __init__(self, num_classes, num_filters=512, num_codewords=32, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.num_filters = num_filters
        self.num_codewords = num_codewords
        conv_args = self.conv_args()
        self.conv = ConvNormAct(num_filters, 3, name="conv", **conv_args)
        self.encode_conv = ConvNormAct(num_filters, 1, name="encode_conv", **conv_args)
        # The encoding and its normalization run in float32 under mixed
        # precision (squared distances overflow float16).
        self.encoding = Encoding(num_codewords, dtype="float32", name="encoding")
        self.encoding_norm = FusedBatchNormalization(
            axis=1,
            momentum=self.norm_momentum,
            epsilon=self.norm_epsilon,
            synchronized=self.use_sync_bn,
            dtype="float32",
            name="encoding_norm",
        )
        self.attention = keras.layers.Dense(
            num_filters, activation="sigmoid", dtype=self.dtype_policy, name="attention"
        )
        self.se_classifier = keras.layers.Dense(num_classes, name="se_classifier")

    def build(self, input_shape):
        shape = self.select(input_shape)
        self.conv.build(shape)
        shape = (*shape[:3], self.num_filters)
        self.encode_conv.build(shape)
        self.encoding.build(shape)
        self.encoding_norm.build((shape[0], self.num_codewords, self.num_filters))
        self.attention.build((shape[0], self.num_filters))
        self.se_classifier.build((shape[0], self.num_filters))
        self.classifier.build(shape)

    def call(self, features, training=None):
        x = self.conv(self.select(features), training=training)
        encoded = self.encoding(self.encode_conv(x, training=training))
        encoded = keras.ops.relu(self.encoding_norm(encoded, training=training))
        context = keras.ops.mean(encoded, axis=1)  # [B, D], float32
        gamma = self.attention(keras.ops.cast(context, x.dtype))
        x = keras.ops.relu(x + x * gamma[:, None, None, :])
        return {
            "logits": self.classify(x, training=training),
            "se_logits": keras.ops.cast(self.se_classifier(context), "float32"),
        }

    def compute_output_spec(self, features, training=None):
        shape = features[str(self.level)].shape
        return {
            "logits": keras.KerasTensor(
                (*shape[:3], self.num_classes), dtype="float32"
            ),
            "se_logits": keras.KerasTensor(
                (shape[0], self.num_classes), dtype="float32"
            ),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "num_filters": self.num_filters,
            "num_codewords": self.num_codewords,
        }
