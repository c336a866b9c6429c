"""Losses of the vision tasks."""
