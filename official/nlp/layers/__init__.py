"""Text-specific Keras layers."""

from official.nlp.layers.learned_position_embedding import LearnedPositionEmbedding

__all__ = ["LearnedPositionEmbedding"]
