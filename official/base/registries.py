"""The registry instances, one per kind of component.

Modules that register into them are listed in `official/registry_imports.py`.
"""

from official.base.registry import Registry

EXPERIMENTS = Registry("experiment")
TASKS = Registry("task")
BACKBONES = Registry("backbone")
HEADS = Registry("head")
OPTIMIZERS = Registry("optimizer")
SCHEDULES = Registry("learning-rate schedule")
