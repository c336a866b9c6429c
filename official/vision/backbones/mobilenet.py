"""MobileNetV2 and MobileNetV3 (small, large) backbones with a width multiplier."""

from __future__ import annotations

import math

import keras

from official.base.registries import BACKBONES
from official.modeling.layers import ConvNormAct, InvertedBottleneck, make_divisible

# One block per row: (kernel size, expand ratio, filters, strides, squeeze-
# excite, activation). Filters are for width multiplier 1; the expand ratios
# of MobileNetV3 give the published expanded widths (72 / 16 = 4.5, ...).
_V2_BLOCKS = [
    (3, e, f, s if i == 0 else 1, False, "relu6")
    for e, f, n, s in [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]
    for i in range(n)
]
_HS = "hard_swish"
_V3_LARGE_BLOCKS = [
    (3, 1, 16, 1, False, "relu"),
    (3, 4, 24, 2, False, "relu"),
    (3, 3, 24, 1, False, "relu"),
    (5, 3, 40, 2, True, "relu"),
    (5, 3, 40, 1, True, "relu"),
    (5, 3, 40, 1, True, "relu"),
    (3, 6, 80, 2, False, _HS),
    (3, 2.5, 80, 1, False, _HS),
    (3, 2.3, 80, 1, False, _HS),
    (3, 2.3, 80, 1, False, _HS),
    (3, 6, 112, 1, True, _HS),
    (3, 6, 112, 1, True, _HS),
    (5, 6, 160, 2, True, _HS),
    (5, 6, 160, 1, True, _HS),
    (5, 6, 160, 1, True, _HS),
]
_V3_SMALL_BLOCKS = [
    (3, 1, 16, 2, True, "relu"),
    (3, 72 / 16, 24, 2, False, "relu"),
    (3, 88 / 24, 24, 1, False, "relu"),
    (5, 4, 40, 2, True, _HS),
    (5, 6, 40, 1, True, _HS),
    (5, 6, 40, 1, True, _HS),
    (5, 3, 48, 1, True, _HS),
    (5, 3, 48, 1, True, _HS),
    (5, 6, 96, 2, True, _HS),
    (5, 6, 96, 1, True, _HS),
    (5, 6, 96, 1, True, _HS),
]

# model_id -> architecture. Stem: a 3x3/2 convolution with `stem_filters`
# (scaled by the width multiplier in V2 only). Top: a 1x1 convolution, 1280
# channels in V2 (scaled only by a multiplier > 1), 6x the last block's in V3.
MOBILENET_SPECS = {
    "MobileNetV2": dict(
        blocks=_V2_BLOCKS,
        stem_filters=32,
        scale_stem=True,
        activation="relu6",
        top_filters=1280,
        top_expand_ratio=None,
    ),
    "MobileNetV3Small": dict(
        blocks=_V3_SMALL_BLOCKS,
        stem_filters=16,
        scale_stem=False,
        activation=_HS,
        top_filters=None,
        top_expand_ratio=6,
        pre_logits_filters=1024,
    ),
    "MobileNetV3Large": dict(
        blocks=_V3_LARGE_BLOCKS,
        stem_filters=16,
        scale_stem=False,
        activation=_HS,
        top_filters=None,
        top_expand_ratio=6,
        pre_logits_filters=1280,
    ),
}
_DIVISOR = 8


