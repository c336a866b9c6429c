"""ViT backbone: outputs and shapes, validation errors, serialization, sizes."""

import keras
import numpy as np
import pytest

from official.base.registries import BACKBONES
from official.modeling.layers.transformer_encoder_block import TransformerEncoderBlock
from official.testing.test_case import run_model_serialization_test
from official.vision.backbones.vit import VIT_MODEL_IDS, ViT

TINY = dict(hidden_size=16, num_layers=2, num_heads=2, mlp_dim=32)


@pytest.fixture(autouse=True)
def _clear_session():
    yield
    keras.backend.clear_session()


def _images(height, width=None, batch=2):
    width = width or height
    rng = np.random.default_rng(0)
    return rng.normal(size=(batch, height, width, 3)).astype("float32")


@pytest.mark.parametrize(
    "model_id, pooling, shape, level, grid",
    [
        ("ti16", "token", (32, 32, 3), "4", (2, 2)),
        ("ti16", "gap", (32, 48, 3), "4", (2, 3)),
        ("s32", "token", (64, 32, 3), "5", (2, 1)),
    ],
)
def test_outputs_and_shapes(model_id, pooling, shape, level, grid):
    backbone = ViT(model_id=model_id, pooling=pooling, input_shape=shape, **TINY)
    features = backbone(_images(*shape[:2]), training=False)
    assert sorted(features) == sorted([level, "pooled"])
    assert tuple(features[level].shape) == (2, *grid, 16)
    assert tuple(features["pooled"].shape) == (2, 16)
    assert backbone.output_specs == {level: (None, *grid, 16), "pooled": (None, 16)}
    tokens = grid[0] * grid[1] + (pooling == "token")
    assert tuple(backbone.get_layer("position_embedding").embedding.shape) == (
        tokens,
        16,
    )


def test_token_pooling_reads_the_class_token_and_gap_the_mean():
    x = _images(32)
    token = ViT(model_id="ti16", input_shape=(32, 32, 3), **TINY)
    gap = ViT(model_id="ti16", pooling="gap", input_shape=(32, 32, 3), **TINY)
    assert any(layer.name == "class_token" for layer in token.layers)
    assert not any(layer.name == "class_token" for layer in gap.layers)
    out = gap(x)
    mean = keras.ops.mean(keras.ops.reshape(out["4"], (2, 4, 16)), axis=1)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(out["pooled"]),
        keras.ops.convert_to_numpy(mean),
        atol=1e-5,
    )
    # Token pooling: the pooled vector is not a patch token.
    out = token(x)
    patches = keras.ops.convert_to_numpy(keras.ops.reshape(out["4"], (2, 4, 16)))
    pooled = keras.ops.convert_to_numpy(out["pooled"])
    assert not any(np.allclose(pooled[0], p) for p in patches[0])


def test_overrides_and_architecture():
    backbone = ViT(
        model_id="b16",
        patch_size=8,
        input_shape=(32, 32, 3),
        approximate_gelu=True,
        dropout_rate=0.1,
        attention_dropout_rate=0.2,
        **TINY,
    )
    blocks = [x for x in backbone.layers if isinstance(x, TransformerEncoderBlock)]
    assert len(blocks) == 2
    assert all(
        b.num_heads == 2 and b.mlp_dim == 32 and b.approximate_gelu for b in blocks
    )
    assert all(
        b.dropout_rate == 0.1 and b.attention_dropout_rate == 0.2 for b in blocks
    )
    assert backbone.output_specs["3"] == (None, 4, 4, 16)  # patch 8 -> level 3


def test_stochastic_depth_grows_linearly_over_blocks():
    backbone = ViT(
        model_id="ti16",
        input_shape=(32, 32, 3),
        stochastic_depth_rate=0.3,
        hidden_size=8,
        num_layers=4,
        num_heads=2,
        mlp_dim=8,
    )
    rates = [
        x.stochastic_depth_rate
        for x in backbone.layers
        if isinstance(x, TransformerEncoderBlock)
    ]
    np.testing.assert_allclose(rates, [0.0, 0.1, 0.2, 0.3])


def test_training_mode_uses_dropout():
    backbone = ViT(model_id="ti16", input_shape=(32, 32, 3), dropout_rate=0.5, **TINY)
    x = _images(32)
    a = keras.ops.convert_to_numpy(backbone(x, training=False)["pooled"])
    b = keras.ops.convert_to_numpy(backbone(x, training=False)["pooled"])
    c = keras.ops.convert_to_numpy(backbone(x, training=True)["pooled"])
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_registered_as_backbone():
    assert BACKBONES.get("vit") is ViT


