"""Shared Keras layers: `from official.modeling.layers import ConvNormAct`."""

from official.modeling.layers.bottleneck_block import BottleneckBlock
from official.modeling.layers.conv_norm_act import ConvNormAct
from official.modeling.layers.residual_block import ResidualBlock

__all__ = ["BottleneckBlock", "ConvNormAct", "ResidualBlock"]
