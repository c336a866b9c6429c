"""Backbones: multi-level feature extractors, registered in BACKBONES."""

from official.vision.backbones.resnet import ResNet

__all__ = ["ResNet"]
