"""Text heads: `from official.nlp.heads import MaskedLMHead`."""

from official.nlp.heads.masked_lm_head import MaskedLMHead
from official.nlp.heads.sentence_prediction_head import SentencePredictionHead

__all__ = ["MaskedLMHead", "SentencePredictionHead"]
