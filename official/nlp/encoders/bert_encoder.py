"""The BERT encoder (Devlin et al. 2019), sizes tiny to large."""

from __future__ import annotations

import keras

from official.modeling.layers.transformer_encoder_block import TransformerEncoderBlock
from official.nlp.layers.learned_position_embedding import LearnedPositionEmbedding

# size -> (hidden_size, num_layers, num_heads, intermediate_size): BERT-Base and
# -Large from Devlin et al. 2019, the smaller ones from Turc et al. 2019
# ("Well-Read Students Learn Better"), as in keras-hub's BERT presets.
BERT_SIZES = {
    "tiny": (128, 2, 2, 512),
    "mini": (256, 4, 4, 1024),
    "small": (512, 4, 8, 2048),
    "medium": (512, 8, 8, 2048),
    "base": (768, 12, 12, 3072),
    "large": (1024, 24, 16, 4096),
}
# The inputs, as TF Model Garden and TF Hub's BERT encoders name them.
INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")


def _initializer() -> keras.initializers.Initializer:
    return keras.initializers.TruncatedNormal(stddev=0.02)


@keras.saving.register_keras_serializable(package="official")
class BertEncoder(keras.Model):
    """BERT encoder: embeddings, post-norm transformer blocks and a pooler.

    Word, position and segment (type) embeddings are summed, layer-normalized
    and passed through dropout; then `num_layers` post-norm
    `TransformerEncoderBlock`s (`norm_first=False`) attend over the positions
    where `input_mask` is 1; the pooler is a tanh dense layer on the first
    ([CLS]) token. Layer normalization epsilon 1e-12 and the tanh GELU, as
    the published BERT and keras-hub's `BertBackbone`, whose presets have
    the same trainable parameter counts (tiny 4,385,920; small 28,763,648;
    base 109,482,240 with the 30,522-token uncased vocabulary).

    `size` names the architecture: tiny, mini, small, medium, base, large
    (see `BERT_SIZES`). The override arguments, when not None, replace the
    size's values (for toy and test models).

    Args:
        size: str, one of tiny, mini, small, medium, base, large. Defaults
            to "base".
        vocab_size: int, WordPiece vocabulary size. Defaults to 30522.
        max_sequence_length: int, positions of the position embedding (the
            longest input). Defaults to 512.
        type_vocab_size: int, number of segment types. Defaults to 2.
        dropout_rate: float in [0, 1), dropout of the embeddings and inside
            each block. Defaults to 0.1.
        attention_dropout_rate: float in [0, 1), dropout on the attention
            weights. Defaults to 0.1.
        hidden_size: int or None, overrides the size's width.
        num_layers: int or None, overrides the number of blocks.
        num_heads: int or None, overrides the heads; must divide hidden_size.
        intermediate_size: int or None, overrides the MLP width.
        **kwargs: base model arguments (`name`, `trainable`).

    Call arguments:
        inputs: dict of int32 `(batch, length)` tensors: `input_word_ids`,
            `input_mask` (1 = token, 0 = padding) and `input_type_ids`
            (segment of each token).
        training: bool, whether dropout is active.

    Returns:
        dict with `sequence_output` `(batch, length, hidden_size)` and
        `pooled_output` `(batch, hidden_size)`.

    Example:
    ```python
    import numpy as np
    from official.nlp.encoders import BertEncoder

    encoder = BertEncoder(size="tiny", vocab_size=100, max_sequence_length=16,
                          num_layers=1)
    ids = np.array([[2, 7, 9, 3, 0, 0]], "int32")
    outputs = encoder({"input_word_ids": ids, "input_mask": (ids > 0).astype("int32"),
                       "input_type_ids": np.zeros_like(ids)})
    assert tuple(outputs["sequence_output"].shape) == (1, 6, 128)
    assert tuple(outputs["pooled_output"].shape) == (1, 128)
    ```
    """

    def __init__(
        self,
        size="base",
        vocab_size=30522,
        max_sequence_length=512,
        type_vocab_size=2,
        dropout_rate=0.1,
        attention_dropout_rate=0.1,
        hidden_size=None,
        num_layers=None,
        num_heads=None,
        intermediate_size=None,
        **kwargs,
    ):
        params = dict(
            size=size,
            vocab_size=vocab_size,
            max_sequence_length=max_sequence_length,
            type_vocab_size=type_vocab_size,
            dropout_rate=dropout_rate,
            attention_dropout_rate=attention_dropout_rate,
            hidden_size=hidden_size,
            num_layers=num_layers,
            num_heads=num_heads,
            intermediate_size=intermediate_size,
        )
        self.validate_params(params, "BertEncoder")
        arch = self.resolve_architecture(params)
        width = arch["hidden_size"]

        # === Layers (public: the MLM head ties its output to the words) ===
        self.word_embeddings = keras.layers.Embedding(
            vocab_size,
            width,
            embeddings_initializer=_initializer(),
            name="word_embeddings",
        )
        self.position_embeddings = LearnedPositionEmbedding(
            max_sequence_length, name="position_embeddings"
        )
        self.type_embeddings = keras.layers.Embedding(
            type_vocab_size,
            width,
            embeddings_initializer=_initializer(),
            name="type_embeddings",
        )
        self.embedding_norm = keras.layers.LayerNormalization(
            epsilon=1e-12, name="embedding_norm"
        )

        # === Functional Model ===
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in INPUT_NAMES
        }
        words = self.word_embeddings(inputs["input_word_ids"])
        x = keras.layers.Add(name="embeddings_add")(
            [
                words,
                self.position_embeddings(words),
                self.type_embeddings(inputs["input_type_ids"]),
            ]
        )
        x = self.embedding_norm(x)
        x = keras.layers.Dropout(dropout_rate, name="embedding_dropout")(x)
        for i in range(arch["num_layers"]):
            x = TransformerEncoderBlock(
                arch["num_heads"],
                arch["intermediate_size"],
                dropout_rate=dropout_rate,
                attention_dropout_rate=attention_dropout_rate,
                approximate_gelu=True,
                layer_norm_epsilon=1e-12,
                kernel_initializer=_initializer(),
                norm_first=False,
                name=f"block{i + 1}",
            )(x, attention_mask=inputs["input_mask"])
        pooled = keras.layers.Dense(
            width,
            activation="tanh",
            kernel_initializer=_initializer(),
            name="pooler",
        )(x[:, 0])
        outputs = {"sequence_output": x, "pooled_output": pooled}
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.size = size
        self.vocab_size = vocab_size
        self.max_sequence_length = max_sequence_length
        self.type_vocab_size = type_vocab_size
        self.dropout_rate = dropout_rate
        self.attention_dropout_rate = attention_dropout_rate
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.output_width = width

    @staticmethod
    def resolve_architecture(params: dict) -> dict:
        """The size's architecture with the non-None overrides applied.

        Args:
            params: dict of constructor arguments; `size` (default "base")
                and any of `hidden_size`, `num_layers`, `num_heads`,
                `intermediate_size`.

        Returns:
            dict with `hidden_size`, `num_layers`, `num_heads`,
            `intermediate_size`.
        """
        hidden, layers, heads, mlp = BERT_SIZES[params.get("size", "base")]
        arch = dict(
            hidden_size=hidden,
            num_layers=layers,
            num_heads=heads,
            intermediate_size=mlp,
        )
        for key in arch:
            if params.get(key) is not None:
                arch[key] = params[key]
        return arch

    @classmethod
    def validate_params(cls, params: dict, where: str) -> None:
        """Checks a BertEncoder's params, so a bad config fails when it loads.

        Args:
            params: dict of constructor arguments; missing keys take the
                constructor defaults.
            where: str, dotted config path of `params`, prefixed to messages.

        Raises:
            ValueError: an unknown size, a rate outside [0, 1), a size that is
                not a positive int, or heads that do not divide the width.

        Example:
        ```python
        from official.nlp.encoders import BertEncoder

        BertEncoder.validate_params({"size": "small"}, "encoder.params")
        try:
            BertEncoder.validate_params({"size": "huge"}, "encoder.params")
        except ValueError as e:
            assert "tiny, mini, small, medium, base, large" in str(e)
        ```
        """
        size = params.get("size", "base")
        if not isinstance(size, str) or size not in BERT_SIZES:
            raise ValueError(
                f"{where}.size must be one of {', '.join(BERT_SIZES)}. "
                f"Received: size={size!r}."
            )
        for key in ("dropout_rate", "attention_dropout_rate"):
            rate = params.get(key, 0.1)
            if (
                isinstance(rate, bool)
                or not isinstance(rate, (int, float))
                or not 0 <= rate < 1
            ):
                raise ValueError(
                    f"{where}.{key} must be a float in [0, 1). Received: {key}={rate!r}."
                )
        for key, default in (
            ("vocab_size", 30522),
            ("max_sequence_length", 512),
            ("type_vocab_size", 2),
            ("hidden_size", None),
            ("num_layers", None),
            ("num_heads", None),
            ("intermediate_size", None),
        ):
            value = params.get(key, default)
            if value is None and default is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                allowed = "a positive int" + (" or None" if default is None else "")
                raise ValueError(
                    f"{where}.{key} must be {allowed}. Received: {key}={value!r}."
                )
        arch = cls.resolve_architecture(params)
        if arch["hidden_size"] % arch["num_heads"]:
            raise ValueError(
                f"{where}: num_heads ({arch['num_heads']}) must divide hidden_size "
                f"({arch['hidden_size']}). Received: size={size!r}, "
                f"hidden_size={params.get('hidden_size')!r}, "
                f"num_heads={params.get('num_heads')!r}."
            )

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "size": self.size,
            "vocab_size": self.vocab_size,
            "max_sequence_length": self.max_sequence_length,
            "type_vocab_size": self.type_vocab_size,
            "dropout_rate": self.dropout_rate,
            "attention_dropout_rate": self.attention_dropout_rate,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_size": self.intermediate_size,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
