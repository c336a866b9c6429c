"""Configs of the semantic segmentation task.

A model is a backbone returning multi-level features (`"2"` .. `"5"`, stride
`2**level`) and a head from the HEADS registry: `fcn`, `deeplabv3` (ASPP),
`deeplabv3plus` (ASPP + a decoder fusing low-level features) or `encnet`
(context encoding with its SE loss), optionally with an auxiliary FCN head
on level 4. `model.output_stride` (8, 16 or 32) is passed to backbones that
dilate their last stages (ResNet); the ASPP rates must suit it (the
published pairs: `[6, 12, 18]` at 16, `[12, 24, 36]` at 8).
"""

from __future__ import annotations

import dataclasses
import inspect

from official.base.config import Config
from official.core.experiment_config import DataConfig, TaskConfig
from official.vision.configs.image_classification import (
    BackboneConfig,
    check_classes_and_input_size,
)

HEAD_TYPES = ("fcn", "deeplabv3", "deeplabv3plus", "encnet")
OUTPUT_STRIDES = (8, 16, 32)
# Levels a head may read: the backbone returns "2" (stride 4) .. "5".
LEVELS = (2, 3, 4, 5)


def _resnet_backbone() -> BackboneConfig:
    return BackboneConfig("resnet", {"model_id": 101})


@dataclasses.dataclass
class SegmentationHeadConfig(Config):
    """The segmentation head (`type` is a HEADS registry name).

    `num_filters`: channels of the head's convolutions (ASPP branches, FCN
    and EncNet convolutions, the DeepLabV3+ decoder). `aspp_dilation_rates`
    and `aspp_image_pooling` configure the ASPP of `deeplabv3` and
    `deeplabv3plus`; `low_level` and `low_level_filters` the DeepLabV3+
    decoder (the level fused with the upsampled ASPP output and its 1x1
    projection); `num_convs` the 3x3 convolutions of `fcn`; `num_codewords`
    the codebook of `encnet`.
    """

    type: str = "deeplabv3"
    num_filters: int = 256
    dropout_rate: float = 0.1
    aspp_dilation_rates: list[int] = dataclasses.field(
        default_factory=lambda: [6, 12, 18]
    )
    aspp_image_pooling: bool = True
    low_level: int = 2
    low_level_filters: int = 48
    num_convs: int = 1
    num_codewords: int = 32

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if self.type not in HEAD_TYPES:
            raise ValueError(
                f"{where}.type must be one of {', '.join(HEAD_TYPES)}. "
                f"Received: {self.type!r}."
            )
        if self.num_filters < 1:
            raise ValueError(
                f"{where}.num_filters must be >= 1. Received: {self.num_filters}."
            )
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(
                f"{where}.dropout_rate must be in [0, 1). Received: {self.dropout_rate}."
            )
        if self.type.startswith("deeplab") and (
            not self.aspp_dilation_rates or min(self.aspp_dilation_rates) < 1
        ):
            raise ValueError(
                f"{where}.aspp_dilation_rates must be a non-empty list of ints >= 1 "
                f"for type={self.type!r} (e.g. [6, 12, 18] at output stride 16). "
                f"Received: {self.aspp_dilation_rates}."
            )
        if self.type == "deeplabv3plus":
            if self.low_level not in (2, 3):
                raise ValueError(
                    f"{where}.low_level must be 2 or 3 (stride 4 or 8 features "
                    f"for the DeepLabV3+ decoder). Received: {self.low_level}."
                )
            if self.low_level_filters < 1:
                raise ValueError(
                    f"{where}.low_level_filters must be >= 1. Received: "
                    f"{self.low_level_filters}."
                )
        if self.type == "fcn" and self.num_convs < 0:
            raise ValueError(
                f"{where}.num_convs must be >= 0. Received: {self.num_convs}."
            )
        if self.type == "encnet" and self.num_codewords < 1:
            raise ValueError(
                f"{where}.num_codewords must be >= 1. Received: {self.num_codewords}."
            )


