"""RetinaNet model: outputs, serialization, parameter count of the COCO recipe."""

import numpy as np

from official.testing.test_case import run_saving_test
from official.vision.backbones.resnet import ResNet
from official.vision.configs.image_classification import BackboneConfig
from official.vision.configs.retinanet import (
    AnchorConfig,
    DecoderConfig,
    RetinaNetHeadConfig,
    RetinaNetModelConfig,
)
from official.vision.decoders.fpn import FPN
from official.vision.heads.retinanet_head import RetinaNetHead
from official.vision.models.retinanet_model import RetinaNetModel, build_retinanet_model
from official.vision.ops.anchor_generator import num_anchors


def tiny_config(**kwargs):
    return RetinaNetModelConfig(
        num_classes=4,
        input_size=[64, 64, 3],
        min_level=3,
        max_level=5,
        backbone=BackboneConfig("resnet", {"model_id": 10, "width_multiplier": 0.25}),
        anchor=AnchorConfig(num_scales=2, aspect_ratios=[1.0], anchor_size=1.5),
        decoder=DecoderConfig(num_filters=8),
        head=RetinaNetHeadConfig(num_convs=1, num_filters=8),
        **kwargs,
    )


def test_outputs_match_the_anchors_and_save():
    config = tiny_config()
    model = build_retinanet_model(config)
    images = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype("float32")
    outputs = model(images)
    n = num_anchors((64, 64), 3, 5, 2, [1.0])
    assert tuple(outputs["cls_outputs"].shape) == (2, n, 4)
    assert tuple(outputs["box_outputs"].shape) == (2, n, 4)
    assert outputs["cls_outputs"].dtype == "float32"
    run_saving_test(model, images)


def test_model_holds_its_parts():
    backbone = ResNet(model_id=10, width_multiplier=0.25, input_shape=(32, 32, 3))
    model = RetinaNetModel(
        backbone, FPN(3, 5, num_filters=8), RetinaNetHead(3, 5, 2, 1, 1, 8)
    )
    assert model.backbone is backbone and isinstance(model.decoder, FPN)
