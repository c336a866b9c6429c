"""Configs of the image classification task."""

from __future__ import annotations

import dataclasses

from official.base.config import Config
from official.base.params_check import check_params
from official.core.experiment_config import DataConfig, TaskConfig


def check_classes_and_input_size(
    where: str, num_classes: int, input_size: list[int]
) -> None:
    """Raises ValueError unless `num_classes` >= 2 and `input_size` is
    `[height, width, channels]` of positive ints (image model configs)."""
    if num_classes < 2:
        raise ValueError(f"{where}.num_classes must be >= 2. Received: {num_classes}.")
    if len(input_size) != 3 or min(input_size) <= 0:
        raise ValueError(
            f"{where}.input_size must be [height, width, channels] of positive "
            f"ints. Received: {input_size}."
        )


@dataclasses.dataclass
class BackboneConfig(Config):
    """A backbone from the BACKBONES registry and its constructor arguments.

    `params` are checked against the registered class's `__init__` signature
    when the config is validated (the signature is the schema). The input
    shape comes from the model config, not from `params`.
    """

    type: str = "resnet"
    params: dict = dataclasses.field(default_factory=lambda: {"model_id": 50})

    def validate(self, where: str = "") -> None:
        super().validate(where)
        import official.vision.backbones  # noqa: F401  (registers every backbone)
        from official.base.registries import BACKBONES

        try:
            cls = BACKBONES.get(self.type)
        except KeyError as e:
            raise KeyError(f"{where}.type: {e.args[0]}") from None
        check_params(cls, self.params, f"{where}.params", reserved=("input_shape",))


@dataclasses.dataclass
class ImageClassificationModelConfig(Config):
    """`input_size` is `[height, width, channels]` of the model's input.

    `num_classes` = 0 lets the training image folder decide (its class
    sub-folders), when the config is loaded: see
    `ImageClassificationTaskConfig.resolve_from_data`.
    """

    num_classes: int = 1000
    input_size: list[int] = dataclasses.field(default_factory=lambda: [224, 224, 3])
    backbone: BackboneConfig = dataclasses.field(default_factory=BackboneConfig)
    dropout_rate: float = 0.0

    def validate(self, where: str = "") -> None:
        super().validate(where)
        # 0 = from the image folder; the task config checks that there is one.
        check_classes_and_input_size(where, self.num_classes or 2, self.input_size)
        import official.vision.backbones  # noqa: F401  (registers every backbone)
        from official.base.registries import BACKBONES

        # Checks that need the input size (e.g. a ViT patch that must divide it).
        backbone_cls = BACKBONES.get(self.backbone.type)
        validate_params = getattr(backbone_cls, "validate_params", None)
        if validate_params is not None:
            validate_params(
                self.backbone.params, tuple(self.input_size), f"{where}.backbone.params"
            )
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(
                f"{where}.dropout_rate must be in [0, 1). Received: {self.dropout_rate}."
            )


