"""The base of segmentation heads: level selection, classifier, shared args."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="official")
class SegmentationHead(keras.layers.Layer):
    """Base of the dense-prediction heads (FCN, DeepLabV3/V3+, EncNet).

    A head reads the backbone's feature dict (level, a string of log2 of the
    stride, to feature map), runs its own layers (`features_to_map`, defined
    by subclasses) and ends with dropout and a 1x1 convolution with bias to
    `num_classes` float32 logits, at the resolution of level `level`.

    Args:
        num_classes: int, logits per pixel.
        level: int, the backbone level the head reads. Defaults to 5.
        dropout_rate: float in [0, 1), before the classifier. Defaults to 0.1.
        kernel_initializer: str or initializer, for every kernel. Defaults to
            "he_normal".
        norm_momentum: float, batch normalization momentum. Defaults to 0.99.
        norm_epsilon: float, batch normalization epsilon. Defaults to 1e-3.
        use_sync_bn: bool, synchronized batch normalization. Defaults to False.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        features: dict from level (str) to float tensor `(batch, h, w, c)`.
        training: bool, batch normalization and dropout mode.

    Returns:
        float32 logits `(batch, h, w, num_classes)` at level `level`'s
        resolution (subclasses may return a dict with `logits` and more).
    """

    def __init__(
        self,
        num_classes,
        level=5,
        dropout_rate=0.1,
        kernel_initializer="he_normal",
        norm_momentum=0.99,
        norm_epsilon=1e-3,
        use_sync_bn=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.level = level
        self.dropout_rate = dropout_rate
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.use_sync_bn = use_sync_bn
        self.dropout = keras.layers.Dropout(dropout_rate, dtype=self.dtype_policy)
        self.classifier = keras.layers.Conv2D(
            num_classes,
            1,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="classifier",
        )

    def conv_args(self) -> dict:
        """Keyword arguments shared by the head's `ConvNormAct` layers."""
        return dict(
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            norm_momentum=self.norm_momentum,
            norm_epsilon=self.norm_epsilon,
            use_sync_bn=self.use_sync_bn,
            dtype=self.dtype_policy,
        )

    def select(self, features, level=None):
        """The feature map (or its shape) of `level` (default: the head's level).

        Raises:
            ValueError: the backbone does not return that level.
        """
        key = str(self.level if level is None else level)
        if key not in features:
            raise ValueError(
                f"{self.name} reads backbone level {key!r}, which the backbone does "
                f"not return. Levels returned: {', '.join(sorted(features))}."
            )
        return features[key]

    def classify(self, x, training=None):
        """Dropout and the 1x1 classifier; float32 logits."""
        x = self.dropout(x, training=training)
        return keras.ops.cast(self.classifier(x), "float32")

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "level": self.level,
            "dropout_rate": self.dropout_rate,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
            "use_sync_bn": self.use_sync_bn,
        }