@dataclasses.dataclass
class SemanticSegmentationModelConfig(Config):
    """Backbone + head (+ auxiliary FCN head); logits at the input size.

    `input_size` is `[height, width, channels]`: the training crop and the
    size served images are resized to (the model itself is fully
    convolutional). `output_stride` is the stride of the backbone's last
    level; below 32 it must be a backbone that dilates (has an
    `output_stride` argument). `aux_head` adds an FCN head on level
    `aux_level` (weighted by `losses.aux_loss_weight`, training only).
    """

    num_classes: int = 21
    input_size: list[int] = dataclasses.field(default_factory=lambda: [512, 512, 3])
    backbone: BackboneConfig = dataclasses.field(default_factory=_resnet_backbone)
    output_stride: int = 16
    head: SegmentationHeadConfig = dataclasses.field(
        default_factory=SegmentationHeadConfig
    )
    aux_head: bool = False
    aux_level: int = 4

    def validate(self, where: str = "") -> None:
        super().validate(where)
        check_classes_and_input_size(where, self.num_classes, self.input_size)
        if self.output_stride not in OUTPUT_STRIDES:
            raise ValueError(
                f"{where}.output_stride must be one of "
                f"{', '.join(map(str, OUTPUT_STRIDES))}. Received: {self.output_stride}."
            )
        if "output_stride" in self.backbone.params:
            raise ValueError(
                f"{where}.backbone.params.output_stride: set {where}.output_stride "
                f"instead (the segmentation model passes it to the backbone)."
            )
        import official.vision.backbones  # noqa: F401  (registers every backbone)
        from official.base.registries import BACKBONES

        backbone_cls = BACKBONES.get(self.backbone.type)
        accepts = inspect.signature(backbone_cls).parameters
        if self.output_stride != 32 and "output_stride" not in accepts:
            dilating = sorted(
                name
                for name, cls in BACKBONES.items()
                if "output_stride" in inspect.signature(cls).parameters
            )
            raise ValueError(
                f"{where}.output_stride={self.output_stride} needs a backbone that "
                f"dilates its last stages ({', '.join(dilating)}); backbone "
                f"{self.backbone.type!r} has output stride 32: set "
                f"{where}.output_stride=32 or change {where}.backbone.type."
            )
        validate_params = getattr(backbone_cls, "validate_params", None)
        if validate_params is not None:
            validate_params(
                self.backbone.params, tuple(self.input_size), f"{where}.backbone.params"
            )
        if self.aux_level not in LEVELS:
            raise ValueError(
                f"{where}.aux_level must be one of {', '.join(map(str, LEVELS))}. "
                f"Received: {self.aux_level}."
            )
        height, width, _ = self.input_size
        if height % self.output_stride or width % self.output_stride:
            raise ValueError(
                f"{where}.input_size {self.input_size[:2]} must be divisible by "
                f"output_stride={self.output_stride} so that features align with "
                f"pixels."
            )


@dataclasses.dataclass
class SegmentationDataConfig(DataConfig):
    """Segmentation tf.Examples: `image/encoded`, `image/segmentation/class/encoded`.

    Training: a random scale in `[aug_scale_min, aug_scale_max]`, then a
    random crop of the model's input size (padded with the ignore label where
    the scaled image is smaller) and, with `aug_rand_hflip`, a horizontal flip
    of image and mask together. Evaluation with `resize_eval_groundtruth`:
    image resized (bilinear) and mask resized (nearest) to the input size;
    without it, at full resolution: image and mask padded (bottom and right;
    the mask with the ignore label) to `groundtruth_padded_size`
    `[height, width]`, which must hold every image.
    """

    aug_scale_min: float = 0.5
    aug_scale_max: float = 2.0
    aug_rand_hflip: bool = True
    resize_eval_groundtruth: bool = True
    groundtruth_padded_size: list[int] = dataclasses.field(default_factory=list)

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if not 0.0 < self.aug_scale_min <= self.aug_scale_max:
            raise ValueError(
                f"{where}: need 0 < aug_scale_min <= aug_scale_max. Received: "
                f"aug_scale_min={self.aug_scale_min}, aug_scale_max={self.aug_scale_max}."
            )
        padded = self.groundtruth_padded_size
        if not self.is_training and not self.resize_eval_groundtruth:
            if len(padded) != 2 or min(padded) <= 0:
                raise ValueError(
                    f"{where}.groundtruth_padded_size must be [height, width] (at "
                    f"least the largest image) to evaluate at full resolution "
                    f"(resize_eval_groundtruth=false). Received: {padded}."
                )
        elif padded:
            raise ValueError(
                f"{where}.groundtruth_padded_size is only used by evaluation at full "
                f"resolution (is_training=false, resize_eval_groundtruth=false). "
                f"Received: {padded} with is_training={self.is_training}, "
                f"resize_eval_groundtruth={self.resize_eval_groundtruth}."
            )


