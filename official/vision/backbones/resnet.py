"""ResNet v1.5 backbones (ResNet-10 to ResNet-200) returning multi-level features."""

from __future__ import annotations

import keras

from official.base.registries import BACKBONES
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
STEM_TYPES = ("v1", "deep")
OUTPUT_STRIDES = (8, 16, 32)
PADDINGS = ("same", "symmetric")


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
        stem_type: "v1" (7x7/2 conv) or "deep" (three 3x3 convs, ResNet-C/D
            and ResNet-RS). Defaults to "v1".
        resnetd_shortcut: bool, average-pool before strided projection
            shortcuts (ResNet-D). Defaults to False.
        se_ratio: float in [0, 1], squeeze-excitation in every block; 0 for
            none (ResNet-RS uses 0.25). Defaults to 0.0.
        stochastic_depth_rate: float in [0, 1), the drop rate of the last
            block, growing linearly from 0 over the blocks. Defaults to 0.0.
        output_stride: 8, 16 or 32; below 32, the last stages keep their
            resolution and dilate their 3x3 convolutions instead (DeepLab).
            Defaults to 32.
        padding: "same" (TensorFlow's: for even sizes a strided window's odd
            padding pixel goes after the image) or "symmetric" (PyTorch's, as
            in torchvision and keras-hub's ResNet: every strided convolution
            and the stem pool zero-pad `(k - 1) // 2` on every side). The
            weights are the same; the outputs differ. Defaults to "same".
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
        stem_type="v1",
        resnetd_shortcut=False,
        se_ratio=0.0,
        stochastic_depth_rate=0.0,
        output_stride=32,
        padding="same",
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
        if stem_type not in STEM_TYPES:
            raise ValueError(
                f"`stem_type` must be one of {', '.join(STEM_TYPES)}. "
                f"Received: stem_type={stem_type!r}."
            )
        if output_stride not in OUTPUT_STRIDES:
            raise ValueError(
                f"`output_stride` must be one of {', '.join(map(str, OUTPUT_STRIDES))}. "
                f"Received: output_stride={output_stride!r}."
            )
        if not 0.0 <= stochastic_depth_rate < 1.0:
            raise ValueError(
                "`stochastic_depth_rate` must be in [0, 1). Received: "
                f"stochastic_depth_rate={stochastic_depth_rate!r}."
            )
        if padding not in PADDINGS:
            raise ValueError(
                f"`padding` must be one of {', '.join(PADDINGS)}. "
                f"Received: padding={padding!r}."
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
            padding=padding,
        )

        # === Functional Model ===
        inputs = keras.Input(shape=tuple(input_shape), name="images")
        stem = scaled_filters(_STEM_FILTERS, width_multiplier)
        if stem_type == "v1":
            x = ConvNormAct(
                stem, kernel_size=7, strides=2, name="stem_conv", **norm_args
            )(inputs)
        else:
            # ResNet-C/D "deep" stem: three 3x3 convolutions (C/2, C/2, C).
            x = ConvNormAct(stem // 2, 3, strides=2, name="stem_conv1", **norm_args)(
                inputs
            )
            x = ConvNormAct(stem // 2, 3, name="stem_conv2", **norm_args)(x)
            x = ConvNormAct(stem, 3, name="stem_conv3", **norm_args)(x)
        if padding == "symmetric":
            # Zeros pad as well as -inf would: the input is a relu output.
            x = keras.layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        x = keras.layers.MaxPooling2D(
            3,
            strides=2,
            padding="same" if padding == "same" else "valid",
            name="stem_pool",
        )(x)
        outputs = {}
        total_blocks = sum(block_counts)
        block_index = 0
        stride, dilation = 4, 1
        for stage, (filters, strides, count) in enumerate(
            zip(_STAGE_FILTERS, _STAGE_STRIDES, block_counts)
        ):
            level = stage + 2
            if stride * strides > output_stride:
                # Past the output stride: keep the resolution, dilate instead.
                dilation *= strides
                strides = 1
            stride *= strides
            for i in range(count):
                block_index += 1
                x = block_cls(
                    scaled_filters(filters, width_multiplier),
                    strides=strides if i == 0 else 1,
                    dilation_rate=dilation,
                    se_ratio=se_ratio,
                    # Linear in depth, as in ResNet-RS.
                    stochastic_depth_rate=stochastic_depth_rate
                    * block_index
                    / total_blocks,
                    resnetd_shortcut=resnetd_shortcut,
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
        self.stem_type = stem_type
        self.resnetd_shortcut = resnetd_shortcut
        self.se_ratio = se_ratio
        self.stochastic_depth_rate = stochastic_depth_rate
        self.output_stride = output_stride
        self.padding = padding
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
            "stem_type": self.stem_type,
            "resnetd_shortcut": self.resnetd_shortcut,
            "se_ratio": self.se_ratio,
            "stochastic_depth_rate": self.stochastic_depth_rate,
            "output_stride": self.output_stride,
            "padding": self.padding,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
