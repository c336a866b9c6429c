"""Importers of published text weights into Garden's encoders."""
