"""The RetinaNet head: class and box subnets shared across pyramid levels."""

from __future__ import annotations

import math

import keras

from official.base.registries import HEADS
from official.modeling.layers import FusedBatchNormalization


@HEADS.register("retinanet")
@keras.saving.register_keras_serializable(package="official")
class RetinaNetHead(keras.layers.Layer):
    """Class and box subnets (Lin et al. 2017), laid out as in the TF Model Garden.

    Each subnet is `num_convs` 3x3 convolutions of `num_filters` channels
    (with bias, kernels drawn from N(0, 0.01)), each followed by batch
    normalization and ReLU, then a 3x3 prediction convolution (kernels
    N(0, 1e-5)). The convolutions are shared by every level; the batch
    normalizations are per level. The class prediction's bias starts at
    `-log((1 - prior_prob) / prior_prob)`, so every anchor starts with
    probability `prior_prob` for every class (focal loss training is stable
    from the first step).

    Args:
        min_level: int, finest level read. Defaults to 3.
        max_level: int, coarsest level read. Defaults to 7.
        num_classes: int, class outputs per anchor. Defaults to 91.
        num_anchors_per_location: int. Defaults to 9.
        num_convs: int, convolutions of each subnet. Defaults to 4.
        num_filters: int. Defaults to 256.
        prior_prob: float in (0, 1). Defaults to 0.01.
        norm_momentum: float. Defaults to 0.99.
        norm_epsilon: float. Defaults to 1e-3.
        **kwargs: base layer arguments (`name`, `dtype`).

    Call arguments:
        features: dict from level (str) to `(batch, h_l, w_l, channels)`.
        training: bool, batch normalization mode.

    Returns:
        `{"cls_outputs": float32 (batch, N, num_classes) logits,
        "box_outputs": float32 (batch, N, 4) box regression outputs}`, `N` the anchors
        of all levels in `anchor_generator.generate_anchors`' order (level,
        row, column, anchor).

    Example:
    ```python
    import numpy as np
    from official.vision.heads.retinanet_head import RetinaNetHead

    head = RetinaNetHead(min_level=3, max_level=4, num_classes=3,
                         num_anchors_per_location=2, num_convs=1, num_filters=8)
    features = {"3": np.ones((1, 4, 4, 8), "float32"),
                "4": np.ones((1, 2, 2, 8), "float32")}
    outputs = head(features)
    assert tuple(outputs["cls_outputs"].shape) == (1, (16 + 4) * 2, 3)
    assert tuple(outputs["box_outputs"].shape) == (1, (16 + 4) * 2, 4)
    ```
    """

    def __init__(
        self,
        min_level=3,
        max_level=7,
        num_classes=91,
        num_anchors_per_location=9,
        num_convs=4,
        num_filters=256,
        prior_prob=0.01,
        norm_momentum=0.99,
        norm_epsilon=1e-3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 < prior_prob < 1.0:
            raise ValueError(f"prior_prob must be in (0, 1). Received: {prior_prob}.")
        for name, value in (
            ("num_classes", num_classes),
            ("num_anchors_per_location", num_anchors_per_location),
            ("num_filters", num_filters),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1. Received: {value}.")
        if num_convs < 0 or max_level < min_level:
            raise ValueError(
                "RetinaNetHead needs num_convs >= 0 and max_level >= min_level. "
                f"Received: num_convs={num_convs}, min_level={min_level}, "
                f"max_level={max_level}."
            )
        self.min_level = min_level
        self.max_level = max_level
        self.num_classes = num_classes
        self.num_anchors_per_location = num_anchors_per_location
        self.num_convs = num_convs
        self.num_filters = num_filters
        self.prior_prob = prior_prob
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon

    def _conv(self, filters, stddev, name, bias=0.0):
        return keras.layers.Conv2D(
            filters,
            3,
            padding="same",
            kernel_initializer=keras.initializers.RandomNormal(stddev=stddev),
            bias_initializer=keras.initializers.Constant(bias),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, input_shape):
        channels = input_shape[str(self.min_level)][-1]
        # Sublayers are attributes (not lists), so that checkpoints track them.
        for net in ("class", "box"):
            in_channels = channels
            for i in range(self.num_convs):
                conv = self._conv(self.num_filters, 0.01, f"{net}net_conv_{i}")
                conv.build((None, None, None, in_channels))
                setattr(self, f"{net}net_conv_{i}", conv)
                in_channels = self.num_filters
                for level in range(self.min_level, self.max_level + 1):
                    norm = FusedBatchNormalization(
                        momentum=self.norm_momentum,
                        epsilon=self.norm_epsilon,
                        dtype=self.dtype_policy,
                        name=f"{net}net_norm_{level}_{i}",
                    )
                    norm.build((None, None, None, self.num_filters))
                    setattr(self, f"{net}net_norm_{level}_{i}", norm)
        head_channels = self.num_filters if self.num_convs else channels
        a = self.num_anchors_per_location
        prior_bias = -math.log((1.0 - self.prior_prob) / self.prior_prob)
        self.classifier = self._conv(a * self.num_classes, 1e-5, "scores", prior_bias)
        self.classifier.build((None, None, None, head_channels))
        self.box_regressor = self._conv(a * 4, 1e-5, "boxes")
        self.box_regressor.build((None, None, None, head_channels))

    def _subnet(self, net: str, x, level: int, training):
        for i in range(self.num_convs):
            x = getattr(self, f"{net}net_conv_{i}")(x)
            x = getattr(self, f"{net}net_norm_{level}_{i}")(x, training=training)
            x = keras.ops.relu(x)
        return x

    def call(self, features, training=None):
        scores, boxes = [], []
        for level in range(self.min_level, self.max_level + 1):
            x = features[str(level)]
            cls = self.classifier(self._subnet("class", x, level, training))
            box = self.box_regressor(self._subnet("box", x, level, training))
            batch = keras.ops.shape(cls)[0]
            scores.append(keras.ops.reshape(cls, (batch, -1, self.num_classes)))
            boxes.append(keras.ops.reshape(box, (batch, -1, 4)))
        cls_outputs = keras.ops.cast(keras.ops.concatenate(scores, axis=1), "float32")
        box_outputs = keras.ops.cast(keras.ops.concatenate(boxes, axis=1), "float32")
        return {"cls_outputs": cls_outputs, "box_outputs": box_outputs}

    def compute_output_shape(self, input_shape):
        total = 0
        for level in range(self.min_level, self.max_level + 1):
            _, height, width, _ = input_shape[str(level)]
            if height is None or width is None:
                total = None
                break
            total += height * width * self.num_anchors_per_location
        batch = input_shape[str(self.min_level)][0]
        return {
            "cls_outputs": (batch, total, self.num_classes),
            "box_outputs": (batch, total, 4),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "min_level": self.min_level,
            "max_level": self.max_level,
            "num_classes": self.num_classes,
            "num_anchors_per_location": self.num_anchors_per_location,
            "num_convs": self.num_convs,
            "num_filters": self.num_filters,
            "prior_prob": self.prior_prob,
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
        }
