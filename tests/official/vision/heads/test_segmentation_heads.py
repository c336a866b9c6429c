"""Segmentation heads: shapes, ASPP at output stride 8 and 16, config round trip."""

import numpy as np
import pytest

from official.base.registries import HEADS
from official.testing.test_case import run_layer_test
from official.vision.backbones.resnet import ResNet
from official.vision.heads.aspp import ASPP
from official.vision.heads.deeplabv3_head import DeepLabV3Head
from official.vision.heads.deeplabv3plus_head import DeepLabV3PlusHead
from official.vision.heads.encnet_head import EncNetHead
from official.vision.heads.encoding import Encoding
from official.vision.heads.fcn_head import FCNHead
from official.vision.heads.upsample_like import UpsampleLike


@pytest.mark.parametrize("output_stride,rates", [(16, [6, 12, 18]), (8, [12, 24, 36])])
def test_aspp_on_dilated_resnet_keeps_the_output_stride(output_stride, rates):
    backbone = ResNet(model_id=10, width_multiplier=0.25, output_stride=output_stride)
    features = backbone(np.ones((2, 64, 64, 3), "float32"))
    top = features["5"]
    assert tuple(top.shape[1:3]) == (64 // output_stride,) * 2
    aspp = ASPP(num_filters=8, dilation_rates=rates)
    assert tuple(aspp(top).shape) == (2, 64 // output_stride, 64 // output_stride, 8)
    # One 1x1 branch, one per rate, the pooling branch, the projection.
    assert len(aspp.branches) == 1 + len(rates) and aspp.pool_conv is not None


def test_aspp_pooling_branch_is_constant_over_space():
    aspp = ASPP(num_filters=4, dilation_rates=[2], image_pooling=True, dropout_rate=0.0)
    x = np.random.default_rng(0).normal(size=(1, 6, 6, 3)).astype("float32")
    aspp(x)
    pooled = aspp.pool_conv(np.mean(x, axis=(1, 2), keepdims=True))
    assert tuple(pooled.shape) == (1, 1, 1, 4)


def test_aspp_contract():
    run_layer_test(
        ASPP,
        {"num_filters": 4, "dilation_rates": [2, 3], "image_pooling": False},
        np.ones((2, 5, 5, 6), "float32"),
        expected_output_shape=(2, 5, 5, 4),
    )


def test_fcn_head_contract():
    run_layer_test(
        FCNHead,
        {"num_classes": 3, "num_filters": 4, "num_convs": 2, "level": 4},
        {"4": np.ones((2, 4, 4, 8), "float32")},
        expected_output_shape=(2, 4, 4, 3),
    )


def test_deeplabv3_head_contract():
    run_layer_test(
        DeepLabV3Head,
        {"num_classes": 3, "num_filters": 4, "dilation_rates": [2]},
        {"5": np.ones((2, 4, 4, 8), "float32")},
        expected_output_shape=(2, 4, 4, 3),
    )


def test_deeplabv3plus_head_fuses_the_low_level_resolution():
    run_layer_test(
        DeepLabV3PlusHead,
        {
            "num_classes": 3,
            "num_filters": 4,
            "dilation_rates": [2],
            "low_level_filters": 2,
        },
        {
            "2": np.ones((2, 16, 16, 4), "float32"),
            "5": np.ones((2, 4, 4, 8), "float32"),
        },
        expected_output_shape=(2, 16, 16, 3),
    )


def test_encnet_head_contract():
    run_layer_test(
        EncNetHead,
        {"num_classes": 3, "num_filters": 4, "num_codewords": 2},
        {"5": np.ones((2, 4, 4, 8), "float32")},
        expected_output_shape={"logits": (2, 4, 4, 3), "se_logits": (2, 3)},
    )


def test_encoding_matches_the_direct_sum_of_residuals():
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 4)).astype("float32")
    layer = Encoding(num_codewords=3)
    encoded = np.asarray(layer(x))
    c = np.asarray(layer.codewords)
    s = np.asarray(layer.scale)
    flat = x.reshape(2, 9, 1, 4)
    residuals = flat - c[None, None]  # [B, N, K, D]
    logits = s * np.sum(residuals**2, axis=-1)
    assign = np.exp(logits - logits.max(-1, keepdims=True))
    assign /= assign.sum(-1, keepdims=True)
    expected = np.einsum("bnk,bnkd->bkd", assign, residuals)
    np.testing.assert_allclose(encoded, expected, atol=1e-4)


def test_upsample_like_follows_the_reference_size():
    out = UpsampleLike()(
        np.ones((1, 3, 5, 2), "float32"), np.ones((1, 12, 20, 3), "float32")
    )
    assert tuple(out.shape) == (1, 12, 20, 2)
    np.testing.assert_allclose(np.asarray(out), 1.0)


def test_heads_are_registered():
    assert {"fcn", "deeplabv3", "deeplabv3plus", "encnet"} <= set(HEADS.names())


def test_missing_level_is_named():
    with pytest.raises(ValueError, match="level '4'.*Levels returned: 5"):
        FCNHead(num_classes=2, level=4)({"5": np.ones((1, 2, 2, 4), "float32")})