@BACKBONES.register("mobilenet")
@keras.saving.register_keras_serializable(package="official")
class MobileNet(keras.Model):
    """MobileNetV2 (Sandler et al. 2018) and V3 (Howard et al. 2019) backbones.

    A 3x3/2 stem convolution, a stack of `InvertedBottleneck` blocks
    (V3: some with squeeze-excitation, ReLU or hard-swish), then the "top"
    1x1 convolution (1280 channels in V2; 960 in V3-Large, 576 in V3-Small),
    which belongs to level "5". All convolutions use "same" padding, are
    bias-free and followed by batch normalization. Channel counts follow
    keras.applications: `make_divisible(filters * width_multiplier, 8)`.

    With `ImageClassifier(backbone, 1000)` at 224 px, MobileNetV2 has
    3,504,872 trainable parameters, as keras.applications' MobileNetV2. The
    published V3 head pools first and then applies a 1x1 convolution with
    bias (1280 / 1024 channels, hard-swish) before the classifier: the
    backbone names it in `pre_logits_units` / `pre_logits_activation`, and
    `ImageClassifier` adds it as a dense layer after pooling, so V3-Large
    reaches 5,483,032 and V3-Small 2,542,856, as keras.applications. The
    backbones themselves equal keras.applications' `include_top=False` models.

    Args:
        model_id: str, one of "MobileNetV2", "MobileNetV3Small",
            "MobileNetV3Large". Defaults to "MobileNetV2".
        width_multiplier: float > 0, scales the channels of every block (and
            of the V2 stem; the V2 top only when > 1). Defaults to 1.0.
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
            already normalized (e.g. to [-1, 1]).
        training: bool, whether batch normalization uses batch statistics.

    Returns:
        A dict from level (a string, log2 of the stride) to the output of the
        last block at that stride: `{"2": (batch, H/4, W/4, C2), ..., "5":
        (batch, H/32, W/32, C5)}`, where "5" ends with the top convolution.
        `output_specs` holds the same shapes for the model's input shape.

    Example:
    ```python
    import numpy as np
    from official.vision.backbones.mobilenet import MobileNet

    backbone = MobileNet("MobileNetV3Small", width_multiplier=0.25,
                         input_shape=(32, 32, 3))
    features = backbone(np.ones((2, 32, 32, 3), "float32"))
    assert sorted(features) == ["2", "3", "4", "5"]
    assert tuple(features["5"].shape) == (2, 1, 1, 144)
    ```
    """

    def __init__(
        self,
        model_id="MobileNetV2",
        width_multiplier=1.0,
        input_shape=(None, None, 3),
        use_sync_bn=False,
        norm_momentum=0.99,
        norm_epsilon=1e-3,
        kernel_initializer="he_normal",
        **kwargs,
    ):
        self.validate_params(
            {"model_id": model_id, "width_multiplier": width_multiplier},
            tuple(input_shape),
            type(self).__name__,
        )
        spec = MOBILENET_SPECS[model_id]
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
            return make_divisible(filters * width_multiplier, _DIVISOR)

        # === Functional Model ===
        inputs = keras.Input(shape=tuple(input_shape), name="images")
        stem_filters = spec["stem_filters"]
        x = ConvNormAct(
            scaled(stem_filters) if spec["scale_stem"] else stem_filters,
            kernel_size=3,
            strides=2,
            activation=spec["activation"],
            name="stem_conv",
            **norm_args,
        )(inputs)
        stride = 2
        outputs = {}
        for i, (kernel, expand, filters, strides, se, act) in enumerate(spec["blocks"]):
            x = InvertedBottleneck(
                scaled(filters),
                expand_ratio=expand,
                kernel_size=kernel,
                strides=strides,
                se_ratio=0.25 if se else 0.0,
                se_ratio_of_expanded=True,
                divisible_by=_DIVISOR,
                activation=act,
                se_activation="relu",
                se_gate_activation="hard_sigmoid",
                name=f"block{i}",
                **norm_args,
            )(x)
            stride *= strides
            outputs[str(int(math.log2(stride)))] = x
        if spec["top_expand_ratio"]:
            top_filters = make_divisible(
                x.shape[-1] * spec["top_expand_ratio"], _DIVISOR
            )
        else:
            top_filters = spec["top_filters"]
            if width_multiplier > 1.0:
                top_filters = scaled(top_filters)
        x = ConvNormAct(
            top_filters,
            kernel_size=1,
            activation=spec["activation"],
            name="top_conv",
            **norm_args,
        )(x)
        outputs[str(int(math.log2(stride)))] = x
        outputs = {level: outputs[level] for level in ("2", "3", "4", "5")}
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.model_id = model_id
        self.width_multiplier = width_multiplier
        self.use_sync_bn = use_sync_bn
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.output_specs = {k: tuple(v.shape) for k, v in outputs.items()}
        # The V3 classifier's hidden layer after pooling (0: none).
        pre_logits = spec.get("pre_logits_filters") or 0
        if pre_logits and width_multiplier > 1.0:
            pre_logits = make_divisible(pre_logits * width_multiplier, _DIVISOR)
        self.pre_logits_units = pre_logits
        self.pre_logits_activation = spec["activation"]

    @classmethod
    def validate_params(cls, params: dict, input_shape: tuple, where: str) -> None:
        """Checks the values of a MobileNet's params (config validation).

        Args:
            params: dict of constructor arguments (without `input_shape`);
                only the keys present are checked.
            input_shape: tuple `(height, width, channels)` of the input; any
                size works, so it is not checked.
            where: str, dotted config path of `params` (e.g.
                "task.model.backbone.params"), prefixed to the messages.

        Raises:
            ValueError: an unknown `model_id` or a `width_multiplier` that is
                not a positive number.

        Example:
        ```python
        from official.vision.backbones.mobilenet import MobileNet

        MobileNet.validate_params({"width_multiplier": 0.75}, (224, 224, 3), "p")
        try:
            MobileNet.validate_params({"model_id": "MobileNetV1"}, (224, 224, 3), "p")
        except ValueError as e:
            assert "Received: model_id='MobileNetV1'" in str(e)
        ```
        """
        if "model_id" in params:
            model_id = params["model_id"]
            # A list, not the dict: an unhashable model_id then fails here too.
            if model_id not in list(MOBILENET_SPECS):
                raise ValueError(
                    f"{where}: `model_id` must be one of "
                    f"{', '.join(MOBILENET_SPECS)}. Received: model_id={model_id!r}."
                )
        if "width_multiplier" in params:
            width = params["width_multiplier"]
            if (
                isinstance(width, bool)
                or not isinstance(width, (int, float))
                or width <= 0
            ):
                raise ValueError(
                    f"{where}: `width_multiplier` must be a positive number, e.g. "
                    f"0.35, 0.5, 0.75, 1.0, 1.4. Received: width_multiplier={width!r}."
                )

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