@dataclasses.dataclass
class SegmentationLossConfig(Config):
    """Per-pixel softmax cross-entropy.

    Pixels labelled `ignore_label` count for nothing. `class_weights` (one
    per class, or empty for all 1) weight each pixel by its true class.
    `top_k_percent_pixels` < 1 keeps only that fraction of the batch's pixels
    with the highest loss (online hard example mining). `aux_loss_weight`
    weights the auxiliary head's loss, `se_loss_weight` EncNet's SE loss
    (which classes are present).
    """

    ignore_label: int = 255
    class_weights: list[float] = dataclasses.field(default_factory=list)
    top_k_percent_pixels: float = 1.0
    aux_loss_weight: float = 0.4
    se_loss_weight: float = 0.2

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if not 0.0 < self.top_k_percent_pixels <= 1.0:
            raise ValueError(
                f"{where}.top_k_percent_pixels must be in (0, 1]. Received: "
                f"{self.top_k_percent_pixels}."
            )
        if self.class_weights and min(self.class_weights) < 0:
            raise ValueError(
                f"{where}.class_weights must be >= 0. Received: {self.class_weights}."
            )
        for name in ("aux_loss_weight", "se_loss_weight"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"{where}.{name} must be >= 0. Received: {getattr(self, name)}."
                )


@dataclasses.dataclass
class SemanticSegmentationTaskConfig(TaskConfig):
    """The segmentation task: model, data, loss and export options.

    `class_names` (optional, one per class) name the per-class IoU metrics
    (`iou/NAME`) and the exported `labels.txt`; by default `class_0`, ...
    `export_logits` adds `logits` (at the input resolution) to the serving
    signatures' outputs.
    """

    model: SemanticSegmentationModelConfig = dataclasses.field(
        default_factory=SemanticSegmentationModelConfig
    )
    train_data: SegmentationDataConfig = dataclasses.field(
        default_factory=SegmentationDataConfig
    )
    validation_data: SegmentationDataConfig = dataclasses.field(
        default_factory=lambda: SegmentationDataConfig(
            is_training=False, drop_remainder=False
        )
    )
    losses: SegmentationLossConfig = dataclasses.field(
        default_factory=SegmentationLossConfig
    )
    class_names: list[str] = dataclasses.field(default_factory=list)
    export_logits: bool = False

    def validate(self, where: str = "") -> None:
        super().validate(where)
        num_classes = self.model.num_classes
        weights = self.losses.class_weights
        if weights and len(weights) != num_classes:
            raise ValueError(
                f"{where}.losses.class_weights needs one weight per class "
                f"(model.num_classes={num_classes}); received {len(weights)}."
            )
        if self.class_names and len(self.class_names) != num_classes:
            raise ValueError(
                f"{where}.class_names needs one name per class "
                f"(model.num_classes={num_classes}); received {len(self.class_names)}."
            )
        if 0 <= self.losses.ignore_label < num_classes:
            raise ValueError(
                f"{where}.losses.ignore_label={self.losses.ignore_label} is a class "
                f"index (num_classes={num_classes}); use a value outside "
                f"[0, {num_classes}), e.g. 255."
            )
        if self.model.aux_head and self.losses.aux_loss_weight <= 0:
            raise ValueError(
                f"{where}.losses.aux_loss_weight must be > 0 with model.aux_head=true "
                f"(0.4 in PSPNet / EncNet). Received: {self.losses.aux_loss_weight}."
            )
        if self.model.head.type == "deeplabv3plus":
            low = self.model.head.low_level
            if 2**low >= self.model.output_stride:
                raise ValueError(
                    f"{where}.model.head.low_level={low} (stride {2**low}) must be "
                    f"finer than the ASPP features (output_stride="
                    f"{self.model.output_stride}); use low_level=2."
                )