@dataclasses.dataclass
class ClassificationDataConfig(DataConfig):
    """ImageNet-format tf.Examples (`image/encoded`, `image/class/label`).

    Training: random resized crop covering `crop_area_range` of the image (when
    `aug_random_crop`) and a horizontal flip (when `aug_rand_hflip`). Evaluation:
    a center crop of `center_crop_fraction`, resized to the model's input.
    """

    aug_random_crop: bool = True
    crop_area_range: list[float] = dataclasses.field(
        default_factory=lambda: [0.08, 1.0]
    )
    aug_rand_hflip: bool = True
    center_crop_fraction: float = 0.875
    # Training augmentation policy: "" (none), "autoaugment_v0" or
    # "randaugment" (`randaug_num_layers` ops at `randaug_magnitude`, 0..10).
    aug_policy: str = ""
    randaug_num_layers: int = 2
    randaug_magnitude: float = 10.0
    # Brightness, contrast and saturation factors drawn in [1 - s, 1 + s].
    color_jitter: float = 0.0
    # [min, max] scale of the output size: training resizes by a random
    # scale, then crops or pads to the output size (replaces the random crop).
    scale_jitter_range: list[float] = dataclasses.field(default_factory=list)
    # Probability of erasing one random rectangle (filled with noise).
    random_erasing_prob: float = 0.0
    # Batch-level mixup / cutmix (Beta(alpha, alpha) mixing; 0 = off). With
    # either on, training labels are soft one-hot float32 [batch, classes].
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0

    def validate(self, where: str = "") -> None:
        super().validate(where)
        lo_hi = self.crop_area_range
        if len(lo_hi) != 2 or not 0.0 < lo_hi[0] <= lo_hi[1] <= 1.0:
            raise ValueError(
                f"{where}.crop_area_range must be [min, max] with 0 < min <= max <= 1. "
                f"Received: {lo_hi}."
            )
        if not 0.0 < self.center_crop_fraction <= 1.0:
            raise ValueError(
                f"{where}.center_crop_fraction must be in (0, 1]. Received: "
                f"{self.center_crop_fraction}."
            )
        self._validate_augmentation(where)

    def _validate_augmentation(self, where: str) -> None:
        from official.vision.dataloaders.augment import autoaugment

        if self.aug_policy not in autoaugment.POLICIES:
            raise ValueError(
                f"{where}.aug_policy must be one of "
                f"{', '.join(repr(p) for p in autoaugment.POLICIES)}. Received: "
                f"{self.aug_policy!r}."
            )
        if self.randaug_num_layers < 1:
            raise ValueError(
                f"{where}.randaug_num_layers must be >= 1. Received: "
                f"{self.randaug_num_layers}."
            )
        if not 0.0 <= self.randaug_magnitude <= autoaugment.MAX_LEVEL:
            raise ValueError(
                f"{where}.randaug_magnitude must be in [0, {autoaugment.MAX_LEVEL:g}]. "
                f"Received: {self.randaug_magnitude}."
            )
        if not 0.0 <= self.color_jitter <= 1.0:
            raise ValueError(
                f"{where}.color_jitter must be in [0, 1]. Received: {self.color_jitter}."
            )
        scale = self.scale_jitter_range
        if scale and (len(scale) != 2 or not 0.0 < scale[0] <= scale[1]):
            raise ValueError(
                f"{where}.scale_jitter_range must be [] or [min, max] with "
                f"0 < min <= max. Received: {scale}."
            )
        if scale and self.is_training and self.aug_random_crop:
            raise ValueError(
                f"{where}: scale_jitter_range and aug_random_crop both choose the "
                f"training crop; set {where}.aug_random_crop=false to use scale "
                f"jitter. Received: scale_jitter_range={scale}."
            )
        if not 0.0 <= self.random_erasing_prob <= 1.0:
            raise ValueError(
                f"{where}.random_erasing_prob must be in [0, 1]. Received: "
                f"{self.random_erasing_prob}."
            )
        for name, alpha in (
            ("mixup_alpha", self.mixup_alpha),
            ("cutmix_alpha", self.cutmix_alpha),
        ):
            if alpha < 0.0:
                raise ValueError(f"{where}.{name} must be >= 0. Received: {alpha}.")


@dataclasses.dataclass
class ClassificationLossConfig(Config):
    label_smoothing: float = 0.0

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(
                f"{where}.label_smoothing must be in [0, 1). Received: {self.label_smoothing}."
            )


