"""`SFTModel`: a keras-hub causal LM that also runs packed rows.

keras-hub's causal LMs take `{"token_ids", "padding_mask"}` and mask
attention causally. A packed row holds several examples one after the other;
each token must attend only to the earlier tokens of its own example.
`SFTModel` runs the keras-hub model unchanged for padded rows, and for packed
rows (`{"token_ids", "segment_ids", "positions"}`) walks the same backbone
layers itself, handing every decoder layer a segment mask
(`decoder_attention_mask`: same segment), which the layer combines with its
own causal mask. Learned absolute positions (GPT-2) restart at each example
(`positions`); rotary positions (Llama, Mistral, Qwen, SmolLM3) depend only
on the distance between tokens, so a packed example computes exactly what
it computes alone.

Example:
```python
import keras_hub
import numpy as np
from official.llm.models.sft_model import SFTModel

backbone = keras_hub.models.GPT2Backbone(
    vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8,
    intermediate_dim=16, max_sequence_length=16)
model = SFTModel(keras_hub.models.GPT2CausalLM(backbone))
ids = np.array([[5, 6, 7, 8, 9, 0]])
logits = model({
    "token_ids": ids,
    "segment_ids": np.array([[1, 1, 1, 2, 2, 0]]),
    "positions": np.array([[0, 1, 2, 0, 1, 0]]),
})  # -> (1, 6, 50)
```
"""

from __future__ import annotations

import keras

# Backbone classes whose decoder layers take `decoder_attention_mask` and
# whose forward pass `packed_logits` reproduces.
PACKABLE_BACKBONES = (
    "GPT2Backbone",
    "LlamaBackbone",
    "Llama3Backbone",
    "MistralBackbone",
    "QwenBackbone",
    "Qwen3Backbone",
    "SmolLM3Backbone",
)


def check_packable(causal_lm) -> None:
    """Raises naming the backbone when packed rows cannot run on it."""
    name = type(causal_lm.backbone).__name__
    if name not in PACKABLE_BACKBONES:
        raise ValueError(
            f"task.train_data.packing needs a backbone whose attention takes a "
            f"segment mask; {name} is not one of {', '.join(PACKABLE_BACKBONES)}. "
            f"Set task.train_data.packing=false (and validation_data's) to pad "
            f"each example instead."
        )


def segment_mask(segment_ids):
    """`[batch, length, length]` int32: 1 where query and key share a segment
    (padding, segment 0, attends to nothing)."""
    same = keras.ops.equal(segment_ids[:, :, None], segment_ids[:, None, :])
    real = keras.ops.not_equal(segment_ids, 0)[:, None, :]
    return keras.ops.cast(keras.ops.logical_and(same, real), "int32")


def packed_logits(causal_lm, token_ids, segment_ids, positions, training=False):
    """Logits of packed rows through `causal_lm`'s own layers."""
    backbone = causal_lm.backbone
    mask = segment_mask(segment_ids)
    x = backbone.token_embedding(token_ids)
    if type(backbone).__name__ == "GPT2Backbone":
        table = backbone.position_embedding.position_embeddings
        position_vectors = keras.ops.take(table, positions, axis=0)
        x = backbone.embeddings_add((x, keras.ops.cast(position_vectors, x.dtype)))
        x = backbone.embeddings_dropout(x, training=training)
    for layer in backbone.transformer_layers:
        x = layer(x, decoder_attention_mask=mask, training=training)
    norm = backbone.norm if hasattr(backbone, "norm") else backbone.layer_norm
    x = norm(x)
    return backbone.token_embedding(x, reverse=True)


class SFTModel(keras.Model):
    """A keras-hub `CausalLM` that runs padded or packed rows.

    Args:
        causal_lm: a keras-hub `CausalLM` (its preprocessor, if any, is kept
            for export but not used here).

    Call arguments:
        inputs: `{"token_ids", "padding_mask"}` (padded rows) or
            `{"token_ids", "segment_ids", "positions"}` (packed rows), int
            `[batch, length]`.

    Returns:
        Logits `[batch, length, vocabulary_size]`.
    """

    def __init__(self, causal_lm, **kwargs):
        super().__init__(**kwargs)
        self.causal_lm = causal_lm

    def call(self, inputs, training=False):
        if "segment_ids" in inputs:
            return packed_logits(
                self.causal_lm,
                inputs["token_ids"],
                inputs["segment_ids"],
                inputs["positions"],
                training=training,
            )
        return self.causal_lm(
            {"token_ids": inputs["token_ids"], "padding_mask": inputs["padding_mask"]},
            training=training,
        )
