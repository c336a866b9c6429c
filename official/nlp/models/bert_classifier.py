"""An encoder and a sentence-prediction head: packed ids to logits."""

from __future__ import annotations

import keras

from official.nlp.encoders.bert_encoder import INPUT_NAMES
from official.nlp.heads.sentence_prediction_head import SentencePredictionHead


@keras.saving.register_keras_serializable(package="official")
class BertClassifier(keras.Model):
    """Sentence (pair) classification or regression on a BERT encoder.

    Args:
        backbone: a `BertEncoder` (any model taking the three int32 inputs
            and returning `pooled_output`).
        num_classes: int, number of classes (1 for regression).
        dropout_rate: float in [0, 1), dropout before the head. Defaults to
            0.1.
        **kwargs: base model arguments (`name`, `trainable`).

    Call arguments:
        inputs: dict of int32 `(batch, length)` tensors `input_word_ids`,
            `input_mask`, `input_type_ids`.

    Returns:
        float `(batch, num_classes)` logits.

    Example:
    ```python
    import numpy as np
    from official.nlp.encoders import BertEncoder
    from official.nlp.models import BertClassifier

    encoder = BertEncoder(size="tiny", vocab_size=50, max_sequence_length=8,
                          num_layers=1)
    model = BertClassifier(encoder, num_classes=2)
    ids = np.array([[2, 5, 3, 0]], "int32")
    logits = model({"input_word_ids": ids, "input_mask": np.sign(ids),
                    "input_type_ids": np.zeros_like(ids)})
    assert tuple(logits.shape) == (1, 2)
    ```
    """

    def __init__(self, backbone, num_classes, dropout_rate=0.1, **kwargs):
        head = SentencePredictionHead(num_classes, dropout_rate, name="head")
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in INPUT_NAMES
        }
        logits = head(backbone(inputs)["pooled_output"])
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        self.backbone = backbone
        self.head = head
        self.num_classes = num_classes
        self.dropout_rate = dropout_rate

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "num_classes": self.num_classes,
            "dropout_rate": self.dropout_rate,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["backbone"], dict):
            config["backbone"] = keras.saving.deserialize_keras_object(
                config["backbone"]
            )
        return cls(**config)
