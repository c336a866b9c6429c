"""Text models: an encoder with a head."""

from official.nlp.models.bert_classifier import BertClassifier
from official.nlp.models.bert_pretrainer import BertPretrainer

__all__ = ["BertClassifier", "BertPretrainer"]
