"""An encoder with BERT's masked-LM head (tied to the word embeddings)."""

from __future__ import annotations

import keras

from official.nlp.encoders.bert_encoder import INPUT_NAMES
from official.nlp.heads.masked_lm_head import MaskedLMHead


@keras.saving.register_keras_serializable(package="official")
class BertPretrainer(keras.Model):
    """Masked-LM pretraining model: encoder + `MaskedLMHead`.

    A subclassed model (not functional), so that the head reads the
    encoder's word-embedding variable at every call.

    Args:
        backbone: a `BertEncoder` (with a `word_embeddings` layer).
        **kwargs: base model arguments (`name`, `trainable`).

    Call arguments:
        inputs: dict with the encoder's three int32 `(batch, length)` inputs
            and `masked_lm_positions` int32 `(batch, num_predictions)`.

    Returns:
        float `(batch, num_predictions, vocab_size)` logits.

    Example:
    ```python
    import numpy as np
    from official.nlp.encoders import BertEncoder
    from official.nlp.models import BertPretrainer

    encoder = BertEncoder(size="tiny", vocab_size=50, max_sequence_length=8,
                          num_layers=1)
    model = BertPretrainer(encoder)
    ids = np.array([[2, 5, 4, 3]], "int32")
    logits = model({"input_word_ids": ids, "input_mask": np.ones_like(ids),
                    "input_type_ids": np.zeros_like(ids),
                    "masked_lm_positions": np.array([[2]], "int32")})
    assert tuple(logits.shape) == (1, 1, 50)
    ```
    """

    def __init__(self, backbone, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.head = MaskedLMHead(backbone.vocab_size, name="masked_lm")
        self.head.build((None, None, backbone.output_width))
        self.built = True

    def call(self, inputs, training=None):
        encoded = self.backbone(
            {name: inputs[name] for name in INPUT_NAMES}, training=training
        )
        # The word embeddings are read at every call: the output layer is
        # tied to them and trains with them.
        return self.head(
            encoded["sequence_output"],
            inputs["masked_lm_positions"],
            self.backbone.word_embeddings.embeddings,
        )

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["backbone"], dict):
            config["backbone"] = keras.saving.deserialize_keras_object(
                config["backbone"]
            )
        return cls(**config)
