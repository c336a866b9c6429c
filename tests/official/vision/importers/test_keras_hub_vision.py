"""keras-hub vision presets into Garden backbones: equal outputs, reports, refusals.

Every source is a tiny keras-hub backbone with random weights, written with
`save_to_preset` into a temporary directory; nothing is downloaded.
"""

import sys

import keras
import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

from official.vision.backbones.resnet import ResNet  # noqa: E402
from official.vision.backbones.vit import ViT  # noqa: E402
from official.vision.importers import keras_hub_vision  # noqa: E402
from official.vision.importers.keras_hub_vision import (  # noqa: E402
    compare_outputs,
    import_keras_hub_preset,
)
from official.vision.importers.restore_report import WeightImportError  # noqa: E402
from official.vision.models.image_classifier import ImageClassifier  # noqa: E402

SIZE, PATCH, HIDDEN, HEADS, MLP = 32, 8, 16, 2, 32


def randomize(model, seed=0):
    """Every weight random; layer-norm gains and batch-norm variances in [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if variable.name in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, variable.shape)
        else:
            value = rng.normal(0, 0.3, variable.shape)
        variable.assign(value.astype("float32"))
    return model


def hub_vit(layers=2, **overrides):
    params = dict(
        image_shape=(SIZE, SIZE, 3),
        patch_size=PATCH,
        num_layers=layers,
        num_heads=HEADS,
        hidden_dim=HIDDEN,
        mlp_dim=MLP,
    )
    return randomize(keras_hub.models.ViTBackbone(**{**params, **overrides}))


def garden_vit(layers=2, **overrides):
    params = dict(
        patch_size=PATCH,
        hidden_size=HIDDEN,
        num_layers=layers,
        num_heads=HEADS,
        mlp_dim=MLP,
        input_shape=(SIZE, SIZE, 3),
    )
    return ViT("ti16", **{**params, **overrides})


def images(seed=1):
    return (
        np.random.default_rng(seed).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype("float32")
    )


@pytest.fixture(scope="module")
def vit_preset(tmp_path_factory):
    source = hub_vit()
    path = tmp_path_factory.mktemp("presets") / "vit"
    source.save_to_preset(str(path))
    return source, str(path)


def test_vit_preset_gives_equal_outputs(vit_preset):
    source, path = vit_preset
    garden = garden_vit()
    report = import_keras_hub_preset(path, garden)
    assert report.source == path and report.architecture == "keras_hub_vit"
    assert len(report.matched) == len(garden.weights) == len(source.weights)
    assert not (report.missing or report.skipped_by_shape or report.unused)
    assert (
        "class_token/token",
        "vit_patching_and_embedding/class_token",
        (1, 1, 16),
    ) in [(g, s, shape) for g, s, shape in report.matched]
    gap, scale, compared = compare_outputs(source, garden, images())
    assert compared == "tokens" and scale > 1.0
    assert gap <= 1e-5 * scale, (gap, scale)


def test_gap_pooling_and_epsilon_option():
    """No class token <-> pooling="gap"; another epsilon needs the Garden option."""
    source = hub_vit(use_class_token=False, layer_norm_epsilon=1e-5)
    with pytest.raises(WeightImportError, match=r"layer_norm_epsilon=1e-05"):
        import_keras_hub_preset(source, garden_vit(pooling="gap"))
    garden = garden_vit(pooling="gap", layer_norm_epsilon=1e-5)
    report = import_keras_hub_preset(source, garden)
    assert not report.missing and not report.unused
    gap, scale, _ = compare_outputs(source, garden, images(2))
    assert gap <= 1e-5 * scale, (gap, scale)


def test_classifier_head_is_reported_missing(vit_preset):
    source, path = vit_preset
    model = ImageClassifier(garden_vit(), num_classes=3)
    before = [np.asarray(v) for v in model.head.weights]
    report = import_keras_hub_preset(path, model)
    assert {g for g, _ in report.missing} == {v.path for v in model.head.weights}
    assert all("no classifier" in why for _, why in report.missing)
    assert any("init_checkpoint_modules=backbone" in n for n in report.notes)
    for value, variable in zip(before, model.head.weights):
        np.testing.assert_array_equal(value, np.asarray(variable))
    gap, scale, _ = compare_outputs(source, model, images(3))
    assert gap <= 1e-5 * scale


def test_misfits_are_refused_and_assign_nothing(vit_preset):
    _, path = vit_preset
    deeper = garden_vit(layers=3)
    before = np.asarray(deeper.get_layer("encoder_norm").gamma)
    with pytest.raises(WeightImportError) as info:
        import_keras_hub_preset(path, deeper)
    report = info.value.report
    assert "block3/attention_norm/gamma" in {g for g, _ in report.missing}
    assert "2 encoder blocks" in report.missing[0][1]
    np.testing.assert_array_equal(
        before, np.asarray(deeper.get_layer("encoder_norm").gamma)
    )

    with pytest.raises(WeightImportError) as info:
        import_keras_hub_preset(path, garden_vit(layers=1))
    unused = {s for s, _ in info.value.report.unused}
    assert "vit_encoder/transformer_block_2/mha/query/kernel" in unused

    with pytest.raises(WeightImportError) as info:
        import_keras_hub_preset(path, garden_vit(mlp_dim=24))
    skipped = info.value.report.skipped_by_shape
    assert (
        "block1/mlp_dense1/kernel",
        "vit_encoder/transformer_block_1/mlp/dense_1/kernel",
        (16, 24),
        (16, 32),
    ) in skipped

    source = keras_hub_vision.load_preset(path)
    for garden, match in (
        (garden_vit(pooling="gap"), r"use_class_token=True .*use token"),
        (garden_vit(approximate_gelu=True), "approximate_gelu=True"),
        (garden_vit(input_shape=(64, 64, 3)), r"image_shape=\(32, 32, 3\)"),
        (garden_vit(patch_size=4), r"patch_size=\[8, 8\]"),
        (ResNet(10, width_multiplier=0.25), "Garden's ViT backbone. Received: ResNet"),
    ):
        with pytest.raises(WeightImportError, match=match):
            import_keras_hub_preset(source, garden)


def hub_resnet(block_type="basic_block", blocks=(1, 1, 1, 1), **overrides):
    """A keras-hub ResNet, default kernels, random batch-norm parameters."""
    source = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=list(blocks),
        stackwise_num_strides=[1, 2, 2, 2],
        block_type=block_type,
        image_shape=(SIZE, SIZE, 3),
        **overrides,
    )
    rng = np.random.default_rng(4)
    for variable in source.weights:
        if variable.name in ("gamma", "moving_variance"):
            variable.assign(rng.uniform(0.5, 1.5, variable.shape).astype("float32"))
        elif variable.name in ("beta", "moving_mean"):
            variable.assign(rng.normal(0, 0.1, variable.shape).astype("float32"))
    return source


def garden_resnet(model_id=10, **overrides):
    params = dict(padding="symmetric", norm_epsilon=1e-5, input_shape=(SIZE, SIZE, 3))
    return ResNet(model_id, **{**params, **overrides})


def test_resnet_v1_preset_gives_equal_outputs(tmp_path):
    source = hub_resnet()
    source.save_to_preset(str(tmp_path / "resnet"))
    garden = garden_resnet()
    report = import_keras_hub_preset(str(tmp_path / "resnet"), garden)
    assert len(report.matched) == len(garden.weights) == len(source.weights)
    assert not (report.missing or report.skipped_by_shape or report.unused)
    assert (
        "level3_block1/shortcut/conv/kernel",
        "stack1_block0_0_conv/kernel",
        (1, 1, 64, 128),
    ) in report.matched
    x = images(4)
    gap, scale, compared = compare_outputs(source, garden, x)
    assert compared == "feature maps" and gap <= 1e-5 * scale, (gap, scale)

    # Why the option exists: the same weights under "same" padding differ.
    same = garden_resnet(padding="same")
    same.set_weights(garden.get_weights())
    moved = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(same(x).values(), garden(x).values())
    )
    assert moved > 1e-2 * scale, (moved, scale)


def test_resnet_bottleneck_blocks():
    source = hub_resnet("bottleneck_block", (3, 4, 6, 3))
    garden = garden_resnet(50)
    report = import_keras_hub_preset(source, garden)
    assert len(report.matched) == len(source.weights) == len(garden.weights)
    assert (
        "level5_block3/conv3/norm/moving_variance",
        "stack3_block2_3_bn/moving_variance",
        (2048,),
    ) in report.matched
    gap, scale, _ = compare_outputs(source, garden, images(5))
    assert gap <= 1e-5 * scale, (gap, scale)


def test_resnet_refusals():
    source = hub_resnet()
    for garden, match in (
        (garden_resnet(padding="same"), "set padding='symmetric'"),
        (garden_resnet(norm_epsilon=1e-3), "set norm_epsilon=1e-5"),
        (garden_resnet(18), r"is model_id=10 \(Garden: model_id=18\)"),
        (garden_resnet(width_multiplier=0.5), "set width_multiplier=1.0"),
        (garden_vit(), "Garden's ResNet backbone. Received: ViT"),
    ):
        with pytest.raises(WeightImportError, match=match):
            import_keras_hub_preset(source, garden)
    v2 = hub_resnet(use_pre_activation=True)
    with pytest.raises(WeightImportError, match="ResNet v2"):
        import_keras_hub_preset(v2, garden_resnet())
    vd = hub_resnet("basic_block_vd")
    with pytest.raises(WeightImportError, match=r"vd blocks \(basic_block_vd\)"):
        import_keras_hub_preset(vd, garden_resnet())


def test_other_cnn_backbones_are_refused_with_the_reason():
    for name in ("EfficientNetBackbone", "MobileNetBackbone"):
        with pytest.raises(WeightImportError, match="pads every strided depthwise"):
            keras_hub_vision.detect_architecture(name)
    with pytest.raises(
        WeightImportError, match="Supported: ViTBackbone, ResNetBackbone"
    ):
        keras_hub_vision.detect_architecture("GemmaBackbone")


def test_bad_preset_directories(tmp_path):
    with pytest.raises(FileNotFoundError, match="No keras-hub preset directory"):
        keras_hub_vision.load_preset(str(tmp_path / "absent"))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(
        FileNotFoundError, match="has no model.weights.h5; found: config.json"
    ):
        keras_hub_vision.load_preset(str(tmp_path))
    (tmp_path / "model.weights.h5").write_bytes(b"")
    with pytest.raises(WeightImportError, match="not a keras-hub backbone config"):
        keras_hub_vision.load_preset(str(tmp_path))


def test_missing_keras_hub_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_hub", None)
    with pytest.raises(
        keras_hub_vision.KerasHubMissingError, match=r'pip install -e "\.\[hub\]"'
    ):
        keras_hub_vision.require_keras_hub()


def test_vit_get_config_round_trips_the_epsilon():
    garden = garden_vit(layer_norm_epsilon=1e-5)
    again = ViT.from_config(garden.get_config())
    assert again.layer_norm_epsilon == 1e-5
    assert again.get_layer("block1").layer_norm_epsilon == 1e-5
    with pytest.raises(ValueError, match="layer_norm_epsilon"):
        garden_vit(layer_norm_epsilon=0.0)
    assert keras.saving.get_registered_object("official>ViT") is ViT


def test_symmetric_padding_option():
    """ConvNormAct: symmetric pads strided convolutions on every side only."""
    from official.modeling.layers import ConvNormAct

    x = np.random.default_rng(6).normal(size=(1, 8, 8, 2)).astype("float32")
    same = ConvNormAct(3, 3, strides=2)
    symmetric = ConvNormAct.from_config({**same.get_config(), "padding": "symmetric"})
    same(x), symmetric(x)
    symmetric.set_weights(same.get_weights())
    assert (
        symmetric.get_config()["padding"] == "symmetric" and symmetric.pad is not None
    )
    assert tuple(symmetric(x).shape) == tuple(same(x).shape) == (1, 4, 4, 3)
    # "same" pads (0, 1) here, symmetric (1, 1): the first output pixel's
    # window covers input rows 0-2 under "same", rows -1 (padding) to 1 here.
    assert not np.allclose(np.asarray(symmetric(x)), np.asarray(same(x)))
    unstrided = ConvNormAct(3, 3, padding="symmetric")
    assert unstrided.pad is None
    with pytest.raises(ValueError, match="`padding` must be one of same, symmetric"):
        ConvNormAct(3, padding="valid")
    with pytest.raises(ValueError, match="`padding` must be one of same, symmetric"):
        ResNet(10, padding="reflect")
