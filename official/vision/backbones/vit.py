"""Vision Transformer (ViT) backbones: Ti, S, B, L with patch 16 or 32."""

from __future__ import annotations

import keras

from official.base.registries import BACKBONES
from official.modeling.layers.patch_embedding import PatchEmbedding
from official.modeling.layers.position_embedding import PositionEmbedding
from official.modeling.layers.transformer_encoder_block import TransformerEncoderBlock

# Variant -> (hidden_size, num_layers, num_heads, mlp_dim), from Dosovitskiy
# et al. 2021 (Table 1) and, for Ti and S, Touvron et al. 2021 (DeiT).
VIT_VARIANTS = {
    "ti": (192, 12, 3, 768),
    "s": (384, 12, 6, 1536),
    "b": (768, 12, 12, 3072),
    "l": (1024, 24, 16, 4096),
}
# model_id -> (variant, patch size).
VIT_MODEL_IDS = {
    f"{variant}{patch}": (variant, patch)
    for patch in (16, 32)
    for variant in VIT_VARIANTS
}
POOLINGS = ("token", "gap")


@keras.saving.register_keras_serializable(package="official")
class _ClassToken(keras.layers.Layer):
    """Prepends one learned token (zeros at init) to a token sequence."""

    def build(self, input_shape):
        self.token = self.add_weight(
            name="token", shape=(1, 1, input_shape[-1]), initializer="zeros"
        )

    def call(self, inputs):
        batch = keras.ops.shape(inputs)[0]
        token = keras.ops.cast(self.token, inputs.dtype)
        token = keras.ops.broadcast_to(token, (batch, 1, inputs.shape[-1]))
        return keras.ops.concatenate([token, inputs], axis=1)

    def compute_output_shape(self, input_shape):
        length = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], length, input_shape[-1])


def _patch_level(patch_size: int) -> int | None:
    """log2(patch_size) when it is a power of two, else None."""
    if patch_size >= 2 and patch_size & (patch_size - 1) == 0:
        return patch_size.bit_length() - 1
    return None


