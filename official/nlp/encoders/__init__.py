"""Text encoders: `from official.nlp.encoders import BertEncoder`."""

from official.nlp.encoders.bert_encoder import BERT_SIZES, INPUT_NAMES, BertEncoder

# `EncoderConfig.type` -> encoder class.
ENCODERS = {"bert": BertEncoder}

__all__ = ["BERT_SIZES", "ENCODERS", "INPUT_NAMES", "BertEncoder"]
