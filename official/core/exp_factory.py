"""Named experiments: functions that return a complete `ExperimentConfig`.

The registry is filled by the modules that define experiments; the entry
points (`official/train.py`, `serving/export.py`, `tools/`) import
`official.registry_imports`, which lists them all. The core imports no task
family itself.
"""

from __future__ import annotations

from collections.abc import Callable

from official.base.registries import EXPERIMENTS
from official.core.experiment_config import ExperimentConfig


def register_experiment(name: str) -> Callable:
    """Registers a zero-argument function returning an `ExperimentConfig`."""
    return EXPERIMENTS.register(name)


def get_exp_config(name: str) -> ExperimentConfig:
    """A fresh config of the experiment registered as `name`."""
    factory = EXPERIMENTS.get(name) if len(EXPERIMENTS) else _nothing_registered(name)
    config = factory()
    if not isinstance(config, ExperimentConfig):
        raise TypeError(
            f"Experiment {name!r} returned {type(config).__name__}, not an "
            f"ExperimentConfig."
        )
    return config


def describe_experiments() -> list[tuple[str, str]]:
    """(name, first docstring line) of every registered experiment."""
    out = []
    for name, factory in EXPERIMENTS.items():
        doc = (factory.__doc__ or "").strip().splitlines()
        out.append((name, doc[0] if doc else ""))
    return out


def _nothing_registered(name: str):
    raise KeyError(
        f"Unknown experiment {name!r}: no experiment is registered. Import "
        "official.registry_imports (the binaries and tools do) or the module "
        "that registers your experiment before looking it up."
    )