@BACKBONES.register("vit")
@keras.saving.register_keras_serializable(package="official")
class ViT(keras.Model):
    """Vision Transformer backbone (Dosovitskiy et al. 2021).

    Patch embedding (a `patch_size` x `patch_size` convolution with the same
    stride), an optional class token, learned position embeddings, dropout,
    `num_layers` pre-norm `TransformerEncoderBlock`s and a final layer
    normalization. Stochastic depth grows linearly over the blocks from 0 to
    `stochastic_depth_rate` (DeiT's convention).

    `model_id` names the published architecture as `<variant><patch size>`:
    ti, s, b, l (hidden size 192, 384, 768, 1024; 12, 12, 12, 24 layers;
    3, 6, 12, 16 heads; MLP 4x the hidden size) with patch 16 or 32. The
    override arguments (`hidden_size`, ...), when not None, replace the
    model_id's value; they exist for small test and toy models.

    The input size must be static and a multiple of the patch size, because
    the position embedding has one entry per patch.

    Args:
        model_id: str, one of ti16, s16, b16, l16, ti32, s32, b32, l32.
            Defaults to "b16".
        pooling: str, "token" (the class token's final state, the published
            ViT) or "gap" (mean of the patch tokens; no class token).
            Defaults to "token".
        dropout_rate: float in [0, 1), dropout after the position embedding
            and inside every block. Defaults to 0.0.
        attention_dropout_rate: float in [0, 1), dropout on the attention
            weights. Defaults to 0.0.
        stochastic_depth_rate: float in [0, 1), stochastic depth of the last
            block (linearly less for earlier ones). Defaults to 0.0.
        approximate_gelu: bool, tanh-approximate GELU (needed for ONNX
            export via tf2onnx) instead of the exact one. Defaults to False.
        patch_size: int or None, overrides the model_id's patch size; a power
            of two >= 2, so that the feature map has a level. Defaults to None.
        hidden_size: int or None, overrides the token width. Defaults to None.
        num_layers: int or None, overrides the number of blocks. Defaults to
            None.
        num_heads: int or None, overrides the attention heads; must divide
            the hidden size. Defaults to None.
        mlp_dim: int or None, overrides the MLP width. Defaults to None.
        input_shape: tuple of 3 ints, `(height, width, channels)` of the
            input images; height and width multiples of the patch size.
            Defaults to `(224, 224, 3)`.
        layer_norm_epsilon: float > 0, epsilon of every layer normalization
            (the blocks' and the final one). Defaults to 1e-6.
        **kwargs: base model arguments (`name`, `trainable`).

    Call arguments:
        inputs: float tensor of shape `(batch, height, width, channels)`,
            already normalized.
        training: bool, whether dropout and stochastic depth are active.

    Returns:
        A dict with two entries. The level `str(log2(patch_size))` ("4" for
        patch 16, "5" for 32) holds the normalized patch tokens as a feature
        map `(batch, height / p, width / p, hidden_size)` for dense heads;
        "pooled" holds the image representation `(batch, hidden_size)`.
        `output_specs` holds the same shapes with batch None.

    Example:
    ```python
    import numpy as np
    from official.vision.backbones.vit import ViT

    backbone = ViT(model_id="ti16", hidden_size=16, num_layers=1, num_heads=2,
                   mlp_dim=32, input_shape=(32, 32, 3))
    features = backbone(np.ones((2, 32, 32, 3), "float32"))
    assert tuple(features["4"].shape) == (2, 2, 2, 16)
    assert tuple(features["pooled"].shape) == (2, 16)
    ```
    """

    def __init__(
        self,
        model_id="b16",
        pooling="token",
        dropout_rate=0.0,
        attention_dropout_rate=0.0,
        stochastic_depth_rate=0.0,
        approximate_gelu=False,
        patch_size=None,
        hidden_size=None,
        num_layers=None,
        num_heads=None,
        mlp_dim=None,
        input_shape=(224, 224, 3),
        layer_norm_epsilon=1e-6,
        **kwargs,
    ):
        params = dict(
            model_id=model_id,
            pooling=pooling,
            dropout_rate=dropout_rate,
            attention_dropout_rate=attention_dropout_rate,
            stochastic_depth_rate=stochastic_depth_rate,
            patch_size=patch_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            num_heads=num_heads,
            mlp_dim=mlp_dim,
        )
        if (
            isinstance(layer_norm_epsilon, bool)
            or not isinstance(layer_norm_epsilon, (int, float))
            or not layer_norm_epsilon > 0
        ):
            raise ValueError(
                "`layer_norm_epsilon` must be a positive float. Received: "
                f"layer_norm_epsilon={layer_norm_epsilon!r}."
            )
        self.validate_params(params, tuple(input_shape), "ViT")
        arch = self.resolve_architecture(params)
        height, width, _ = input_shape
        patch = arch["patch_size"]
        grid = (height // patch, width // patch)
        level = str(_patch_level(patch))

        # === Functional Model ===
        inputs = keras.Input(shape=tuple(input_shape), name="images")
        x = PatchEmbedding(arch["hidden_size"], patch, name="patch_embedding")(inputs)
        if pooling == "token":
            x = _ClassToken(name="class_token")(x)
        x = PositionEmbedding(
            sequence_length=grid[0] * grid[1] + (pooling == "token"),
            name="position_embedding",
        )(x)
        x = keras.layers.Dropout(dropout_rate, name="embedding_dropout")(x)
        depth = arch["num_layers"]
        for i in range(depth):
            x = TransformerEncoderBlock(
                arch["num_heads"],
                arch["mlp_dim"],
                dropout_rate=dropout_rate,
                attention_dropout_rate=attention_dropout_rate,
                stochastic_depth_rate=stochastic_depth_rate * i / max(1, depth - 1),
                approximate_gelu=approximate_gelu,
                layer_norm_epsilon=layer_norm_epsilon,
                name=f"block{i + 1}",
            )(x)
        x = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="encoder_norm"
        )(x)
        if pooling == "token":
            pooled = x[:, 0]
            patches = x[:, 1:]
        else:
            patches = x
            pooled = keras.layers.GlobalAveragePooling1D(name="gap")(x)
        feature_map = keras.layers.Reshape(
            (*grid, arch["hidden_size"]), name="feature_map"
        )(patches)
        outputs = {level: feature_map, "pooled": pooled}
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.model_id = model_id
        self.pooling = pooling
        self.dropout_rate = dropout_rate
        self.attention_dropout_rate = attention_dropout_rate
        self.stochastic_depth_rate = stochastic_depth_rate
        self.approximate_gelu = approximate_gelu
        self.patch_size = patch_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.layer_norm_epsilon = layer_norm_epsilon
        self.output_specs = {k: tuple(v.shape) for k, v in outputs.items()}

    @staticmethod
    def resolve_architecture(params: dict) -> dict:
        """The model_id's architecture with the non-None overrides applied.

        Args:
            params: dict of constructor arguments; `model_id` (default "b16")
                and any of `patch_size`, `hidden_size`, `num_layers`,
                `num_heads`, `mlp_dim`.

        Returns:
            dict with `patch_size`, `hidden_size`, `num_layers`, `num_heads`
            and `mlp_dim`.
        """
        variant, patch = VIT_MODEL_IDS[params.get("model_id", "b16")]
        hidden, layers, heads, mlp = VIT_VARIANTS[variant]
        arch = dict(
            patch_size=patch,
            hidden_size=hidden,
            num_layers=layers,
            num_heads=heads,
            mlp_dim=mlp,
        )
        for key in arch:
            if params.get(key) is not None:
                arch[key] = params[key]
        return arch

    @classmethod
    def validate_params(cls, params: dict, input_shape: tuple, where: str) -> None:
        """Checks a ViT's params against each other and the input shape.

        Meant for config validation (`BackboneConfig.validate`), so a bad
        combination fails when the config loads, not while building.

        Args:
            params: dict of constructor arguments (without `input_shape`);
                missing keys take the constructor defaults.
            input_shape: tuple `(height, width, channels)` of the input.
            where: str, dotted config path of `params` (e.g.
                "task.model.backbone.params"), prefixed to the messages.

        Raises:
            ValueError: an unknown model_id or pooling, a rate outside [0, 1),
                a bad override, a non-static input shape, or a patch size
                that does not divide the image height or width.

        Example:
        ```python
        from official.vision.backbones.vit import ViT

        ViT.validate_params({"model_id": "s16"}, (224, 224, 3), "backbone.params")
        try:
            ViT.validate_params({"model_id": "s16"}, (200, 200, 3), "backbone.params")
        except ValueError as e:
            assert "patch size 16" in str(e) and "200" in str(e)
        ```
        """
        model_id = params.get("model_id", "b16")
        if not isinstance(model_id, str) or model_id not in VIT_MODEL_IDS:
            raise ValueError(
                f"{where}.model_id must be one of {', '.join(VIT_MODEL_IDS)}. "
                f"Received: model_id={model_id!r}."
            )
        pooling = params.get("pooling", "token")
        if pooling not in POOLINGS:
            raise ValueError(
                f"{where}.pooling must be one of {', '.join(POOLINGS)}. "
                f"Received: pooling={pooling!r}."
            )
        for key in ("dropout_rate", "attention_dropout_rate", "stochastic_depth_rate"):
            rate = params.get(key, 0.0)
            if (
                isinstance(rate, bool)
                or not isinstance(rate, (int, float))
                or not 0 <= rate < 1
            ):
                raise ValueError(
                    f"{where}.{key} must be a float in [0, 1). "
                    f"Received: {key}={rate!r}."
                )
        for key in ("patch_size", "hidden_size", "num_layers", "num_heads", "mlp_dim"):
            value = params.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(
                    f"{where}.{key} must be a positive int or None (the model_id's "
                    f"value). Received: {key}={value!r}."
                )
        arch = cls.resolve_architecture(params)
        patch = arch["patch_size"]
        if _patch_level(patch) is None:
            raise ValueError(
                f"{where}.patch_size must be a power of two >= 2 (the feature map's "
                f"level is log2 of it). Received: patch_size={patch}."
            )
        if arch["hidden_size"] % arch["num_heads"]:
            raise ValueError(
                f"{where}: num_heads ({arch['num_heads']}) must divide hidden_size "
                f"({arch['hidden_size']}). Received: model_id={model_id!r}, "
                f"hidden_size={params.get('hidden_size')!r}, "
                f"num_heads={params.get('num_heads')!r}."
            )
        shape = tuple(input_shape)
        if len(shape) != 3 or any(
            not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in shape
        ):
            raise ValueError(
                f"{where}: ViT needs a static input shape (height, width, channels) "
                f"of positive ints, because the position embedding has one entry "
                f"per patch. Received: input_shape={shape!r}."
            )
        for axis, size in zip(("height", "width"), shape[:2]):
            if size % patch:
                nearest = size // patch * patch or patch
                raise ValueError(
                    f"{where}: the image {axis} {size} is not a multiple of the "
                    f"patch size {patch} (model_id={model_id!r}). Use an image size "
                    f"that is a multiple of {patch} (e.g. {nearest}) or another "
                    f"patch size."
                )

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "model_id": self.model_id,
            "pooling": self.pooling,
            "dropout_rate": self.dropout_rate,
            "attention_dropout_rate": self.attention_dropout_rate,
            "stochastic_depth_rate": self.stochastic_depth_rate,
            "approximate_gelu": self.approximate_gelu,
            "patch_size": self.patch_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "input_shape": tuple(self.input_shape[1:]),
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
