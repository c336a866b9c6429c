"""Metrics of the text tasks."""
