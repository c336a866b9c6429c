"""Tasks are keyed by the type of their config.

A task registers when its module is imported; the entry points import
`official.registry_imports`, which lists every task module.
"""

from __future__ import annotations

from collections.abc import Callable

from official.base.registries import TASKS
from official.core.experiment_config import TaskConfig


def register_task(config_cls: type) -> Callable:
    """Registers a `Task` subclass as the task for configs of `config_cls`."""
    return TASKS.register(config_cls)


def get_task(config: TaskConfig):
    """Builds the task registered for `type(config)`."""
    task_cls = TASKS.get(type(config))
    return task_cls(config)
