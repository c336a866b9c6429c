"""Garden: a Keras 3 model garden with an export pipeline."""

__version__ = "0.1.0"
