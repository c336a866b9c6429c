"""Metrics of the vision tasks."""
