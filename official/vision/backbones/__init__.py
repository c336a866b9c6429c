"""Backbones: multi-level feature extractors, registered in BACKBONES."""

from official.vision.backbones.efficientnet import EfficientNet
from official.vision.backbones.mobilenet import MobileNet
from official.vision.backbones.resnet import ResNet
from official.vision.backbones.vit import ViT

__all__ = ["EfficientNet", "MobileNet", "ResNet", "ViT"]
