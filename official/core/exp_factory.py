"""Named experiments: functions that return a complete `ExperimentConfig`."""

from __future__ import annotations

from typing import Callable

from official.core.experiment_config import ExperimentConfig
from official.core.registries import EXPERIMENTS


def register_experiment(name: str) -> Callable:
    """Registers a zero-argument function returning an `ExperimentConfig`."""
    return EXPERIMENTS.register(name)


def get_exp_config(name: str) -> ExperimentConfig:
    """A fresh config of the experiment registered as `name`."""
    import official.registry_imports  # noqa: F401  (fills the registries)

    factory = EXPERIMENTS.get(name)
    config = factory()
    if not isinstance(config, ExperimentConfig):
        raise TypeError(
            f"Experiment {name!r} returned {type(config).__name__}, not an "
            f"ExperimentConfig."
        )
    return config


def describe_experiments() -> list[tuple[str, str]]:
    """(name, first docstring line) of every registered experiment."""
    import official.registry_imports  # noqa: F401

    out = []
    for name, factory in EXPERIMENTS.items():
        doc = (factory.__doc__ or "").strip().splitlines()
        out.append((name, doc[0] if doc else ""))
    return out
