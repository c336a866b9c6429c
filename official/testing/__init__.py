"""Shared test helpers: `from official.testing.test_case import run_layer_test`."""
