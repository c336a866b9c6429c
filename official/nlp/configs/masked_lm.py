"""Config of masked-LM pretraining."""

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
class MaskingConfig(Config):
    """BERT's masking: `mask_rate` of the WordPieces (not [CLS], [SEP],
    padding), at most `max_predictions_per_seq` per sequence; of those,
    `mask_token_rate` become [MASK], `random_token_rate` a random token, the
    rest stay (80/10/10)."""

    mask_rate: float = 0.15
    max_predictions_per_seq: int = 20
    mask_token_rate: float = 0.8
    random_token_rate: float = 0.1

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if not 0.0 < self.mask_rate < 1.0:
            raise ValueError(
                f"{where}.mask_rate must be in (0, 1). Received: {self.mask_rate}."
            )
        if self.max_predictions_per_seq < 1:
            raise ValueError(
                f"{where}.max_predictions_per_seq must be >= 1. Received: "
                f"{self.max_predictions_per_seq}."
            )
        rates = (self.mask_token_rate, self.random_token_rate)
        if min(rates) < 0 or sum(rates) > 1:
            raise ValueError(
                f"{where}.mask_token_rate + random_token_rate must be in [0, 1] "
                f"with both >= 0. Received: {rates}."
            )


@dataclasses.dataclass
class MaskedLMTaskConfig(TaskConfig):
    """Masked-LM pretraining of an encoder on a text corpus.

    The data's `text_a_key` (and `text_b_key`, when set) columns are
    tokenized, packed and masked on the fly.
    """

    encoder: EncoderConfig = dataclasses.field(default_factory=EncoderConfig)
    preprocessing: TextPreprocessingConfig = dataclasses.field(
        default_factory=TextPreprocessingConfig
    )
    masking: MaskingConfig = dataclasses.field(default_factory=MaskingConfig)
    train_data: TextDataConfig = dataclasses.field(
        default_factory=lambda: TextDataConfig(text_a_key="text", label_key="")
    )
    validation_data: TextDataConfig = dataclasses.field(
        default_factory=lambda: TextDataConfig(
            text_a_key="text", label_key="", is_training=False, drop_remainder=False
        )
    )
