"""Shared Keras layers: `from official.modeling.layers import ConvNormAct`."""

from official.modeling.layers.bottleneck_block import BottleneckBlock
from official.modeling.layers.conv_norm_act import ConvNormAct
from official.modeling.layers.fused_batch_normalization import FusedBatchNormalization
from official.modeling.layers.residual_block import ResidualBlock

__all__ = ["BottleneckBlock", "ConvNormAct", "FusedBatchNormalization", "ResidualBlock"]

from official.modeling.layers.channel_rounding import make_divisible  # noqa: E402
from official.modeling.layers.fused_inverted_bottleneck import (  # noqa: E402
    FusedInvertedBottleneck,
)
from official.modeling.layers.inverted_bottleneck import InvertedBottleneck  # noqa: E402
from official.modeling.layers.squeeze_excite import SqueezeExcite  # noqa: E402
from official.modeling.layers.stochastic_depth import StochasticDepth  # noqa: E402

__all__ += [
    "FusedInvertedBottleneck",
    "InvertedBottleneck",
    "SqueezeExcite",
    "StochasticDepth",
    "make_divisible",
]

from official.modeling.layers.patch_embedding import PatchEmbedding  # noqa: E402
from official.modeling.layers.position_embedding import PositionEmbedding  # noqa: E402
from official.modeling.layers.transformer_encoder_block import (  # noqa: E402
    TransformerEncoderBlock,
)

__all__ += ["PatchEmbedding", "PositionEmbedding", "TransformerEncoderBlock"]

from official.modeling.layers.masked_attention import (  # noqa: E402
    masked_self_attention,
    masked_softmax,
)

__all__ += ["masked_self_attention", "masked_softmax"]
