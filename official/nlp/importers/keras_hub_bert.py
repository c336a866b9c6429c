"""A keras-hub BERT preset directory -> Garden's `BertEncoder` and vocabulary.

A preset directory is what keras-hub's `save_to_preset` writes (and what a
downloaded Kaggle/HF preset holds): `config.json` (the `BertBackbone`'s
arguments), `model.weights.h5` and the tokenizer (`tokenizer.json`,
`assets/tokenizer/vocabulary.txt`). keras-hub reads it (extra `hub`, no
download for a local directory); its weights are then copied by layer onto a
`BertEncoder` of the same size:

| keras-hub `BertBackbone` | Garden `BertEncoder` |
|---|---|
| token_embedding | word_embeddings |
| position_embedding | position_embeddings |
| segment_embedding | type_embeddings |
| embeddings_layer_norm | embedding_norm |
| transformer_layer_i: self-attention, its layer norm | block{i+1}: attention, attention_norm |
| feedforward intermediate / output dense, layer norm | mlp_dense1 / mlp_dense2, mlp_norm |
| pooled_dense | pooler |

Both are post-norm BERT with the tanh GELU and layer-norm epsilon 1e-12, so
the outputs agree to float32 rounding.
"""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np

from official.nlp.encoders.bert_encoder import BERT_SIZES, BertEncoder
from official.nlp.tokenization.vocabulary import SPECIAL_TOKENS, check_vocabulary


@dataclasses.dataclass
class ImportedBert:
    """What `import_bert_preset` returns.

    Attributes:
        encoder: the Garden `BertEncoder` holding the preset's weights.
        encoder_params: `task.model.encoder.params` that rebuild it.
        vocabulary: the WordPiece tokens (index = id).
        lower_case: whether the preset's tokenizer lower-cases.
        source: the keras-hub backbone the weights came from.
    """

    encoder: BertEncoder
    encoder_params: dict
    vocabulary: list[str]
    lower_case: bool
    source: keras.Model


def _keras_hub():
    try:
        import keras_hub
    except ImportError as e:  # pragma: no cover - the hub extra installs it.
        raise ImportError(
            "Importing a keras-hub preset needs keras-hub: pip install 'garden[hub]'."
        ) from e
    return keras_hub


def encoder_params_of(config: dict) -> dict:
    """`BertEncoder` arguments equal to a keras-hub `BertBackbone` config:
    a named size when its shape is one, else explicit sizes."""
    shape = (
        int(config["hidden_dim"]),
        int(config["num_layers"]),
        int(config["num_heads"]),
        int(config["intermediate_dim"]),
    )
    named = [name for name, sizes in BERT_SIZES.items() if sizes == shape]
    if named:
        params = {"size": named[0]}
    else:
        params = dict(
            size="base",
            hidden_size=shape[0],
            num_layers=shape[1],
            num_heads=shape[2],
            intermediate_size=shape[3],
        )
    return {
        **params,
        "max_sequence_length": int(config["max_sequence_length"]),
        "type_vocab_size": int(config["num_segments"]),
        "dropout_rate": float(config["dropout"]),
        "attention_dropout_rate": float(config["dropout"]),
    }


def _copy(target: keras.layers.Layer, source: keras.layers.Layer, where: str) -> None:
    ours, theirs = target.weights, source.weights
    if len(ours) != len(theirs):
        raise ValueError(
            f"{where}: Garden's {target.name} has {len(ours)} weights, keras-hub's "
            f"{source.name} has {len(theirs)}."
        )
    for mine, other in zip(ours, theirs):
        value = keras.ops.convert_to_numpy(other)
        if tuple(mine.shape) != value.shape:
            raise ValueError(
                f"{where}: {mine.path} has shape {tuple(mine.shape)}, keras-hub's "
                f"{other.path} {value.shape}."
            )
        mine.assign(value)