def test_serialization_round_trip():
    backbone = ViT(
        model_id="s32",
        pooling="gap",
        dropout_rate=0.1,
        stochastic_depth_rate=0.1,
        approximate_gelu=True,
        input_shape=(64, 32, 3),
        name="my_vit",
        **TINY,
    )
    config = backbone.get_config()
    assert set(config) >= {
        "model_id",
        "pooling",
        "dropout_rate",
        "attention_dropout_rate",
        "stochastic_depth_rate",
        "approximate_gelu",
        "patch_size",
        "hidden_size",
        "num_layers",
        "num_heads",
        "mlp_dim",
        "input_shape",
    }
    loaded = run_model_serialization_test(backbone, _images(64, 32))
    assert loaded.name == "my_vit"
    assert loaded.pooling == "gap" and loaded.hidden_size == 16


# ---- validation ---------------------------------------------------------------


def test_patch_size_must_divide_the_image():
    with pytest.raises(ValueError) as e:
        ViT(model_id="ti16", input_shape=(40, 32, 3), **TINY)
    message = str(e.value)
    assert "height 40" in message and "patch size 16" in message


def test_validate_params_names_where_and_both_sizes():
    with pytest.raises(ValueError) as e:
        ViT.validate_params(
            {"model_id": "b32"}, (224, 240, 3), "task.model.backbone.params"
        )
    message = str(e.value)
    assert message.startswith("task.model.backbone.params")
    assert "width 240" in message and "patch size 32" in message
    ViT.validate_params({"model_id": "b16"}, (224, 224, 3), "x")
    ViT.validate_params({}, (384, 384, 3), "x")


@pytest.mark.parametrize(
    "params, shape, match",
    [
        (
            {"model_id": "h14"},
            (224, 224, 3),
            "model_id must be one of ti16, s16, b16, l16, ti32",
        ),
        ({"model_id": 16}, (224, 224, 3), "Received: model_id=16"),
        ({"pooling": "max"}, (224, 224, 3), "pooling must be one of token, gap"),
        ({"dropout_rate": 1.0}, (224, 224, 3), "dropout_rate must be a float in"),
        ({"stochastic_depth_rate": -0.1}, (224, 224, 3), "stochastic_depth_rate"),
        ({"num_heads": 0}, (224, 224, 3), "num_heads must be a positive int"),
        ({"patch_size": 12}, (48, 48, 3), "patch_size must be a power of two"),
        (
            {"num_heads": 5},
            (224, 224, 3),
            r"num_heads \(5\) must divide hidden_size \(768\)",
        ),
        ({}, (None, None, 3), "needs a static input shape"),
        ({}, (224, 224), "needs a static input shape"),
    ],
)
def test_invalid_params(params, shape, match):
    with pytest.raises(ValueError, match=match):
        ViT.validate_params(params, shape, "backbone.params")
    with pytest.raises(ValueError, match=match):
        ViT(input_shape=shape, **params)


# ---- published sizes ------------------------------------------------------------

# Trainable parameters with a 1000-class dense head on the pooled output at
# 224 px, as timm's vit_{tiny,small,base,large}_patch{16,32}_224.
PUBLISHED = {
    "ti16": 5_717_416,
    "s16": 22_050_664,
    "b16": 86_567_656,
    "b32": 88_224_232,
    "s32": 22_878_952,
    "l16": 304_326_632,
    "l32": 306_535_400,
}


def _classifier_params(model_id):
    backbone = ViT(model_id=model_id)  # built, never called
    assert backbone.non_trainable_weights == []
    width = backbone.output_specs["pooled"][-1]
    return backbone.count_params() + width * 1000 + 1000


@pytest.mark.parametrize("model_id", ["ti16", "s16", "b16"])
def test_published_parameter_counts(model_id):
    assert _classifier_params(model_id) == PUBLISHED[model_id]


@pytest.mark.slow
@pytest.mark.parametrize("model_id", ["s32", "b32", "l16", "l32"])
def test_published_parameter_counts_slow(model_id):
    assert _classifier_params(model_id) == PUBLISHED[model_id]


def test_every_model_id_is_a_variant_and_patch():
    assert sorted(VIT_MODEL_IDS) == sorted(
        f"{v}{p}" for v in ("ti", "s", "b", "l") for p in (16, 32)
    )
