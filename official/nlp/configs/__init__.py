"""Configs of the text tasks (plain dataclasses; no TensorFlow at import)."""
