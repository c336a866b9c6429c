"""Feature Pyramid Network (Lin et al. 2017) with RetinaNet's extra levels."""

from __future__ import annotations

import keras

from official.modeling.layers import FusedBatchNormalization

# The deepest level the registered backbones return ("5", stride 32).
BACKBONE_MAX_LEVEL = 5


@keras.saving.register_keras_serializable(package="official")
class FPN(keras.layers.Layer):
    """Multi-level backbone features -> P`min_level`..P`max_level`, `num_filters` each.

    The TF Model Garden's layout: a 1x1 lateral convolution on each backbone
    level from `min_level` to 5, a top-down path adding each level to the
    nearest-neighbour 2x upsampling of the level above, a 3x3 convolution on
    every sum; levels above 5 come from stride-2 3x3 convolutions, P6 on P5
    and each further level on the ReLU of the one below (RetinaNet's P6, P7).
    Every convolution has a bias; each output level ends with its own batch
    normalization.

    Args:
        min_level: int, finest output level (2..5). Defaults to 3.
        max_level: int, coarsest output level (>= min_level). Defaults to 7.
        num_filters: int, channels of every output level. Defaults to 256.
        norm_momentum: float. Defaults to 0.99.
        norm_epsilon: float. Defaults to 1e-3.
        kernel_initializer: str or initializer of the convolutions. Defaults
            to "variance_scaling".
        **kwargs: base layer arguments (`name`, `dtype`).

    Call arguments:
        features: dict from level (str) to feature map, with every level from
            `min_level` to 5 (the registered backbones return "2".."5").
        training: bool, batch normalization mode.

    Returns:
        dict from level (str, `min_level`..`max_level`) to
        `(batch, ceil(H / 2**level), ceil(W / 2**level), num_filters)`. The
        input size must be divisible by `2**max_level` for the levels to
        line up.

    Example:
    ```python
    import numpy as np
    from official.vision.decoders.fpn import FPN

    features = {str(l): np.ones((1, 64 // 2**l, 64 // 2**l, 4), "float32")
                for l in (2, 3, 4, 5)}
    outputs = FPN(min_level=3, max_level=6, num_filters=8)(features)
    assert sorted(outputs) == ["3", "4", "5", "6"]
    assert tuple(outputs["6"].shape) == (1, 1, 1, 8)
    ```
    """

    def __init__(
        self,
        min_level=3,
        max_level=7,
        num_filters=256,
        norm_momentum=0.99,
        norm_epsilon=1e-3,
        kernel_initializer="variance_scaling",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 2 <= min_level <= BACKBONE_MAX_LEVEL or max_level < min_level:
            raise ValueError(
                f"FPN levels need 2 <= min_level <= {BACKBONE_MAX_LEVEL} and "
                f"max_level >= min_level. Received: min_level={min_level}, "
                f"max_level={max_level}."
            )
        if num_filters < 1:
            raise ValueError(f"num_filters must be >= 1. Received: {num_filters}.")
        self.min_level = min_level
        self.max_level = max_level
        self.num_filters = num_filters
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self._top = min(BACKBONE_MAX_LEVEL, max_level)

    def _conv(self, kernel_size: int, strides: int, name: str):
        return keras.layers.Conv2D(
            self.num_filters,
            kernel_size,
            strides=strides,
            padding="same",
            kernel_initializer=keras.initializers.get(
                keras.initializers.serialize(self.kernel_initializer)
            ),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, input_shape):
        missing = [
            str(level)
            for level in range(self.min_level, self._top + 1)
            if str(level) not in input_shape
        ]
        if missing:
            raise ValueError(
                f"FPN needs backbone levels {self.min_level}..{self._top}; missing "
                f"{missing}. Received levels: {sorted(input_shape)}."
            )
        # Sublayers are attributes (not lists), so that checkpoints track them.
        self.upsample = keras.layers.UpSampling2D(
            2, interpolation="nearest", dtype=self.dtype_policy, name="upsample"
        )
        for level in range(self.min_level, self._top + 1):
            lateral = self._conv(1, 1, f"lateral_{level}")
            lateral.build(input_shape[str(level)])
            setattr(self, f"lateral_{level}", lateral)
            post_hoc = self._conv(3, 1, f"post_hoc_{level}")
            post_hoc.build((None, None, None, self.num_filters))
            setattr(self, f"post_hoc_{level}", post_hoc)
        for level in range(self._top + 1, self.max_level + 1):
            coarser = self._conv(3, 2, f"coarser_{level}")
            coarser.build((None, None, None, self.num_filters))
            setattr(self, f"coarser_{level}", coarser)
        for level in range(self.min_level, self.max_level + 1):
            norm = FusedBatchNormalization(
                momentum=self.norm_momentum,
                epsilon=self.norm_epsilon,
                dtype=self.dtype_policy,
                name=f"norm_{level}",
            )
            norm.build((None, None, None, self.num_filters))
            setattr(self, f"norm_{level}", norm)

    def call(self, features, training=None):
        lateral = {
            level: getattr(self, f"lateral_{level}")(features[str(level)])
            for level in range(self.min_level, self._top + 1)
        }
        merged = {self._top: lateral[self._top]}
        for level in range(self._top - 1, self.min_level - 1, -1):
            merged[level] = lateral[level] + self.upsample(merged[level + 1])
        outputs = {
            level: getattr(self, f"post_hoc_{level}")(merged[level])
            for level in range(self.min_level, self._top + 1)
        }
        for level in range(self._top + 1, self.max_level + 1):
            below = outputs[level - 1]
            if level > self._top + 1:
                below = keras.ops.relu(below)
            outputs[level] = getattr(self, f"coarser_{level}")(below)
        return {
            str(level): getattr(self, f"norm_{level}")(
                outputs[level], training=training
            )
            for level in range(self.min_level, self.max_level + 1)
        }

    def compute_output_shape(self, input_shape):
        batch = input_shape[str(self.min_level)][0]
        shapes = {}
        for level in range(self.min_level, self.max_level + 1):
            if str(level) in input_shape and level <= self._top:
                _, height, width, _ = input_shape[str(level)]
            else:
                height, width = (
                    None if s is None else -(-s // 2)
                    for s in shapes[str(level - 1)][1:3]
                )
            shapes[str(level)] = (batch, height, width, self.num_filters)
        return shapes

    def get_config(self):
        return {
            **super().get_config(),
            "min_level": self.min_level,
            "max_level": self.max_level,
            "num_filters": self.num_filters,
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