@dataclasses.dataclass
class ImageClassificationTaskConfig(TaskConfig):
    model: ImageClassificationModelConfig = dataclasses.field(
        default_factory=ImageClassificationModelConfig
    )
    train_data: ClassificationDataConfig = dataclasses.field(
        default_factory=ClassificationDataConfig
    )
    validation_data: ClassificationDataConfig = dataclasses.field(
        default_factory=lambda: ClassificationDataConfig(
            is_training=False, drop_remainder=False
        )
    )
    losses: ClassificationLossConfig = dataclasses.field(
        default_factory=ClassificationLossConfig
    )
    top_k: int = 5

    def validate(self, where: str = "") -> None:
        super().validate(where)
        num_classes = self.model.num_classes
        if num_classes == 0 and self.train_data.input_format != "image_folder":
            raise ValueError(
                f"{where}.model.num_classes=0 takes the classes from the class "
                f"folders of an image folder, but {where}.train_data.input_format="
                f"{self.train_data.input_format!r}. Set {where}.model.num_classes, "
                f"or {where}.train_data.input_format=image_folder."
            )
        if num_classes and not 1 <= self.top_k <= num_classes:
            raise ValueError(
                f"{where}.top_k must be in [1, num_classes={num_classes}]. "
                f"Received: {self.top_k}. Hint: {where}.top_k={min(5, num_classes)}."
            )

    def resolve_from_data(self) -> list[str]:
        """Takes what is left at 0 from the training image folder.

        With `train_data.input_format=image_folder`: `model.num_classes` = 0
        becomes the number of class sub-folders (and `top_k` is clamped to
        it), `train_data.num_examples` = 0 the number of training images, so
        durations in epochs count epochs of this folder. The validation
        folder must have the same class sub-folders (labels are positions in
        the sorted class names of each split). Called by the config loader
        before epochs become steps; values already set are kept, so a
        `params.yaml` reloads without reading the folders.

        Returns:
            One line per field set, for the log.

        Raises:
            FileNotFoundError: a folder is missing or holds no image.
            ConfigError: the validation folder's classes differ.

        Example:
        ```python
        import os, tempfile
        from official.vision.configs.image_classification import (
            ImageClassificationTaskConfig)

        root = tempfile.mkdtemp()
        for split, name in [("train", "cat/1.png"), ("train", "dog/2.png"),
                            ("train", "dog/3.png"), ("val", "cat/4.png"),
                            ("val", "dog/5.png")]:
            os.makedirs(os.path.join(root, split, os.path.dirname(name)), exist_ok=True)
            open(os.path.join(root, split, name), "wb").close()
        task = ImageClassificationTaskConfig()
        task.model.num_classes = 0
        task.train_data.num_examples = 0
        for data, split in ((task.train_data, "train"), (task.validation_data, "val")):
            data.input_format = "image_folder"
            data.input_path = os.path.join(root, split)
        notes = task.resolve_from_data()
        assert (task.model.num_classes, task.top_k, task.train_data.num_examples) == (2, 2, 3)
        assert len(notes) == 3 and task.resolve_from_data() == []
        ```
        """
        train = self.train_data
        wants_classes = self.model.num_classes == 0
        wants_size = train.num_examples == 0
        if not (
            train.input_format == "image_folder"
            and train.input_path
            and (wants_classes or wants_size)
        ):
            return []
        from official.core import input_files

        folders = input_files.list_image_folders(
            input_files.split_patterns(train.input_path)
        )
        names = folders[0].class_names
        notes = []
        if wants_classes:
            self._check_validation_classes(names)
            self.model.num_classes = len(names)
            shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
            notes.append(
                f"task.model.num_classes={len(names)} from the class folders of "
                f"task.train_data.input_path ({shown})."
            )
            if self.top_k > len(names):
                self.top_k = len(names)
                notes.append(f"task.top_k={len(names)} (at most num_classes).")
        if wants_size:
            train.num_examples = sum(len(folder.paths) for folder in folders)
            notes.append(
                f"task.train_data.num_examples={train.num_examples} images in "
                f"task.train_data.input_path."
            )
        return notes

    def _check_validation_classes(self, names: list[str]) -> None:
        data = self.validation_data
        if data.input_format != "image_folder" or not data.input_path:
            return
        from official.base.config import ConfigError
        from official.core import input_files

        found = input_files.list_image_folders(
            input_files.split_patterns(data.input_path)
        )[0].class_names
        if found != names:
            raise ConfigError(
                "task.validation_data.input_path must have the class folders of "
                f"task.train_data.input_path (labels follow their sorted names). "
                f"Training: {names}; validation: {found}."
            )
