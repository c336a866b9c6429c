"""ResNet v1.5 backbones (ResNet-10 to ResNet-200) returning multi-level features."""

from __future__ import annotations

import keras

from official.core.registries import BACKBONES
from official.modeling.layers import BottleneckBlock, ConvNormAct, ResidualBlock

# model_id -> (block class, number of blocks in each of the four stages).
RESNET_SPECS = {
    10: (ResidualBlock, (1, 1, 1, 1)),
    18: (ResidualBlock, (2, 2, 2, 2)),
    34: (ResidualBlock, (3, 4, 6, 3)),
    50: (BottleneckBlock, (3, 4, 6, 3)),
    101: (BottleneckBlock, (3, 4, 23, 3)),
    152: (BottleneckBlock, (3, 8, 36, 3)),
    200: (BottleneckBlock, (3, 24, 36, 3)),
}
_STEM_FILTERS = 64
_STAGE_FILTERS = (64, 128, 256, 512)
_STAGE_STRIDES = (1, 2, 2, 2)
_MIN_FILTERS = 8


def scaled_filters(filters: int, width_multiplier: float) -> int:
    """`filters * width_multiplier`, rounded to an int and at least 8."""
    return max(_MIN_FILTERS, int(round(filters * width_multiplier)))


@BACKBONES.register("resnet")
@keras.saving.register_keras_serializable(package="official")
class ResNet(keras.Model):
    """ResNet v1.5 backbone: a functional model from images to feature maps.

    Stem: bias-free 7x7/2 convolution, batch normalization, relu, 3x3/2 max
    pooling. Then four stages of residual blocks (basic blocks for model_id
    10, 18 and 34, bottleneck blocks from 50 on) with strides 1, 2, 2, 2; in
    the v1.5 variant a bottleneck block strides on its 3x3 convolution. All
    convolutions use "same" padding.

    Args:
        model_id: int, depth; one of 10, 18, 34, 50, 101, 152, 200. Defaults
            to 50.
        width_multiplier: float, scales the channels of the stem and of every
            stage (rounded, at least 8). Defaults to 1.0.
        input_shape: tuple of 3 ints or None, `(height, width, channels)` of
            the input images. Defaults to `(None, None, 3)`.
        use_sync_bn: bool, synchronized batch normalization across replicas.
            Defaults to False.
        norm_momentum: float, batch normalization momentum. Defaults to 0.99.
        norm_epsilon: float, batch normalization epsilon. Defaults to 1e-3.
        kernel_initializer: str or `keras.initializers.Initializer`, for all
            convolution kernels. Defaults to "he_normal".
        **kwargs: base model arguments (`name`, `trainable`).

    Call arguments:
        inputs: float tensor of shape `(batch, height, width, channels)`,
            already normalized.
        training: bool, whether batch normalization uses batch statistics.

    Returns:
        A dict from level (a string, log2 of the stride) to feature map:
        `{"2": (batch, H/4, W/4, C2), "3": ..., "4": ..., "5": (batch, H/32,
        W/32, C5)}`, where `C5` is 512 (basic) or 2048 (bottleneck) times the
        width multiplier. `output_specs` holds the same shapes for the model's
        own input shape.

    Example:
    ```python
    import numpy as np
    from official.vision.backbones.resnet import ResNet

    backbone = ResNet(model_id=10, width_multiplier=0.25, input_shape=(32, 32, 3))
    features = backbone(np.ones((2, 32, 32, 3), "float32"))
    assert sorted(features) == ["2", "3", "4", "5"]
    assert tuple(features["5"].shape) == (2, 1, 1, 128)
    ```
    """

    def __init__(
        self,
        model_id=50,
        width_multiplier=1.0,
        input_shape=(None, None, 3),
        use_sync_bn=False,
        norm_momentum=0.99,
        norm_epsilon=1e-3,
        kernel_initializer="he_normal",
        **kwargs,
    ):
        # A list, not the dict: an unhashable model_id then fails here too.
        if model_id not in list(RESNET_SPECS):
            valid = ", ".join(str(k) for k in RESNET_SPECS)
            raise ValueError(
                f"`model_id` must be one of {valid}. Received: model_id={model_id!r}."
            )
        if width_multiplier <= 0:
            raise ValueError(
                "`width_multiplier` must be positive. Received: "
                f"width_multiplier={width_multiplier!r}."
            )
        block_cls, block_counts = RESNET_SPECS[model_id]
        initializer = keras.initializers.serialize(
            keras.initializers.get(kernel_initializer)
        )
        norm_args = dict(
            norm_momentum=norm_momentum,
            norm_epsilon=norm_epsilon,
            use_sync_bn=use_sync_bn,
            kernel_initializer=initializer,
        )

        # === Functional Model ===
        inputs = keras.Input(shape=tuple(input_shape), name="images")
        x = ConvNormAct(
            scaled_filters(_STEM_FILTERS, width_multiplier),
            kernel_size=7,
            strides=2,
            name="stem_conv",
            **norm_args,
        )(inputs)
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
        outputs = {}
        for stage, (filters, strides, count) in enumerate(
            zip(_STAGE_FILTERS, _STAGE_STRIDES, block_counts)
        ):
            level = stage + 2
            for i in range(count):
                x = block_cls(
                    scaled_filters(filters, width_multiplier),
                    strides=strides if i == 0 else 1,
                    name=f"level{level}_block{i + 1}",
                    **norm_args,
                )(x)
            outputs[str(level)] = x
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.model_id = model_id
        self.width_multiplier = width_multiplier
        self.use_sync_bn = use_sync_bn
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.output_specs = {k: tuple(v.shape) for k, v in outputs.items()}

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "model_id": self.model_id,
            "width_multiplier": self.width_multiplier,
            "input_shape": tuple(self.input_shape[1:]),
            "use_sync_bn": self.use_sync_bn,
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