def copy_backbone_weights(encoder: BertEncoder, backbone: keras.Model) -> None:
    """Assigns a keras-hub `BertBackbone`'s weights to `encoder` (same sizes)."""
    _copy(encoder.word_embeddings, backbone.token_embedding, "token_embedding")
    _copy(encoder.position_embeddings, backbone.position_embedding, "position")
    _copy(encoder.type_embeddings, backbone.segment_embedding, "segment_embedding")
    _copy(encoder.embedding_norm, backbone.embeddings_layer_norm, "embedding norm")
    for i, layer in enumerate(backbone.transformer_layers):
        block = encoder.get_layer(f"block{i + 1}")
        where = f"transformer_layer_{i}"
        _copy(block.attention, layer._self_attention_layer, where)  # noqa: SLF001
        _copy(block.attention_norm, layer._self_attention_layer_norm, where)  # noqa: SLF001
        _copy(block.mlp_dense1, layer._feedforward_intermediate_dense, where)  # noqa: SLF001
        _copy(block.mlp_dense2, layer._feedforward_output_dense, where)  # noqa: SLF001
        _copy(block.mlp_norm, layer._feedforward_layer_norm, where)  # noqa: SLF001
    _copy(encoder.get_layer("pooler"), backbone.pooled_dense, "pooled_dense")


def import_bert_preset(preset_dir: str) -> ImportedBert:
    """Reads a keras-hub BERT preset directory into a Garden encoder.

    Args:
        preset_dir: a local directory written by keras-hub's
            `save_to_preset` (nothing is downloaded).

    Returns:
        An `ImportedBert` with the encoder, its params, the vocabulary and
        the lower-casing of the preset's tokenizer.

    Raises:
        FileNotFoundError: `preset_dir` has no `config.json`.
        ValueError: the preset is not a BERT backbone, or its vocabulary lacks
            a special token Garden packs with.
    """
    if not os.path.isfile(os.path.join(preset_dir, "config.json")):
        raise FileNotFoundError(
            f"{preset_dir!r} is not a keras-hub preset directory (no config.json)."
        )
    keras_hub = _keras_hub()
    backbone = keras_hub.models.Backbone.from_preset(preset_dir)
    if not isinstance(backbone, keras_hub.models.BertBackbone):
        raise ValueError(
            f"{preset_dir!r} holds a {type(backbone).__name__}, not a BertBackbone."
        )
    tokenizer = keras_hub.models.BertTokenizer.from_preset(preset_dir)
    vocabulary = [str(token) for token in tokenizer.get_vocabulary()]
    missing = [t for t in SPECIAL_TOKENS if t not in vocabulary]
    if missing:
        raise ValueError(
            f"The preset's vocabulary lacks {', '.join(missing)}; Garden's packing "
            f"needs all of {', '.join(SPECIAL_TOKENS)}."
        )
    check_vocabulary(vocabulary, where=preset_dir)
    params = encoder_params_of(backbone.get_config())
    encoder = BertEncoder(vocab_size=int(backbone.vocabulary_size), **params)
    copy_backbone_weights(encoder, backbone)
    return ImportedBert(
        encoder=encoder,
        encoder_params=params,
        vocabulary=vocabulary,
        lower_case=bool(tokenizer.lowercase),
        source=backbone,
    )


def max_output_difference(imported: ImportedBert, token_ids: np.ndarray) -> float:
    """Max |Garden - keras-hub| over both outputs on `token_ids` (0 = padding)."""
    ids = np.asarray(token_ids, "int32")
    mask = (ids != 0).astype("int32")
    segments = np.zeros_like(ids)
    theirs = imported.source(
        {"token_ids": ids, "segment_ids": segments, "padding_mask": mask}
    )
    ours = imported.encoder(
        {"input_word_ids": ids, "input_mask": mask, "input_type_ids": segments}
    )
    return max(
        float(
            np.max(
                np.abs(
                    keras.ops.convert_to_numpy(ours[key])
                    - keras.ops.convert_to_numpy(theirs[key])
                )
            )
        )
        for key in ("sequence_output", "pooled_output")
    )
