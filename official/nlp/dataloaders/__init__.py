"""Text input pipelines."""
