"""Builds text models from their configs."""

from __future__ import annotations

import keras

from official.nlp.configs.text_data import EncoderConfig
from official.nlp.encoders import ENCODERS


def build_encoder(encoder_config: EncoderConfig, vocab_size: int) -> keras.Model:
    """The configured encoder, sized for a vocabulary of `vocab_size` tokens."""
    cls = ENCODERS[encoder_config.type]
    return cls(vocab_size=vocab_size, **encoder_config.params)
