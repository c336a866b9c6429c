"""Configs of the RetinaNet object detection task.

A model is a backbone returning multi-level features (`"2"`..`"5"`), an FPN
decoder (P`min_level`..P`max_level`), the RetinaNet head and its anchors;
`detection_generator` turns its outputs into final detections, the same in
evaluation and in every export. Anchor matching (`matcher`) and the focal /
Huber losses (`losses`) are the task's.
"""

from __future__ import annotations

import dataclasses

from official.base.config import Config
from official.core.experiment_config import DataConfig, TaskConfig
from official.vision.configs.image_classification import (
    BackboneConfig,
    check_classes_and_input_size,
)

DECODER_TYPES = ("fpn",)
NMS_TYPES = ("per_class", "class_agnostic")


def _resnet50() -> BackboneConfig:
    return BackboneConfig("resnet", {"model_id": 50})


@dataclasses.dataclass
class AnchorConfig(Config):
    """Anchors per location: `num_scales` octave scales x `aspect_ratios`
    (width / height); `anchor_size` is the base side in strides of the level."""

    num_scales: int = 3
    aspect_ratios: list[float] = dataclasses.field(
        default_factory=lambda: [0.5, 1.0, 2.0]
    )
    anchor_size: float = 4.0

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if self.num_scales < 1:
            raise ValueError(
                f"{where}.num_scales must be >= 1. Received: {self.num_scales}."
            )
        if not self.aspect_ratios or min(self.aspect_ratios) <= 0:
            raise ValueError(
                f"{where}.aspect_ratios must be a non-empty list of positive "
                f"numbers. Received: {self.aspect_ratios}."
            )
        if self.anchor_size <= 0:
            raise ValueError(
                f"{where}.anchor_size must be > 0. Received: {self.anchor_size}."
            )


@dataclasses.dataclass
class DecoderConfig(Config):
    """The decoder: `fpn` (the only type), `num_filters` channels per level."""

    type: str = "fpn"
    num_filters: int = 256

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if self.type not in DECODER_TYPES:
            raise ValueError(
                f"{where}.type must be one of {', '.join(DECODER_TYPES)}. "
                f"Received: {self.type!r}."
            )
        if self.num_filters < 1:
            raise ValueError(
                f"{where}.num_filters must be >= 1. Received: {self.num_filters}."
            )


@dataclasses.dataclass
class RetinaNetHeadConfig(Config):
    """`num_convs` 3x3 convolutions of `num_filters` per subnet; the class
    bias starts at the logit of `prior_prob`."""

    num_convs: int = 4
    num_filters: int = 256
    prior_prob: float = 0.01

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if self.num_convs < 0 or self.num_filters < 1:
            raise ValueError(
                f"{where} needs num_convs >= 0 and num_filters >= 1. Received: "
                f"num_convs={self.num_convs}, num_filters={self.num_filters}."
            )
        if not 0.0 < self.prior_prob < 1.0:
            raise ValueError(
                f"{where}.prior_prob must be in (0, 1). Received: {self.prior_prob}."
            )


@dataclasses.dataclass
class DetectionGeneratorConfig(Config):
    """Post-processing (`official/vision/ops/detection_generator.py`).

    `pre_nms_top_k` (anchor, class) candidates, scores above
    `score_threshold`, suppression at `iou_threshold`, `nms_type` per_class
    or class_agnostic, at most `max_detections` per image.
    """

    pre_nms_top_k: int = 1000
    score_threshold: float = 0.05
    iou_threshold: float = 0.5
    max_detections: int = 100
    nms_type: str = "per_class"

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if self.nms_type not in NMS_TYPES:
            raise ValueError(
                f"{where}.nms_type must be one of {', '.join(NMS_TYPES)}. "
                f"Received: {self.nms_type!r}."
            )
        if self.pre_nms_top_k < 1 or self.max_detections < 1:
            raise ValueError(
                f"{where} needs pre_nms_top_k >= 1 and max_detections >= 1. Received: "
                f"pre_nms_top_k={self.pre_nms_top_k}, "
                f"max_detections={self.max_detections}."
            )
        if not 0.0 <= self.score_threshold < 1.0:
            raise ValueError(
                f"{where}.score_threshold must be in [0, 1). Received: "
                f"{self.score_threshold}."
            )
        if not 0.0 < self.iou_threshold <= 1.0:
            raise ValueError(
                f"{where}.iou_threshold must be in (0, 1]. Received: {self.iou_threshold}."
            )


