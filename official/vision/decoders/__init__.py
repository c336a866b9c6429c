"""Decoders: multi-level features in, multi-level features out (FPN)."""
