"""Config of sentence (pair) classification and regression."""

from __future__ import annotations

import dataclasses

from official.base.config import Config
from official.core.experiment_config import TaskConfig
from official.nlp.configs.text_data import (
    EncoderConfig,
    TextDataConfig,
    TextPreprocessingConfig,
)


@dataclasses.dataclass
class SentencePredictionModelConfig(Config):
    """`num_classes` >= 2 classifies; 1 regresses one score."""

    encoder: EncoderConfig = dataclasses.field(default_factory=EncoderConfig)
    num_classes: int = 2
    dropout_rate: float = 0.1

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if self.num_classes < 1:
            raise ValueError(
                f"{where}.num_classes must be >= 1 (1 = regression). Received: "
                f"{self.num_classes}."
            )
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(
                f"{where}.dropout_rate must be in [0, 1). Received: {self.dropout_rate}."
            )


@dataclasses.dataclass
class SentencePredictionTaskConfig(TaskConfig):
    """Classifies (or scores) one sentence or a sentence pair.

    `label_names` names the classes by id (exported to labels.txt and
    returned by the string signatures); labels in the data may be those
    names. `f1_average`: `binary` (the positive class is 1, two classes
    only) or `macro`.
    """

    model: SentencePredictionModelConfig = dataclasses.field(
        default_factory=SentencePredictionModelConfig
    )
    preprocessing: TextPreprocessingConfig = dataclasses.field(
        default_factory=TextPreprocessingConfig
    )
    train_data: TextDataConfig = dataclasses.field(default_factory=TextDataConfig)
    validation_data: TextDataConfig = dataclasses.field(
        default_factory=lambda: TextDataConfig(is_training=False, drop_remainder=False)
    )
    label_names: list[str] = dataclasses.field(default_factory=list)
    f1_average: str = "binary"

    @property
    def is_regression(self) -> bool:
        return self.model.num_classes == 1

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if self.label_names and len(self.label_names) != self.model.num_classes:
            raise ValueError(
                f"{where}.label_names has {len(self.label_names)} names but "
                f"{where}.model.num_classes is {self.model.num_classes}. Received: "
                f"label_names={self.label_names}."
            )
        if self.is_regression and self.label_names:
            raise ValueError(
                f"{where}.label_names must be empty for regression (num_classes=1)."
            )
        if self.f1_average not in ("binary", "macro"):
            raise ValueError(
                f"{where}.f1_average must be 'binary' or 'macro'. Received: "
                f"{self.f1_average!r}."
            )
        if self.f1_average == "binary" and self.model.num_classes > 2:
            raise ValueError(
                f"{where}.f1_average='binary' needs 2 classes; with "
                f"{self.model.num_classes} set {where}.f1_average=macro."
            )
        for name in ("train_data", "validation_data"):
            data = getattr(self, name)
            if bool(data.text_b_key) != bool(self.train_data.text_b_key):
                raise ValueError(
                    f"{where}.train_data and {where}.validation_data must both be "
                    f"single sentences or both pairs (text_b_key). Received: "
                    f"{self.train_data.text_b_key!r} and "
                    f"{self.validation_data.text_b_key!r}."
                )