@dataclasses.dataclass
class RetinaNetModelConfig(Config):
    """Backbone + FPN + RetinaNet head at `input_size` `[height, width, 3]`.

    `num_classes` counts class ids `0..num_classes-1` (COCO: 91, ids 1..90,
    0 never used). Levels `min_level`..`max_level` (the input size must be
    divisible by `2**max_level`). `box_coder_weights` (4 numbers, or empty
    for none) scale the box regression targets.
    """

    num_classes: int = 91
    input_size: list[int] = dataclasses.field(default_factory=lambda: [640, 640, 3])
    backbone: BackboneConfig = dataclasses.field(default_factory=_resnet50)
    min_level: int = 3
    max_level: int = 7
    anchor: AnchorConfig = dataclasses.field(default_factory=AnchorConfig)
    decoder: DecoderConfig = dataclasses.field(default_factory=DecoderConfig)
    head: RetinaNetHeadConfig = dataclasses.field(default_factory=RetinaNetHeadConfig)
    detection_generator: DetectionGeneratorConfig = dataclasses.field(
        default_factory=DetectionGeneratorConfig
    )
    box_coder_weights: list[float] = dataclasses.field(default_factory=list)

    def validate(self, where: str = "") -> None:
        super().validate(where)
        check_classes_and_input_size(where, self.num_classes, self.input_size)
        if self.input_size[2] != 3:
            raise ValueError(
                f"{where}.input_size must end with 3 channels (RGB). Received: "
                f"{self.input_size}."
            )
        if not 2 <= self.min_level <= 5 or self.max_level < self.min_level:
            raise ValueError(
                f"{where} needs 2 <= min_level <= 5 (a backbone level) and max_level "
                f">= min_level. Received: min_level={self.min_level}, "
                f"max_level={self.max_level}."
            )
        stride = 2**self.max_level
        if self.input_size[0] % stride or self.input_size[1] % stride:
            raise ValueError(
                f"{where}.input_size {self.input_size[:2]} must be divisible by "
                f"2**max_level = {stride} so that the pyramid levels line up."
            )
        if self.box_coder_weights and (
            len(self.box_coder_weights) != 4 or min(self.box_coder_weights) <= 0
        ):
            raise ValueError(
                f"{where}.box_coder_weights must be 4 positive numbers (e.g. [10, 10, "
                f"5, 5]) or empty. Received: {self.box_coder_weights}."
            )


@dataclasses.dataclass
class DetectionDataConfig(DataConfig):
    """Detection tf.Examples (`image/object/bbox/*`, `image/object/class/label`).

    Training: horizontal flips (`aug_rand_hflip`) and scale jitter: the image
    is resized to fit the input size times a random factor in
    `[aug_scale_min, aug_scale_max]`, then randomly cropped (and padded) to
    the input size; boxes follow and are clipped, and boxes left empty are
    dropped. Evaluation resizes to fit the input size and pads. Up to
    `max_num_boxes` boxes per image are kept (the rest dropped, in file
    order).
    """

    aug_rand_hflip: bool = True
    aug_scale_min: float = 1.0
    aug_scale_max: float = 1.0
    max_num_boxes: int = 100

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if not 0.0 < self.aug_scale_min <= self.aug_scale_max:
            raise ValueError(
                f"{where}: need 0 < aug_scale_min <= aug_scale_max. Received: "
                f"aug_scale_min={self.aug_scale_min}, aug_scale_max={self.aug_scale_max}."
            )
        if self.max_num_boxes < 1:
            raise ValueError(
                f"{where}.max_num_boxes must be >= 1. Received: {self.max_num_boxes}."
            )


@dataclasses.dataclass
class MatcherConfig(Config):
    """Anchor matching (`official/vision/ops/target_assigner.py`): IoU >=
    `match_threshold` is a positive, < `unmatched_threshold` a negative, in
    between ignored; `allow_low_quality_matches` gives every box its best
    anchor; negatives `crowd_ioa_threshold` inside a crowd box are ignored."""

    match_threshold: float = 0.5
    unmatched_threshold: float = 0.5
    allow_low_quality_matches: bool = True
    crowd_ioa_threshold: float = 0.5

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if not 0.0 < self.unmatched_threshold <= self.match_threshold <= 1.0:
            raise ValueError(
                f"{where} needs 0 < unmatched_threshold <= match_threshold <= 1. "
                f"Received: unmatched_threshold={self.unmatched_threshold}, "
                f"match_threshold={self.match_threshold}."
            )


@dataclasses.dataclass
class RetinaNetLossConfig(Config):
    """Focal loss (`focal_alpha`, `focal_gamma`) + `box_loss_weight` x Huber
    (`huber_delta`), both over the number of positive anchors."""

    focal_alpha: float = 0.25
    focal_gamma: float = 1.5
    huber_delta: float = 0.1
    box_loss_weight: float = 50.0

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if not 0.0 <= self.focal_alpha <= 1.0 or self.focal_gamma < 0:
            raise ValueError(
                f"{where} needs focal_alpha in [0, 1] and focal_gamma >= 0. Received: "
                f"focal_alpha={self.focal_alpha}, focal_gamma={self.focal_gamma}."
            )
        if self.huber_delta <= 0 or self.box_loss_weight < 0:
            raise ValueError(
                f"{where} needs huber_delta > 0 and box_loss_weight >= 0. Received: "
                f"huber_delta={self.huber_delta}, box_loss_weight={self.box_loss_weight}."
            )


@dataclasses.dataclass
class RetinaNetTaskConfig(TaskConfig):
    """The RetinaNet task: model, data, matching, losses and class names.

    `class_names` (optional, one per class id; COCO's has "" for unused ids)
    name the per-class APs and the exported `labels.txt`.
    """

    model: RetinaNetModelConfig = dataclasses.field(
        default_factory=RetinaNetModelConfig
    )
    train_data: DetectionDataConfig = dataclasses.field(
        default_factory=DetectionDataConfig
    )
    validation_data: DetectionDataConfig = dataclasses.field(
        default_factory=lambda: DetectionDataConfig(
            is_training=False, drop_remainder=False
        )
    )
    matcher: MatcherConfig = dataclasses.field(default_factory=MatcherConfig)
    losses: RetinaNetLossConfig = dataclasses.field(default_factory=RetinaNetLossConfig)
    class_names: list[str] = dataclasses.field(default_factory=list)

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if self.class_names and len(self.class_names) != self.model.num_classes:
            raise ValueError(
                f"{where}.class_names needs one name per class id "
                f"(model.num_classes={self.model.num_classes}); received "
                f"{len(self.class_names)}."
            )
