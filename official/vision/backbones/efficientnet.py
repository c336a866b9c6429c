"""EfficientNet B0-B7 backbones: compound scaling of width, depth and resolution."""

from __future__ import annotations

import math

import keras

from official.base.registries import BACKBONES
from official.modeling.layers import ConvNormAct, InvertedBottleneck, make_divisible

# The B0 stages: (kernel size, repeats, input filters, output filters, expand
# ratio, strides of the first block). Every block has squeeze-excitation 0.25.
_B0_STAGES = (
    (3, 1, 32, 16, 1, 1),
    (3, 2, 16, 24, 6, 2),
    (5, 2, 24, 40, 6, 2),
    (3, 3, 40, 80, 6, 2),
    (5, 3, 80, 112, 6, 1),
    (5, 4, 112, 192, 6, 2),
    (3, 1, 192, 320, 6, 1),
)
_STEM_FILTERS = 32
_TOP_FILTERS = 1280
_DIVISOR = 8

# model_id -> (width coefficient, depth coefficient, input resolution in px,
# dropout rate before the classifier), as published (Tan & Le 2019).
EFFICIENTNET_SPECS = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
}


@BACKBONES.register("efficientnet")
@keras.saving.register_keras_serializable(package="official")
class EfficientNet(keras.Model):
    """EfficientNet backbone (Tan & Le 2019), variants B0 to B7.

    A 3x3/2 stem convolution, seven stages of `InvertedBottleneck` (MBConv)
    blocks with squeeze-excitation 0.25 and swish, then the "top" 1x1
    convolution (1280 channels at B0), which belongs to level "5". A variant
    scales B0's channels by its width coefficient (rounded to multiples of 8)
    and each stage's number of blocks by its depth coefficient (rounded up).
    Convolutions use "same" padding, are bias-free and followed by batch
    normalization. Stochastic depth grows linearly over the blocks, from 0 to
    `stochastic_depth_rate` (the published recipe uses 0.2).

    The published input resolution and classifier dropout of each variant
    (`EFFICIENTNET_SPECS`): b0 224 px / 0.2, b1 240 / 0.2, b2 260 / 0.3,
    b3 300 / 0.3, b4 380 / 0.4, b5 456 / 0.4, b6 528 / 0.5, b7 600 / 0.5. The
    backbone accepts any size; set the experiment's `input_size` and
    `dropout_rate` to match. With `ImageClassifier(backbone, 1000)`, B0 has
    5,288,548 trainable parameters, as keras.applications' EfficientNetB0.

    Args:
        model_id: str, one of "b0" ... "b7". Defaults to "b0".
        width_coefficient: float > 0 or None, overrides the model_id's width
            coefficient (for small test and toy models). Defaults to None.
        depth_coefficient: float > 0 or None, overrides the model_id's depth
            coefficient (for small test and toy models). Defaults to None.
        stochastic_depth_rate: float in [0, 1), drop rate of the last block's
            residual branch; earlier blocks get proportionally less. Defaults
            to 0.0.
        input_shape: tuple of 3 ints or None, `(height, width, channels)` of
            the input images. Defaults to `(None, None, 3)`.
        use_sync_bn: bool, synchronized batch normalization across replicas.
            Defaults to False.
        norm_momentum: float, batch normalization momentum. Defaults to 0.99.
        norm_epsilon: float, batch normalization epsilon. Defaults to 1e-3.
        kernel_initializer: str or `keras.initializers.Initializer`, for all
            kernels. Defaults to "he_normal".
        **kwargs: base model arguments (`name`, `trainable`).

    Call arguments:
        inputs: float tensor of shape `(batch, height, width, channels)`,
            already normalized.
        training: bool, whether batch normalization uses batch statistics and
            stochastic depth is active.

    Returns:
        A dict from level (a string, log2 of the stride) to the output of the
        last block at that stride: `{"2": (batch, H/4, W/4, C2), ..., "5":
        (batch, H/32, W/32, C5)}`, where "5" ends with the top convolution.
        `output_specs` holds the same shapes for the model's input shape.

    Example:
    ```python
    import numpy as np
    from official.vision.backbones.efficientnet import EfficientNet

    backbone = EfficientNet("b0", stochastic_depth_rate=0.2, input_shape=(32, 32, 3))
    features = backbone(np.ones((1, 32, 32, 3), "float32"))
    assert [tuple(features[k].shape)[1:] for k in ("2", "5")] == [
        (8, 8, 24), (1, 1, 1280)]
    ```
    """

    def __init__(
        self,
        model_id="b0",
        width_coefficient=None,
        depth_coefficient=None,
        stochastic_depth_rate=0.0,
        input_shape=(None, None, 3),
        use_sync_bn=False,
        norm_momentum=0.99,
        norm_epsilon=1e-3,
        kernel_initializer="he_normal",
        **kwargs,
    ):
        self.validate_params(
            {
                "model_id": model_id,
                "width_coefficient": width_coefficient,
                "depth_coefficient": depth_coefficient,
                "stochastic_depth_rate": stochastic_depth_rate,
            },
            tuple(input_shape),
            type(self).__name__,
        )
        width, depth, _, _ = EFFICIENTNET_SPECS[model_id]
        width = width if width_coefficient is None else width_coefficient
        depth = depth if depth_coefficient is None else depth_coefficient
        initializer = keras.initializers.serialize(
            keras.initializers.get(kernel_initializer)
        )
        norm_args = dict(
            norm_momentum=norm_momentum,
            norm_epsilon=norm_epsilon,
            use_sync_bn=use_sync_bn,
            kernel_initializer=initializer,
        )

        def scaled(filters):
            return make_divisible(filters * width, _DIVISOR)

        repeats = [int(math.ceil(depth * stage[1])) for stage in _B0_STAGES]
        num_blocks = sum(repeats)

        # === Functional Model ===
        inputs = keras.Input(shape=tuple(input_shape), name="images")
        x = ConvNormAct(
            scaled(_STEM_FILTERS),
            kernel_size=3,
            strides=2,
            activation="swish",
            name="stem_conv",
            **norm_args,
        )(inputs)
        stride = 2
        outputs = {}
        block = 0
        for stage, (kernel, _, _, filters, expand, strides) in enumerate(_B0_STAGES):
            for i in range(repeats[stage]):
                x = InvertedBottleneck(
                    scaled(filters),
                    expand_ratio=expand,
                    kernel_size=kernel,
                    strides=strides if i == 0 else 1,
                    se_ratio=0.25,
                    activation="swish",
                    se_activation="swish",
                    se_gate_activation="sigmoid",
                    stochastic_depth_rate=stochastic_depth_rate * block / num_blocks,
                    name=f"stage{stage + 1}_block{i + 1}",
                    **norm_args,
                )(x)
                block += 1
            stride *= strides
            outputs[str(int(math.log2(stride)))] = x
        x = ConvNormAct(
            scaled(_TOP_FILTERS),
            kernel_size=1,
            activation="swish",
            name="top_conv",
            **norm_args,
        )(x)
        outputs["5"] = x
        outputs = {level: outputs[level] for level in ("2", "3", "4", "5")}
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.model_id = model_id
        self.width_coefficient = width_coefficient
        self.depth_coefficient = depth_coefficient
        self.stochastic_depth_rate = stochastic_depth_rate
        self.use_sync_bn = use_sync_bn
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.output_specs = {k: tuple(v.shape) for k, v in outputs.items()}

    @classmethod
    def validate_params(cls, params: dict, input_shape: tuple, where: str) -> None:
        """Checks the values of an EfficientNet's params (config validation).

        Args:
            params: dict of constructor arguments (without `input_shape`);
                only the keys present are checked.
            input_shape: tuple `(height, width, channels)` of the input; any
                size works (the variant's published size is only documented),
                so it is not checked.
            where: str, dotted config path of `params` (e.g.
                "task.model.backbone.params"), prefixed to the messages.

        Raises:
            ValueError: an unknown `model_id`, a coefficient that is not a
                positive number, or a `stochastic_depth_rate` outside [0, 1).

        Example:
        ```python
        from official.vision.backbones.efficientnet import EfficientNet

        EfficientNet.validate_params({"model_id": "b3"}, (300, 300, 3), "p")
        try:
            EfficientNet.validate_params({"model_id": "b8"}, (224, 224, 3), "p")
        except ValueError as e:
            assert "b0, b1, b2, b3, b4, b5, b6, b7" in str(e)
        ```
        """
        if "model_id" in params:
            model_id = params["model_id"]
            # A list, not the dict: an unhashable model_id then fails here too.
            if model_id not in list(EFFICIENTNET_SPECS):
                raise ValueError(
                    f"{where}: `model_id` must be one of "
                    f"{', '.join(EFFICIENTNET_SPECS)}. Received: model_id={model_id!r}."
                )
        for key in ("width_coefficient", "depth_coefficient"):
            value = params.get(key)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or value <= 0
            ):
                raise ValueError(
                    f"{where}: `{key}` must be a positive number or None (the "
                    f"model_id's value). Received: {key}={value!r}."
                )
        if "stochastic_depth_rate" in params:
            rate = params["stochastic_depth_rate"]
            if (
                isinstance(rate, bool)
                or not isinstance(rate, (int, float))
                or not 0.0 <= rate < 1.0
            ):
                raise ValueError(
                    f"{where}: `stochastic_depth_rate` must be a number in [0, 1). "
                    f"Received: stochastic_depth_rate={rate!r}."
                )

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "model_id": self.model_id,
            "width_coefficient": self.width_coefficient,
            "depth_coefficient": self.depth_coefficient,
            "stochastic_depth_rate": self.stochastic_depth_rate,
            "input_shape": tuple(self.input_shape[1:]),
            "use_sync_bn": self.use_sync_bn,
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
